"""Each fold pair's block of distances computed once, for both folds' neighbours.

In a k-fold search, fold f's validation rows are searched among the other
folds' rows. The distances between folds f and g are then needed twice: for
f's neighbours among g's rows, and, transposed, for g's among f's. Here each
fold pair's block is cut into tiles of ``query-rows x query-rows``; a task
(``distances-folds-<f>-<g>``) computes a tile's matrix product once and takes
the exact top k of its rows for f and of its columns for g. A merge per block
of a fold's rows (``merge-neighbors-fold-<f>``) keeps the k nearest of its
parts. Half the distance work of the per-fold search, and the same neighbours:
the exact distances are the same numbers in either direction, and ties go to
the lower row as they do there.

It applies where both sides of a tile are the same rows, transformed the same
way: folds that partition the rows, with no step fitted per fold and no
augmented copies in the reference.
"""

from __future__ import annotations

import itertools
import math

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import config
from .neighbors import _U32, _approx_error_bound, _part, exact_top_k, merge_kneighbors

#: Above this k, tiles cost more than they save: each row's k nearest are computed exactly
#: in every tile it is part of, so the exact work grows with k times the tiles a row meets.
MAX_K = 32


def fold_pairs_pay(k: int) -> bool:
    """Whether fold-pair tiles beat the per-fold search for ``k`` neighbours (and are on)."""
    return bool(config.get("fold-pairs")) and k <= MAX_K


def folds_partition(folds, n: int) -> bool:
    """Whether the folds' validation rows partition ``range(n)``, each trained on the rest."""
    tests = [np.sort(np.asarray(test)) for _, test in folds]
    if sum(len(t) for t in tests) != n or len(folds) < 2:
        return False
    if not np.array_equal(np.sort(np.concatenate(tests)), np.arange(n)):
        return False
    return all(len(train) + len(test) == n for train, test in folds)


def _norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64, casting="unsafe")


def _extended(x: np.ndarray, sq: np.ndarray, query: bool) -> np.ndarray:
    """``[-2x, 1]`` for a query side, ``[x, ||x||^2]`` for a reference side, float32."""
    out = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = x
    if query:
        out[:, :-1] *= -2.0
        out[:, -1] = 1.0
    else:
        out[:, -1] = sq
    return out


def tile_kneighbors(a, b, k: int, ids_a: np.ndarray, ids_b: np.ndarray) -> tuple:
    """Both directions' exact k nearest neighbours from one tile's matrix product.

    Parameters
    ----------
    a, b : ndarray of shape (n_a, d) and (n_b, d)
        Rows of two different folds.
    k : int
        Neighbours wanted (fewer where a side has fewer rows).
    ids_a, ids_b : ndarray of int
        The rows' indices in the whole set.

    Returns
    -------
    tuple of two (dist, ids) pairs
        Each row of ``a``'s nearest rows of ``b``, and each row of ``b``'s nearest of ``a``.
    """
    a, b = np.asarray(a), np.asarray(b)
    d = a.shape[1]
    a_sq, b_sq = _norms(a), _norms(b)
    # ||b||^2 - 2 a.b: a row's squared distances to b, less its own ||a||^2.
    approx = _extended(a, None, query=True) @ _extended(b, b_sq, query=False).T
    delta_a = _approx_error_bound(np.sqrt(a_sq), math.sqrt(b_sq.max()), b_sq.max(), d)
    rows = exact_top_k(approx, delta_a, a, b, min(k, len(b)), ids_b)
    # Adding ||a||^2 makes the whole squared distance, so a column (a row of b) ranks a's
    # rows by it; the bound covers the product's error and the float32 addition's.
    full = np.ascontiguousarray((approx + a_sq[:, None].astype(np.float32)).T)
    largest = a_sq.max() + b_sq.max()
    bound = _approx_error_bound(np.sqrt(b_sq), math.sqrt(a_sq.max()), largest, d)
    cols = exact_top_k(full, bound + 4 * _U32 * largest, b, a, min(k, len(a)), ids_a)
    return rows, cols


