"""Exact k-nearest-neighbour search in row blocks, in NumPy: the kernel every search shares.

The neighbour search is the whole cost of KNN. Its kernel is here, for the
saved model's searches (:func:`kneighbors`) and, through
:mod:`mnistdist.neighbors._chain`, the searches on Dask (the CV search's folds,
the final predictions):

* distances are first approximated with a float32 matrix product (BLAS, fast);
* a cheap threshold pass keeps, for every query row, only the reference rows
  that can still be among its k nearest, given a rigorous bound on the float32
  rounding error;
* those few candidates are re-ranked with exact float64 distances.

The result is the exact k nearest neighbours (ties broken by the lower
reference index) and their exact Euclidean distances, at float32 GEMM speed.
Memory is bounded: no block is larger than ``query_rows x ref_rows``.
"""

from __future__ import annotations

import logging
import math
import threading

import dask.array as da
import numpy as np

log = logging.getLogger(__name__)

# Unit round-off of float32: bounds the error of the approximate distances.
_U32 = float(np.finfo(np.float32).eps) / 2


def _approx_error_bound(
    q_norm: np.ndarray, r_norm_max: float, r_sq_max: float, d: int
) -> np.ndarray:
    """Upper bound on |approx - exact| of ``||r||^2 - 2 q.r`` computed in float32.

    A float32 dot product of length d errs by at most ``d * u * sum|q_j r_j|``
    and ``sum|q_j r_j| <= ||q|| ||r||``. The factor 4 covers the doubling,
    the float32 norm and the subtraction with room to spare: a loose bound only
    adds a few candidates to the exact re-ranking.
    """
    return 4.0 * (d + 2) * _U32 * (2.0 * q_norm * r_norm_max + r_sq_max) + 1e-12


def _select_rows(rows: np.ndarray, n_rows: int, per_row: int) -> np.ndarray:
    """Positions of the first ``per_row`` entries of every row in a row-sorted list."""
    starts = np.searchsorted(rows, np.arange(n_rows))
    return (starts[:, None] + np.arange(per_row)[None, :]).ravel()


_scratch = threading.local()


def _scratch_block(n_rows: int, n_cols: int) -> np.ndarray:
    """A reusable float32 block per thread.

    Fresh blocks of tens of MB are mapped anew by malloc on every allocation,
    and their page faults cost as much as a third of the matrix product.
    """
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.size < n_rows * n_cols:
        buf = _scratch.buf = np.empty(n_rows * n_cols, dtype=np.float32)
    return buf[: n_rows * n_cols].reshape(n_rows, n_cols)


def _scratch_like(name: str, shape: tuple, dtype) -> np.ndarray:
    """A reusable array per thread, by name, for the exact distances' gathers."""
    key = (name, shape, np.dtype(dtype))
    cache = getattr(_scratch, "arrays", None)
    if cache is None:
        cache = _scratch.arrays = {}
    if key not in cache:
        cache = _scratch.arrays = {k: v for k, v in cache.items() if k[0] != name}
        cache[key] = np.empty(shape, dtype=dtype)
    return cache[key]


#: Candidate pairs whose exact distances are computed at once.
_EXACT_PAIRS = 4096


def squared_norms(x: np.ndarray) -> np.ndarray:
    """Each row's squared norm, summed in float64 as the exact distances sum it."""
    return np.einsum("ij,ij->i", x, x, dtype=np.float64, casting="unsafe")


#: A block leaves its zero columns out of its products when they are at least this share of
#: its columns: fewer, and gathering the other side's columns costs more than it saves.
ZERO_COLUMNS_SHARE = 1 / 32


def used_columns(rows: np.ndarray) -> np.ndarray | None:
    """The columns of ``rows`` with a nonzero value, or None where nearly all have one.

    A column that is zero in every row of a reference block adds nothing to its
    products with any query, so a product may leave it out: on MNIST 98 to 111 of
    a 10,000-image chunk's 784 pixels are blank in every image (the borders).
    """
    used = np.flatnonzero(rows.any(axis=0))
    return None if rows.shape[1] - len(used) < ZERO_COLUMNS_SHARE * rows.shape[1] else used


def product_factors(rows: np.ndarray, last, cols=None, scale: float = 1.0) -> np.ndarray:
    """One side of the float32 product ``||r||^2 - 2 q.r``: ``[scale * rows[:, cols], last]``.

    The reference's side has its rows and their squared norms last, the queries'
    their rows times -2 and ones; ``cols`` (:func:`used_columns`) leaves columns out.
    """
    width = rows.shape[1] if cols is None else len(cols)
    out = np.empty((len(rows), width + 1), dtype=np.float32)
    out[:, :width] = rows if cols is None else rows[:, cols]
    if scale != 1.0:
        out[:, :width] *= scale
    out[:, width] = last
    return out


