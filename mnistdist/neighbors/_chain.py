"""Each share of the queries carried through the reference's blocks, its k nearest so far in hand.

A chain of tasks a share of the queries (one a worker thread): each step
multiplies the share, a sub-block at a time, with one prepared reference block in float32 and
computes exact float64 distances only for the pairs that can still be among
a query's k nearest. The k nearest so far give every step after the first a
threshold: a pair whose float32 value, less a rigorous bound on its error, is
beyond the query's k-th nearest so far cannot be a neighbour. Two kinds of
float32 value:

* **full**: the whole squared distance, ``||r||^2 - 2 q.r`` in one product of
  d + 1 columns (:func:`mnistdist.neighbors._exact.block_kneighbors`'s), with
  its rounding bound; the first step screens as that kernel does;
* **bound**: the distance between the rows' projections on p principal
  directions, a lower bound (:mod:`mnistdist.neighbors._lower_bound`), in a
  product of p + 1 columns. The first step takes a few pairs nearest by that
  bound, their exact distances give the threshold, and the bound screens the
  rest of the block with it.

Either way the pairs screened out are strictly further than k others, and
the pairs kept get the exact distances of the full search: the neighbours,
ties to the lower id, are the full search's. Each reference block is
prepared once for all the chains that pass through it, and no step merges
more than k neighbours a query with its few new candidates.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ..runtime import renamed, worker_threads
from ._compiled import compiled_below, compiled_take, worth_compiling
from ._exact import (
    _approx_error_bound,
    _at_least,
    _exact_squared,
    _part,
    _scratch_block,
    _scratch_like,
    _select_rows,
    check_search,
    kept_chunks,
    product_factors,
    screen,
    squared_norms,
    used_columns,
)
from ._lower_bound import Projected, Projection, bound_terms, fit_projection, project

#: Queries a step multiplies at once with the full values (d + 1 columns): the product
#: packs the reference block once a product, and 2,048 queries spread that over 2.5% more
#: of it than 1,024 (78 against 76 x 10^9 multiply-adds a second on one core, MNIST's 785
#: columns), in 80 MB of values against 10,000 reference rows.
FULL_SUB_QUERIES = 2048

#: The same for the projections (p + 1 columns, screened :data:`SUB_ROWS` reference rows at
#: a time): 1,024 x 512 float32 values, 2 MB, still in a core's cache for the screen.
BOUND_SUB_QUERIES = 1024

#: Reference rows a step multiplies and screens at once, once its queries have a limit:
#: 512 x 512 float32 values, 1 MB, stay in a core's cache between the product and the screen.
SUB_ROWS = 512

#: Columns of a product too wide to cut into :data:`SUB_ROWS` pieces.
WIDE = 256

#: Pairs a query takes by the bound in a chain's first step, to find its first threshold:
#: at least this many beyond k (and twice k), nearest by the bound.
PILOT_EXTRA = 8

#: Values a reference block merged from smaller chunks may hold: 32 MB of float32, a
#: chunk of 10,000 MNIST images (:func:`merged_chunks`).
MERGED_BLOCK_VALUES = 2**23

#: Values of a merged block's product with a step's queries: 64 MB of float32, about
#: what 2,048 queries and a 10,000-row chunk make.
MERGED_STEP_VALUES = 2**24


@dataclass(frozen=True)
class Reference:
    """A block of reference rows prepared once for every chain that passes through it.

    ``factors`` is float32 ``(n, w + 1)``: the rows (or their projections) and
    each one's squared norm last, the reference's side of every step's product.
    ``projected`` holds the projections' rounding bounds (None: the rows themselves).
    ``columns``: the columns of the queries' factors that meet ``factors``'
    (:func:`~mnistdist.neighbors._exact.used_columns`, and the last), or None for all.
    """

    rows: np.ndarray
    ids: np.ndarray
    row_sq_norms: np.ndarray
    factors: np.ndarray
    projected: Projected | None = None
    columns: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def prepare_reference(
    rows: np.ndarray, ids, keep: np.ndarray | None = None, projection: Projection | None = None
) -> Reference:
    """``rows`` (their ids ``ids``, or ``ids + arange`` for an int) less those ``keep`` drops.

    With a ``projection``, the block is screened by its projections; without,
    by the rows themselves.
    """
    rows = np.ascontiguousarray(rows)
    if np.ndim(ids) == 0:
        ids = np.arange(int(ids), int(ids) + len(rows), dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    if keep is not None:
        rows, ids = rows[keep], ids[keep]
    sq = squared_norms(rows)
    if projection is not None:
        projected = project(rows, projection)
        return Reference(rows, ids, sq, projected.ext, projected)
    used = used_columns(rows)
    columns = None if used is None else np.append(used, rows.shape[1])
    return Reference(rows, ids, sq, product_factors(rows, sq, used), columns=columns)


class Queries(NamedTuple):
    """A block of queries prepared once for its chain: ``factors`` is ``[-2 x, 1]`` in float32,
    for ``x`` the rows or their projections (``projected``)."""

    factors: np.ndarray
    row_sq_norms: np.ndarray
    projected: Projected | None


def prepare_queries(query: np.ndarray, projection: Projection | None) -> Queries:
    query = np.asarray(query)
    if projection is None:
        x, projected = query, None
    else:
        projected = project(query, projection)
        x = projected.ext[:, :-1]
    return Queries(product_factors(x, 1.0, scale=-2.0), squared_norms(query), projected)


def query_factors(queries: Queries, ref: Reference) -> np.ndarray:
    """The queries' side of their product with ``ref``: the columns ``ref`` multiplies."""
    if ref.columns is None:
        return queries.factors
    return np.take(queries.factors, ref.columns, axis=1)


