"""The rest of the classification chapter (the 5-detector, precision and recall, ROC curves,
multiclass, error analysis, multilabel and multioutput), every fit a task on the cluster."""

from ._graph import TourConfig, TourGraph, build_tour
from ._parts import CAPTIONS, detector, run_tour

__all__ = ["CAPTIONS", "TourConfig", "TourGraph", "build_tour", "detector", "run_tour"]
