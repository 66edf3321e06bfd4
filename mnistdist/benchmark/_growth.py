"""How the search grows with the training images: its time at an eighth, a quarter, a half and
all of them, the exponent of a power law fitted to those times, and each worker's peak memory."""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..model_selection import SearchResult, neighbors_search
from ..neighbors import cv_method
from ..runtime import current_client
from ._usage import cpu_during, peak_memory_during

#: The fractions of the training images the growth table searches besides all of them.
GROWTH_DIVISORS = (8, 4, 2)


def growth_row(res: SearchResult, X: da.Array, memory: dict, cpu: dict) -> dict:
    """One size's row: the search's seconds (all, neighbours, CPU), how it searched, its memory."""
    k = max(v for p in res.cv_results["params"] for n, v in p.items() if n.endswith("n_neighbors"))
    n_train, n_features = X.shape
    n_pairs = sum(len(test) * (n_train - len(test)) for _, test in res.folds)
    return {
        "n_train": n_train,
        "seconds": sum(res.seconds.values()),
        "seconds_neighbors": res.seconds["neighbors"],
        "cpu_seconds": cpu["total"],
        "method": cv_method(n_features, k, n_pairs=n_pairs, dtype=X.dtype),
        "memory": memory,
    }


def fitted_exponent(sizes, seconds) -> float:
    """The exponent b of ``seconds = a * sizes**b``, fitted by least squares on logarithms."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def growth_table(X: da.Array, y: np.ndarray, param_grid, cv, full: dict) -> dict:
    """The search of ``param_grid`` on the first n/8, n/4 and n/2 rows, then ``full``'s row (the
    same search on all n, already timed), with the exponents fitted to their seconds."""
    client = current_client()
    rows = []
    for divisor in GROWTH_DIVISORS:
        n = X.shape[0] // divisor
        n_splits = cv if isinstance(cv, int) else 5
        if np.unique(y[:n], return_counts=True)[1].min() < n_splits:
            continue  # too few rows of some class for the folds
        with peak_memory_during(client) as memory, cpu_during() as cpu:
            res = neighbors_search(X[:n], y[:n], param_grid=param_grid, cv=cv)
        rows.append(growth_row(res, X[:n], memory, cpu))
    rows.append(full)
    sizes = [r["n_train"] for r in rows]
    out = {"rows": rows}
    if len(rows) > 1:
        out["exponent"] = fitted_exponent(sizes, [r["seconds"] for r in rows])
        out["exponent_neighbors"] = fitted_exponent(sizes, [r["seconds_neighbors"] for r in rows])
    return out
