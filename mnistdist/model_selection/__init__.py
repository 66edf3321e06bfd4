"""Model selection on the cluster: the cross-validated grid search (one neighbour search per fold),
successive halving, the named presets, a pipeline's preprocessing as tasks, and the chosen model
refit and evaluated on the test set."""

from ._halving import FACTOR, HalvingResult, halving_search, plan_rounds
from ._presets import BOOK_BEST, PRESETS, STRATEGIES, Preset, get_preset
from ._refit import BOOK_MODELS, FinalModel, final_model, fit_report_models, report_models
from ._search import DEFAULT_GRID, SearchResult, cv_folds, neighbors_search

__all__ = [
    "BOOK_BEST",
    "BOOK_MODELS",
    "DEFAULT_GRID",
    "FACTOR",
    "PRESETS",
    "STRATEGIES",
    "FinalModel",
    "HalvingResult",
    "Preset",
    "SearchResult",
    "cv_folds",
    "final_model",
    "fit_report_models",
    "get_preset",
    "halving_search",
    "neighbors_search",
    "plan_rounds",
    "report_models",
]
