"""Model selection on the cluster: the cross-validated search (one neighbour search per fold and
group; every candidate of a grid, or drawn at random), successive halving, grid files and the
presets shipped as such files, several metrics, a pipeline's preprocessing as tasks, and the
chosen model refit and evaluated on the test set."""

from ._candidates import search_candidates
from ._grid_file import DISTRIBUTIONS, ESTIMATORS, STRATEGIES, check_param_grid, is_distribution
from ._halving import FACTOR, HalvingResult, halving_search, plan_rounds
from ._presets import BOOK_BEST, PRESETS, Preset, get_preset, grid_file, preset_path
from ._refit import BOOK_MODELS, FinalModel, final_model, fit_report_models, report_models
from ._scoring import Metrics, check_metrics
from ._search import DEFAULT_GRID, SearchResult, cv_folds, neighbors_search
from ._spec import N_ITER, SearchSpec
from ._strategies import search

__all__ = [
    "BOOK_BEST",
    "BOOK_MODELS",
    "DEFAULT_GRID",
    "DISTRIBUTIONS",
    "ESTIMATORS",
    "FACTOR",
    "N_ITER",
    "PRESETS",
    "STRATEGIES",
    "FinalModel",
    "HalvingResult",
    "Metrics",
    "Preset",
    "SearchResult",
    "SearchSpec",
    "check_metrics",
    "check_param_grid",
    "cv_folds",
    "final_model",
    "fit_report_models",
    "get_preset",
    "grid_file",
    "halving_search",
    "is_distribution",
    "neighbors_search",
    "plan_rounds",
    "preset_path",
    "report_models",
    "search",
    "search_candidates",
]