def _dot_dtype(query: np.ndarray, ref: np.ndarray):
    """The type the exact dot products sum in: int32 for bytes (pixels), else float64.

    Products of bytes summed in int32 are exact while ``d * 255**2`` stays below
    2**31, so they are the float64 sums' numbers; NumPy sums them in int32
    nearly twice as fast as it converts bytes to float64 and sums those.
    """
    small = all(x.dtype.kind in "iu" and x.dtype.itemsize == 1 for x in (query, ref))
    return np.int32 if small and query.shape[1] * 255**2 < 2**31 else np.float64


def _exact_squared(query, ref, rows, cols, q_sq=None, r_sq=None) -> np.ndarray:
    """Float64 squared distances of the pairs ``(query[rows[i]], ref[cols[i]])``.

    As ``||q||^2 + ||r||^2 - 2 q.r`` with every term in float64 (the rows'
    squared norms ``q_sq`` and ``r_sq`` are computed if not given): a float32
    product is exact in float64, so on integer pixels every distance is exact
    and ties are ties; identical rows are at 0. It reads each pair's rows once,
    half the time of subtracting them into a float64 difference first. In
    steps of a few thousand pairs through reused buffers: gathering every
    candidate at once made arrays of hundreds of MB, whose page faults cost
    more than the matrix product (k = 100).
    """
    q_sq = squared_norms(query) if q_sq is None else q_sq
    r_sq = squared_norms(ref) if r_sq is None else r_sq
    out = q_sq[rows] + r_sq[cols]
    d = query.shape[1]
    dot_dtype = _dot_dtype(query, ref)
    for s in range(0, len(rows), _EXACT_PAIRS):
        r, c = rows[s : s + _EXACT_PAIRS], cols[s : s + _EXACT_PAIRS]
        n = len(r)
        q_rows = _scratch_like("query", (_EXACT_PAIRS, d), query.dtype)[:n]
        ref_rows = _scratch_like("ref", (_EXACT_PAIRS, d), ref.dtype)[:n]
        # mode='clip': with the default 'raise', take buffers ``out``, twice the time.
        np.take(query, r, axis=0, out=q_rows, mode="clip")
        np.take(ref, c, axis=0, out=ref_rows, mode="clip")
        out[s : s + n] -= 2.0 * np.einsum("ij,ij->i", q_rows, ref_rows, dtype=dot_dtype)
    return np.maximum(out, 0.0, out=out)  # rounding may take a true 0 just below


def _block_pass(query, q_ext, ref, ref_ext, delta, k, ids, norms):
    """Exact k nearest neighbours of one query sub-block (see the module docstring)."""
    n_q, n_r = q_ext.shape[0], ref_ext.shape[0]
    # [-2q, 1] . [r, ||r||^2] = ||r||^2 - 2 q.r: the squared distance less
    # ||q||^2, in one matrix product with no pass over the block afterwards.
    approx = np.matmul(q_ext, ref_ext.T, out=_scratch_block(n_q, n_r))
    return exact_top_k(approx, delta, query, ref, k, ids, norms=norms)


def _kth_of_subset(approx: np.ndarray, k: int, stride: int, axis: int) -> np.ndarray:
    """The k-th smallest of every ``stride``-th entry along ``axis``, per row (or column)."""
    subset = approx[:, ::stride] if axis == 1 else approx[::stride]
    if subset.shape[axis] <= k:
        return subset.max(axis=axis)
    return np.partition(subset, k - 1, axis=axis).take(k - 1, axis=axis)


