"""A chain step's two compiled passes: its screen, and its candidates' exact distances.

A step of :func:`mnistdist.neighbors._chain.search_step` multiplies its
queries with a reference block in float32, then screens the values against
each query's limit, which leaves a query a few candidate pairs.

* **The screen** (:func:`compiled_below`): NumPy compares the whole block
  into a mask, then finds the mask's few true values in a second pass, and
  divides their flat positions into rows and columns: 0.24 to 0.44 ns a
  value, 15 s of thread time against the 37 s of the 51-column products in
  ``--preset best``'s last round. Compiled, one pass counts each row's values
  at or below its limit, vectorised, and only the rows that have any are read
  again, 64 values at a time: a quarter of that time where, as in MNIST's
  searches, 3% of a block's rows have a candidate; slower than NumPy where
  most rows have many (docs/benchmark.md). The same pairs in the same order,
  row by row.
* **The candidates** (:func:`compiled_take`), for rows of bytes (pixels): with
  NumPy, every candidate's rows are gathered, its exact distance computed, and
  all merged with the k nearest so far by a sort: per candidate, several times
  the cost of its exact distance alone. Compiled, one pass takes the candidates
  in turn: it computes a candidate's exact distance (bytes multiplied and
  summed in int32, exact, the numbers NumPy's int32 sums give) only if its
  value is still within the query's limit, and inserts it among the query's k
  nearest, which tightens the limit for the candidates after it. The same
  neighbours and distances as NumPy's way: the limit only decides which exact
  distances are computed, and any pair that can be among a query's k nearest
  is within every limit.

Numba comes with dask-ml; without it, and for searches too small to win back
the loading of the compiled code (:func:`worth_compiling`), NumPy does both.
"""

from __future__ import annotations

import functools
import logging
import types

import numpy as np

log = logging.getLogger(__name__)

#: Pairs x k a search must reach for the compiled step: loading the compiled code from
#: Numba's cache costs about 0.2 s of CPU per process (Numba itself is imported with
#: dask.array, through sparse), which a search of 2 x 10**8 pairs at k = 5 wins back; a
#: larger k keeps more candidates a query (docs/benchmark.md).
COMPILE_WORK = 10**9


def worth_compiling(n_pairs: int, k: int) -> bool:
    """Whether a search of ``n_pairs`` pairs for ``k`` neighbours is large enough to compile."""
    return n_pairs * max(k, 5) >= COMPILE_WORK


def _exact_distance(query, ref, i, j, q_sq, r_sq):
    """The pair's exact distance: bytes multiplied and summed in int32, as NumPy's sums."""
    acc = np.int32(0)
    for t in range(query.shape[1]):
        acc += np.int32(query[i, t]) * np.int32(ref[j, t])
    return np.sqrt(max((q_sq[i] + r_sq[j]) - 2.0 * acc, 0.0))


def _insert(dist, ids, i, c, dd, rid):
    """Put ``(dd, rid)`` among row i's ``c`` nearest (sorted by distance, then id) if it is
    among its k; returns the row's new count."""
    k = dist.shape[1]
    if c < k:
        pos = c
        c += 1
    elif dd > dist[i, k - 1] or (dd == dist[i, k - 1] and rid > ids[i, k - 1]):
        return c
    else:
        pos = k - 1
    while pos > 0 and (dist[i, pos - 1] > dd or (dist[i, pos - 1] == dd and ids[i, pos - 1] > rid)):
        dist[i, pos] = dist[i, pos - 1]
        ids[i, pos] = ids[i, pos - 1]
        pos -= 1
    dist[i, pos] = dd
    ids[i, pos] = rid
    return c


