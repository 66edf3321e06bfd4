"""Image geometry: rows of flat square images, and the side they are square of.

Every module that reshapes rows into images (augmentation, the
transformers, the figures, the tour) asks here, so a non-square row is
refused with the same one-line error everywhere.
"""

from __future__ import annotations

import math

from ..errors import OptionError


def image_side(n_features: int, what: str = "shift") -> int:
    """The side of a square image of ``n_features`` pixels.

    Parameters
    ----------
    n_features : int
        Pixels per image (the width of a row of flat images).
    what : str, default="shift"
        What the caller does to the images, for the error message.

    Returns
    -------
    int
        The side ``s`` with ``s * s == n_features``.

    Raises
    ------
    OptionError
        If ``n_features`` is zero or not a perfect square.
    """
    side = math.isqrt(n_features)
    if side * side != n_features or side == 0:
        raise OptionError(f"cannot {what} images of {n_features} pixels: not a square image")
    return side