class Found(NamedTuple):
    """A block's k nearest so far (fewer before its first k), and the pairs it computed in full."""

    dist: np.ndarray
    ids: np.ndarray
    exact_pairs: int
    queries: Queries


def _merge_all(dist, ids, rows, cand_dist, cand_ids, k: int):
    n_q, n_found = dist.shape
    all_rows = np.concatenate([np.repeat(np.arange(n_q), n_found), rows])
    all_dist = np.concatenate([dist.ravel(), cand_dist])
    all_ids = np.concatenate([ids.ravel(), cand_ids])
    order = np.lexsort((all_ids, all_dist, all_rows))
    pick = order[_select_rows(all_rows[order], n_q, k)]
    return all_dist[pick].reshape(n_q, k), all_ids[pick].reshape(n_q, k)


def merge_found(dist, ids, rows, cand_dist, cand_ids, k: int):
    """Each query's k nearest of its neighbours so far and its new candidates (ties: lower id).

    ``rows`` say whose candidates they are; every query needs at least k of the
    two together. Once every query has k, only those with candidates are sorted anew.
    """
    if dist.shape[1] < k:
        return _merge_all(dist, ids, rows, cand_dist, cand_ids, k)
    touched, at = np.unique(rows, return_inverse=True)
    dist, ids = dist.copy(), ids.copy()
    if len(touched):
        merged = _merge_all(dist[touched], ids[touched], at, cand_dist, cand_ids, k)
        dist[touched], ids[touched] = merged
    return dist, ids


def _with_exact(query, ref: Reference, found: Found, rows, cols, k: int) -> Found:
    """``found`` merged with the exact distances of the pairs ``(rows, cols)``."""
    queries = found.queries
    exact = _exact_squared(query, ref.rows, rows, cols, queries.row_sq_norms, ref.row_sq_norms)
    dist, ids = merge_found(found.dist, found.ids, rows, np.sqrt(exact), ref.ids[cols], k)
    return Found(dist, ids, found.exact_pairs + len(rows), queries)


def _full_error(queries: Queries, ref: Reference) -> np.ndarray:
    """Each query's bound on the error of its full float32 values (the kernel's)."""
    sq_max = float(ref.row_sq_norms.max())
    d = queries.factors.shape[1] - 1
    return _approx_error_bound(np.sqrt(queries.row_sq_norms), math.sqrt(sq_max), sq_max, d)