def _take(rows, cols, values, base, scale, query, ref, q_sq, r_sq, ref_ids, dist, ids, count):
    """Insert each candidate pair still within its query's limit among the query's k nearest.

    Candidates ``(rows[t], cols[t])`` come sorted by query, with their float32
    ``values``. A query's limit is ``kth**2 * scale + base[i]`` once it has k
    neighbours (``count[i]``), infinite before, and tightens with each pair
    inserted. ``dist`` and ``ids`` (``(n_q, k)``, each row sorted by distance
    then id) and ``count`` are updated in place; returns how many exact
    distances were computed.
    """
    k = dist.shape[1]
    pairs = 0
    i, c, limit = -1, 0, np.inf
    for t in range(len(rows)):
        if rows[t] != i:
            if i >= 0:
                count[i] = c
            i = rows[t]
            c = count[i]
            limit = np.inf if c < k else dist[i, k - 1] ** 2 * scale + base[i]
        if values[t] > limit:
            continue
        pairs += 1
        dd = _exact_distance(query, ref, i, cols[t], q_sq, r_sq)
        c = _insert(dist, ids, i, c, dd, ref_ids[cols[t]])
        if c == k:
            limit = dist[i, k - 1] ** 2 * scale + base[i]
    if i >= 0:
        count[i] = c
    return pairs


#: Values of a row the screen counts at once before reading them one by one.
_RUN = 64


def _below(block, limit, j0):
    """The pairs ``(rows, cols + j0, values)`` of ``block`` at or below their row's ``limit``,
    row by row: what ``np.flatnonzero(block <= limit[:, None])`` finds, in its order."""
    n_q, n_r = block.shape
    counts = np.empty(n_q, np.int64)
    for i in range(n_q):
        lim, row, c = limit[i], block[i], 0
        for j in range(n_r):  # no branch: vectorised
            c += row[j] <= lim
        counts[i] = c
    total = counts.sum()
    rows, cols = np.empty(total, np.int64), np.empty(total, np.int64)
    values = np.empty(total, block.dtype)
    runs = np.empty(n_r // _RUN, np.int64)
    t = 0
    for i in range(n_q):
        if counts[i] == 0:
            continue
        lim, row = limit[i], block[i]
        for r in range(len(runs)):
            c = 0
            for j in range(_RUN):  # a fixed count: vectorised
                c += row[r * _RUN + j] <= lim
            runs[r] = c
        for r in range(len(runs) + 1):
            if r < len(runs) and runs[r] == 0:
                continue
            for j in range(r * _RUN, min(n_r, r * _RUN + _RUN)):
                if row[j] <= lim:
                    rows[t], cols[t], values[t] = i, j + j0, row[j]
                    t += 1
    return rows, cols, values


def _bind(function, **names):
    """``function`` with ``names`` in place of its module's: the compiled helpers it calls."""
    bound = types.FunctionType(
        function.__code__, {**function.__globals__, **names}, function.__name__
    )
    bound.__qualname__ = function.__qualname__
    return bound


@functools.cache
def _jit():
    """Numba's ``njit`` for these kernels, or None without Numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - dask-ml requires numba
        log.info("numba is not installed: the neighbour search screens with NumPy")
        return None
    return numba.njit(nogil=True, cache=True)


@functools.cache
def _compiled():
    """The compiled :func:`_take`, or None without Numba."""
    jit = _jit()
    if jit is None:  # pragma: no cover - dask-ml requires numba
        return None
    return jit(_bind(_take, _exact_distance=jit(_exact_distance), _insert=jit(_insert)))


@functools.cache
def compiled_below():
    """The compiled :func:`_below`, or None without Numba."""
    jit = _jit()
    return None if jit is None else jit(_below)


def compiled_take(query: np.ndarray, ref: np.ndarray):
    """The compiled :func:`_take` for these rows, or None where NumPy is to take the candidates.

    Only for rows of bytes, whose products summed in int32 are exact (see
    :func:`mnistdist.neighbors._exact._dot_dtype`).
    """
    small_ints = all(x.dtype in (np.uint8, np.int8) for x in (query, ref))
    if not small_ints or query.shape[1] * 255**2 >= 2**31:
        return None
    return _compiled()
