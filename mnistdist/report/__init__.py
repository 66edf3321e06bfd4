"""The report: what the test predictions say, its figures (what each shows, drawn by
:mod:`mnistdist.drawing`), the records of ``metrics.json`` and ``predictions.csv``, and
``report.html``."""

from ._evaluation import error_matrix, evaluate, most_confused_pair
from ._figures import (
    FigureRef,
    deskew_request,
    shift_panels,
    write_data_figures,
    write_figures,
    write_report_figures,
)
from ._html import render, write_report
from ._metrics import figure_records, predictions_csv, report_metrics

__all__ = [
    "FigureRef",
    "deskew_request",
    "error_matrix",
    "evaluate",
    "figure_records",
    "most_confused_pair",
    "predictions_csv",
    "render",
    "report_metrics",
    "shift_panels",
    "write_data_figures",
    "write_figures",
    "write_report",
    "write_report_figures",
]
