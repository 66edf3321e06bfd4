"""A figure on its own Agg canvas, and its PNG bytes.

Figures are made without pyplot: drawing changes no process-wide matplotlib
state (the backend of a notebook that imports mnistdist stays its own), and no
figure needs closing.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """``pyplot.subplots`` without pyplot: a figure on its own Agg canvas, and its axes."""
    # Imported here, not with the module: matplotlib is a few tenths of a second that
    # only a figure needs.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as a PNG, 100 dpi, cropped to what it draws."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def square_side(n_pixels: int) -> int:
    """The side of a square image of ``n_pixels`` pixels; ValueError if there is none."""
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ValueError(f"{n_pixels} pixels are not a square image")
    return side