def _merge_block(row_parts: list, col_parts: list, k: int) -> tuple:
    """A fold block's k nearest from its tiles: rows of some, columns of the others."""
    return merge_kneighbors([p[0] for p in row_parts] + [p[1] for p in col_parts], k)


def _fold_blocks(X: da.Array, folds, query_rows: int) -> list[tuple[da.Array, list]]:
    """Each fold's validation rows (sorted) in blocks, and each block's row indices."""
    out = []
    for _, test in folds:
        rows = np.sort(np.asarray(test))
        block = X[rows].rechunk({0: query_rows, 1: -1})
        edges = np.concatenate([[0], np.cumsum(block.chunks[0])])
        out.append((block, [rows[lo:hi] for lo, hi in itertools.pairwise(edges)]))
    return out


def fold_pair_kneighbors(
    X: da.Array, folds, k: int, *, query_rows: int, label: str = "", task_prefix: str = ""
) -> list[tuple[da.Array, da.Array]]:
    """Lazy exact ``(dist, ids)`` of each fold's validation rows among the other folds' rows.

    Parameters
    ----------
    X : dask.array.Array of shape (n, d)
        Every row, each in one fold's validation set (see :func:`folds_partition`).
    folds : list of (train, test) index arrays
        The cross-validation folds.
    k : int
        Neighbours a row.
    query_rows : int
        Rows a side of a tile.
    label, task_prefix : str
        End and start the task names.

    Returns
    -------
    list of (dist, ids)
        Per fold, Dask arrays of shape ``(len(test), k)`` in sorted row order; ``ids``
        index ``X``'s rows, as :func:`mnistdist.neighbors.kneighbors_dask` gives them.
    """
    blocks = _fold_blocks(X.rechunk({1: -1}), folds, query_rows)
    token = tokenize(X, [t for _, t in folds], k, query_rows)
    # Each block's row indices once in the graph, not once a tile.
    layer = {
        (f"rows-fold-{f}-{token}", i): ids
        for f, (_, b) in enumerate(blocks)
        for i, ids in enumerate(b)
    }
    rows_of, cols_of = {}, {}
    for f, (bf, ids_f) in enumerate(blocks):
        for g in range(f + 1, len(blocks)):
            bg, ids_g = blocks[g]
            tile = f"{task_prefix}distances-folds-{f}-{g}{label}-{token}"
            for i, j in np.ndindex(len(ids_f), len(ids_g)):
                key = (tile, i, j)
                layer[key] = (
                    tile_kneighbors,
                    (bf.name, i, 0),
                    (bg.name, j, 0),
                    k,
                    (f"rows-fold-{f}-{token}", i),
                    (f"rows-fold-{g}-{token}", j),
                )
                rows_of.setdefault((f, i), []).append(key)
                cols_of.setdefault((g, j), []).append(key)
    out = []
    for f, (bf, ids_f) in enumerate(blocks):
        merge = f"{task_prefix}merge-neighbors-fold-{f}{label}-{token}"
        for i in range(len(ids_f)):
            layer[(merge, i, 0)] = (
                _merge_block,
                rows_of.get((f, i), []),
                cols_of.get((f, i), []),
                k,
            )
        graph = HighLevelGraph.from_collections(
            merge, dict(layer), dependencies=[b for b, _ in blocks]
        )
        pairs = da.Array(graph, merge, chunks=(bf.chunks[0], (k,)), meta=np.empty((0, 0), object))
        out.append(_split(pairs, f"{task_prefix}neighbors-fold-{f}{label}-{token}"))
    return out


def _split(pairs: da.Array, name: str) -> tuple[da.Array, da.Array]:
    dist = pairs.map_blocks(_part, 0, dtype=np.float64, meta=np.empty((0, 0)), name=f"{name}-dist")
    ids = pairs.map_blocks(
        _part, 1, dtype=np.int64, meta=np.empty((0, 0), np.int64), name=f"{name}-ids"
    )
    return dist, ids
