"""The book's grid search against mnistdist's, on the same data and folds, timed.

(a) the book's way: scikit-learn's ``GridSearchCV(KNeighborsClassifier(),
grid, cv=folds, n_jobs=-1)`` on one machine, on float64 pixels as
``fetch_openml`` returns them; (b) :func:`mnistdist.search.neighbors_search` on
the current Dask cluster; (c) the same with a single candidate, to show what
the other candidates cost once neighbours are shared. With ``strategy``
``"halving"`` (or ``"both"``), scikit-learn's ``HalvingGridSearchCV`` against
:func:`mnistdist.halving.halving_search` on the same folds.

Each of mnistdist's neighbour phases is also given as a multiple of its GEMM
limit (:mod:`mnistdist.gemm`), measured in the same run on the same workers.
Last, the final models' kind of search (held-out images against the others and
their four shifts), in full and screened by the lower bound
(:mod:`mnistdist.lower_bound`): both times, and the share of distances skipped.
"""

from __future__ import annotations

import logging
import time

import dask
import dask.array as da
import numpy as np
from distributed import futures_of, wait
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from . import config
from .augment import augment_shifts
from .compute import compute
from .errors import OptionError
from .gemm import cv_multiply_adds, gemm_shape, measure_gemm_rate, multiply_adds
from .halving import FACTOR, HalvingResult, halving_search
from .lower_bound import bound_components, bounded_kneighbors_dask
from .neighbors import kneighbors_dask
from .scaling import client_segment
from .search import SearchResult, cv_folds, neighbors_search

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


def gemm_limit(seconds: float, n_multiply_adds: int, rate: float) -> dict:
    """A neighbour phase's multiply-adds, its GEMM limit at ``rate`` and its time as a multiple."""
    limit = n_multiply_adds / rate
    return {
        "neighbor_multiply_adds": int(n_multiply_adds),
        "gemm_limit_s": limit,
        "gemm_limit_multiple": seconds / limit,
    }


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
        How long each worker thread times the GEMM (:func:`~mnistdist.gemm.measure_gemm_rate`).

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


#: Neighbours of the lower-bound benchmark's search: the book's best KNN's.
BOUND_K = 4


def _timed(label: str, lazy) -> tuple[tuple, float]:
    t = time.perf_counter()
    found = compute(*lazy, label=label)
    return found, time.perf_counter() - t


def bound_search(X: da.Array, rate: float) -> dict | None:
    """The final models' kind of search, in full and with the lower bound, on ``X`` alone.

    The last sixth of the images (as MNIST's test set is a seventh of it) against
    the others and their four one-pixel shifts: never the test set. None where
    the bound is not used (:func:`~mnistdist.lower_bound.bound_components`).
    """
    n_components = bound_components(X.shape[1])
    n_query = X.shape[0] // 6
    if not n_components or n_query == 0:
        return None
    query = X[-n_query:].rechunk({0: int(config.get("query-rows"))})
    ref, _ = augment_shifts(X[:-n_query], np.zeros(X.shape[0] - n_query, dtype=np.int64))
    (ref,) = dask.persist(ref)  # the shifts made before either clock starts
    wait(futures_of(ref))
    (d_full, i_full), full_s = _timed("search in full", kneighbors_dask(query, ref, BOUND_K))
    (d_bound, i_bound, pairs), bound_s = _timed(
        "search with the lower bound", bounded_kneighbors_dask(query, ref, BOUND_K, n_components)
    )
    n_pairs = n_query * ref.shape[0]
    macs = multiply_adds(n_query, ref.shape[0], X.shape[1])
    return {
        "n_query": n_query,
        "n_reference": int(ref.shape[0]),
        "k": BOUND_K,
        "n_components": n_components,
        "full": {"seconds_neighbors": full_s, **gemm_limit(full_s, macs, rate)},
        "bound": {"seconds_neighbors": bound_s, **gemm_limit(bound_s, macs, rate)},
        "speedup": full_s / bound_s,
        "exact_pairs_share": float(pairs.sum()) / n_pairs,
        "same_neighbors": bool(np.array_equal(i_full, i_bound) and np.array_equal(d_full, d_bound)),
    }


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _rows_table(rows: list[dict]) -> list[str]:
    base = rows[0]["seconds"]
    lines = [f"{'method':<50} {'seconds':>9} {'vs first':>9}  best params (mean CV accuracy)"]
    for row in rows:
        lines.append(
            f"{row['method']:<50} {row['seconds']:>9.1f} {base / row['seconds']:>8.2f}x  "
            f"{_params(row['best_params'])} ({row['best_score']:.4f})"
        )
    return lines