def _limit_terms(queries: Queries, ref: Reference, slack: float) -> tuple[float, np.ndarray]:
    """``(scale, base)``: a pair may be among a query's k nearest only if its float32
    value is at most ``kth**2 * scale + base``, ``kth`` its k-th nearest so far.

    ``scale`` covers the rounding of ``kth``'s square root (and the projection's
    slack, see :func:`~mnistdist.neighbors._lower_bound.bound_terms`).
    """
    if queries.projected is None:
        return 1.0 + 1e-9, _full_error(queries, ref) - queries.row_sq_norms
    return bound_terms(queries.projected, ref.projected, slack)


def _limits(kth_dist: np.ndarray, queries: Queries, ref: Reference, slack: float) -> np.ndarray:
    """Per query, the float32 value at or below which a pair may be among its k nearest."""
    scale, base = _limit_terms(queries, ref, slack)
    return _at_least(kth_dist**2 * scale + base, np.float32)


def _taker(query, ref: Reference, slack: float, compiled: bool):
    """``take(found, rows, cols, values, k)``: ``found`` with the candidate pairs
    ``(rows, cols)`` (sorted by query) taken in, keeping ``k`` a query.

    Compiled (:func:`~mnistdist.neighbors._compiled.compiled_take`) if asked and
    possible, else exact distances for every candidate and one merge.
    """
    kernel = compiled_take(query, ref.rows) if compiled else None
    if kernel is None:
        return lambda found, rows, cols, values, k: _with_exact(query, ref, found, rows, cols, k)
    rows_q = np.ascontiguousarray(query)

    def take(found: Found, rows, cols, values, k: int) -> Found:
        n_q, have = found.dist.shape
        dist = np.full((n_q, k), np.inf)
        ids = np.full((n_q, k), -1, dtype=np.int64)
        dist[:, :have], ids[:, :have] = found.dist, found.ids
        count = np.full(n_q, have, dtype=np.int64)
        scale, base = _limit_terms(found.queries, ref, slack)
        norms = (found.queries.row_sq_norms, ref.row_sq_norms, ref.ids)
        pairs = kernel(rows, cols, values, base, scale, rows_q, ref.rows, *norms, dist, ids, count)
        return Found(dist, ids, found.exact_pairs + int(pairs), found.queries)

    return take


def _first_full(ref: Reference, block, k: int, found: Found, take) -> Found:
    """A chain's first k by the full values: the kernel's screen, then exact distances."""
    rows, cols, vals = screen(block, _full_error(found.queries, ref), min(k, len(ref)))
    return take(found, rows, cols, vals, min(k, found.dist.shape[1] + len(ref)))


def _first_bound(ref: Reference, block, k: int, found: Found, take):
    """A chain's first k by the bound: the few pairs nearest by it, in exact distances.

    Returns the updated :class:`Found` and, per query, the largest value taken
    (None where the block was taken whole): the threshold pass that follows
    skips those pairs, already taken.
    """
    n_r = len(ref)
    pilot = min(n_r, max(2 * k, k + PILOT_EXTRA))
    rows, cols, vals = screen(block, np.zeros(len(block)), pilot)
    found = take(found, rows, cols, vals, min(k, found.dist.shape[1] + n_r))
    if pilot == n_r:
        return found, None
    return found, vals[np.searchsorted(rows, np.arange(len(block)), side="right") - 1]


def _candidates(block, limit, j0: int = 0, compiled: bool = False):
    """The pairs of ``block`` at or below their query's ``limit``: ``(rows, cols + j0, values)``,
    row by row; ``compiled``: by :func:`~mnistdist.neighbors._compiled.compiled_below`."""
    below = compiled_below() if compiled else None
    if below is not None:
        return below(block, limit, j0)
    n_q, n_r = block.shape
    width = max(n_r, SUB_ROWS)  # one reused buffer for the pieces, even the last and smaller
    mask = _scratch_like(f"mask-{width}", (n_q, width), bool)[:, :n_r]
    np.less_equal(block, limit[:, None], out=mask)
    flat = np.flatnonzero(mask)
    rows, cols = np.divmod(flat, block.shape[1])
    return rows, cols + j0, block.ravel()[flat]


