"""The IDM distance compiled with numba: each query's candidates, one pair at a time.

The same distance as :class:`~mnistdist.neighbors._idm._Workspace`'s NumPy form (the
reference the tests compare it with), computed in the same float32 steps in the same
order, so each pixel's best match is the same number; only the final sum over pixels
(float64) adds in another order. What makes it faster:

- A query's gradient map is computed once for all its candidates, not once a pair.
- Both maps are stored flat with the reference's row length, so the reference moved by
  a warp offset is the same array read ``offset`` elements later: every loop is one
  contiguous pass that the compiler vectorises. Reading through views (``r[offset:]``)
  rather than ``r[i + offset]`` lets it see that no index is negative.
- Offsets that leave the image are not computed apart: a mask adds infinity there (and
  the displacement cost, when asked, everywhere else), so no loop has a ragged bound.

Every function holds no GIL (``nogil``), so worker threads run them in parallel, and is
cached on disk (``cache``): a process compiles once per machine, later ones load it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _gradient_map(image, scale, side, row, margin, out0, out1, padded):
    """Sobel gradients of one flat image into the interior of ``out0``/``out1``.

    Pixel ``(y, x)`` goes to ``(y + margin) * row + x + margin``; the border is never
    written, so it stays zero. The sums run in :func:`_idm._sobel_into`'s order.
    """
    s2 = side + 2
    for y in range(side):
        for x in range(side):
            padded[(y + 1) * s2 + x + 1] = np.float32(image[y * side + x]) / scale
    for y in range(side):
        base = (y + 1) * s2 + 1
        o = (y + margin) * row + margin
        for x in range(side):
            i = base + x
            gx = padded[i - s2 + 1] - padded[i - s2 - 1]
            gx += padded[i + s2 + 1]
            gx -= padded[i + s2 - 1]
            gx += padded[i + 1]
            gx -= padded[i - 1]
            gx += padded[i + 1]
            gx -= padded[i - 1]
            gy = padded[i + s2 - 1] - padded[i - s2 - 1]
            gy += padded[i + s2 + 1]
            gy -= padded[i - s2 + 1]
            gy += padded[i + s2]
            gy -= padded[i - s2]
            gy += padded[i + s2]
            gy -= padded[i - s2]
            out0[o + x] = gx
            out1[o + x] = gy


@numba.njit(cache=True, nogil=True)
def _offset_masks(side, warp, context, displacement_cost):
    """Per warp offset: infinity where the moved pixel leaves the image (or the row's
    padding), else ``displacement_cost * (dx^2 + dy^2)``."""
    row = side + 2 * context + 2 * warp
    masks = np.full(((2 * warp + 1) ** 2, (side - 1) * row + side), np.inf, np.float32)
    k = 0
    for dy in range(-warp, warp + 1):
        for dx in range(-warp, warp + 1):
            cost = np.float32(displacement_cost * (dx * dx + dy * dy))
            for y in range(max(0, -dy), min(side, side - dy)):
                for x in range(max(0, -dx), min(side, side - dx)):
                    masks[k, y * row + x] = cost
            k += 1
    return masks


@numba.njit(cache=True, nogil=True)
def _box_sums(diff, sums, out, n_rows_out, n_out, row, width):
    """Window sums (``width`` x ``width``) of ``diff``: along rows into ``sums``, then
    down columns into ``out``, each as :func:`_idm._box_sum` adds them."""
    if width == 3:  # context 1, the common case, unrolled
        d1, d2 = diff[1:], diff[2:]
        for i in range(n_rows_out):
            sums[i] = diff[i] + d1[i] + d2[i]
        s1, s2 = sums[row:], sums[2 * row :]
        for i in range(n_out):
            out[i] = sums[i] + s1[i] + s2[i]
        return
    for i in range(n_rows_out):
        sums[i] = diff[i]
    for j in range(1, width):
        dj = diff[j:]
        for i in range(n_rows_out):
            sums[i] += dj[i]
    for i in range(n_out):
        out[i] = sums[i]
    for j in range(1, width):
        sj = sums[j * row :]
        for i in range(n_out):
            out[i] += sj[i]


@numba.njit(cache=True, nogil=True)
def _pair(q0, q1, r0, r1, side, warp, context, masks, diff, sums, cost, best):
    """IDM distance of one query map to one reference map."""
    row = side + 2 * context + 2 * warp
    span = side + 2 * context
    n_diff = (span - 1) * row + span
    n_rows_out = (span - 1) * row + side
    n_out = (side - 1) * row + side
    for i in range(n_out):
        best[i] = np.inf
    k = 0
    for oy in range(2 * warp + 1):
        for ox in range(2 * warp + 1):
            moved0, moved1 = r0[oy * row + ox :], r1[oy * row + ox :]
            for i in range(n_diff):
                a = q0[i] - moved0[i]
                b = q1[i] - moved1[i]
                diff[i] = a * a + b * b
            mask = masks[k]
            if context == 1:  # the common case: the column sums fused with the minimum
                d1, d2 = diff[1:], diff[2:]
                for i in range(n_rows_out):
                    sums[i] = diff[i] + d1[i] + d2[i]
                s1, s2 = sums[row:], sums[2 * row :]
                for i in range(n_out):
                    v = sums[i] + s1[i] + s2[i] + mask[i]
                    old = best[i]
                    best[i] = v if v < old else old
            else:
                _box_sums(diff, sums, cost, n_rows_out, n_out, row, 2 * context + 1)
                for i in range(n_out):
                    v = cost[i] + mask[i]
                    old = best[i]
                    best[i] = v if v < old else old
            k += 1
    total = 0.0
    for y in range(side):
        for x in range(side):
            total += best[y * row + x]
    return total


@numba.njit(cache=True, nogil=True)
def _candidates(queries, refs, candidate_ids, side, warp, context, scales, displacement_cost):
    n, m = candidate_ids.shape
    row = side + 2 * context + 2 * warp
    span = side + 2 * context
    masks = _offset_masks(side, warp, context, displacement_cost)
    q0, q1 = np.zeros(span * row, np.float32), np.zeros(span * row, np.float32)
    r0, r1 = np.zeros(row * row, np.float32), np.zeros(row * row, np.float32)
    diff, sums = np.empty(span * row, np.float32), np.empty(span * row, np.float32)
    cost, best = np.empty(span * row, np.float32), np.empty(span * row, np.float32)
    padded = np.zeros((side + 2) * (side + 2), np.float32)
    out = np.empty((n, m))
    for i in range(n):
        _gradient_map(queries[i], scales[0], side, row, context, q0, q1, padded)
        for j in range(m):
            ref = refs[candidate_ids[i, j]]
            _gradient_map(ref, scales[1], side, row, context + warp, r0, r1, padded)
            out[i, j] = _pair(q0, q1, r0, r1, side, warp, context, masks, diff, sums, cost, best)
    return out


def idm_candidate_distances(
    queries: np.ndarray,
    refs: np.ndarray,
    candidate_ids: np.ndarray,
    side: int,
    warp: int,
    context: int,
    displacement_cost: float = 0.0,
) -> np.ndarray:
    """IDM distance of each query (row) to each of its candidates among ``refs``.

    ``queries`` ``(n, side * side)`` and ``refs`` ``(m, side * side)`` are flat images
    (uint8 pixels are scaled by 1/255, each side by its own dtype, as
    :func:`~mnistdist.neighbors.idm_distances` does); ``candidate_ids`` ``(n, k)`` index
    ``refs``. Returns ``(n, k)`` float64.
    ``displacement_cost`` adds ``cost * (dx^2 + dy^2)`` to each pixel's match at offset
    ``(dx, dy)`` before the minimum (0: plain IDM).
    """
    queries, refs = _kernel_rows(queries), _kernel_rows(refs)
    scales = np.array([_scale(queries), _scale(refs)], dtype=np.float32)
    ids = np.ascontiguousarray(candidate_ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= len(refs)):
        raise IndexError(f"candidate ids outside the {len(refs)} reference rows")
    return _candidates(
        queries, refs, ids, int(side), int(warp), int(context), scales, float(displacement_cost)
    )


def _kernel_rows(rows) -> np.ndarray:
    """Rows as one of the dtypes the kernel is compiled for (uint8, float32, float64)."""
    rows = np.asarray(rows)
    if rows.dtype not in (np.uint8, np.float32, np.float64):
        rows = rows.astype(np.float64)
    return np.ascontiguousarray(rows)


def _scale(rows: np.ndarray) -> float:
    return 255.0 if rows.dtype == np.uint8 else 1.0
