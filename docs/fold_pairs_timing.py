"""Times the per-fold neighbour search against fold-pair tiles, in one process.

Usage: OMP_NUM_THREADS=1 python docs/fold_pairs_timing.py MNIST_DIR [N_IMAGES] [K]
Both give the same neighbours (tests/test_fold_pairs.py); this prints their seconds.
"""

import sys
import time

import dask
import dask.array as da
import numpy as np
from sklearn.model_selection import StratifiedKFold

from mnistdist.data import load_mnist_idx
from mnistdist.fold_pairs import fold_pair_kneighbors
from mnistdist.neighbors import kneighbors_dask

folder, n, k = (
    sys.argv[1],
    int(sys.argv[2] if len(sys.argv) > 2 else 30000),
    int(sys.argv[3] if len(sys.argv) > 3 else 5),
)
data = load_mnist_idx(folder)
X = data.X_train[:n].astype(np.float32).compute(scheduler="sync")
y = data.y_train[:n]
Xd = da.from_array(X, chunks=10000)
folds = list(StratifiedKFold(5).split(X, y))


def per_fold():
    out = []
    for train, test in folds:
        keep = np.zeros(n, bool)
        keep[train] = True
        out.append(kneighbors_dask(Xd[np.sort(test)].rechunk({0: 2000}), Xd, k, ref_keep=keep))
    return dask.compute(*out, scheduler="sync")


def fold_pairs():
    return dask.compute(*fold_pair_kneighbors(Xd, folds, k, query_rows=2000), scheduler="sync")


for search in (per_fold, fold_pairs):
    t = time.perf_counter()
    search()
    print(f"{search.__name__}: {time.perf_counter() - t:.1f} s (n={n}, k={k})")
