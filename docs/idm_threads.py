"""IDM distances on a thread pool against a process pool: why ``--preset deform`` asks for
worker processes.

Usage: python docs/idm_threads.py

Computes the IDM distances of 20,000 random image pairs once on one thread, then four
times on a pool of 2 threads and on a pool of 2 processes (after a warm-up round), and
prints each pool's wall time and each call's.
"""

import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from mnistdist.deformation import idm_distances

rng = np.random.default_rng(0)
queries = rng.integers(0, 256, (20000, 784), dtype=np.uint8)
refs = rng.integers(0, 256, (20000, 784), dtype=np.uint8)


def work(_) -> float:
    start = time.perf_counter()
    idm_distances(queries, refs)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"one call, one thread: {work(0):.2f} s")
    for pool in (ThreadPoolExecutor, ProcessPoolExecutor):
        with pool(2) as ex:
            list(ex.map(work, range(2)))
            start = time.perf_counter()
            each = list(ex.map(work, range(4)))
            wall = time.perf_counter() - start
            print(f"{pool.__name__}(2), 4 calls: {wall:.2f} s; each {[round(e, 2) for e in each]}")
