"""The benchmark's lower-bound phase: the final models' kind of search, in full and screened."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
from distributed import futures_of, wait

from .. import config
from ..neighbors import bound_components, bounded_kneighbors_dask, kneighbors_dask
from ..preprocessing import augment_shifts
from ..runtime import compute
from ._gemm import gemm_limit, multiply_adds

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
    the bound is not used (:func:`~mnistdist.neighbors.bound_components`).
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
