"""Measures IDM distances on a pool of threads against a pool of processes: why
``--preset deform`` asks for worker processes.

Usage: python benchmarks/idm_threads.py [--pairs N] [--workers W] [--json FILE]

Computes the IDM distances of N random image pairs (default 20,000) once on one thread, then
2W times on a pool of W threads and on a pool of W processes (W = 2 by default; after a
warm-up round), and prints each pool's wall time and each call's. Where the IDM code holds the
GIL, the threads' calls take longer each and the pool of threads no less wall time than one
thread would. No data files: the images are random.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from mnistdist.neighbors import idm_distances


@functools.cache
def _images(n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    queries = rng.integers(0, 256, (n_pairs, 784), dtype=np.uint8)
    refs = rng.integers(0, 256, (n_pairs, 784), dtype=np.uint8)
    return queries, refs


def work(n_pairs: int) -> float:
    """Seconds of one call of ``idm_distances`` on ``n_pairs`` pairs."""
    queries, refs = _images(n_pairs)
    start = time.perf_counter()
    idm_distances(queries, refs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20000, help="image pairs a call")
    parser.add_argument("--workers", type=int, default=2, help="threads, then processes")
    parser.add_argument("--json", help="also write the seconds to this JSON file")
    args = parser.parse_args()

    results = {"pairs": args.pairs, "one_thread_s": round(work(args.pairs), 3)}
    print(f"one call, one thread: {results['one_thread_s']:.2f} s ({args.pairs} pairs)")
    calls = [args.pairs] * (2 * args.workers)
    for pool in (ThreadPoolExecutor, ProcessPoolExecutor):
        with pool(args.workers) as ex:
            list(ex.map(work, calls[: args.workers]))  # warm-up: imports, first buffers
            start = time.perf_counter()
            each = list(ex.map(work, calls))
            wall = time.perf_counter() - start
        results[pool.__name__] = {"wall_s": round(wall, 3), "each_s": [round(e, 3) for e in each]}
        print(
            f"{pool.__name__}({args.workers}), {len(calls)} calls: {wall:.2f} s;"
            f" each {[round(e, 2) for e in each]}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
