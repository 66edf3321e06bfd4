"""Elastic and small affine distortions of images: copies that need not be stored.

Simard, Steinkraus and Platt, "Best practices for convolutional neural networks applied
to visual document analysis" (ICDAR 2003): draw a displacement field of independent
uniform(-1, 1) values for each pixel's row and column, smooth it by a Gaussian of
``sigma`` pixels, scale it by ``alpha``, and read each new pixel at its displaced
position by bilinear interpolation. A small random rotation, scaling and shear about the
image's centre may be added to the same field (``affine``).

Copy ``c`` of image ``i`` under seed ``s`` is a function of ``(i, c, s)`` alone: its
random numbers come from a counter-based hash of those three and the value's position,
not from a generator's state. So a worker makes any copy of any image, in any order, and
gets the same pixels as every other worker; a model keeps the images and this recipe,
never the copies.

The field is drawn on the image plus a ``3 sigma`` margin and smoothed without padding,
so it is equally strong at the border as in the middle. Pixels read outside the image
are 0. Bilinear interpolation mixes at most four pixels with weights that sum to 1 or
less, so a copy stays within its image's range (0-255 for MNIST).
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np

from ..data import image_side

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: Counters of the affine parameters, past any field's.
_AFFINE = 1 << 40


@numba.njit(cache=True, nogil=True)
def _hash(x):
    """SplitMix64's finaliser: 64 well-mixed bits from a counter."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def _key(seed, image_id, copy):
    k = _hash(np.uint64(seed) * _GOLDEN + np.uint64(1))
    k = _hash(k ^ (np.uint64(image_id) * _GOLDEN))
    return _hash(k ^ (np.uint64(copy) * _GOLDEN + np.uint64(7)))


@numba.njit(cache=True, nogil=True)
def _uniform(key, counter):
    """A uniform value in [-1, 1) for ``counter`` under ``key``."""
    bits = _hash(key ^ (np.uint64(counter) * _GOLDEN))
    return np.float64(bits >> np.uint64(11)) * (2.0 / 9007199254740992.0) - 1.0


@numba.njit(cache=True, nogil=True)
def _smooth_field(key, channel, side, weights, raw, rows, out):
    """A uniform(-1, 1) field on the image plus a margin, smoothed by ``weights`` (a
    normalised Gaussian) along rows then columns, without padding, into ``out`` (flat,
    side x side). ``raw`` and ``rows`` are buffers of ``big * big`` and ``big * side``.

    Flat arrays read through views, so the inner loops are contiguous and vectorised.
    """
    width = len(weights)
    big = side + width - 1
    for i in range(big * big):
        raw[i] = _uniform(key, channel * big * big + i)
    rows[: big * side] = 0.0
    for y in range(big):
        target = rows[y * side : (y + 1) * side]
        for k in range(width):
            wk, src = weights[k], raw[y * big + k :]
            for x in range(side):
                target[x] += wk * src[x]
    out[: side * side] = 0.0
    for y in range(side):
        target = out[y * side : (y + 1) * side]
        for k in range(width):
            wk, src = weights[k], rows[(y + k) * side :]
            for x in range(side):
                target[x] += wk * src[x]


@numba.njit(cache=True, nogil=True, inline="always")
def _pixel(image, side, y, x):
    if y < 0 or y >= side or x < 0 or x >= side:
        return 0.0
    return image[y * side + x]


@numba.njit(cache=True, nogil=True)
def _bilinear(image, side, y, x):
    """``image`` (flat) read at ``(y, x)``, 0 outside."""
    below, left = math.floor(y), math.floor(x)
    y0, x0 = int(below), int(left)
    fy, fx = y - below, x - left
    top = (1.0 - fx) * _pixel(image, side, y0, x0) + fx * _pixel(image, side, y0, x0 + 1)
    bottom = (1.0 - fx) * _pixel(image, side, y0 + 1, x0) + fx * _pixel(image, side, y0 + 1, x0 + 1)
    return (1.0 - fy) * top + fy * bottom


