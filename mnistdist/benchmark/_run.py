"""The book's grid search against mnistdist's, on the same data and folds, timed.

(a) the book's way: scikit-learn's ``GridSearchCV(KNeighborsClassifier(),
grid, cv=folds, n_jobs=-1)`` on one machine, on float64 pixels as
``fetch_openml`` returns them; (b) :func:`mnistdist.model_selection.neighbors_search` on
the current Dask cluster; (c) the same with a single candidate, to show what
the other candidates cost once neighbours are shared. With ``strategy``
``"halving"`` (or ``"both"``), scikit-learn's ``HalvingGridSearchCV`` against
:func:`mnistdist.model_selection.halving_search` on the same folds.

Each of mnistdist's neighbour phases is also given as a multiple of its GEMM
limit (:mod:`mnistdist.benchmark._gemm`), measured in the same run on the same workers.
Last, the final models' kind of search (held-out images against the others and
their four shifts), in full and screened by the lower bound
(:mod:`mnistdist.neighbors._lower_bound`): both times, and the share of distances skipped.
"""

from __future__ import annotations

import logging
import time

import dask.array as da
import numpy as np
from distributed import futures_of, wait
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from ..errors import OptionError
from ..model_selection import (
    FACTOR,
    HalvingResult,
    SearchResult,
    cv_folds,
    halving_search,
    neighbors_search,
)
from ..runtime import client_segment
from ._bound_phase import bound_search
from ._gemm import cv_multiply_adds, gemm_limit, gemm_shape, measure_gemm_rate

log = logging.getLogger(__name__)

#: What the benchmark compares: the grid searches, the halving searches, or both.
BENCHMARK_STRATEGIES = ("grid", "halving", "both")

#: Largest |difference| of two CV scores still counted the same: ties between training
#: rows at equal distances may be broken differently (see docs/benchmark.md).
SCORE_TOLERANCE = 1e-3


def book_search(X: np.ndarray, y: np.ndarray, param_grid: dict, folds) -> tuple[dict, float]:
    """scikit-learn's GridSearchCV on one machine, all cores; returns (cv_results_, seconds)."""
    t = time.perf_counter()
    # Its processes are the job's own work, which the main thread's CPU time would miss.
    with client_segment("book-gridsearchcv"):
        search = GridSearchCV(
            KNeighborsClassifier(), param_grid, cv=folds, n_jobs=-1, refit=False
        ).fit(X, y)
    return search.cv_results_, time.perf_counter() - t


def book_halving(X: np.ndarray, y: np.ndarray, param_grid: dict, folds, random_state: int = 0):
    """scikit-learn's HalvingGridSearchCV (factor 3, resource: images), all cores.

    Returns the fitted search and its seconds.
    """
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    t = time.perf_counter()
    with client_segment("book-halvinggridsearchcv"):
        search = HalvingGridSearchCV(
            KNeighborsClassifier(),
            param_grid,
            cv=folds,
            factor=FACTOR,
            resource="n_samples",
            n_jobs=-1,
            random_state=random_state,
            refit=False,
        ).fit(X, y)
    return search, time.perf_counter() - t


def _scores(cv_results: dict, n_splits: int) -> np.ndarray:
    return np.array([cv_results[f"split{f}_test_score"] for f in range(n_splits)]).T


def _phase_limit(res: SearchResult, folds, n_features: int, rate: float) -> dict:
    # Each group of candidates with neighbours of its own searches every fold once.
    n = cv_multiply_adds(folds, n_features) * res.n_neighbor_searches // len(folds)
    return gemm_limit(res.seconds["neighbors"], n, rate)


def _search_row(method: str, res: SearchResult) -> dict:
    return {
        "method": method,
        "seconds": sum(res.seconds.values()),
        "seconds_neighbors": res.seconds["neighbors"],
        "seconds_scoring": res.seconds["scoring"],
        "best_params": res.best_params,
        "best_score": res.best_score,
    }


