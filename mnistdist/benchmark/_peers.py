"""FAISS's exact flat index, the peer of mnistdist's exact neighbour search, where installed.

``faiss-cpu`` (the optional extra ``mnistdist[faiss]``) is what a user who
wants fast exact neighbours picks: ``IndexFlatL2`` is one tuned BLAS product
and a heap a query, in float32. The benchmark runs it in the job's process on
as many threads as the cluster has, after mnistdist's search of the same
rows, and compares the neighbour sets. FAISS's float32 distances may order
two neighbours at nearly equal distances either way, or swap the last of a
query's k with a row at the same distance: the comparison says which rows
differ, and whether only by such ties.
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np
from threadpoolctl import threadpool_limits

from ..neighbors import kneighbors

#: Rows of FAISS's untimed warm-up search, queries and references each.
WARM_UP_ROWS = 4096


def faiss_installed() -> bool:
    """Whether ``faiss`` can be imported (without importing it)."""
    return importlib.util.find_spec("faiss") is not None


def faiss_kneighbors(query: np.ndarray, ref: np.ndarray, k: int, threads: int) -> dict:
    """FAISS ``IndexFlatL2``'s k nearest rows of ``ref`` for each row of ``query``, timed.

    The rows are converted to float32 (FAISS's only type) before the clock
    starts, and a search of the first :data:`WARM_UP_ROWS` queries against as
    many reference rows runs untimed first (its threads started, its buffers
    mapped), as mnistdist's searches get one; the time covers building the
    index and the search, on ``threads`` threads (OpenMP and FAISS's BLAS).
    Returns ``seconds``, ``cpu_seconds`` (this process's), ``ids``, ``threads``
    and FAISS's ``version``.
    """
    import faiss

    q = np.ascontiguousarray(query, dtype=np.float32)
    r = np.ascontiguousarray(ref, dtype=np.float32)
    with threadpool_limits(limits=threads):
        faiss.omp_set_num_threads(threads)
        warm = faiss.IndexFlatL2(r.shape[1])
        warm.add(r[:WARM_UP_ROWS])
        warm.search(q[:WARM_UP_ROWS], min(k, len(r)))
        t, cpu = time.perf_counter(), time.process_time()
        index = faiss.IndexFlatL2(r.shape[1])
        index.add(r)
        _, ids = index.search(q, k)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "ids": ids,
        "threads": threads,
        "version": faiss.__version__,
    }


def neighbour_agreement(
    query: np.ndarray, ref: np.ndarray, dist: np.ndarray, ids: np.ndarray, peer_ids: np.ndarray
) -> dict:
    """How a peer's neighbour sets compare with mnistdist's exact ones.

    ``same_sets``: the share of queries whose k neighbours are the same rows.
    ``rows_differ``: how many are not. ``only_ties``: whether each query that
    differs has, by exact distances, the same k distances in the peer's set as
    in mnistdist's (the peer swapped rows at equal distances).
    """
    same = np.all(np.sort(ids, axis=1) == np.sort(peer_ids, axis=1), axis=1)
    differ = np.flatnonzero(~same)
    only_ties = True
    for i in differ:
        rows = ref[peer_ids[i][peer_ids[i] >= 0]]
        exact, _ = kneighbors(query[i : i + 1], rows, len(rows))
        only_ties &= len(rows) == ids.shape[1] and np.array_equal(exact[0], dist[i])
    return {
        "same_sets": float(same.mean()),
        "rows_differ": len(differ),
        "only_ties": bool(only_ties),
    }
