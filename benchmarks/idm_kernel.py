"""Measures IDM re-ranking pairs per second on one core: the NumPy kernel against the compiled one.

Both kernels compare the same image pairs in one process, one thread: deskewed training
images, each query with its nearest Euclidean candidates among other training images (as
the re-ranking sees them; the test set is never read). The NumPy kernel gets the pairs
as rows (:func:`mnistdist.neighbors.idm_distances` with ``kernel="numpy"``, the form the
re-ranking used before), the compiled one as each query's candidates
(:func:`mnistdist.neighbors.idm_rerank`). Prints a table and writes JSON.

    python benchmarks/idm_kernel.py --data $MNISTDIST_DATA --out idm_kernel.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from mnistdist.data import read_idx
from mnistdist.neighbors import idm_distances, idm_rerank, kneighbors
from mnistdist.preprocessing import Deskew


def _pairs(data: pathlib.Path, n_queries: int, n_candidates: int):
    images = read_idx(data / "train-images-idx3-ubyte.gz").reshape(60000, -1)[:12000]
    images = Deskew().fit_transform(images)
    queries, refs = images[:n_queries], images[2000:]
    _, ids = kneighbors(queries, refs, n_candidates)
    return queries, refs, ids


def _time(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(queries, refs, ids, warp: int, context: int, repeat: int) -> dict:
    """Both kernels on the same pairs: seconds (best of ``repeat``), pairs/s, largest gap."""
    pairs_q, pairs_r = np.repeat(queries, ids.shape[1], axis=0), refs[ids.ravel()]
    t0 = time.perf_counter()
    compiled = idm_rerank(queries[:1], refs, ids[:1], warp, context)  # compile or load
    first_call = time.perf_counter() - t0
    numpy_s = _time(lambda: idm_distances(pairs_q, pairs_r, warp, context, kernel="numpy"), repeat)
    compiled_s = _time(lambda: idm_rerank(queries, refs, ids, warp, context), repeat)
    want = idm_distances(pairs_q, pairs_r, warp, context, kernel="numpy").reshape(ids.shape)
    got, _ = idm_rerank(queries, refs, ids, warp, context)  # each row sorted
    want = np.sort(want, axis=1)
    del compiled
    n = ids.size
    return {
        "warp": warp,
        "context": context,
        "pairs": int(n),
        "numpy_seconds": round(numpy_s, 4),
        "compiled_seconds": round(compiled_s, 4),
        "numpy_pairs_per_s": round(n / numpy_s, 1),
        "compiled_pairs_per_s": round(n / compiled_s, 1),
        "speedup": round(numpy_s / compiled_s, 2),
        "max_relative_difference": float(np.max(np.abs(got - want) / np.maximum(want, 1e-30))),
        "first_call_seconds": round(first_call, 3),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MNISTDIST_DATA"), required=False)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="idm_kernel.json")
    args = parser.parse_args(argv)
    if not args.data:
        print("idm_kernel: give --data DIR or set MNISTDIST_DATA", file=sys.stderr)
        return 2
    queries, refs, ids = _pairs(pathlib.Path(args.data), args.queries, args.candidates)
    rows = []
    with threadpool_limits(1):
        for warp, context in ((1, 1), (2, 1), (3, 1), (2, 2)):
            rows.append(measure(queries, refs, ids, warp, context, args.repeat))
    print(
        "| warp | context | pairs | NumPy pairs/s | compiled pairs/s | speed-up | max rel. diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['warp']} | {r['context']} | {r['pairs']} | {r['numpy_pairs_per_s']:,.0f} | "
            f"{r['compiled_pairs_per_s']:,.0f} | {r['speedup']:.1f}x | "
            f"{r['max_relative_difference']:.1e} |"
        )
    out = {"machine": platform.processor() or platform.machine(), "rows": rows}
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