def _grid(
    X: da.Array, y: np.ndarray, param_grid: dict, folds, rate: float
) -> tuple[dict, SearchResult]:
    """(b) and (c): mnistdist's grid search and its single-candidate search, timed."""
    single = {
        "n_neighbors": [max(param_grid["n_neighbors"])],
        "weights": [param_grid["weights"][0]],
    }
    ours = neighbors_search(X, y, param_grid=param_grid, cv=folds)
    ours_1 = neighbors_search(X, y, param_grid=single, cv=folds)
    n_cand = len(ours.cv_results["params"])
    rows = [
        {**_search_row(label, res), **_phase_limit(res, folds, X.shape[1], rate)}
        for label, res in (
            (f"mnistdist, {n_cand} candidates", ours),
            ("mnistdist, 1 candidate", ours_1),
        )
    ]
    return {"rows": rows, "candidate_cost_ratio": rows[0]["seconds"] / rows[1]["seconds"]}, ours


def _book_grid(report: dict, X_np: np.ndarray, y, param_grid: dict, folds, ours) -> None:
    """(a): the book's GridSearchCV, first in the rows, and whether its scores agree with ours."""
    log.info("book's GridSearchCV on %s", X_np.shape)
    cv_book, seconds = book_search(X_np, y, param_grid, folds)
    best = int(np.argmin(cv_book["rank_test_score"]))
    report["rows"].insert(
        0,
        {
            "method": "book: scikit-learn GridSearchCV(n_jobs=-1)",
            "seconds": seconds,
            "best_params": cv_book["params"][best],
            "best_score": float(cv_book["mean_test_score"][best]),
        },
    )
    diff = np.abs(_scores(cv_book, len(folds)) - _scores(ours.cv_results, len(folds)))
    report["scores_max_abs_diff"] = float(diff.max())
    report["scores_agree"] = bool(
        diff.max() <= SCORE_TOLERANCE and cv_book["params"][best] == ours.best_params
    )
    report["speedup"] = seconds / report["rows"][1]["seconds"]


def _halving_rounds(res: HalvingResult, n_features: int, rate: float) -> list[dict]:
    """Each round's size and neighbour phase, with its GEMM limit."""
    rounds = []
    for r in res.rounds:
        seconds = r.scores.seconds["neighbors"]
        n = cv_multiply_adds(r.folds, n_features) * r.scores.n_neighbor_searches // len(r.folds)
        rounds.append(
            {
                "iteration": r.iteration,
                "n_resources": len(r.rows),
                "n_candidates": len(r.candidates),
                "seconds_neighbors": seconds,
                **gemm_limit(seconds, n, rate),
            }
        )
    return rounds


def _param_key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def _compare_halving(book, ours: HalvingResult, folds) -> dict:
    """What the two halving searches can be compared on: schedule, last round, choice.

    The earlier rounds cannot: scikit-learn draws a fresh random subsample of
    each full fold, mnistdist splits a nested stratified subset anew. A last
    round on every image has the same folds in both, and the candidates both
    kept there have scores that differ only where KNN breaks ties between
    equal distances by row order: scikit-learn's subsampler shuffles each
    fold's training rows, even when it keeps them all.
    """
    n_samples = sum(len(test) for _, test in folds)
    last_b = np.flatnonzero(book.cv_results_["iter"] == book.n_iterations_ - 1)
    last_o = np.flatnonzero(ours.cv_results["iter"] == ours.rounds[-1].iteration)
    in_book = {_param_key(book.cv_results_["params"][i]): i for i in last_b}
    in_ours = {_param_key(ours.cv_results["params"][i]): i for i in last_o}
    common = [p for p in in_ours if p in in_book]
    out = {
        "book_n_resources": [int(n) for n in book.n_resources_],
        "book_n_candidates": [int(n) for n in book.n_candidates_],
        "last_round_all_images": bool(
            book.n_resources_[-1] == n_samples and ours.n_resources[-1] == n_samples
        ),
        "last_round_common_candidates": len(common),
        "best_agree": _param_key(book.best_params_) == _param_key(ours.best_params),
    }
    out["schedule_agree"] = (
        out["book_n_resources"] == ours.n_resources
        and out["book_n_candidates"] == ours.n_candidates
    )
    if out["last_round_all_images"] and common:
        book_scores = _scores(book.cv_results_, len(folds))[[in_book[p] for p in common]]
        our_scores = _scores(ours.cv_results, len(folds))[[in_ours[p] for p in common]]
        diff = np.abs(book_scores - our_scores)
        out["last_round_scores_max_abs_diff"] = float(diff.max())
        # Accuracy times a fold's validation rows: how many images' votes differ, net.
        images = diff * np.array([len(test) for _, test in folds])
        out["last_round_max_images_differ"] = int(np.rint(images).max())
    return out


