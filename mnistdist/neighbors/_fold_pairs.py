"""Each fold pair's block of distances computed once, for both folds' neighbours.

In a k-fold search, fold f's validation rows are searched among the other
folds' rows. The distances between folds f and g are then needed twice: for
f's neighbours among g's rows, and, transposed, for g's among f's. Here each
fold pair's block is cut into tiles of ``query-rows x query-rows``; each
block of rows is prepared once for all its tiles (``prepare-fold``: its
norms and the product's factors), and a task
(``distances-folds-<f>-<g>``) computes a tile's matrix product once and
screens it both ways: for each of its rows, and each of its columns, the
few pairs that may be among that row's k nearest (:func:`tile_candidates`).
A merge per block of a fold's rows (``merge-neighbors-fold-<f>``) gathers
the block's candidates from all its tiles and computes exact distances for
those that can still be among the k nearest, once a row
(:func:`merge_tile_candidates`). Half the matrix products of the per-fold
search, and the same neighbours: the screening loses no pair that can be a
neighbour, the exact distances are the same numbers, and ties go to the
lower row as they do there.

It applies where both sides of a tile are the same rows, transformed the same
way: folds that partition the rows, with no step fitted per fold and no
augmented copies in the reference.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .. import config
from ._exact import (
    _U32,
    _approx_error_bound,
    _part,
    _scratch_block,
    _within,
    exact_among_candidates,
    order_by_row_then_value,
    screen,
    squared_norms,
)


def fold_pairs_on() -> bool:
    """Whether cross-validation searches use fold-pair tiles (``mnistdist.fold-pairs``)."""
    return bool(config.get("fold-pairs"))


def folds_partition(folds, n: int) -> bool:
    """Whether the folds' validation rows partition ``range(n)``, each trained on the rest."""
    tests = [np.sort(np.asarray(test)) for _, test in folds]
    if sum(len(t) for t in tests) != n or len(folds) < 2:
        return False
    if not np.array_equal(np.sort(np.concatenate(tests)), np.arange(n)):
        return False
    return all(len(train) + len(test) == n for train, test in folds)


def _extended(x: np.ndarray, sq: np.ndarray, row_side: bool) -> np.ndarray:
    """``[-2x, 1, ||x||^2]`` for a tile's row side, ``[x, ||x||^2, 1]`` for its column side.

    Their product is ``||a||^2 + ||b||^2 - 2 a.b``, the whole squared
    distance, so rows and columns are screened on the same matrix.
    """
    d = x.shape[1]
    out = np.empty((x.shape[0], d + 2), dtype=np.float32)
    out[:, :d] = x
    if row_side:
        out[:, :d] *= -2.0
    out[:, d + (not row_side)] = 1.0
    out[:, d + row_side] = sq
    return out


@dataclasses.dataclass
class TileSide:
    """A block of rows prepared once for every tile it is a side of.

    ``ids`` are the rows' indices in the whole set, ``sq`` their squared
    norms, ``as_rows`` and ``as_cols`` the float32 factors of the tile's
    product for the block as its rows and as its columns (:func:`_extended`).
    """

    ids: np.ndarray
    sq: np.ndarray
    as_rows: np.ndarray
    as_cols: np.ndarray


def tile_side(x, ids: np.ndarray) -> TileSide:
    """``x``'s rows, whose indices in the whole set are ``ids``, prepared for tiles."""
    x = np.asarray(x)
    sq = squared_norms(x)
    return TileSide(
        np.asarray(ids), sq, _extended(x, sq, row_side=True), _extended(x, sq, row_side=False)
    )


def tile_candidates(a: TileSide, b: TileSide, k: int) -> tuple:
    """Both directions' neighbour candidates from one tile's matrix product.

    Parameters
    ----------
    a, b : TileSide
        Blocks of rows of two different folds (:func:`tile_side`).
    k : int
        Neighbours wanted (fewer where a side has fewer rows).

    Returns
    -------
    tuple of two Candidates
        Each row of ``a``'s candidates among ``b``, and each row of ``b``'s
        among ``a``: every pair that may be among the row's k nearest in this
        tile, with its approximate squared distance and that value's error bound.
        :func:`merge_tile_candidates` finds the exact k nearest of a row's candidates
        from all its tiles, so a row's distances are computed exactly once, not
        once a tile.
    """
    d = a.as_rows.shape[1] - 2
    approx = np.matmul(a.as_rows, b.as_cols.T, out=_scratch_block(len(a.ids), len(b.ids)))
    # The product's error bound, with both norms among its terms (one more than the
    # kernel's), and the norms' own rounding to float32.
    a_sq, b_sq = a.sq, b.sq
    delta_a = _approx_error_bound(np.sqrt(a_sq), math.sqrt(b_sq.max()), b_sq.max() + a_sq, d + 1)
    delta_b = _approx_error_bound(np.sqrt(b_sq), math.sqrt(a_sq.max()), a_sq.max() + b_sq, d + 1)
    rounding = 2 * _U32 * (a_sq.max() + b_sq.max())
    rows, cols, vals = screen(approx, delta_a + rounding, min(k, len(b.ids)))
    of_a = Candidates(a.ids[rows], b.ids[cols], vals.astype(np.float64), delta_a[rows] + rounding)
    rows, cols, vals = screen(approx, delta_b + rounding, min(k, len(a.ids)), axis=0)
    of_b = Candidates(b.ids[rows], a.ids[cols], vals.astype(np.float64), delta_b[rows] + rounding)
    return of_a, of_b


