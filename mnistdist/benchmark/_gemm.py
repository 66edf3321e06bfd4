"""The GEMM limit: how fast the cluster's cores multiply float32 matrices of the search's shape.

An exact neighbour search cannot beat the matrix product at its heart: for
every query row and every reference row, one multiply-add per feature. Timing
that product alone, of one neighbour task's shape (``query-rows`` x d times d x
``chunk-rows``), on every worker thread at once and with BLAS single-threaded as
the workers run it, gives the cluster's rate; a neighbour phase's multiply-adds
divided by that rate is its **GEMM limit**, the time it would take were it
nothing but the product. :mod:`mnistdist.benchmark` reports each neighbour
phase as a multiple of its limit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

import numpy as np
from threadpoolctl import threadpool_limits

from .. import config
from ..runtime import current_client

log = logging.getLogger(__name__)


def multiply_adds(n_query: int, n_reference: int, n_features: int) -> int:
    """Multiply-adds of the full distance product of ``n_query`` rows against ``n_reference``.

    A final test-set search is ``multiply_adds(n_test, n_train, n_features)``.
    """
    return int(n_query) * int(n_reference) * int(n_features)


def cv_multiply_adds(folds: Iterable[tuple[np.ndarray, np.ndarray]], n_features: int) -> int:
    """Multiply-adds of an exact CV neighbour search: validation x training x features, per fold.

    Counts the full product of each fold, whatever a search skips (each fold pair's
    block once, :mod:`mnistdist.neighbors._fold_pairs`): the limit is that of the exact search.

    Parameters
    ----------
    folds : iterable of (train, test) index arrays
        The cross-validation's folds.
    n_features : int
        Columns of the rows searched.

    Returns
    -------
    int
    """
    return sum(multiply_adds(len(test), len(train), n_features) for train, test in folds)


def gemm_shape(n_query: int, n_reference: int, n_features: int) -> tuple[int, int, int]:
    """One neighbour task's product, ``(query rows, features, reference rows)``.

    ``query-rows`` and ``chunk-rows`` from ``dask.config``, no larger than the
    data: a search of fewer rows has smaller tasks.
    """
    return (
        max(1, min(int(config.get("query-rows")), int(n_query))),
        int(n_features),
        max(1, min(int(config.get("chunk-rows")), int(n_reference))),
    )


def _time_gemm(shape: tuple[int, int, int], min_seconds: float, seed: int) -> tuple[int, float]:
    """On a worker: float32 products of ``shape``, single-threaded BLAS, for ``min_seconds``.

    Returns the timed products' multiply-adds and seconds. One untimed product
    first: the pages of the output and BLAS's buffers are touched, and by its end
    the other threads' tasks (sent at the same moment) are running too.
    """
    m, d, n = shape
    rng = np.random.default_rng(seed)
    a = rng.random((m, d), dtype=np.float32)
    b = rng.random((d, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    # The workers' own environment asks for one BLAS thread; a worker started without it
    # would otherwise measure every core from each of its threads.
    with threadpool_limits(1, user_api="blas"):
        np.matmul(a, b, out=out)
        count, t0 = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - t0 < min_seconds:
            np.matmul(a, b, out=out)
            count += 1
        seconds = time.perf_counter() - t0
    return count * multiply_adds(m, n, d), seconds


def _worker_threads(client) -> dict[str, int]:
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {addr: int(w.get("nthreads") or 1) for addr, w in sorted(info.items())}


def measure_gemm_rate(shape: tuple[int, int, int], *, min_seconds: float = 1.0) -> dict:
    """The cluster's float32 GEMM rate at ``shape``: one product loop per worker thread, at once.

    Each task is pinned to its worker, so every thread of every worker runs
    one; the rate is the sum of the tasks' rates, each measured while the others
    ran. Without a ``distributed`` client, one loop in this process.

    Parameters
    ----------
    shape : (int, int, int)
        ``(m, d, n)``: an m x d matrix times a d x n one (:func:`gemm_shape`).
    min_seconds : float, default=1.0
        How long each task times its products (at least two).

    Returns
    -------
    dict
        ``shape``, ``threads``, ``multiply_adds_per_s`` (the whole cluster),
        ``gflops`` (two floating-point operations a multiply-add) and
        ``seconds`` (the measurement's wall time).
    """
    shape = tuple(int(s) for s in shape)
    client = current_client()
    t0 = time.perf_counter()
    if client is None:
        results = [_time_gemm(shape, min_seconds, 0)]
    else:
        token = uuid.uuid4().hex[:8]
        slots = [a for a, threads in _worker_threads(client).items() for _ in range(threads)]
        futures = [
            client.submit(
                _time_gemm,
                shape,
                min_seconds,
                i,
                key=f"gemm-limit-{token}-{i}",
                workers=[addr],
                allow_other_workers=False,
                pure=False,
            )
            for i, addr in enumerate(slots)
        ]
        results = client.gather(futures)
    rate = sum(n / s for n, s in results)
    log.info("GEMM %s x %d threads: %.1f GFLOP/s", shape, len(results), 2 * rate / 1e9)
    return {
        "shape": list(shape),
        "threads": len(results),
        "multiply_adds_per_s": rate,
        "gflops": 2 * rate / 1e9,
        "seconds": time.perf_counter() - t0,
    }


def gemm_limit(seconds: float, n_multiply_adds: int, rate: float) -> dict:
    """A neighbour phase's multiply-adds, its GEMM limit at ``rate`` and its time as a multiple."""
    limit = n_multiply_adds / rate
    return {
        "neighbor_multiply_adds": int(n_multiply_adds),
        "gemm_limit_s": limit,
        "gemm_limit_multiple": seconds / limit,
    }
