"""Shift augmentation: the training set plus copies moved one pixel each way.

For integer shifts, moving pixels is slicing with zero fill: exactly what
``scipy.ndimage.shift(image, [dy, dx], cval=0, mode="constant")`` computes
(the book's way), without its spline filter, and for a whole block at once.
"""

from __future__ import annotations

import logging
import math

import dask.array as da
import numpy as np
import scipy.ndimage
from dask.base import tokenize

from .errors import OptionError

log = logging.getLogger(__name__)

#: The book's four one-pixel shifts as (dx, dy), in the book's order.
FOUR_SHIFTS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "down": (0, 1), "up": (0, -1)}


def image_side(n_features: int) -> int:
    """The side of a square image of ``n_features`` pixels; non-square sizes are refused."""
    side = math.isqrt(n_features)
    if side * side != n_features or side == 0:
        raise OptionError(f"cannot shift images of {n_features} pixels: not a square image")
    return side


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift a block of flat square images by ``dx`` columns and ``dy`` rows, filling with 0.

    ``images`` has shape ``(n, side * side)``; positive ``dx`` moves content
    right, positive ``dy`` down. The dtype is kept.
    """
    images = np.asarray(images)
    if images.ndim != 2:
        raise ValueError(f"expected a 2-D block of flat images, got shape {images.shape}")
    side = image_side(images.shape[1])
    if dx != int(dx) or dy != int(dy):
        raise ValueError(f"shift_images takes integer shifts, got dx={dx}, dy={dy}")
    dx, dy = int(dx), int(dy)
    square = images.reshape(-1, side, side)
    out = np.zeros_like(square)
    if abs(dx) < side and abs(dy) < side:
        src_rows = slice(max(0, -dy), side - max(0, dy))
        dst_rows = slice(max(0, dy), side - max(0, -dy))
        src_cols = slice(max(0, -dx), side - max(0, dx))
        dst_cols = slice(max(0, dx), side - max(0, -dx))
        out[:, dst_rows, dst_cols] = square[:, src_rows, src_cols]
    return out.reshape(images.shape)


def shift_image(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Shift one square image (flat or 2-D) by ``dx`` columns and ``dy`` rows.

    Integer shifts move pixels exactly (zero fill); others fall back to
    ``scipy.ndimage.shift`` as in the book. The result is flat, like the input
    rows of the datasets, and keeps the input's dtype.
    """
    image = np.asarray(image)
    side = image_side(image.size)
    if dx == int(dx) and dy == int(dy):
        return shift_images(image.reshape(1, -1), int(dx), int(dy))[0]
    moved = scipy.ndimage.shift(image.reshape(side, side), [dy, dx], cval=0, mode="constant")
    return moved.reshape(-1)


def augment_shifts(
    X: da.Array,
    y: np.ndarray,
    shifts: dict[str, tuple[int, int]] | None = None,
) -> tuple[da.Array, np.ndarray]:
    """The training set followed by one shifted copy per shift, lazily.

    Returns ``(X_aug, y_aug)`` with ``(1 + len(shifts)) * n`` rows: the
    originals, then all images shifted by the first shift, and so on. Every
    copy is made by tasks on the workers, named ``shift-augment-<direction>``
    in the dashboard, one per chunk of ``X``.
    """
    shifts = FOUR_SHIFTS if shifts is None else shifts
    image_side(X.shape[1])
    copies = [X]
    for direction, (dx, dy) in shifts.items():
        name = f"shift-augment-{direction}-{tokenize(X, dx, dy)}"
        copies.append(X.map_blocks(shift_images, dx, dy, dtype=X.dtype, name=name))
    y_aug = np.tile(np.asarray(y), len(copies))
    log.info("augmented %d images with %d shifts: %d rows", X.shape[0], len(shifts), X.shape[0] * len(copies))
    return da.concatenate(copies, axis=0), y_aug