def _screened(queries: Queries, ref: Reference, limit, compiled: bool) -> tuple:
    """The candidates of the product of ``queries`` and ``ref`` under ``limit``, sorted by query
    (``compiled``: screened by the compiled pass).

    The product is made and screened :data:`SUB_ROWS` reference rows at a time,
    so that the comparison reads values still in the core's cache: a fifth less
    time a step than making the whole product first.
    """
    parts = []
    # A wide product (the full values') costs far more than its screen, and is the more
    # efficient the more rows it multiplies at once: not cut.
    width = SUB_ROWS if queries.factors.shape[1] <= WIDE else len(ref)
    left = query_factors(queries, ref)
    for j0 in range(0, len(ref), width):
        factors = ref.factors[j0 : j0 + width]
        out = _scratch_block(len(left), len(factors))
        parts.append(_candidates(np.matmul(left, factors.T, out=out), limit, j0, compiled))
    rows, cols, values = (np.concatenate(p) for p in zip(*parts, strict=True))
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order], values[order]


def _rows_of(found: Found, rows: slice) -> Found:
    """The part of ``found`` for its queries ``rows`` (no exact pairs counted yet)."""
    q = found.queries
    projected = q.projected and Projected(q.projected.ext[rows], q.projected.error[rows])
    queries = Queries(q.factors[rows], q.row_sq_norms[rows], projected)
    return Found(found.dist[rows], found.ids[rows], 0, queries)


