"""Exact neighbour search screened by a principal-component lower bound.

Projecting two rows onto orthonormal directions never lengthens the distance
between them: ``||V^T (q - r)|| <= ||q - r||``. A block of queries searches the
reference's chunks one after another, carrying its k nearest so far. In every
chunk after the first, a pair whose projected distance (less a rigorous bound
on its rounding) is already beyond the query's k-th nearest so far cannot be
among its neighbours, and its full distance is never computed; the pairs left
get their exact float64 distances, the numbers :mod:`mnistdist.neighbors`
computes. So the neighbours, ties to the lower index included, are those of
the full search, at the cost of the projection's product (p of d features)
and the few exact distances.

It pays where a query's k-th nearest is small against most distances and p is
a small share of d. On MNIST's 784 pixels with 128 components, 10,000 images
against 250,000 others and their shifts computed 4% of their distances in full
(the first chunk's) and took 0.37 of the full search's time (docs/benchmark.md).
The chunks of one query block run in order, so the parallelism is over query
blocks (of :data:`BLOCK_QUERIES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .. import config
from ._exact import (
    _U32,
    _approx_error_bound,
    _at_least,
    _exact_squared,
    _part,
    _scratch_block,
    _select_rows,
    block_kneighbors,
    check_search,
    kept_chunks,
    merge_kneighbors,
    squared_norms,
)

#: Queries a chain of tasks carries through the reference's chunks: the unit of parallelism.
BLOCK_QUERIES = 512

#: Rows the projection is fitted on, taken evenly from the reference's first chunk.
FIT_ROWS = 2000


@dataclass(frozen=True)
class Projection:
    """Directions to project rows onto (float32 columns), and bounds on the rounding.

    ``slack`` bounds ``||V^T V - I||`` for ``V`` as stored, so that
    ``||V^T x||^2 <= (1 + slack) ||x||^2``; ``error_scale`` bounds a computed
    projection's error against the exact ``V^T x``, relative to ``||x||``.
    """

    centre: np.ndarray
    components: np.ndarray
    slack: float
    error_scale: float


@dataclass(frozen=True)
class Projected:
    """Rows projected: float32 ``(n, p + 1)`` with each squared norm last, and error bounds."""

    ext: np.ndarray
    error: np.ndarray  # per row, a bound on ||computed - exact projection||

    @property
    def sq_norms(self) -> np.ndarray:
        return self.ext[:, -1].astype(np.float64)


@dataclass(frozen=True)
class Reference:
    """One reference chunk, prepared once for every query block that searches it."""

    rows: np.ndarray
    ids: np.ndarray
    row_sq_norms: np.ndarray
    projected: Projected


class Found(NamedTuple):
    """A query block's k nearest so far, the pairs it computed in full, and its projections."""

    dist: np.ndarray
    ids: np.ndarray
    exact_pairs: int
    projected: Projected | None = None


