"""Scoring candidates from their neighbours: the metrics, one task per group and fold, and the
scores kept in the journal.

Candidates that share a neighbour search (a *group*) differ only in the
classifier's ``n_neighbors`` and ``weights``. Each fold of a group is scored
by one task, ``score-fold-<f>``, which votes every distinct
``(n_neighbors, weights)`` of the group with scikit-learn's own
``KNeighborsClassifier(metric="precomputed")`` over the fold's neighbours and
scores the votes with every metric: what reaches the scheduler grows with the
groups and folds, never with the candidates. The metrics are scikit-learn's
scorers by name (``accuracy``, ``balanced_accuracy``, ``f1_macro``, ...),
called as ``GridSearchCV`` calls them, so the scores are scikit-learn's.

A group's scores are kept in the run's journal (:class:`ScoreStore`), with
the number of neighbours they were found from, so a search extended with new
candidates scores only those.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import dask
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import EfficiencyWarning
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.neighbors import KNeighborsClassifier

from ..errors import OptionError
from ..outputs import Journal
from ..runtime import compute_each

#: The metric of a search that names none: a classifier's own ``score``, accuracy.
DEFAULT_SCORING = "accuracy"


@dataclasses.dataclass(frozen=True)
class Metrics:
    """What a search scores, and how ``cv_results`` names it.

    ``scorers`` are scikit-learn's scorer names. ``keys`` name them in
    ``cv_results``: ``("score",)`` for one metric given as a string (as
    ``GridSearchCV(scoring="accuracy")`` names it), the scorer names otherwise.
    ``refit`` is the key whose rank chooses the best candidate.
    """

    scorers: tuple[str, ...]
    keys: tuple[str, ...]
    refit: str

    @property
    def multimetric(self) -> bool:
        return self.keys != ("score",)


def check_metrics(
    scoring: str | Sequence[str] | None = None, refit: str | None = None, y=None
) -> Metrics:
    """The metrics ``scoring`` asks for, checked (on the labels ``y``, when given).

    Parameters
    ----------
    scoring : str, list of str or None
        A scorer name (one metric, ``cv_results`` keys ``*_test_score``), a list of
        them (``*_test_<name>``), or None for accuracy.
    refit : str, optional
        The metric that chooses the best candidate (default: the first).
    y : array-like, optional
        The labels: each metric is tried on them, so one that cannot score them
        (a binary metric on ten classes) is refused before any work.

    Raises
    ------
    OptionError
        For an unknown metric, a repeated one, a ``refit`` not among them, or one
        that cannot score ``y``.
    """
    names = (DEFAULT_SCORING,) if scoring is None else scoring
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise OptionError("scoring names no metric")
    known = set(get_scorer_names())
    for name in names:
        if name not in known:
            raise OptionError(
                f"unknown metric {name!r}: expected a scikit-learn scorer name such as "
                "accuracy, balanced_accuracy, f1_macro (sklearn.metrics.get_scorer_names())"
            )
    if len(set(names)) != len(names):
        raise OptionError(f"scoring names a metric twice: {', '.join(names)}")
    keys = ("score",) if isinstance(scoring, str) or scoring is None else names
    chosen = keys[0] if refit is None else refit
    if refit is not None and refit not in names:
        raise OptionError(f"refit {refit!r} is not among the metrics: {', '.join(names)}")
    if keys == ("score",):
        chosen = "score"
    if y is not None:
        _try_metrics(names, np.asarray(y))
    return Metrics(names, keys, chosen)


def _try_metrics(names: tuple[str, ...], y: np.ndarray) -> None:
    """Score perfect votes on ``y`` with each metric: a metric that cannot is refused now."""
    classes = np.unique(y)
    proba = (y[:, None] == classes[None, :]).astype(float)
    votes = _Votes(classes, lambda: y, lambda: proba)
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                get_scorer(name)(votes, np.zeros((len(y), 1)), y)
        except (ValueError, TypeError, AttributeError) as exc:
            text = " ".join(str(exc).split())
            raise OptionError(f"metric {name!r} cannot score these labels: {text}") from None


class _Votes(ClassifierMixin, BaseEstimator):
    """A classifier whose votes are already cast: a scorer reads them as it reads a model's.

    ``labels`` and ``proba`` are called (once) for what ``predict`` and
    ``predict_proba`` return, whatever rows they are given.
    """

    def __init__(self, classes, labels, proba):
        self.classes = classes
        self.labels = labels
        self.proba = proba

    @property
    def classes_(self):
        return self.classes

    def predict(self, X):
        return self._once("labels")

    def predict_proba(self, X):
        return self._once("proba")

    def _once(self, name: str):
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            cache[name] = getattr(self, name)()
        return cache[name]


def score_fold(
    dist: np.ndarray,
    ids: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    y: np.ndarray,
    params: Sequence[tuple[int, str]],
    scorers: Sequence[str],
) -> np.ndarray:
    """Every ``(n_neighbors, weights)`` of a group scored on one fold, by every metric.

    Parameters
    ----------
    dist, ids : ndarray of shape (n_test, k)
        Each validation row's neighbours (nearest first) and their rows in ``y``,
        rows in the order of ``np.sort(test)``.
    train, test : ndarray
        The fold's training and validation rows.
    y : ndarray
        The labels of every row searched.
    params : sequence of (int, str)
        The ``(n_neighbors, weights)`` to score, ``n_neighbors <= k``.
    scorers : sequence of str
        scikit-learn scorer names.

    Returns
    -------
    ndarray of shape (len(params), len(scorers))
    """
    train = np.asarray(train)
    where = np.full(len(y), -1, dtype=np.int64)
    where[train] = np.arange(len(train))
    n_test, k = ids.shape
    graph = sp.csr_matrix(
        (dist.ravel(), where[ids].ravel(), np.arange(0, n_test * k + 1, k)),
        shape=(n_test, len(train)),
    )
    # The fit only needs the training rows' labels and count: each row's own column at 0.
    own = sp.csr_matrix(
        (np.zeros(len(train)), np.arange(len(train)), np.arange(len(train) + 1)),
        shape=(len(train), len(train)),
    )
    knn = KNeighborsClassifier(metric="precomputed").fit(own, y[train])
    y_true = y[np.sort(test)]
    found = [get_scorer(name) for name in scorers]
    out = np.empty((len(params), len(found)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EfficiencyWarning)  # scikit-learn checks the sort
        for i, (n_neighbors, weights) in enumerate(params):
            knn.set_params(n_neighbors=int(n_neighbors), weights=weights)
            votes = _Votes(
                knn.classes_, lambda: knn.predict(graph), lambda: knn.predict_proba(graph)
            )
            out[i] = [scorer(votes, graph, y_true) for scorer in found]
    return out


def param_key(n_neighbors, weights) -> str:
    """How a group's journal row names one ``(n_neighbors, weights)``."""
    return f"{int(n_neighbors)}:{weights}"


