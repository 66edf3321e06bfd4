"""How much a principal-component lower bound could skip in MNIST's exact neighbour search.

Usage: python docs/pca_bound.py MNIST_DIR

For 500 training images searched among 10,000 others (k = 5), prints, for p principal
components (fitted on 5,000 other images), how many references a query keeps, on
average, when a reference is skipped only if its projected squared distance (a lower
bound of the true one) exceeds the query's true 5th-nearest squared distance: the best
any such screen can do, since it is given the answer's threshold.
"""

import sys

import numpy as np

from mnistdist.data import load_mnist_idx
from mnistdist.neighbors import kneighbors

X = load_mnist_idx(sys.argv[1]).X_train.compute(scheduler="sync").astype(np.float64)
query, ref, fit = X[:500], X[12000:22000], X[30000:35000]
dist, _ = kneighbors(query.astype(np.float32), ref.astype(np.float32), 5)
kth = dist[:, -1] ** 2
centre = fit.mean(axis=0)
_, _, components = np.linalg.svd(fit - centre, full_matrices=False)
full = (query**2).sum(1)[:, None] + (ref**2).sum(1)[None] - 2 * query @ ref.T
print(f"5th-nearest / median squared distance: {np.median(kth / np.median(full, axis=1)):.2f}")
for p in (16, 32, 64, 128, 200):
    v = components[:p].T
    qp, rp = (query - centre) @ v, (ref - centre) @ v
    bound = (qp**2).sum(1)[:, None] + (rp**2).sum(1)[None] - 2 * qp @ rp.T
    kept = (bound <= kth[:, None]).sum(axis=1).mean()
    # The residuals' norms tighten it: ||e_q - e_r|| >= | ||e_q|| - ||e_r|| |, one more column.
    e_q = np.sqrt(np.maximum(((query - centre) ** 2).sum(1) - (qp**2).sum(1), 0))
    e_r = np.sqrt(np.maximum(((ref - centre) ** 2).sum(1) - (rp**2).sum(1), 0))
    tighter = bound + (e_q[:, None] - e_r[None]) ** 2
    kept_r = (tighter <= kth[:, None]).sum(axis=1).mean()
    share = p / 785
    print(
        f"p = {p:3d}: {kept:7.1f}, with residual norms {kept_r:6.1f}, of 10,000 references"
        f" kept a query ({share:.0%} of the product)"
    )

# What a kept pair costs (its exact distance) against what a skipped one saves (its share
# of the float32 product), one thread.
import time  # noqa: E402

from mnistdist.neighbors import _exact_squared, squared_norms  # noqa: E402

q32, r32 = query.astype(np.float32), ref.astype(np.float32)
norms = squared_norms(q32), squared_norms(r32)  # known before the search, as the kernel has them
rows, cols = np.random.default_rng(0).integers(0, 500, 20000), np.arange(20000) % 10000
t = time.perf_counter()
_exact_squared(q32, r32, rows, cols, *norms)
exact_us = (time.perf_counter() - t) / 20000 * 1e6
ext = np.ones((10000, 785), np.float32)
ext[:, :784] = r32
t = time.perf_counter()
q32 @ ext[:, :784].T
product_ns = (time.perf_counter() - t) / (500 * 10000) * 1e9
print(f"exact distance of a kept pair: {exact_us:.2f} us; product per pair: {product_ns:.1f} ns")
