"""What a cross-validated search searches, and how: one options object for every strategy."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from sklearn.base import BaseEstimator

from ..errors import OptionError
from ._grid_file import STRATEGIES

#: The book's grid.
DEFAULT_GRID = {"n_neighbors": [3, 4, 5], "weights": ["uniform", "distance"]}

#: scikit-learn's default: each round keeps a third of the candidates on three times the images.
FACTOR = 3

#: scikit-learn's default for ``RandomizedSearchCV(n_iter=...)``.
N_ITER = 10


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """A search's estimator, grid, folds, metrics and strategy, as scikit-learn's take them.

    Parameters
    ----------
    estimator : KNNClassifier or Pipeline ending in one, optional
        What to search (default: ``KNNClassifier()``).
    param_grid : dict or list of dicts, optional
        As in ``GridSearchCV`` (default: :data:`DEFAULT_GRID`, the book's); for
        ``strategy="random"``, ``RandomizedSearchCV``'s ``param_distributions``
        (lists, or scipy.stats distributions).
    cv : int, cross-validation generator or iterable of splits, default=5
        As in scikit-learn: an int means ``StratifiedKFold`` without shuffling.
        Successive halving splits each round anew: an int or a splitter.
    scoring : str, list of str or None
        scikit-learn scorer names. One name (or None: accuracy) gives ``cv_results``
        keys ``*_test_score``; a list gives ``*_test_<name>`` for each.
    refit : str, optional
        With several metrics, the one whose rank chooses the best candidate
        (default: the first).
    strategy : {"grid", "random", "halving"}, default="grid"
        Every candidate of the grid; ``n_iter`` candidates drawn as
        ``RandomizedSearchCV`` draws them; or successive halving as
        ``HalvingGridSearchCV``.
    n_iter : int, default=10
        Candidates a random search draws.
    random_state : int or None, default=0
        Seeds a random search's draws (``ParameterSampler``'s ``random_state``)
        and which images each round of successive halving holds.
    factor, min_resources, aggressive_elimination
        Successive halving's, as in ``HalvingGridSearchCV``.
    """

    estimator: BaseEstimator | None = None
    param_grid: Mapping | Sequence[Mapping] | None = None
    cv: object = 5
    scoring: str | Sequence[str] | None = None
    refit: str | None = None
    strategy: str = "grid"
    n_iter: int = N_ITER
    random_state: int | None = 0
    factor: float = FACTOR
    min_resources: object = "exhaust"
    aggressive_elimination: bool = False

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise OptionError(
                f"unknown strategy {self.strategy!r}: choose from {', '.join(STRATEGIES)}"
            )
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise OptionError(f"n_iter must be a positive integer, got {self.n_iter!r}")

    @property
    def grid(self) -> Mapping | Sequence[Mapping]:
        """The grid searched: ``param_grid``, or the book's."""
        return DEFAULT_GRID if self.param_grid is None else self.param_grid
