"""The book's grid search against mnistdist's, on the same data and folds, timed.

(a) the book's way: scikit-learn's ``GridSearchCV(KNeighborsClassifier(),
grid, cv=folds, n_jobs=-1)`` on one machine, on float64 pixels as
``fetch_openml`` returns them; (b) :func:`mnistdist.search.neighbors_search` on
the current Dask cluster; (c) the same with a single candidate, to show what
the other candidates cost once neighbours are shared.
"""

from __future__ import annotations

import logging
import time

import dask.array as da
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from .scaling import client_segment
from .search import cv_folds, neighbors_search

log = logging.getLogger(__name__)


def book_search(X: np.ndarray, y: np.ndarray, param_grid: dict, folds) -> tuple[dict, float]:
    """scikit-learn's GridSearchCV on one machine, all cores; returns (cv_results_, seconds)."""
    t = time.perf_counter()
    # Its processes are the job's own work, which the main thread's CPU time would miss.
    with client_segment("book-gridsearchcv"):
        search = GridSearchCV(
            KNeighborsClassifier(), param_grid, cv=folds, n_jobs=-1, refit=False
        ).fit(X, y)
    return search.cv_results_, time.perf_counter() - t


def _scores(cv_results: dict, n_splits: int) -> np.ndarray:
    return np.array([cv_results[f"split{f}_test_score"] for f in range(n_splits)]).T


def run_benchmark(X: da.Array, y: np.ndarray, param_grid: dict, cv=5, *, book: bool = True) -> dict:
    """Time (a) the book's search, (b) mnistdist's, (c) mnistdist's with one candidate."""
    y = np.asarray(y)
    folds = cv_folds(cv, y)
    rows = []

    single = {
        "n_neighbors": [max(param_grid["n_neighbors"])],
        "weights": [param_grid["weights"][0]],
    }
    ours = neighbors_search(X, y, param_grid=param_grid, cv=folds)
    ours_1 = neighbors_search(X, y, param_grid=single, cv=folds)
    n_cand = len(ours.cv_results["params"])
    for label, res in (
        (f"mnistdist, {n_cand} candidates", ours),
        ("mnistdist, 1 candidate", ours_1),
    ):
        rows.append(
            {
                "method": label,
                "seconds": sum(res.seconds.values()),
                "seconds_neighbors": res.seconds["neighbors"],
                "seconds_scoring": res.seconds["scoring"],
                "best_params": res.best_params,
                "best_score": res.best_score,
            }
        )
    report = {
        "n_train": len(y),
        "n_splits": len(folds),
        "param_grid": param_grid,
        "rows": rows,
        "candidate_cost_ratio": rows[0]["seconds"] / rows[1]["seconds"],
    }
    if book:
        X_np = X.compute().astype(np.float64)
        log.info("book's GridSearchCV on %s", X_np.shape)
        cv_book, seconds = book_search(X_np, y, param_grid, folds)
        best = int(np.argmin(cv_book["rank_test_score"]))
        rows.insert(
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
            diff.max() <= 1e-3 and cv_book["params"][best] == ours.best_params
        )
        report["speedup"] = seconds / rows[1]["seconds"]
    return report


def format_table(report: dict) -> str:
    """The benchmark as a plain-text table."""
    base = report["rows"][0]["seconds"]
    lines = [f"{'method':<46} {'seconds':>9} {'vs first':>9}  best params (mean CV accuracy)"]
    for row in report["rows"]:
        params = ", ".join(f"{k}={v}" for k, v in sorted(row["best_params"].items()))
        lines.append(
            f"{row['method']:<46} {row['seconds']:>9.1f} {base / row['seconds']:>8.2f}x  "
            f"{params} ({row['best_score']:.4f})"
        )
    if "speedup" in report:
        lines.append(f"speed-up of mnistdist over the book's way: {report['speedup']:.1f}x")
        lines.append(
            f"CV scores agree (max |diff| {report['scores_max_abs_diff']:.2g}): "
            f"{'yes' if report['scores_agree'] else 'NO'}"
        )
    lines.append(
        f"cost of the full grid over a single candidate: {report['candidate_cost_ratio']:.2f}x"
    )
    return "\n".join(lines)
