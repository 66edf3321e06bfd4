"""The image distortion model (IDM) with local gradient context, a deformation-aware distance.

Keysers et al., "Deformation models for image recognition", PAMI 2007: each
pixel of a query image may match any reference pixel within ``warp`` pixels of
its own position, independently of its neighbours. To keep that freedom from
matching anything with anything, pixels are compared by their *local
context*: the ``(2 context + 1)^2`` patch of the image's horizontal and
vertical Sobel gradients around them. The distance is

    d(q, r) = sum over query pixels p of  min over |p' - p|_inf <= warp  ||C_q(p) - C_r(p')||^2

with reference positions clipped to the image. It is zero for an image and
itself, never negative, and not symmetric. Gradients are computed per block
of pairs, never for a whole training set, and the context vectors (18 float32
values a pixel at context 1) never at all: see :class:`_Workspace`.

Two kernels compute it: the compiled one (:mod:`._idm_kernel`, numba), which the
library uses, and this module's NumPy one, kept as the reference it is tested and
benchmarked against (``kernel="numpy"``).
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from ..data import image_side
from ._idm_kernel import idm_candidate_distances

#: Pairs compared at once. A block's gradient maps (8 kB a 28x28 pair) stay in the CPU
#: cache across the warp offsets; 64 pairs ran as fast as 256 and 12% faster than 16 (MNIST,
#: warp 2, 2-core machine).
DEFAULT_BLOCK_PAIRS = 64


def _sobel_into(padded: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Sobel gradients of zero-bordered images ``(n, h + 2, w + 2)`` into ``out`` ``(n, 2, h, w)``.

    In place, with no temporary arrays (see :class:`_Workspace`).
    """
    h, w = out.shape[2:]

    def at(dy: int, dx: int) -> np.ndarray:
        return padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx, gy = out[:, 0], out[:, 1]
    np.subtract(at(-1, 1), at(-1, -1), out=gx)
    for plus, minus in (((1, 1), (1, -1)), ((0, 1), (0, -1)), ((0, 1), (0, -1))):
        gx += at(*plus)
        gx -= at(*minus)
    np.subtract(at(1, -1), at(-1, -1), out=gy)
    for plus, minus in (((1, 1), (-1, 1)), ((1, 0), (-1, 0)), ((1, 0), (-1, 0))):
        gy += at(*plus)
        gy -= at(*minus)
    return out


