"""Each worker's memory, stated before work: an estimate of a run's peak against the limits.

A worker that runs out of memory is restarted by its nanny, and its tasks
run again elsewhere until they have failed ``allowed-failures`` times: a run
that cannot fit fails late, and slowly. :func:`estimate_worker_peak` gives
the peak of a worker running a neighbour search (the training set and its
copies, which one worker may hold whole, the distance blocks its threads
have in flight, and the process itself); :func:`check_worker_memory`
refuses, in one line with the numbers, a run whose estimate is above a
worker's memory limit.
"""

from __future__ import annotations

from dask.utils import format_bytes
from distributed import Client

from .. import config
from ..errors import OptionError

#: A worker process's own memory before any data: Python, NumPy, scikit-learn,
#: Distributed and mnistdist imported (about 250 MB measured; rounded up).
PROCESS_BYTES = 300 * 2**20
#: Bytes of each training value in the search's working copies (float32).
WORKING_ITEMSIZE = 4
#: Distance blocks a thread holds at once: the block and the buffers that screen and sort it.
BLOCKS_PER_THREAD = 2


def estimate_worker_peak(
    n_rows: int, n_features: int, *, copies: int = 1, threads: int = 1
) -> dict[str, int]:
    """The peak memory of a worker process searching ``n_rows`` training rows, in bytes.

    Parameters
    ----------
    n_rows, n_features : int
        The training set's shape.
    copies : int, default=1
        The training set and its augmented copies (1: no augmentation).
    threads : int, default=1
        Threads of the process that search at once (all the workers' threads,
        for workers that are threads of one process).

    Returns
    -------
    dict
        ``data`` (the raw training set and its working copies, which a worker
        may hold whole), ``blocks`` (the distance blocks in flight:
        ``mnistdist.query-rows`` x ``mnistdist.chunk-rows`` float32 values,
        ``BLOCKS_PER_THREAD`` a thread), ``process`` and their ``total``.
    """
    rows = n_rows * copies
    data = n_rows * n_features + rows * n_features * WORKING_ITEMSIZE
    block_rows = min(config.get("query-rows"), rows)
    block_cols = min(config.get("chunk-rows"), rows)
    blocks = threads * BLOCKS_PER_THREAD * block_rows * block_cols * WORKING_ITEMSIZE
    total = data + blocks + PROCESS_BYTES
    return {"data": data, "blocks": blocks, "process": PROCESS_BYTES, "total": total}


def worker_memory_limits(client: Client) -> dict[str, tuple[int, int | None]]:
    """Each worker's threads and memory limit in bytes (None: no limit), by address."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {
        addr: (int(w.get("nthreads") or 1), w.get("memory_limit") or None)
        for addr, w in sorted(info.items())
    }


def check_worker_memory(
    n_rows: int, n_features: int, limits: dict, *, copies: int = 1, in_process: bool = False
) -> dict[str, dict[str, int]]:
    """Each worker's estimated peak for the run; :class:`OptionError` if one cannot fit.

    Parameters
    ----------
    n_rows, n_features, copies
        As :func:`estimate_worker_peak` takes them.
    limits : dict
        :func:`worker_memory_limits`.
    in_process : bool, default=False
        The workers are threads of one process, which holds every thread's blocks.

    Returns
    -------
    dict
        The estimate of each worker, by address.

    Raises
    ------
    OptionError
        Naming the estimate, its parts, and the worker whose limit is below it.
    """
    all_threads = sum(threads for threads, _ in limits.values())
    estimates = {
        addr: estimate_worker_peak(
            n_rows, n_features, copies=copies, threads=all_threads if in_process else threads
        )
        for addr, (threads, _) in limits.items()
    }
    for addr, (_, limit) in limits.items():
        need = estimates[addr]
        if limit is not None and need["total"] > limit:
            raise OptionError(
                f"the run needs about {format_bytes(need['total'])} per worker "
                f"({n_rows} training rows x {n_features} features x {copies} copies: "
                f"{format_bytes(need['data'])}; distance blocks in flight: "
                f"{format_bytes(need['blocks'])}; the process: {format_bytes(need['process'])}) "
                f"but worker {addr} has a memory limit of {format_bytes(limit)}: use fewer "
                "images (--train-size), a smaller mnistdist.query-rows, or workers with more memory"
            )
    return estimates