def fit_projection(rows: np.ndarray, n_components: int) -> Projection:
    """The top ``n_components`` principal directions of (at most :data:`FIT_ROWS` of) ``rows``."""
    rows = np.asarray(rows, dtype=np.float64)
    sample = rows[:: max(1, len(rows) // FIT_ROWS)]
    centred = sample - sample.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    d = rows.shape[1]
    p = max(1, min(int(n_components), d))
    components = np.ascontiguousarray(vectors[:, ::-1][:, :p], dtype=np.float32)
    v = components.astype(np.float64)
    # The largest row sum of |V^T V - I| bounds its spectral norm.
    slack = float(np.abs(v.T @ v - np.eye(p)).sum(axis=1).max())
    # Per coordinate, the centring errs by u ||x|| and the float32 dot product of
    # length d by gamma_d ||x|| (Cauchy-Schwarz), each times ||v_j|| <= sqrt(1 + slack).
    gamma = d * _U32 / (1 - d * _U32)
    error_scale = math.sqrt(p) * (gamma + 2 * _U32) * (1 + slack) * (1 + 1e-6)
    centre = sample.mean(axis=0).astype(np.float32)
    return Projection(centre, components, slack, error_scale)


def project(rows: np.ndarray, projection: Projection) -> Projected:
    """``rows`` projected in float32, with bounds on each projection's rounding."""
    # Centred in the rows' own precision, then rounded once: the error is relative to ||x||.
    centred = np.asarray(np.asarray(rows) - projection.centre, dtype=np.float32)
    p = projection.components.shape[1]
    ext = np.empty((len(centred), p + 1), dtype=np.float32)
    np.matmul(centred, projection.components, out=ext[:, :p])
    ext[:, p] = squared_norms(ext[:, :p])
    return Projected(ext, projection.error_scale * np.sqrt(squared_norms(centred)))


def prepare_reference(
    rows: np.ndarray, offset: int, keep: np.ndarray | None, projection: Projection
) -> Reference:
    """A reference chunk (its rows from ``offset``, less those ``keep`` drops), projected."""
    ids = np.arange(offset, offset + len(rows), dtype=np.int64)
    if keep is not None:
        rows, ids = rows[keep], ids[keep]
    return Reference(rows, ids, squared_norms(rows), project(rows, projection))


def _limits(kth_dist: np.ndarray, queries: Projected, ref: Reference, slack: float):
    """Per query: the bound's threshold for ``||r'||^2 - 2 q'.r'`` below which a pair is kept.

    A pair is skipped only if its projected squared distance, less its rounding
    error, exceeds the query's k-th squared distance so far: it is then strictly
    further than that neighbour, so not even a tie can be lost. The error covers
    the float32 product (as :func:`~mnistdist.neighbors._approx_error_bound`) and
    the projections' own: ``| ||a + e||^2 - ||a||^2 | <= 2 ||e|| ||a|| + ||e||^2``.
    """
    p = queries.ext.shape[1] - 1
    q_sq = queries.sq_norms
    q_norm = np.sqrt(q_sq)
    r_sq_max = float(ref.projected.sq_norms.max())
    r_norm_max = math.sqrt(r_sq_max)
    error = _approx_error_bound(q_norm, r_norm_max, r_sq_max, p)
    both = queries.error + float(ref.projected.error.max())
    error += both * (2 * (q_norm + r_norm_max) + both)
    kth = kth_dist**2 * (1.0 + slack + 1e-9)
    return _at_least(kth + error - q_sq, np.float32)


def merge_found(dist, ids, rows, cand_dist, cand_ids, k: int):
    """Each query's k nearest of its neighbours so far and its new candidates (ties: lower id)."""
    n_q, n_found = dist.shape
    all_rows = np.concatenate([np.repeat(np.arange(n_q), n_found), rows])
    all_dist = np.concatenate([dist.ravel(), cand_dist])
    all_ids = np.concatenate([ids.ravel(), cand_ids])
    order = np.lexsort((all_ids, all_dist, all_rows))
    pick = order[_select_rows(all_rows[order], n_q, k)]
    return all_dist[pick].reshape(n_q, k), all_ids[pick].reshape(n_q, k)


def _projected_block(queries: Projected, ref: Reference) -> np.ndarray:
    """``||r'||^2 - 2 q'.r'`` for every pair: the projected squared distance less ``||q'||^2``."""
    q_ext = np.empty_like(queries.ext)
    q_ext[:, :-1] = -2.0 * queries.ext[:, :-1]
    q_ext[:, -1] = 1.0
    out = _scratch_block(len(q_ext), len(ref.rows))
    return np.matmul(q_ext, ref.projected.ext.T, out=out)


def search_step(query, ref: Reference, k: int, found: Found | None, projection: Projection):
    """``found``, the k nearest so far of ``query``'s rows, with ``ref``'s rows added.

    Screened by the bound and the k-th nearest so far; searched in full while
    there is none yet (``found`` None or with fewer than k): a full product is
    cheaper than the exact distances of the many pairs a looser threshold keeps.
    Returns the updated :class:`Found`.
    """
    n_q = len(query)
    if found is None:
        found = Found(np.empty((n_q, 0)), np.empty((n_q, 0), np.int64), 0)
    dist, ids, pairs, queries = found
    if dist.shape[1] < k:
        part = block_kneighbors(query, ref.rows, k, ref_ids=ref.ids)
        return Found(*merge_kneighbors([(dist, ids), part], k), pairs + n_q * len(ref.rows))
    if len(ref.rows) == 0:
        return found
    queries = queries or project(query, projection)
    block = _projected_block(queries, ref)
    limit = _limits(dist[:, -1], queries, ref, projection.slack)
    rows, cols = np.divmod(np.flatnonzero(block <= limit[:, None]), block.shape[1])
    exact = _exact_squared(query, ref.rows, rows, cols, squared_norms(query), ref.row_sq_norms)
    dist, ids = merge_found(dist, ids, rows, np.sqrt(exact), ref.ids[cols], k)
    return Found(dist, ids, pairs + len(rows), queries)


def _fit_task(rows: np.ndarray, n_components: int) -> Projection:
    return fit_projection(rows, n_components)


def _exact_pairs(found: Found) -> np.ndarray:
    return np.array([[found.exact_pairs]], dtype=np.int64)


def _chain_layer(query: da.Array, ref: da.Array, k: int, p: int, names: dict, ref_keep):
    """A projection fit, a prepared reference per chunk, and per query block a chain of steps."""
    fit_key = (names["fit"],)
    layer = {fit_key: (_fit_task, (ref.name, 0, 0), p)}
    refs = []
    for rj, lo, keep in kept_chunks(ref, ref_keep):
        layer[(names["ref"], rj)] = (prepare_reference, (ref.name, rj, 0), lo, keep, fit_key)
        refs.append((names["ref"], rj))
    for qi in range(query.numblocks[0]):
        found = None
        for ref_key in refs:
            key = (names["step"], qi, ref_key[1])
            layer[key] = (search_step, (query.name, qi, 0), ref_key, k, found, fit_key)
            found = key
        layer[(names["found"], qi, 0)] = found  # the chain's last step, as an array's block
        layer[(names["done"], qi, 0)] = (_exact_pairs, found)
    return layer


def bounded_kneighbors_dask(
    query: da.Array,
    ref: da.Array,
    k: int,
    n_components: int,
    *,
    name: str = "neighbors",
    ref_keep: np.ndarray | None = None,
) -> tuple[da.Array, da.Array, da.Array]:
    """Lazy exact k nearest neighbours, screened by ``n_components`` principal components.

    The same neighbours and distances as
    :func:`mnistdist.neighbors.kneighbors_dask` with the same arguments. Tasks
    show as ``<name>-bound-fit`` (the projection, fitted on the reference's first
    chunk), ``<name>-bound-reference`` (a chunk projected) and ``<name>-bound``
    (a query block's step through one chunk).

    Returns
    -------
    dist, ids : dask.array.Array of shape (n_query, k)
    exact_pairs : dask.array.Array of shape (n_query_blocks, 1)
        Per query block, the pairs whose full distances were computed: its first
        chunk's every pair, and the others' pairs the bound kept.
    """
    check_search(query, ref, k, ref_keep)
    query = query.rechunk({0: BLOCK_QUERIES, 1: -1})
    ref = ref.rechunk({1: -1})
    token = tokenize(query, ref, k, n_components, ref_keep)
    names = {
        part: f"{name}-bound{suffix}-{token}"
        for part, suffix in (("fit", "-fit"), ("ref", "-reference"), ("step", ""))
    }
    names["found"] = f"{name}-bound-found-{token}"
    names["done"] = f"{name}-bound-pairs-{token}"
    layer = _chain_layer(query, ref, k, n_components, names, ref_keep)
    graph = HighLevelGraph.from_collections(names["found"], layer, dependencies=[query, ref])
    # One Found a query block: the arrays below take it apart.
    found = da.Array(
        graph, names["found"], chunks=(query.chunks[0], (k,)), meta=np.empty((0, 0), object)
    )
    dist = found.map_blocks(
        _part,
        0,
        dtype=np.float64,
        meta=np.empty((0, 0)),
        name=f"{name}-distances-{token}",
    )
    ids = found.map_blocks(
        _part,
        1,
        dtype=np.int64,
        meta=np.empty((0, 0), np.int64),
        name=f"{name}-ids-{token}",
    )
    pairs_graph = HighLevelGraph.from_collections(names["done"], layer, dependencies=[query, ref])
    pairs = da.Array(
        pairs_graph, names["done"], chunks=((1,) * query.numblocks[0], (1,)), dtype=np.int64
    )
    return dist, ids, pairs


def bound_components(n_features: int) -> int:
    """Components the final test-set search screens by: ``bound-components``, where it pays.

    0 (search in full) where they would be over a quarter of the features:
    the projection's product would then cost too much of what it saves.
    """
    p = int(config.get("bound-components") or 0)
    return p if p > 0 and 4 * p <= n_features else 0