def _box_sum(a: np.ndarray, width: int, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Window sums of ``a`` ``(n, h + width - 1, w + width - 1)`` into ``out`` ``(n, h, w)``.

    Separable, rows then columns, through the buffer ``rows`` ``(n, h + width - 1, w)``.
    """
    h, w = out.shape[1:]
    np.copyto(rows, a[:, :, :w])
    for k in range(1, width):
        rows += a[:, :, k : k + w]
    np.copyto(out, rows[:, :h])
    for k in range(1, width):
        out += rows[:, k : k + h]
    return out


@functools.lru_cache(maxsize=256)
def _outside(h: int, w: int, dy: int, dx: int) -> np.ndarray:
    """0 where pixel ``(y + dy, x + dx)`` is in the image, infinity where it is not.

    Cached and shared: callers only read it.
    """
    ys, xs = np.arange(h) + dy, np.arange(w) + dx
    mask = np.zeros((h, w), dtype=np.float32)
    mask[(ys < 0) | (ys >= h), :] = np.inf
    mask[:, (xs < 0) | (xs >= w)] = np.inf
    return mask


class _Workspace:
    """Every array the distance of a block of image pairs needs, made once and reused.

    Dask's workers hand freed memory back to the system at once
    (``MALLOC_TRIM_THRESHOLD_``), so an array of this size made afresh costs
    page faults every time: allocating them per warp offset ran at a third of
    the speed on a worker. The zero borders of the padded arrays are never
    written, so they stay zero.
    """

    def __init__(self, n: int, side: int, warp: int, context: int):
        c, m = context, context + warp
        self.side, self.warp, self.context = side, warp, context
        f32 = np.float32
        self.image = np.zeros((n, side + 2, side + 2), dtype=f32)
        self.query = np.zeros((n, 2, side + 2 * c, side + 2 * c), dtype=f32)
        self.ref = np.zeros((n, 2, side + 2 * m, side + 2 * m), dtype=f32)
        self.diff = np.empty_like(self.query)
        self.sq = np.empty((n, side + 2 * c, side + 2 * c), dtype=f32)
        self.rows = np.empty((n, side + 2 * c, side), dtype=f32)
        self.cost = np.empty((n, side, side), dtype=f32)
        self.best = np.empty((n, side, side), dtype=f32)

    def gradients(self, rows: np.ndarray, into: np.ndarray, margin: int) -> None:
        """Sobel gradients of image rows (uint8 scaled by 1/255) into ``into``'s interior."""
        s = self.side
        scale = np.float32(255.0 if rows.dtype == np.uint8 else 1.0)
        np.divide(rows.reshape(-1, s, s), scale, out=self.image[:, 1:-1, 1:-1], casting="unsafe")
        _sobel_into(self.image, into[:, :, margin : margin + s, margin : margin + s])

    def distances(self, queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
        """IDM distances of paired rows: each query pixel's best context match, summed.

        The squared distance between two context vectors is a sum over the patch, so
        for each warp offset it is a box sum of the pixelwise squared gradient
        difference: 2 numbers a pixel instead of ``2 (2 context + 1)^2``. Offsets
        that leave the image are excluded, which equals clipping the reference
        position to it (the clipped offset is also in the range).
        """
        s, warp, c = self.side, self.warp, self.context
        self.gradients(queries, self.query, c)
        self.gradients(refs, self.ref, c + warp)
        self.best.fill(np.inf)
        for dy in range(-warp, warp + 1):
            for dx in range(-warp, warp + 1):
                y0, x0 = warp + dy, warp + dx
                moved = self.ref[:, :, y0 : y0 + s + 2 * c, x0 : x0 + s + 2 * c]
                np.subtract(self.query, moved, out=self.diff)
                np.square(self.diff, out=self.diff)
                np.add(self.diff[:, 0], self.diff[:, 1], out=self.sq)
                _box_sum(self.sq, 2 * c + 1, self.rows, self.cost)
                self.cost += _outside(s, s, dy, dx)
                np.minimum(self.best, self.cost, out=self.best)
        return self.best.sum(axis=(1, 2), dtype=np.float64)


_workspaces = threading.local()


def _workspace(n: int, side: int, warp: int, context: int) -> _Workspace:
    """This thread's workspace for blocks of ``n`` pairs (the last few sizes are kept)."""
    cache = getattr(_workspaces, "cache", None)
    if cache is None:
        cache = _workspaces.cache = {}
    key = (n, side, warp, context)
    if key not in cache:
        if len(cache) >= 4:
            cache.pop(next(iter(cache)))
        cache[key] = _Workspace(n, side, warp, context)
    return cache[key]


def idm_distances(
    queries,
    refs,
    warp: int = 2,
    context: int = 1,
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
    *,
    displacement_cost: float = 0.0,
    kernel: str = "compiled",
) -> np.ndarray:
    """IDM distance of each query image to the reference image paired with it.

    Parameters
    ----------
    queries, refs : array-like of shape (n_pairs, side * side)
        Paired images (uint8 pixels are scaled by 1/255).
    warp : int, default=2
        Warp range in pixels.
    context : int, default=1
        Half-width of the gradient context patch.
    block_pairs : int, default=64
        Pairs whose features the NumPy kernel holds at once; memory grows with it.
    displacement_cost : float, default=0.0
        Added to a pixel's match at offset ``(dx, dy)`` times ``dx^2 + dy^2``, before
        the minimum (compiled kernel only).
    kernel : {"compiled", "numpy"}, default="compiled"
        The numba kernel (:mod:`._idm_kernel`), or the NumPy one it is checked against.

    Returns
    -------
    ndarray of shape (n_pairs,)
        The distances, float64.

    Raises
    ------
    ValueError
        If the two arrays differ in shape or the parameters are invalid.
    """
    check_idm_params(warp, context, displacement_cost)
    if kernel not in ("compiled", "numpy"):
        raise ValueError(f"kernel must be 'compiled' or 'numpy', got {kernel!r}")
    queries, refs = np.asarray(queries), np.asarray(refs)
    if queries.shape != refs.shape:
        raise ValueError(f"queries {queries.shape} and refs {refs.shape} differ in shape")
    if queries.ndim == 3:
        queries, refs = queries.reshape(len(queries), -1), refs.reshape(len(refs), -1)
    side = image_side(queries.shape[1], "compare")
    if kernel == "compiled":
        pairs = np.arange(len(queries)).reshape(-1, 1)
        found = idm_candidate_distances(
            queries, refs, pairs, side, warp, context, displacement_cost
        )
        return found.reshape(-1)
    if displacement_cost:
        raise ValueError("the NumPy kernel has no displacement cost")
    out = np.empty(len(queries), dtype=np.float64)
    step = max(1, int(block_pairs))
    for start in range(0, len(queries), step):
        q, r = queries[start : start + step], refs[start : start + step]
        out[start : start + step] = _workspace(len(q), side, warp, context).distances(q, r)
    return out


def check_idm_params(warp: object, context: object, displacement_cost: object = 0.0) -> None:
    """Raise ``ValueError`` unless ``warp`` and ``context`` are non-negative ints and
    ``displacement_cost`` a finite number >= 0."""
    for name, value in (("warp", warp), ("context", context)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if (
        isinstance(displacement_cost, bool)
        or not isinstance(displacement_cost, (int, float, np.integer, np.floating))
        or not np.isfinite(displacement_cost)
        or displacement_cost < 0
    ):
        raise ValueError(f"displacement_cost must be a number >= 0, got {displacement_cost!r}")
