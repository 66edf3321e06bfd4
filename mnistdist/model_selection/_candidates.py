"""A search's candidates: drawn from its grid as scikit-learn draws them, then grouped by the
neighbour search they share.

The candidates of a grid are ``ParameterGrid``'s, in its order; those of a
random search are ``ParameterSampler``'s with the same ``n_iter`` and
``random_state`` (as ``RandomizedSearchCV`` draws them). Candidates that
differ only in the classifier's ``n_neighbors`` and ``weights`` form a
:class:`Group`: they are scored from one neighbour search per fold, so
however many candidates a search has, what reaches the scheduler grows with
its groups (its distinct preprocessing and re-ranking settings), not with it.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np
from dask.base import tokenize
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid, ParameterSampler

from ..errors import OptionError
from ..neighbors import KNNClassifier, check_knn_params
from ._grid_file import check_param_grid
from ._pipeline_tasks import KNN_PARAMS, split_pipeline
from ._scoring import param_key
from ._spec import SearchSpec

log = logging.getLogger(__name__)


def _plain(value):
    """A drawn value as Python's own scalar (``np.float64(0.5)`` as ``0.5``), others as they are."""
    return value.item() if isinstance(value, np.generic) else value


def search_candidates(spec: SearchSpec) -> list[dict]:
    """The candidates of ``spec``, each checked against its estimator.

    A grid's are ``ParameterGrid``'s, in its order; a random search's are
    ``ParameterSampler(param_grid, n_iter, random_state=random_state)``'s,
    drawn values as Python scalars. A random search of lists alone that asks
    for more candidates than the grid has gets the whole grid, as in
    scikit-learn (a line in the log says so).

    Raises
    ------
    OptionError
        If the estimator does not end in a KNN, or the grid names an unknown
        parameter, is empty or holds a value the estimator refuses.
    """
    estimator = KNNClassifier() if spec.estimator is None else spec.estimator
    split_pipeline(estimator)  # a pipeline that does not end in a KNN fails here, first
    random = spec.strategy == "random"
    grids = check_param_grid(estimator, spec.grid, random=random)
    if not random:
        return list(ParameterGrid(grids))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        drawn = list(ParameterSampler(grids, spec.n_iter, random_state=spec.random_state))
    for warning in caught:
        log.info("random search: %s", warning.message)
    return [{name: _plain(value) for name, value in c.items()} for c in drawn]


@dataclasses.dataclass
class Group:
    """Candidates that differ only in the classifier's parameters: they share neighbors."""

    rest: dict  # the candidates' other parameters (preprocessing), all equal
    members: list[int]  # indices into the candidates
    knn_params: list[dict]  # each member's n_neighbors and weights
    token: str = ""  # ``rest``'s token

    @property
    def label(self) -> str:
        """What ends the group's task names: ``-group-`` and its settings' token, so that a
        search extended with other groups names (and journals) this one's work alike."""
        return f"-group-{self.token[:8]}" if self.rest else ""

    @property
    def k(self) -> int:
        return max(p["n_neighbors"] for p in self.knn_params)

    def distinct(self) -> list[tuple[int, str]]:
        """The members' ``(n_neighbors, weights)``, each once, in the order they come."""
        return list(dict.fromkeys((p["n_neighbors"], p["weights"]) for p in self.knn_params))

    def member_keys(self) -> list[str]:
        """Each member's ``(n_neighbors, weights)`` as the journal names it."""
        return [param_key(p["n_neighbors"], p["weights"]) for p in self.knn_params]


def group_candidates(candidates: list[dict], estimator: BaseEstimator) -> list[Group]:
    """Candidates grouped by everything but ``weights`` and ``n_neighbors``, in grid order.

    Raises
    ------
    OptionError
        If a candidate's ``n_neighbors`` or ``weights`` is invalid.
    """
    _, prefix, knn = split_pipeline(estimator)
    base = knn.get_params(deep=False)
    knn_names = {prefix + p for p in KNN_PARAMS}
    groups: dict[str, Group] = {}
    for i, cand in enumerate(candidates):
        knn_params = {p: cand.get(prefix + p, base[p]) for p in KNN_PARAMS}
        try:
            check_knn_params(**knn_params)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        rest = {n: v for n, v in cand.items() if n not in knn_names}
        key = tokenize(sorted(rest.items(), key=lambda kv: kv[0]))
        group = groups.setdefault(key, Group(rest, [], [], key))
        group.members.append(i)
        group.knn_params.append(knn_params)
    return list(groups.values())


def _described(value) -> str:
    """A parameter's value as the journal's identity of a group spells it: a step by its class."""
    if hasattr(value, "get_params"):
        return f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, list) and all(isinstance(s, tuple) and len(s) == 2 for s in value):
        return repr([(name, _described(step)) for name, step in value])  # a pipeline's steps
    return repr(value)


def group_identity(estimator: BaseEstimator, group: Group, *, X_name: str, y, folds, rows) -> str:
    """What a group's scores depend on, but ``n_neighbors``, ``weights`` and the neighbours' count.

    The images (their Dask name, which encodes the data files), the rows and
    labels searched, the folds, and every parameter of the estimator with the
    group's set: two runs with equal identities score a ``(n_neighbors,
    weights)`` alike when they find as many neighbours.
    """
    _, prefix, _ = split_pipeline(estimator)
    params = clone(estimator).set_params(**group.rest).get_params(deep=True)
    skip = {prefix + p for p in KNN_PARAMS}
    described = sorted((name, _described(v)) for name, v in params.items() if name not in skip)
    folds = [(np.asarray(train), np.asarray(test)) for train, test in folds]
    return tokenize("mnistdist-scores-1", X_name, rows, np.asarray(y), folds, described)
