"""Measures how much a principal-component lower bound could skip in MNIST's neighbour search.

Usage: python benchmarks/pca_bound.py [--data DIR] [--json FILE]

For 500 training images searched among 10,000 others (k = 5), prints, for p principal
components (fitted on 5,000 other images), how many references a query keeps, on average,
when a reference is skipped only if its projected squared distance (a lower bound of the
true one) exceeds the query's true 5th-nearest squared distance: the best any such screen
can do, since it is given the answer's threshold. Then, on one thread, what a kept pair
costs (its exact distance) against what a skipped one saves (its share of the float32
matrix product). This is the measurement behind ``mnistdist.bound-components``
(docs/benchmark.md, "The lower bound"). MNIST comes from ``--data``, else
``$MNISTDIST_DATA``, else OpenML.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mnistdist.data import load_dataset
from mnistdist.neighbors import kneighbors

# The exact kernel's own pair distances, private to mnistdist.neighbors: this script times them.
from mnistdist.neighbors._exact import _exact_squared, squared_norms

COMPONENTS = (16, 32, 64, 128, 200)


def kept_references(query, ref, fit, kth) -> list[dict]:
    """For each p of COMPONENTS, the references a query keeps under the bound, on average."""
    centre = fit.mean(axis=0)
    _, _, components = np.linalg.svd(fit - centre, full_matrices=False)
    rows = []
    for p in COMPONENTS:
        v = components[:p].T
        qp, rp = (query - centre) @ v, (ref - centre) @ v
        bound = (qp**2).sum(1)[:, None] + (rp**2).sum(1)[None] - 2 * qp @ rp.T
        # The residuals' norms tighten it: ||e_q - e_r|| >= | ||e_q|| - ||e_r|| |, one column more.
        e_q = np.sqrt(np.maximum(((query - centre) ** 2).sum(1) - (qp**2).sum(1), 0))
        e_r = np.sqrt(np.maximum(((ref - centre) ** 2).sum(1) - (rp**2).sum(1), 0))
        tighter = bound + (e_q[:, None] - e_r[None]) ** 2
        rows.append(
            {
                "components": p,
                "kept": float((bound <= kth[:, None]).sum(axis=1).mean()),
                "kept_with_residual_norms": float((tighter <= kth[:, None]).sum(axis=1).mean()),
                "product_share": p / (query.shape[1] + 1),
            }
        )
    return rows


def pair_costs(query: np.ndarray, ref: np.ndarray) -> dict:
    """Microseconds of one kept pair's exact distance; nanoseconds of a pair's product share."""
    q32, r32 = query.astype(np.float32), ref.astype(np.float32)
    norms = squared_norms(q32), squared_norms(r32)  # known before the search, as the kernel's are
    n_pairs = 20000
    rows = np.random.default_rng(0).integers(0, len(q32), n_pairs)
    cols = np.arange(n_pairs) % len(r32)
    start = time.perf_counter()
    _exact_squared(q32, r32, rows, cols, *norms)
    exact_us = (time.perf_counter() - start) / n_pairs * 1e6
    # The reference rows inside a wider array, as the kernel's extended operands hold them.
    extended = np.ones((len(r32), r32.shape[1] + 1), np.float32)
    extended[:, :-1] = r32
    start = time.perf_counter()
    q32 @ extended[:, :-1].T
    product_ns = (time.perf_counter() - start) / (len(q32) * len(r32)) * 1e9
    return {"exact_pair_us": round(exact_us, 3), "product_pair_ns": round(product_ns, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the MNIST IDX folder (default: $MNISTDIST_DATA)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    X = load_dataset("mnist", data_dir=args.data).X_train.compute(scheduler="sync")
    X = X.astype(np.float64)
    query, ref, fit = X[:500], X[12000:22000], X[30000:35000]
    dist, _ = kneighbors(query.astype(np.float32), ref.astype(np.float32), 5)
    kth = dist[:, -1] ** 2
    full = (query**2).sum(1)[:, None] + (ref**2).sum(1)[None] - 2 * query @ ref.T
    ratio = float(np.median(kth / np.median(full, axis=1)))
    print(f"5th-nearest / median squared distance: {ratio:.2f}")
    print(f"{'p':>4} {'kept':>8} {'+ residual norms':>17} {'share of the product':>21}")
    rows = kept_references(query, ref, fit, kth)
    for r in rows:
        print(
            f"{r['components']:4d} {r['kept']:8.1f} {r['kept_with_residual_norms']:17.1f}"
            f" {r['product_share']:21.0%}"
        )
    print("(references kept a query, of 10,000)")
    costs = pair_costs(query, ref)
    print(
        f"exact distance of a kept pair: {costs['exact_pair_us']:.2f} us;"
        f" product per pair: {costs['product_pair_ns']:.1f} ns"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kth_over_median": ratio, "components": rows, **costs}, f, indent=1)


if __name__ == "__main__":
    main()