def _s(seconds: float) -> str:
    # Small data's limits are milliseconds: a fixed decimal would show them as 0.0.
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2g} s"


def _limit_line(label: str, phase: dict, gflops: float) -> str:
    return (
        f"neighbours, {label}: {_s(phase['seconds_neighbors'])} = "
        f"{phase['gemm_limit_multiple']:.2f}x the GEMM limit "
        f"({_s(phase['gemm_limit_s'])} at {gflops:.0f} GFLOP/s)"
    )


def _gemm_lines(report: dict) -> list[str]:
    gemm = report["gemm"]
    m, d, n = gemm["shape"]
    gflops = gemm["gflops"]
    lines = [
        f"GEMM limit: float32 {m} x {d} times {d} x {n} on {gemm['threads']} worker threads "
        f"at once, BLAS single-threaded: {gflops:.1f} GFLOP/s"
    ]
    for row in report.get("rows", []):
        if "gemm_limit_s" in row:
            lines.append(_limit_line(row["method"], row, gflops))
    for row in report.get("halving", {}).get("rows", []):
        for r in row.get("rounds", []):
            label = (
                f"{row['method']} round {r['iteration']} "
                f"({r['n_candidates']} candidates, {r['n_resources']} images)"
            )
            lines.append(_limit_line(label, r, gflops))
    if bound := report.get("lower_bound"):
        lines.append(_limit_line("the final models' search, in full", bound["full"], gflops))
        lines.append(_limit_line("the same, lower bound", bound["bound"], gflops))
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _last_round_line(halving: dict) -> str:
    if not halving["last_round_all_images"]:
        return "last round on a subsample of the images: its scores are not compared"
    if "last_round_max_images_differ" not in halving:
        return "last round, all images: no candidate kept by both, so no scores to compare"
    return (
        f"last round, all images on the same folds: "
        f"{_n(halving['last_round_common_candidates'], 'candidate')} kept by both, CV scores "
        f"apart by at most {_n(halving['last_round_max_images_differ'], 'validation image')} "
        f"a fold (max |diff| {halving['last_round_scores_max_abs_diff']:.2g}; ties in distance "
        f"fall by row order, which scikit-learn's subsampler shuffles)"
    )


def _halving_lines(halving: dict) -> list[str]:
    lines = ["", f"successive halving (factor {halving['factor']}, resource: training images)"]
    lines += _rows_table(halving["rows"])
    sizes = ", ".join(
        f"{c} on {n}" for c, n in zip(halving["n_candidates"], halving["n_resources"], strict=True)
    )
    lines.append(f"mnistdist's rounds (candidates on images): {sizes}")
    if "speedup" not in halving:
        return lines
    lines.append(f"speed-up of mnistdist's halving over scikit-learn's: {halving['speedup']:.1f}x")
    lines.append(f"same rounds as scikit-learn's: {'yes' if halving['schedule_agree'] else 'NO'}")
    lines.append(_last_round_line(halving))
    lines.append(f"same candidate chosen: {'yes' if halving['best_agree'] else 'no'}")
    lines.append(
        "not compared: the earlier rounds' scores (scikit-learn subsamples each fold at "
        "random, mnistdist splits nested stratified subsets)"
    )
    return lines


def _bound_lines(bound: dict) -> list[str]:
    skipped = 1 - bound["exact_pairs_share"]
    return [
        "",
        f"the final models' kind of search: {bound['n_query']} held-out images against "
        f"{bound['n_reference']} (the others and their shifts), k = {bound['k']}",
        f"lower bound on {bound['n_components']} principal components: {skipped:.2%} of the "
        f"distances skipped, {bound['speedup']:.2f}x faster than in full, same neighbours: "
        f"{'yes' if bound['same_neighbors'] else 'NO'}",
    ]


def format_table(report: dict) -> str:
    """The benchmark as plain-text tables, and each neighbour phase against its GEMM limit."""
    lines = []
    if "rows" in report:
        lines += _rows_table(report["rows"])
        if "speedup" in report:
            lines.append(f"speed-up of mnistdist over the book's way: {report['speedup']:.1f}x")
            lines.append(
                f"CV scores agree (max |diff| {report['scores_max_abs_diff']:.2g}): "
                f"{'yes' if report['scores_agree'] else 'NO'}"
            )
        lines.append(
            f"cost of the full grid over a single candidate: {report['candidate_cost_ratio']:.2f}x"
        )
    if "halving" in report:
        lines += _halving_lines(report["halving"])
    if "lower_bound" in report:
        lines += _bound_lines(report["lower_bound"])
    return "\n".join([*lines, "", *_gemm_lines(report)])