class ScoreStore:
    """Groups' scores in a run's journal: by metric, each ``(n_neighbors, weights)``'s fold scores.

    A row is keyed by the group's identity (its data, folds and every
    parameter but ``n_neighbors`` and ``weights``) and the metric, and records
    how many neighbours the scores were found from: scores found from fewer
    neighbours than a search now needs are not reused, so an extended search
    scores exactly as a fresh one. Rows read back are not counted in the
    journal's ``loaded``, which counts neighbour searches.
    """

    def __init__(self, journal: Journal | None):
        self.journal = journal

    def load(self, identity: str, metric: str) -> tuple[dict[str, np.ndarray], int | None]:
        """The stored fold scores by :func:`param_key`, and the neighbours they came from."""
        if self.journal is None:
            return {}, None
        before = self.journal.loaded
        row = self.journal.get(f"scores-{metric}-{identity}")
        self.journal.loaded = before
        if row is None:
            return {}, None
        values, names = row
        k = int(str(names[0]).removeprefix("k="))
        return {str(name): values[i] for i, name in enumerate(names[1:])}, k

    def save(self, identity: str, metric: str, k: int, scores: dict[str, np.ndarray]) -> None:
        """Keep a group's fold scores (every ``(n_neighbors, weights)`` of it so far)."""
        if self.journal is None or not scores:
            return
        names = np.array([f"k={k}", *scores])
        values = np.array([scores[name] for name in scores], dtype=np.float64)
        self.journal.put(f"scores-{metric}-{identity}", values, names, label=f"scores {metric}")


def score_folds(
    graph: sp.csr_matrix,
    y: np.ndarray,
    folds,
    params: Sequence[tuple[int, str]],
    scorers: Sequence[str],
    *,
    label: str = "",
    task_prefix: str = "",
) -> np.ndarray:
    """``params`` scored on every fold from a group's neighbour graph: a task per fold.

    Each task (``score-fold-<f>``) gets its fold's validation rows of the graph,
    cut to the most neighbours any of ``params`` needs.

    Returns
    -------
    ndarray of shape (len(params), len(scorers), n_folds)
    """
    n = graph.shape[0]
    width = graph.indptr[1] - graph.indptr[0]
    k = max(int(n_neighbors) for n_neighbors, _ in params)
    dist = graph.data.reshape(n, width)[:, :k]
    ids = graph.indices.reshape(n, width)[:, :k]
    labels = dask.delayed(y, name=f"{task_prefix}labels-{tokenize(y)}", pure=True)
    lazy = {}
    for f, (train, test) in enumerate(folds):
        rows = np.sort(test)
        args = (dist[rows], ids[rows], np.asarray(train), np.asarray(test))
        name = f"{task_prefix}score-fold-{f}{label}-{tokenize(*args, y, params, scorers)}"
        task = dask.delayed(score_fold, pure=True)(
            *args, labels, list(params), list(scorers), dask_key_name=name
        )
        lazy[str(f)] = (task,)
    done = compute_each(lazy, label=f"scores of {len(folds)} folds{label}")
    return np.stack([done[str(f)][0] for f in range(len(folds))], axis=-1)