def exact_top_k(approx, delta, query, ref, k, ids, *, axis: int = 1, norms=None):
    """Exact k nearest rows of ``ref`` for each row of ``query``, screened by ``approx``.

    Parameters
    ----------
    approx : ndarray, C-contiguous
        Each squared distance, approximately, less anything constant along a
        query's line: of shape (n_q, n_r) for ``axis=1`` (a query a row), (n_r, n_q)
        for ``axis=0`` (a query a column, so a matrix product serves both of
        its sides without a transposed copy).
    delta : ndarray of shape (n_q,)
        A bound on each query's error in ``approx``.
    query, ref : ndarray
        The rows themselves, for the exact distances of the few that survive.
    k : int
        Neighbours a row, at most ``n_r``.
    ids : ndarray of shape (n_r,)
        What to call each reference row; ties go to the lower.
    axis : {1, 0}
        The axis of ``approx`` along which a query's distances lie.
    norms : tuple of two ndarray, optional
        The rows' squared norms (:func:`squared_norms`) of ``query`` and ``ref``, if known.

    Returns
    -------
    dist, ids : ndarray of shape (n_q, k)
        Exact Euclidean distances, ascending, and the neighbours' ids.
    """
    rows, cols, _ = screen(approx, delta, k, axis=axis)
    return exact_among_candidates(query, ref, rows, cols, k, ids, norms=norms)


def _at_least(limit: np.ndarray, dtype) -> np.ndarray:
    """``limit`` in ``dtype``, rounded up: ``a <= limit`` holds for the same values of that type.

    Comparing a float32 block with a float64 limit would convert the whole
    block to float64 first, the slowest pass of the screen.
    """
    rounded = limit.astype(dtype)
    return np.where(rounded < limit, np.nextafter(rounded, np.inf, dtype=dtype), rounded)


def screen(approx, delta, k: int, *, axis: int = 1):
    """The pairs that may be among each query's k nearest, by ``approx`` and its error bound.

    Takes :func:`exact_top_k`'s ``approx``, ``delta``, ``k`` and ``axis``.
    Returns ``(queries, refs, values)``: each candidate's query and reference
    index and its ``approx`` value, sorted by query, then value. Every pair
    whose exact distance is within a query's k smallest (ties included) is
    there, and each query has at least k.
    """
    n_r, n_q = approx.shape[axis], approx.shape[1 - axis]
    # The k-th smallest value over a strided subset bounds the query's true k-th
    # smallest from above, so this threshold pass can lose no neighbour. The
    # stride trades the subset's partition against the candidates' sort; this
    # one measured best on MNIST (about k * stride candidates a query).
    stride = max(1, int(math.sqrt(n_r / k) / 6))
    limit = _at_least(_kth_of_subset(approx, k, stride, axis) + 2 * delta, approx.dtype)
    flat = np.flatnonzero(approx <= (limit[:, None] if axis == 1 else limit[None, :]))
    rows, cols = np.divmod(flat, approx.shape[1])
    vals = approx.ravel()[flat]
    if axis == 0:
        rows, cols = cols, rows
    order = order_by_row_then_value(rows, vals)
    return _within(rows[order], cols[order], vals[order], delta, n_q, k)