def search_step(
    query,
    ref: Reference,
    k: int,
    found: Found | None,
    projection: Projection | None = None,
    compiled: bool = False,
) -> Found:
    """``found``, the k nearest so far of ``query``'s rows, with ``ref``'s rows added.

    ``found`` may also be None (nothing found yet) or ``(dist, ids)``, each query's k
    nearest among other rows, sorted (ties to the lower id), for a chain's first step.
    ``projection`` must be the one ``ref`` was prepared with (None: full values);
    ``compiled`` takes the candidates with the compiled kernel where it can.
    The queries are taken :data:`FULL_SUB_QUERIES` (or :data:`BOUND_SUB_QUERIES`)
    at a time, so that a chain may carry any number. Returns the updated :class:`Found`.
    """
    n_q = len(query)
    if not isinstance(found, Found):  # the chain's first step: nothing known, or (dist, ids)
        start = found or (np.empty((n_q, 0)), np.empty((n_q, 0), np.int64))
        found = Found(*start, 0, prepare_queries(query, projection))
    if len(ref) == 0:
        return found
    size = FULL_SUB_QUERIES if projection is None else BOUND_SUB_QUERIES
    edges = np.linspace(0, n_q, max(1, -(-n_q // size)) + 1).astype(int)
    parts = [
        _step(query[lo:hi], ref, k, _rows_of(found, slice(lo, hi)), projection, compiled)
        for lo, hi in itertools.pairwise(edges)
    ]
    return Found(
        np.concatenate([p.dist for p in parts]),
        np.concatenate([p.ids for p in parts]),
        found.exact_pairs + sum(p.exact_pairs for p in parts),
        found.queries,
    )


def _step(query, ref: Reference, k: int, found: Found, projection, compiled: bool) -> Found:
    """:func:`search_step` for queries few enough to multiply at once."""
    queries = found.queries
    slack = 0.0 if projection is None else projection.slack
    take = _taker(query, ref, slack, compiled)
    if found.dist.shape[1] == k:  # a limit for every query: screened in cached pieces
        limit = _limits(found.dist[:, k - 1], queries, ref, slack)
        return take(found, *_screened(queries, ref, limit, compiled), k)
    left = query_factors(queries, ref)
    block = np.matmul(left, ref.factors.T, out=_scratch_block(len(left), len(ref)))
    if projection is None:
        return _first_full(ref, block, k, found, take)
    found, taken = _first_bound(ref, block, k, found, take)
    if taken is None or found.dist.shape[1] < k:
        return found
    limit = _limits(found.dist[:, k - 1], queries, ref, slack)
    rows, cols, values = _candidates(block, limit, compiled=compiled)
    later = values > taken[rows]
    return take(found, rows[later], cols[later], values[later], k)


def _exact_pairs(found: Found) -> np.ndarray:
    return np.array([[found.exact_pairs]], dtype=np.int64)


def _rows_between(chunks: list, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo:hi`` of ``chunks`` one after another."""
    return chunks[0][lo:hi] if len(chunks) == 1 else np.concatenate(chunks)[lo:hi]


def _block_rows(n_cols: int, n_queries: int) -> int:
    """The rows a merged block may hold (:data:`MERGED_BLOCK_VALUES`, :data:`MERGED_STEP_VALUES`)
    for chains of ``n_queries`` queries: at least one."""
    step_rows = min(max(n_queries, 1), FULL_SUB_QUERIES)
    return max(1, min(MERGED_BLOCK_VALUES // max(n_cols, 1), MERGED_STEP_VALUES // step_rows))


def merged_chunks(chunks: tuple[int, ...], n_cols: int, share_rows: int) -> tuple[int, ...]:
    """A reference's row ``chunks`` with runs of small ones merged, for chains of at most
    ``share_rows`` queries.

    Every step is a task whose overhead (a few milliseconds of scheduling) outweighs
    the product of a few hundred queries with a small chunk, as a halving round's
    first images and their augmented copies make: eleven chunks of 1,778 rows took
    eleven steps a chain. Consecutive chunks are merged while the block holds at most
    :data:`MERGED_BLOCK_VALUES` and its product with a step's queries at most
    :data:`MERGED_STEP_VALUES`; a chunk is never cut, so one beyond either stays as it is.
    The neighbours do not depend on the blocks (ties fall to the lower id in any).
    """
    limit = _block_rows(n_cols, share_rows)
    merged: list[int] = []
    for rows in chunks:
        if merged and merged[-1] + rows <= limit:
            merged[-1] += rows
        else:
            merged.append(rows)
    return tuple(merged)


def query_shares(query: da.Array, n_chains: int) -> tuple[list, tuple[int, ...]]:
    """``query``'s rows in ``n_chains`` even shares (at least one, at most a row each): each
    share's rows as a task argument, taken from ``query``'s own chunks, and the shares' sizes.

    No rechunk: its small tasks would wait behind a busy worker's long steps
    while the chain they start waits for them.
    """
    n_chains = max(1, min(n_chains, query.shape[0]))
    ends = np.cumsum(query.chunks[0])
    edges = np.linspace(0, query.shape[0], n_chains + 1).astype(int)
    shares = []
    for lo, hi in itertools.pairwise(edges):
        # The chunks holding rows lo to hi - 1: the first that ends after lo, to the
        # first that ends at or after hi.
        first, last = np.clip(
            [np.searchsorted(ends, lo, "right"), np.searchsorted(ends, hi)], 0, len(ends) - 1
        )
        keys = [(query.name, i, 0) for i in range(first, max(first, last) + 1)]
        start = ends[first] - query.chunks[0][first]
        shares.append((_rows_between, keys, lo - start, hi - start))
    return shares, tuple(int(n) for n in np.diff(edges))


def chain_layer(
    shares: list,
    refs: list,
    k: int,
    names: dict,
    projection=None,
    *,
    n_pairs: int = 0,
    starts: list | None = None,
) -> dict:
    """The graph layer: per share of the queries, a chain of steps through the prepared ``refs``.

    ``shares`` give each chain's query rows (a key, or a task as :func:`query_shares`
    makes); ``names`` come from :func:`chain_names`; ``refs`` are the keys of
    :class:`Reference` tasks, in the order the chains take them; ``projection``
    the key of their :class:`Projection` (None: full values). The chain's last
    step is also ``(names["found"], qi, 0)``, and its exact pairs
    ``(names["pairs"], qi, 0)``. ``n_pairs``, the whole search's pairs (of
    which these chains may be part), says whether it is large enough to
    compile (:func:`~mnistdist.neighbors._compiled.worth_compiling`). ``starts``
    give each chain's first step its queries' ``(dist, ids)`` already known
    (:func:`search_step`; default: none).
    """
    compiled = worth_compiling(n_pairs, k)
    layer = {}
    for qi, share in enumerate(shares):
        found = None if starts is None else starts[qi]
        for j, ref_key in enumerate(refs):
            key = (names["step"], qi, j)
            layer[key] = (search_step, share, ref_key, k, found, projection, compiled)
            found = key
        layer[(names["found"], qi, 0)] = found
        layer[(names["pairs"], qi, 0)] = (_exact_pairs, found)
    return layer


def chain_arrays(
    layer: dict, rows: tuple, k: int, names: dict, dependencies: list, out_rows: tuple
) -> tuple[da.Array, da.Array, da.Array]:
    """``(dist, ids, exact_pairs)`` of :func:`chain_layer`'s chains (of ``rows`` queries
    each) as Dask arrays, ``dist`` and ``ids`` in chunks of ``out_rows``.

    ``dist`` and ``ids`` are named ``names["dist"]`` and ``names["ids"]``, which
    :func:`chain_names` makes from the search alone: the journal keeps a finished
    search under its name, and a run resumed on a cluster of another size, whose
    chains differ, must find it.
    """
    graph = HighLevelGraph.from_collections(names["found"], layer, dependencies=dependencies)
    found = da.Array(graph, names["found"], chunks=(rows, (k,)), meta=np.empty((0, 0), object))
    parts = []
    for i, dtype in enumerate((np.float64, np.int64)):
        part = found.map_blocks(_part, i, dtype=dtype, meta=np.empty((0, 0), dtype))
        part = part if rows == tuple(out_rows) else part.rechunk({0: tuple(out_rows)})
        parts.append(renamed(part, names[("dist", "ids")[i]]))
    pairs_graph = HighLevelGraph.from_collections(names["pairs"], layer, dependencies=dependencies)
    pairs = da.Array(pairs_graph, names["pairs"], chunks=((1,) * len(rows), (1,)), dtype=np.int64)
    return *parts, pairs


def chain_names(base: str, token: str, n_chains: int) -> dict:
    """The names of a search's chains, ``<base>`` its steps, and of its results.

    The results' names come from ``token`` (the search) alone, the chains' from
    ``token`` and ``n_chains``: the same search in other shares is other tasks.
    """
    layout = tokenize(token, n_chains)
    parts = {"step": "", "found": "-found", "pairs": "-pairs"}
    names = {part: f"{base}{suffix}-{layout}" for part, suffix in parts.items()}
    return names | {"dist": f"{base}-distances-{token}", "ids": f"{base}-ids-{token}"}


def chained_kneighbors(
    query: da.Array,
    ref: da.Array,
    k: int,
    *,
    n_components: int = 0,
    name: str = "neighbors",
    ref_keep: np.ndarray | None = None,
    chains: int | None = None,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[da.Array, da.Array, da.Array]:
    """Lazy exact k nearest rows of ``ref`` for every row of ``query``, by chains.

    ``n_components`` > 0 screens by that many principal components (fitted on
    ``ref``'s first chunk), 0 by the full values. ``ref_keep`` (a boolean mask
    over ``ref``'s rows) leaves rows out. ``chains`` carry the queries, in
    even shares (default: one a worker thread of the current cluster,
    :func:`~mnistdist.runtime.worker_threads`). Returns ``(dist, ids,
    exact_pairs)``: ``dist`` and ``ids`` with ``query``'s row chunks and ``k``
    columns, ``ids`` indexing ``ref``'s rows; ``exact_pairs`` a chain, the
    pairs whose exact distances it computed.

    ``known``, ``(dist, ids)`` of shape ``(n_query, k)``: each query's k nearest
    among rows that ``ref_keep`` leaves out, already found (sorted by distance,
    then id). The chains start from them, so their first steps already have
    each query's limit, and the result is the k nearest of both.
    """
    check_search(query, ref, k, ref_keep)
    query, ref = query.rechunk({1: -1}), ref.rechunk({1: -1})
    shares, rows = query_shares(query, chains or worker_threads())
    # The results are named by the search alone (the journal finds them under that name
    # whatever the blocks); the prepared blocks by the blocks too.
    token = tokenize(query, ref, k, n_components, ref_keep, known)
    blocks = merged_chunks(ref.chunks[0], ref.shape[1], max(rows))
    ref = ref if blocks == ref.chunks[0] else ref.rechunk({0: blocks})
    blocks_token = tokenize(token, blocks)
    base = f"{name}-bound" if n_components > 0 else name
    names = chain_names(base, token, len(shares))
    layer, projection = {}, None
    if n_components > 0:
        projection = (f"{name}-bound-fit-{blocks_token}",)
        layer[projection] = (fit_projection, (ref.name, 0, 0), n_components)
    refs = []
    for rj, lo, keep in kept_chunks(ref, ref_keep):
        key = (f"{base}-reference-{blocks_token}", rj)
        layer[key] = (prepare_reference, (ref.name, rj, 0), lo, keep, projection)
        refs.append(key)
    n_ref = ref.shape[0] if ref_keep is None else int(np.count_nonzero(ref_keep))
    starts = None
    if known is not None:
        edges = np.concatenate([[0], np.cumsum(rows)])
        starts = [(known[0][lo:hi], known[1][lo:hi]) for lo, hi in itertools.pairwise(edges)]
    n_pairs = query.shape[0] * n_ref
    layer.update(chain_layer(shares, refs, k, names, projection, n_pairs=n_pairs, starts=starts))
    return chain_arrays(layer, rows, k, names, [query, ref], query.chunks[0])


def local_kneighbors(query: np.ndarray, ref: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact k nearest rows of ``ref`` for every row of ``query``, in this process.

    One chain through ``ref`` in the blocks :func:`merged_chunks` would make of it,
    for searches too small to pay for their tasks (a halving round's first folds).
    The same neighbours and distances as :func:`kneighbors_dask`, which do not depend on
    the blocks or the chains. Returns ``(dist, ids)`` of shape ``(n_query, k)``.
    """
    size = _block_rows(ref.shape[1], len(query))
    compiled = worth_compiling(len(query) * len(ref), k)
    found = None
    for lo in range(0, len(ref), size):
        found = search_step(
            query, prepare_reference(ref[lo : lo + size], lo), k, found, None, compiled
        )
    return found.dist, found.ids


def kneighbors_dask(
    query: da.Array,
    ref: da.Array,
    k: int,
    *,
    name: str = "neighbors",
    ref_keep: np.ndarray | None = None,
    chains: int | None = None,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[da.Array, da.Array]:
    """Lazy exact k nearest neighbors of every row of ``query`` among the rows of ``ref``.

    Every pair's full float32 value is computed (:func:`chained_kneighbors`):
    tasks show in the dashboard as ``<name>-reference`` (a chunk of ``ref``
    prepared) and ``<name>`` (a share of the queries through one chunk).
    ``ref_keep`` (a boolean mask over ``ref``'s rows) leaves rows out of the
    reference, as a CV fold leaves out its validation rows. ``chains`` carry
    the queries (default: one a worker thread); ``known``, the queries'
    neighbours among the rows left out, already found (see
    :func:`chained_kneighbors`). Returns ``(dist, ids)`` as Dask arrays with
    ``query``'s row chunks and ``k`` columns; ``ids`` index ``ref``'s rows.
    """
    options = {"name": name, "ref_keep": ref_keep, "chains": chains, "known": known}
    dist, ids, _ = chained_kneighbors(query, ref, k, **options)
    return dist, ids


def bounded_kneighbors_dask(
    query: da.Array,
    ref: da.Array,
    k: int,
    n_components: int,
    *,
    name: str = "neighbors",
    ref_keep: np.ndarray | None = None,
    chains: int | None = None,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[da.Array, da.Array, da.Array]:
    """Lazy exact k nearest neighbours, screened by ``n_components`` principal components.

    The same neighbours and distances as :func:`kneighbors_dask` with the same
    arguments. Tasks show as ``<name>-bound-fit`` (the projection, fitted on
    ``ref``'s first chunk), ``<name>-bound-reference`` (a chunk projected) and
    ``<name>-bound`` (a share of the queries through one chunk).

    Returns
    -------
    dist, ids : dask.array.Array of shape (n_query, k)
    exact_pairs : dask.array.Array of shape (n_chains, 1)
        Per chain, the pairs whose exact distances were computed.
    """
    options = {"name": name, "ref_keep": ref_keep, "chains": chains, "known": known}
    return chained_kneighbors(query, ref, k, n_components=n_components, **options)
