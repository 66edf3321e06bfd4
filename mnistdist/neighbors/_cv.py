"""The CV search's neighbours: each fold's validation rows among the other folds' rows.

Two exact ways, the same neighbours, ties to the lower row:

* **fold-pair tiles** (:mod:`mnistdist.neighbors._fold_pairs`): each fold pair's
  distances computed once, in full, for both folds;
* **bounded chains** (:func:`fold_chain_kneighbors`): each block of a fold's
  rows carried through the other folds' blocks, screened by a lower bound on
  a few principal components (:mod:`mnistdist.neighbors._chain`): every pair
  costs a product of p + 1 columns instead of half of one of d + 1, and only the
  pairs the bound cannot rule out get their distances in full.

:func:`cv_kneighbors` takes the chains where the bound applies
(:func:`~mnistdist.neighbors.bound_components`) and either k is small enough
for the bound's threshold to be tight (:data:`CHAIN_MAX_K`) or the compiled
kernel takes the candidates; the tiles elsewhere (:func:`cv_method`).
"""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
from dask.base import tokenize

from .. import config
from ..runtime import worker_threads
from ._chain import chain_arrays, chain_layer, chain_names, prepare_reference, query_shares
from ._compiled import worth_compiling
from ._fold_pairs import fold_pair_kneighbors
from ._lower_bound import bound_components, fit_projection

#: Fewest pairs (validation x training rows, summed over the folds) the CV search screens
#: by the bound with NumPy taking the candidates: below, the projection's fit and each
#: chain's first step cost more than the tiles' products (7,500 MNIST images, 4.5 x 10^7
#: pairs, k = 5: tiles 0.83 s of CPU, chains 1.01 s; docs/benchmark.md).
CHAIN_MIN_PAIRS = 10**8

#: Largest k the CV search screens by the bound with NumPy taking the candidates: beyond, a
#: query's k-th nearest is far enough that the bound keeps too many pairs, whose exact
#: distances and merges cost more than the tiles' products, unless compiled (docs/benchmark.md).
CHAIN_MAX_K = 40


def _blocks(X: da.Array, rows: np.ndarray, size: int) -> tuple[da.Array, list[np.ndarray]]:
    """``X[rows]`` in blocks of about ``size`` rows (as even as they go), and each block's rows."""
    n_blocks = max(1, -(-len(rows) // size))
    edges = np.linspace(0, len(rows), n_blocks + 1).astype(int)
    block = X[rows].rechunk({0: tuple(np.diff(edges)), 1: -1})
    return block, [rows[lo:hi] for lo, hi in itertools.pairwise(edges)]


def fold_chain_kneighbors(
    X: da.Array,
    folds,
    k: int,
    n_components: int,
    *,
    label: str = "",
    task_prefix: str = "",
    chains: int | None = None,
) -> list[tuple[da.Array, da.Array]]:
    """Lazy exact ``(dist, ids)`` of each fold's validation rows among the other folds' rows.

    Each fold's rows are cut into reference blocks of about ``chunk-rows``
    (tasks ``fold-<g>-bound-reference``: projected once for every chain); each
    fold's rows are shared among as many chains as the cluster has worker
    threads (``chains``, by default :func:`~mnistdist.runtime.worker_threads`),
    each a chain through the other folds' blocks (tasks
    ``neighbors-fold-<f>-bound``): every thread then carries as many chains as
    there are folds, and a chain's fixed costs (its task a step, its first
    step's pilot) are spread over the most queries. 60,000 MNIST images on 2
    threads: 5.1 s against 6.0 s in chains of 2,048 (docs/benchmark.md).
    The projection is fitted on ``X``'s first chunk (``neighbors-bound-fit``).
    Takes and returns what :func:`~mnistdist.neighbors.fold_pair_kneighbors` does.
    """
    X = X.rechunk({1: -1})
    tests = [np.sort(np.asarray(test)) for _, test in folds]
    n_chains = chains or worker_threads()
    token = tokenize(X, tests, k, n_components)
    chunk_rows = int(config.get("chunk-rows"))
    fit = (f"{task_prefix}neighbors{label}-bound-fit-{token}",)
    layer = {fit: (fit_projection, (X.name, 0, 0), n_components)}
    refs, queries, dependencies = [], [], [X]
    for g, rows in enumerate(tests):
        block, ids = _blocks(X, rows, chunk_rows)
        name = f"{task_prefix}fold-{g}{label}-bound-reference-{token}"
        for j, block_ids in enumerate(ids):
            layer[(name, j)] = (prepare_reference, (block.name, j, 0), block_ids, None, fit)
        refs.append([(name, j) for j in range(len(ids))])
        queries.append(X[rows])
        dependencies += [block, queries[-1]]
    n = sum(len(t) for t in tests)
    n_pairs = sum(len(t) * (n - len(t)) for t in tests)
    out = []
    for f, query in enumerate(queries):
        others = [key for g in (*range(f + 1, len(tests)), *range(f)) for key in refs[g]]
        base = f"{task_prefix}neighbors-fold-{f}{label}"
        shares, rows = query_shares(query, n_chains)
        names = chain_names(f"{base}-bound", token, len(shares))
        layer.update(chain_layer(shares, others, k, names, fit, n_pairs=n_pairs))
        dist, ids, _ = chain_arrays(dict(layer), rows, k, names, dependencies, query.shape[:1])
        out.append((dist, ids))
    return out


def cv_method(n_features: int, k: int, *, n_pairs: int = 0, dtype=np.float64) -> str:
    """Which way :func:`cv_kneighbors` searches, ``"bounded chains"`` or ``"fold-pair tiles"``,
    for rows of ``n_features`` of ``dtype``, ``k`` neighbours and ``n_pairs`` pairs in all.

    Where the bound applies: the chains where the compiled kernel takes their
    candidates (bytes, a large enough search), or where NumPy does for a search
    of at least :data:`CHAIN_MIN_PAIRS` pairs and k up to :data:`CHAIN_MAX_K`;
    else the tiles, whose products cost less than a query's many candidates or
    a small search's fixed costs would.
    """
    if not bound_components(n_features):
        return "fold-pair tiles"
    compiled = np.dtype(dtype) in (np.uint8, np.int8) and worth_compiling(n_pairs, k)
    by_numpy = n_pairs >= CHAIN_MIN_PAIRS and k <= CHAIN_MAX_K
    return "bounded chains" if compiled or by_numpy else "fold-pair tiles"


def cv_kneighbors(
    X: da.Array, folds, k: int, *, query_rows: int, label: str = "", task_prefix: str = ""
) -> list[tuple[da.Array, da.Array]]:
    """Each fold's validation rows' exact k nearest among the other folds' rows, lazily.

    By bounded chains or by fold-pair tiles of ``query_rows``, as :func:`cv_method`
    says; the
    folds must partition ``X``'s rows (:func:`~mnistdist.neighbors.folds_partition`).
    Returns, per fold, ``(dist, ids)`` in sorted row order, ``ids`` indexing ``X``'s rows.
    """
    n_pairs = sum(len(test) * (X.shape[0] - len(test)) for _, test in folds)
    if cv_method(X.shape[1], k, n_pairs=n_pairs, dtype=X.dtype) == "bounded chains":
        n_components = bound_components(X.shape[1])
        return fold_chain_kneighbors(
            X, folds, k, n_components, label=label, task_prefix=task_prefix
        )
    return fold_pair_kneighbors(
        X, folds, k, query_rows=query_rows, label=label, task_prefix=task_prefix
    )