def _halving(X: da.Array, X_np, y, param_grid: dict, cv, folds, rate, random_state) -> dict:
    """mnistdist's halving (and scikit-learn's, given ``X_np``) on the same folds, compared."""
    ours = halving_search(X, y, param_grid=param_grid, cv=cv, random_state=random_state)
    rounds = _halving_rounds(ours, X.shape[1], rate)
    row = _search_row("mnistdist, halving", ours)
    n = sum(r["neighbor_multiply_adds"] for r in rounds)
    row.update(gemm_limit(row["seconds_neighbors"], n, rate), rounds=rounds)
    report = {
        "factor": FACTOR,
        "random_state": random_state,
        "n_resources": ours.n_resources,
        "n_candidates": ours.n_candidates,
        "rows": [row],
    }
    if X_np is None:
        return report
    log.info("book's HalvingGridSearchCV on %s", X_np.shape)
    book, seconds = book_halving(X_np, y, param_grid, folds, random_state)
    report["rows"].insert(
        0,
        {
            "method": "book: scikit-learn HalvingGridSearchCV(n_jobs=-1)",
            "seconds": seconds,
            "best_params": book.best_params_,
            "best_score": float(book.best_score_),
        },
    )
    report["speedup"] = seconds / row["seconds"]
    report.update(_compare_halving(book, ours, folds))
    return report


def run_benchmark(
    X: da.Array,
    y: np.ndarray,
    param_grid: dict,
    cv=5,
    *,
    book: bool = True,
    strategy: str = "grid",
    random_state: int = 0,
    gemm_seconds: float = 1.0,
) -> dict:
    """Time the book's searches against mnistdist's, and each neighbour phase against its limit.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Image rows, on the current cluster.
    y : array-like of shape (n_samples,)
        Labels.
    param_grid : dict
        The book's grid: ``n_neighbors`` and ``weights``.
    cv : int or cross-validation splitter, default=5
        The folds, the same for every search.
    book : bool, default=True
        Run scikit-learn's searches too (slow).
    strategy : {'grid', 'halving', 'both'}, default='grid'
        Which searches to compare.
    random_state : int, default=0
        Seeds both halving searches' subsets.
    gemm_seconds : float, default=1.0
        How long each worker thread times the GEMM (:func:`~mnistdist.benchmark.measure_gemm_rate`).

    Returns
    -------
    dict
        JSON-ready: ``gemm``, the grid's ``rows`` (with ``strategy`` grid or
        both) and ``halving`` (halving or both).
    """
    if strategy not in BENCHMARK_STRATEGIES:
        raise OptionError(f"strategy must be one of {BENCHMARK_STRATEGIES}, got {strategy!r}")
    y = np.asarray(y)
    folds = cv_folds(cv, y)
    # The largest of the search's tasks: the largest validation fold against a chunk.
    shape = gemm_shape(max(len(test) for _, test in folds), X.shape[0], X.shape[1])
    # A load still running on the workers would share their cores with the GEMM.
    if loading := futures_of(X):
        wait(loading)
    gemm = measure_gemm_rate(shape, min_seconds=gemm_seconds)
    rate = gemm["multiply_adds_per_s"]
    report = {
        "n_train": len(y),
        "n_splits": len(folds),
        "param_grid": param_grid,
        "strategy": strategy,
        "gemm": gemm,
    }
    X_np = X.compute().astype(np.float64) if book else None
    if strategy != "halving":
        grid, ours = _grid(X, y, param_grid, folds, rate)
        report.update(grid)
        if book:
            _book_grid(report, X_np, y, param_grid, folds, ours)
    if strategy != "grid":
        report["halving"] = _halving(X, X_np, y, param_grid, cv, folds, rate, random_state)
    if (bound := bound_search(X, rate)) is not None:
        report["lower_bound"] = bound
    return report