@dataclasses.dataclass
class Candidates:
    """Neighbour candidates: each pair's query and reference row (indices in the whole set),
    approximate squared distance, and that value's error bound."""

    query: np.ndarray
    ref: np.ndarray
    value: np.ndarray
    delta: np.ndarray


def _gather(chunks: list[np.ndarray], starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The rows ``ids`` of the array whose row chunks are ``chunks``, starting at ``starts``."""
    out = np.empty((len(ids), chunks[0].shape[1]), dtype=chunks[0].dtype)
    which = np.searchsorted(starts, ids, side="right") - 1
    for c in np.unique(which):
        at = which == c
        out[at] = chunks[c][ids[at] - starts[c]]
    return out


def merge_tile_candidates(
    query: np.ndarray, query_ids: np.ndarray, parts: list, chunks: list, starts, k: int
) -> tuple:
    """The exact k nearest neighbours of a block of rows from their candidates in every tile.

    A row's k-th smallest approximate value is at most its error bound below
    the true k-th distance, and a true neighbour's value at most its bound
    above it; the candidates within twice the row's largest bound of its k-th
    value are re-ranked with exact distances, ties to the lower row.

    Parameters
    ----------
    query : ndarray of shape (n, d)
        The block's rows; ``query_ids`` their indices in the whole set (sorted).
    parts : list of Candidates
        The block's rows' candidates from its tiles.
    chunks, starts : list of ndarray, ndarray
        The whole set's row chunks and each chunk's first row, for the candidates' rows.
    k : int
        Neighbours a row.

    Returns
    -------
    dist, ids : ndarray of shape (n, k)
        Exact distances, ascending, and the neighbours' indices in the whole set.
    """
    q = np.searchsorted(query_ids, np.concatenate([p.query for p in parts]))
    ref = np.concatenate([p.ref for p in parts])
    value = np.concatenate([p.value for p in parts])
    delta = np.concatenate([p.delta for p in parts])
    order = order_by_row_then_value(q, value)
    q, ref, value, delta = q[order], ref[order], value[order], delta[order]
    widest = np.zeros(len(query_ids))
    np.maximum.at(widest, q, delta)
    q, ref, _ = _within(q, ref, value, widest, len(query_ids), k)
    unique, at = np.unique(ref, return_inverse=True)
    rows = _gather(chunks, np.asarray(starts), unique)
    return exact_among_candidates(np.asarray(query), rows, q, at, k, unique)


def _merge_block(query, query_ids, row_parts: list, col_parts: list, chunks, starts, k: int):
    """A fold block's k nearest from its tiles' candidates: rows of some, columns of the others."""
    parts = [p[0] for p in row_parts] + [p[1] for p in col_parts]
    return merge_tile_candidates(query, query_ids, parts, chunks, starts, k)


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
    X = X.rechunk({1: -1})
    blocks = _fold_blocks(X, folds, query_rows)
    chunks = [(X.name, c, 0) for c in range(X.numblocks[0])]
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    token = tokenize(X, [t for _, t in folds], k, query_rows)
    # Each block's row indices once in the graph, not once a tile.
    layer = {
        (f"rows-fold-{f}-{token}", i): ids
        for f, (_, b) in enumerate(blocks)
        for i, ids in enumerate(b)
    }
    # Each block prepared once (norms, the product's factors), not once a tile.
    side = f"{task_prefix}prepare-fold{label}-{token}"
    for f, (bf, ids_f) in enumerate(blocks):
        for i in range(len(ids_f)):
            layer[(side, f, i)] = (tile_side, (bf.name, i, 0), (f"rows-fold-{f}-{token}", i))
    rows_of, cols_of = {}, {}
    for f, (_, ids_f) in enumerate(blocks):
        for g in range(f + 1, len(blocks)):
            tile = f"{task_prefix}distances-folds-{f}-{g}{label}-{token}"
            for i, j in np.ndindex(len(ids_f), len(blocks[g][1])):
                key = (tile, i, j)
                layer[key] = (tile_candidates, (side, f, i), (side, g, j), k)
                rows_of.setdefault((f, i), []).append(key)
                cols_of.setdefault((g, j), []).append(key)
    out = []
    for f, (bf, ids_f) in enumerate(blocks):
        merge = f"{task_prefix}merge-neighbors-fold-{f}{label}-{token}"
        for i in range(len(ids_f)):
            layer[(merge, i, 0)] = (
                _merge_block,
                (bf.name, i, 0),
                (f"rows-fold-{f}-{token}", i),
                rows_of.get((f, i), []),
                cols_of.get((f, i), []),
                chunks,
                starts,
                k,
            )
        graph = HighLevelGraph.from_collections(
            merge, dict(layer), dependencies=[X, *(b for b, _ in blocks)]
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