@numba.njit(cache=True, nogil=True)
def _distort_block(images, ids, copy, seed, alpha, weights, affine, out):
    n, npix = images.shape
    side = round(math.sqrt(npix))
    big = side + len(weights) - 1
    raw, rows = np.empty(big * big), np.empty(big * side)
    u, v = np.empty(side * side), np.empty(side * side)
    centre = (side - 1) / 2.0
    for i in range(n):
        key = _key(seed, ids[i], copy)
        _smooth_field(key, 0, side, weights, raw, rows, u)
        _smooth_field(key, 1, side, weights, raw, rows, v)
        # The affine part: rotation, log-scale and shear, each uniform in +-affine[j].
        angle = math.radians(affine[0] * _uniform(key, _AFFINE))
        scale = math.exp(affine[1] * _uniform(key, _AFFINE + 1))
        shear = affine[2] * _uniform(key, _AFFINE + 2)
        c, s = math.cos(angle) / scale, math.sin(angle) / scale
        image, copied = images[i], out[i]
        for y in range(side):
            for x in range(side):
                cy, cx = y - centre, x - centre
                sy = centre + s * (cx + shear * cy) + c * cy + alpha * v[y * side + x]
                sx = centre + c * (cx + shear * cy) - s * cy + alpha * u[y * side + x]
                copied[y * side + x] = _bilinear(image, side, sy, sx)


def gaussian_weights(sigma: float) -> np.ndarray:
    """A normalised Gaussian of ``sigma`` pixels truncated at 3 sigma (at least 1 tap)."""
    r = max(0, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / max(sigma, 1e-12)) ** 2)
    return taps / taps.sum()


@dataclasses.dataclass(frozen=True)
class Distortion:
    """How a distorted copy is drawn: elastic ``alpha`` (pixels per unit of the smoothed
    field) and ``sigma`` (its smoothing, pixels); affine ranges ``rotate`` (degrees),
    ``scale`` (log of the factor) and ``shear``; and the ``seed``."""

    alpha: float = 34.0
    sigma: float = 4.0
    rotate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("alpha", "sigma", "rotate", "scale", "shear"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.alpha > 0 and self.sigma <= 0:
            raise ValueError("an elastic distortion (alpha > 0) needs sigma > 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed!r}")


def distort_images(images, image_ids, copy: int, distortion: Distortion) -> np.ndarray:
    """Copy number ``copy`` of each image: a function of (image id, copy, seed) alone.

    Parameters
    ----------
    images : ndarray of shape (n, side * side)
        Flat square images (any real dtype; integer dtypes are rounded back).
    image_ids : array-like of int, shape (n,)
        Each image's id (its row in the training set).
    copy : int
        Which copy (0, 1, ...).
    distortion : Distortion
        The recipe.

    Returns
    -------
    ndarray of shape (n, side * side)
        The copies, in ``images``' dtype.
    """
    images = np.asarray(images)
    if images.ndim != 2:
        raise ValueError(f"expected a 2-D block of flat images, got shape {images.shape}")
    image_side(images.shape[1])
    ids = np.asarray(image_ids, dtype=np.int64).reshape(-1)
    if len(ids) != len(images) or (ids < 0).any():
        raise ValueError("image_ids must be one non-negative id per image")
    if isinstance(copy, bool) or not isinstance(copy, (int, np.integer)) or copy < 0:
        raise ValueError(f"copy must be a non-negative integer, got {copy!r}")
    out = np.empty(images.shape, dtype=np.float64)
    weights = gaussian_weights(distortion.sigma) if distortion.alpha > 0 else np.ones(1)
    affine = np.array([distortion.rotate, distortion.scale, distortion.shear], dtype=np.float64)
    _distort_block(
        np.ascontiguousarray(images, dtype=np.float64),
        ids,
        int(copy),
        int(distortion.seed),
        float(distortion.alpha),
        weights,
        affine,
        out,
    )
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(images.dtype)
