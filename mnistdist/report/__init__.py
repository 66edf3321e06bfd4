"""The report: what the test predictions say, the figures (matplotlib, no pyplot), the records
of ``metrics.json`` and ``predictions.csv``, and ``report.html``."""

from ._evaluation import error_matrix, evaluate, most_confused_pair
from ._figures import (
    FigureRef,
    confused_pair_figure,
    confusion_figure,
    digits_grid,
    error_figure,
    forecast_figure,
    new_figure,
    save,
    search_heatmap,
    shifts_figure,
    versions_figure,
    write_report_figures,
)
from ._html import render, write_report
from ._metrics import figure_records, predictions_csv, report_metrics

__all__ = [
    "FigureRef",
    "confused_pair_figure",
    "confusion_figure",
    "digits_grid",
    "error_figure",
    "error_matrix",
    "evaluate",
    "figure_records",
    "forecast_figure",
    "most_confused_pair",
    "new_figure",
    "predictions_csv",
    "render",
    "report_metrics",
    "save",
    "search_heatmap",
    "shifts_figure",
    "versions_figure",
    "write_report",
    "write_report_figures",
]
