"""The final models' kind of search, on training images alone: in full, with the lower bound,
and by FAISS's flat index where it is installed, at two reference sizes."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
from distributed import futures_of, wait

from .. import config
from ..neighbors import FULL_SUB_QUERIES, bound_components, bounded_kneighbors_dask, kneighbors_dask
from ..preprocessing import augment_shifts
from ..runtime import compute, current_client, worker_threads
from ._gemm import gemm_limit, multiply_adds
from ._peers import faiss_installed, faiss_kneighbors, neighbour_agreement
from ._usage import cpu_during, peak_memory_during

#: Neighbours of the final models' kind of search: the book's best KNN's.
FINAL_K = 4


def _timed(label: str, lazy) -> tuple[tuple, float]:
    t = time.perf_counter()
    found = compute(*lazy, label=label)
    return found, time.perf_counter() - t


def _phase(seconds: float, macs: int, rate: float, memory: dict, cpu: dict) -> dict:
    return {
        "seconds_neighbors": seconds,
        "cpu_seconds": cpu["total"],
        **gemm_limit(seconds, macs, rate),
        "memory": memory,
    }


def _faiss_row(query: da.Array, ref: da.Array, full: tuple, threads: int) -> dict:
    """FAISS's search of the same rows (gathered here first), and its agreement with ours."""
    query_np, ref_np = dask.compute(query, ref)
    peer = faiss_kneighbors(query_np, ref_np, FINAL_K, threads)
    agreement = neighbour_agreement(query_np, ref_np, *full, peer["ids"])
    return {k: v for k, v in peer.items() if k != "ids"} | agreement


def _warm_up(query: da.Array, ref: da.Array) -> None:
    """Each of :func:`final_search`'s searches once, untimed, on a few queries.

    The first search of a process loads the compiled kernel from Numba's cache
    and maps each worker thread's buffers, 0.5 s on the 2-core machine: paid once
    by a job (in its CV search), it is not the search's speed. FAISS gets the
    same (:func:`~mnistdist.benchmark._peers.faiss_kneighbors`).
    """
    head = query[: FULL_SUB_QUERIES * worker_threads()]
    compute(*kneighbors_dask(head, ref, FINAL_K), label="warm-up")
    if n_components := bound_components(query.shape[1]):
        compute(*bounded_kneighbors_dask(head, ref, FINAL_K, n_components), label="warm-up")


def final_search(query: da.Array, ref: da.Array, rate: float, *, peers: bool = True) -> dict:
    """``query``'s k nearest rows of ``ref``: in full, with the bound (where it applies), and
    by FAISS (where installed and ``peers``), each timed, with each worker's peak memory."""
    client = current_client()
    n_query, n_ref = query.shape[0], ref.shape[0]
    macs = multiply_adds(n_query, n_ref, query.shape[1])
    row = {"n_query": n_query, "n_reference": n_ref, "k": FINAL_K}
    with peak_memory_during(client) as memory, cpu_during() as cpu:
        full, seconds = _timed("search in full", kneighbors_dask(query, ref, FINAL_K))
    row["full"] = _phase(seconds, macs, rate, memory, cpu)
    if n_components := bound_components(query.shape[1]):
        lazy = bounded_kneighbors_dask(query, ref, FINAL_K, n_components)
        with peak_memory_during(client) as memory, cpu_during() as cpu:
            (dist, ids, pairs), seconds = _timed("search with the lower bound", lazy)
        row["n_components"] = n_components
        row["bound"] = _phase(seconds, macs, rate, memory, cpu)
        row["speedup"] = row["full"]["seconds_neighbors"] / seconds
        row["exact_pairs_share"] = float(pairs.sum()) / (n_query * n_ref)
        row["same_neighbors"] = bool(np.array_equal(ids, full[1]) and np.array_equal(dist, full[0]))
    if peers and faiss_installed():
        row["faiss"] = _faiss_row(query, ref, full, worker_threads())
    return row


def final_searches(X: da.Array, rate: float, *, peers: bool = True) -> list[dict]:
    """The final models' kind of search on ``X`` alone, never the test set: its last sixth (as
    MNIST's test set is a seventh of it) against the other five sixths, then against those
    and their four one-pixel shifts. Empty where ``X`` has fewer than 6 rows."""
    n_query = X.shape[0] // 6
    if n_query == 0:
        return []
    query = X[-n_query:].rechunk({0: int(config.get("query-rows"))})
    plain = X[:-n_query]
    shifted, _ = augment_shifts(plain, np.zeros(plain.shape[0], dtype=np.int64))
    rows = []
    for ref in (plain, shifted):
        # Made before any clock starts (as FAISS's rows are): the scheduler would queue the
        # query's small rechunk tasks behind a busy worker's search steps, whose chains wait.
        query, ref = dask.persist(query, ref)
        wait(futures_of(query) + futures_of(ref))
        if not rows:
            _warm_up(query, ref)
        rows.append(final_search(query, ref, rate, peers=peers))
    return rows