def order_by_row_then_value(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The order that sorts candidates by row, then value: ``np.lexsort((values, rows))``.

    For float32 values (and rows below 2**32), one stable sort of a 64-bit key
    (the row, then the value's bits made to sort as the value does; -0.0
    before 0.0) instead: a fifth of lexsort's time on the screen's candidates.
    """
    if values.dtype != np.float32:
        return np.lexsort((values, rows))
    bits = values.view(np.uint32)
    # Negative floats' bits sort in reverse: flip them all; set the sign bit of the others.
    sortable = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))
    return np.argsort((rows.astype(np.uint64) << np.uint64(32)) | sortable, kind="stable")


def _within(rows, cols, vals, delta, n_q: int, k: int):
    """Of candidates sorted by query then value, those within 2 delta of the query's k-th value.

    The k-th smallest approximate value is at most ``delta`` below the true
    k-th distance, and a true neighbour's value at most ``delta`` above it:
    no neighbour is further than ``2 * delta`` past the k-th value.
    """
    kth = vals[_select_rows(rows, n_q, k)].reshape(n_q, k)[:, -1]
    keep = vals <= kth[rows] + 2 * delta[rows]
    return rows[keep], cols[keep], vals[keep]


def exact_among_candidates(query, ref, rows, cols, k: int, ids, *, norms=None):
    """The exact k nearest of each query among its candidates ``(rows[i], cols[i])``.

    ``rows`` index ``query`` (sorted, each query at least k times), ``cols``
    index ``ref`` and ``ids``; ties go to the lower id; ``norms`` as for
    :func:`exact_top_k`. Returns ``(dist, ids)`` of shape ``(len(query), k)``.
    """
    n_q = len(query)
    exact = _exact_squared(query, ref, rows, cols, *(norms or (None, None)))
    order = np.lexsort((ids[cols], exact, rows))
    pick = order[_select_rows(rows[order], n_q, k)]
    return np.sqrt(exact[pick]).reshape(n_q, k), ids[cols[pick]].reshape(n_q, k)


def block_kneighbors(
    query: np.ndarray,
    ref: np.ndarray,
    k: int,
    *,
    ref_ids: np.ndarray | None = None,
    query_rows: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of one reference chunk for every row of ``query``.

    Returns ``(dist, ids)``, both of shape ``(len(query), min(k, len(ref)))``,
    sorted by distance then id; ``ids`` are ``ref_ids[j]`` (default ``j``).
    The reference is prepared once and the queries run through it in
    sub-blocks of ``query_rows``: memory is about ``4 * query_rows * len(ref)``
    bytes besides the inputs. See :func:`kneighbors` for a reference of any size.
    """
    query, ref = np.asarray(query), np.asarray(ref)
    n_q, d = query.shape
    ids = (
        np.arange(ref.shape[0], dtype=np.int64)
        if ref_ids is None
        else np.asarray(ref_ids, dtype=np.int64)
    )
    k = min(k, ref.shape[0])
    if n_q == 0 or k == 0:
        return np.empty((n_q, k)), np.empty((n_q, k), dtype=np.int64)

    r_sq = squared_norms(ref)
    r_sq_max = float(r_sq.max())
    cols = used_columns(ref)
    ref_ext = product_factors(ref, r_sq, cols)
    q_sq = squared_norms(query)
    q_norm = np.sqrt(q_sq)
    delta = _approx_error_bound(q_norm, math.sqrt(r_sq_max), r_sq_max, d)

    dists, idx = [], []
    for q0 in range(0, n_q, query_rows):
        q = query[q0 : q0 + query_rows]
        q_ext = product_factors(q, 1.0, cols, scale=-2.0)
        part = slice(q0, q0 + query_rows)
        dist, i = _block_pass(q, q_ext, ref, ref_ext, delta[part], k, ids, (q_sq[part], r_sq))
        dists.append(dist)
        idx.append(i)
    return np.concatenate(dists), np.concatenate(idx)


def merge_kneighbors(
    parts: list[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-chunk neighbour lists of the same queries into the k nearest overall."""
    dist = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    order = np.lexsort((ids, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ids, order, axis=1)


def kneighbors(
    query: np.ndarray,
    ref: np.ndarray,
    k: int,
    *,
    ref_rows: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``ref`` for every row of ``query``, in bounded memory.

    Works through the reference in chunks of ``ref_rows``, so memory stays
    near ``6 * 512 * ref_rows`` bytes plus the inputs, whatever their sizes.
    """
    query, ref = np.asarray(query), np.asarray(ref)
    if k > ref.shape[0]:
        raise ValueError(f"k={k} is larger than the {ref.shape[0]} reference rows")
    parts = [
        block_kneighbors(
            query,
            ref[r0 : r0 + ref_rows],
            k,
            ref_ids=np.arange(r0, min(r0 + ref_rows, ref.shape[0])),
        )
        for r0 in range(0, ref.shape[0], ref_rows)
    ]
    return merge_kneighbors(parts, k)


def _part(pair: tuple, i: int) -> np.ndarray:
    return pair[i]


def check_search(query: da.Array, ref: da.Array, k: int, ref_keep) -> None:
    """Raise ValueError unless ``query`` and ``ref`` are 2-D, as wide, and ``ref`` keeps k rows."""
    if query.ndim != 2 or ref.ndim != 2 or query.shape[1] != ref.shape[1]:
        raise ValueError(
            f"query {query.shape} and reference {ref.shape} must be 2-D with equal widths"
        )
    n_ref = int(ref.shape[0] if ref_keep is None else np.count_nonzero(ref_keep))
    if k > n_ref:
        raise ValueError(f"k={k} is larger than the {n_ref} reference rows")


def kept_chunks(ref: da.Array, ref_keep: np.ndarray | None):
    """``(rj, offset, keep)`` of each of ``ref``'s row chunks with a row ``ref_keep`` keeps.

    ``keep`` is the chunk's part of ``ref_keep`` (None: every row).
    """
    offsets = np.concatenate([[0], np.cumsum(ref.chunks[0])])
    for rj in range(ref.numblocks[0]):
        lo, hi = int(offsets[rj]), int(offsets[rj + 1])
        keep = None if ref_keep is None else ref_keep[lo:hi]
        if keep is None or keep.all():
            yield rj, lo, None  # no copy of the rows to make
        elif keep.any():
            yield rj, lo, keep
