"""Measures the CV search's neighbour phase two ways: one search per fold, and fold-pair tiles.

Usage: OMP_NUM_THREADS=1 python benchmarks/fold_pairs_timing.py [--data DIR] [--n N] [--k K]
       [--json FILE]

On the first N MNIST training images (default 30,000) in 5 stratified folds, computes every
fold's k nearest neighbours among the other folds' images, first by one exact search per fold
(``kneighbors_dask`` with the fold's rows left out), then by fold-pair tiles
(``fold_pair_kneighbors``: each fold pair's distances once, for both folds), both on Dask's
synchronous scheduler in this one process, and prints each one's seconds and their ratio.
Both find the same neighbours (tests/neighbors/test_fold_pairs.py checks it); the script also
checks that they did. MNIST comes from ``--data``, else ``$MNISTDIST_DATA``, else OpenML.
"""

from __future__ import annotations

import argparse
import json
import time

import dask
import dask.array as da
import numpy as np
from sklearn.model_selection import StratifiedKFold

from mnistdist.data import load_dataset
from mnistdist.neighbors import fold_pair_kneighbors, kneighbors_dask

QUERY_ROWS = 2000  # the mnistdist.query-rows default


def per_fold(X: da.Array, folds, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each fold's validation rows searched among the other folds' rows, one search a fold."""
    searches = []
    for train, test in folds:
        keep = np.zeros(X.shape[0], bool)
        keep[train] = True
        query = X[np.sort(test)].rechunk({0: QUERY_ROWS})
        searches.append(kneighbors_dask(query, X, k, ref_keep=keep))
    return list(dask.compute(*searches, scheduler="sync"))


def fold_pairs(X: da.Array, folds, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same neighbours from fold-pair tiles."""
    lazy = fold_pair_kneighbors(X, folds, k, query_rows=QUERY_ROWS)
    return list(dask.compute(*lazy, scheduler="sync"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the MNIST IDX folder (default: $MNISTDIST_DATA)")
    parser.add_argument("--n", type=int, default=30000, help="training images (default 30000)")
    parser.add_argument("--k", type=int, default=5, help="neighbours a row (default 5)")
    parser.add_argument("--json", help="also write the seconds to this JSON file")
    args = parser.parse_args()

    dataset = load_dataset("mnist", data_dir=args.data, train_size=args.n)
    X_local = dataset.X_train.astype(np.float32).compute(scheduler="sync")
    X = da.from_array(X_local, chunks=10000)
    folds = list(StratifiedKFold(5).split(X_local, dataset.y_train))

    seconds, found = {}, {}
    for search in (per_fold, fold_pairs):
        start = time.perf_counter()
        found[search.__name__] = search(X, folds, args.k)
        seconds[search.__name__] = round(time.perf_counter() - start, 2)
    same = all(
        np.array_equal(a[1], b[1])
        for a, b in zip(found["per_fold"], found["fold_pairs"], strict=True)
    )
    print(f"{'search':12} {'seconds':>8}   (n={len(X_local)}, k={args.k}, 5 folds)")
    for name, s in seconds.items():
        print(f"{name:12} {s:8.1f}")
    print(f"fold pairs / per fold: {seconds['fold_pairs'] / seconds['per_fold']:.2f}")
    print(f"same neighbours: {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": len(X_local), "k": args.k, "seconds": seconds, "same": same}, f)


if __name__ == "__main__":
    main()
