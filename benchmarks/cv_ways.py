"""Measures the CV search's neighbour phase two exact ways: fold-pair tiles and bounded chains.

Usage: python benchmarks/cv_ways.py [--data DIR] [--n N [N ...]] [--k K [K ...]]
       [--components P] [--json FILE]

On the first N MNIST training images (default 7,500, 15,000 and 30,000) in 5 stratified
folds, computes every fold's k nearest neighbours among the other folds' images (k default 5,
40 and 100), first by fold-pair tiles (``fold_pair_kneighbors``: each fold pair's distances
once, in full), then by bounded chains (``fold_chain_kneighbors``: each block of a fold's rows
through the other folds' blocks, screened by a lower bound on P principal components, default
the ``mnistdist.bound-components`` setting), both on an embedded cluster of 2 worker threads
in this process, as the jobs run them. Prints each one's wall and CPU seconds (this process's:
the workers' threads are its own, and on a shared machine the CPU time is the steadier
measure) and checks that both found the same neighbours. MNIST comes from ``--data``, else
``$MNISTDIST_DATA``, else OpenML.
"""

from __future__ import annotations

import argparse
import json
import time

import dask
import numpy as np
from sklearn.model_selection import StratifiedKFold

from mnistdist import config
from mnistdist.data import load_dataset
from mnistdist.neighbors import fold_chain_kneighbors, fold_pair_kneighbors
from mnistdist.runtime import connect

QUERY_ROWS = 2000  # the mnistdist.query-rows default


def timed(lazy) -> tuple[list, float, float]:
    """The computed searches, their wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    found = list(dask.compute(*lazy))
    return found, time.perf_counter() - wall, time.process_time() - cpu


def same(a: list, b: list) -> bool:
    return all(
        np.array_equal(d1, d2) and np.array_equal(i1, i2)
        for (d1, i1), (d2, i2) in zip(a, b, strict=True)
    )


def measure(X, y, n: int, k: int, components: int) -> dict:
    """Both ways on the first ``n`` rows for ``k`` neighbours."""
    X_n = X[:n]
    folds = list(StratifiedKFold(5).split(np.zeros(n), y[:n]))
    tiles, tiles_s, tiles_cpu = timed(fold_pair_kneighbors(X_n, folds, k, query_rows=QUERY_ROWS))
    chains, chains_s, chains_cpu = timed(fold_chain_kneighbors(X_n, folds, k, components))
    return {
        "n": n,
        "k": k,
        "tiles_s": tiles_s,
        "tiles_cpu_s": tiles_cpu,
        "chains_s": chains_s,
        "chains_cpu_s": chains_cpu,
        "cpu_ratio": tiles_cpu / chains_cpu,
        "same_neighbors": same(tiles, chains),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the MNIST IDX folder (default: $MNISTDIST_DATA)")
    parser.add_argument("--n", type=int, nargs="+", default=[7500, 15000, 30000])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 40, 100])
    parser.add_argument("--components", type=int, default=None, help="default: the setting")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    components = args.components or int(config.get("bound-components"))

    dataset = load_dataset("mnist", data_dir=args.data, train_size=max(args.n))
    rows = []
    with connect(n_workers=2, processes=False):
        X = dataset.X_train.persist()
        print(
            f"{'images':>7} {'k':>4} {'tiles s':>8} {'CPU':>6} {'chains s':>9} {'CPU':>6}"
            f" {'CPU ratio':>10}  same neighbours"
        )
        for n in args.n:
            for k in args.k:
                row = measure(X, dataset.y_train, n, k, components)
                rows.append(row)
                print(
                    f"{n:>7} {k:>4} {row['tiles_s']:>8.2f} {row['tiles_cpu_s']:>6.2f} "
                    f"{row['chains_s']:>9.2f} {row['chains_cpu_s']:>6.2f} "
                    f"{row['cpu_ratio']:>9.2f}x  {'yes' if row['same_neighbors'] else 'NO'}",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"components": components, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
