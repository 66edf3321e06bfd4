"""Figures drawn from plain arrays with matplotlib (no pyplot), and the process that draws them.

This package imports numpy alone (matplotlib when a figure is drawn), so a
:class:`DrawingProcess` is ready in half a second: a job's figures are drawn
there, on another core, while the job goes on. Image functions take flat rows
of square images, so 28x28 MNIST and 8x8 digits draw alike.
"""

from ._canvas import new_figure, png_bytes
from ._charts import (
    confusion_figure,
    error_figure,
    forecast_figure,
    precision_recall_figure,
    search_heatmap,
)
from ._curves import precision_recall_curve_figure, roc_figure, threshold_figure
from ._digits import (
    confused_pair_figure,
    denoise_figure,
    digits_grid,
    versions_figure,
    wrong_digits_figure,
)
from ._process import DrawingProcess, Request, draw_here

__all__ = [
    "DrawingProcess",
    "Request",
    "confused_pair_figure",
    "confusion_figure",
    "denoise_figure",
    "digits_grid",
    "draw_here",
    "error_figure",
    "forecast_figure",
    "new_figure",
    "png_bytes",
    "precision_recall_curve_figure",
    "precision_recall_figure",
    "roc_figure",
    "search_heatmap",
    "threshold_figure",
    "versions_figure",
    "wrong_digits_figure",
]
