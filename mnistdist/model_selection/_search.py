"""Cross-validated search of a KNN pipeline on the cluster, one neighbour search per fold.

The expensive part of KNN is finding neighbours, and it does not depend on
``weights`` or on ``n_neighbors`` up to the largest in the grid. So the search
runs in two stages:

1. **Neighbours** - for every fold (and every distinct preprocessing setting,
   if the pipeline has some in the grid), the validation rows' ``k_max``
   nearest training-fold rows are found once, by tasks named
   ``neighbors-fold-<f>`` on the workers (:mod:`._group_neighbors`).
2. **Scoring** - one task a fold, ``score-fold-<f>``, votes every distinct
   ``weights x n_neighbors`` of the group with scikit-learn's own
   ``KNeighborsClassifier(metric="precomputed")`` over those neighbours and
   scores the votes with every metric asked for (:mod:`._scoring`).

Scores therefore equal scikit-learn's ``GridSearchCV`` (or, with
``strategy="random"``, ``RandomizedSearchCV``) on the same folds, while a grid
of six candidates, or of five thousand, costs barely more than one.

A pipeline with an :class:`~mnistdist.preprocessing.Augment` step searches each
fold's validation rows among the training rows *and their copies*; the
copies of validation rows are masked out with the rows themselves, so no
version of an image is ever on both sides of a split. A copy found as a
neighbour stands for its image in the graph.

With a journal, each group's scores are kept as they are found: a search
extended with new candidates (a larger grid, a larger ``n_iter``) computes
only theirs, and gives exactly what a fresh search of them all gives.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import time

import dask.array as da
import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import check_cv

from ..errors import OptionError
from ..neighbors import KNNClassifier, candidates_needed
from ..outputs import Journal
from ..runtime import current_eta, estimating
from ._candidates import Group, group_candidates, group_identity, search_candidates
from ._group_neighbors import group_neighbors
from ._pipeline_tasks import split_pipeline
from ._plan import plan_groups
from ._scoring import Metrics, ScoreStore, check_metrics, param_key, score_folds
from ._spec import DEFAULT_GRID, SearchSpec

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_GRID"]  # re-exported: the book's grid is a search's default

#: One metric, accuracy: ``cv_results``' ``*_test_score``, as today's GridSearchCV default.
ACCURACY = Metrics(("accuracy",), ("score",), "score")


def json_params(params: dict) -> dict:
    """A candidate's parameters as JSON holds them: numbers, strings and lists as they are,
    anything else (an estimator set in the grid) as its repr."""
    plain = (str, int, float, bool, type(None), list)
    return {name: v if isinstance(v, plain) else repr(v) for name, v in params.items()}


@dataclasses.dataclass
class SearchResult:
    """What a search found, in scikit-learn's ``cv_results_`` layout plus timings."""

    cv_results: dict
    best_index: int
    folds: list[tuple[np.ndarray, np.ndarray]]
    n_neighbor_searches: int
    seconds: dict[str, float]
    #: Of the neighbour searches, how many were read back from a journal.
    n_loaded: int = 0
    #: Groups of candidates, each scored from one neighbor graph (re-ranked, if the
    #: classifier re-ranks); groups that differ only in the re-ranking share a search.
    n_groups: int = 1
    #: What was scored, and which metric chose ``best_index``.
    metrics: Metrics = ACCURACY
    #: ``grid``, ``random`` or ``halving``.
    strategy: str = "grid"
    #: Candidates whose scores a journal gave back (an extended search's earlier ones).
    n_reused: int = 0
    #: ``(kept, needed)`` for each group whose journal kept fewer neighbours than it needed.
    more_neighbors: list = dataclasses.field(default_factory=list)

    @property
    def best_params(self) -> dict:
        return self.cv_results["params"][self.best_index]

    @property
    def best_score(self) -> float:
        """The best candidate's mean score by the metric that chose it."""
        return float(self.cv_results[f"mean_test_{self.metrics.refit}"][self.best_index])

    @property
    def queries_searched(self) -> int:
        """Query rows over all the neighbor graphs scored: every row once per group."""
        return sum(len(test) for _, test in self.folds) * self.n_groups

    def candidate_scores(self) -> tuple[list[dict], np.ndarray, np.ndarray]:
        """Each candidate's parameters, mean and std of its validation scores (``refit``'s)."""
        cv, key = self.cv_results, self.metrics.refit
        return cv["params"], np.asarray(cv[f"mean_test_{key}"]), np.asarray(cv[f"std_test_{key}"])

    def summary(self) -> dict:
        """The numbers a report needs, JSON-ready (a parameter that is an estimator, a step
        set in the grid, as its repr); ``mean_test_score`` and ``std_test_score`` are the
        choosing metric's, and with several metrics ``scores`` holds each one's."""
        params, mean, std = self.candidate_scores()
        summary = {
            "strategy": self.strategy,
            "scoring": list(self.metrics.scorers),
            "refit": self.metrics.refit,
            "best_index": self.best_index,
            "best_params": json_params(self.best_params),
            "best_score": self.best_score,
            "n_candidates": len(self.cv_results["params"]),
            "n_candidates_reused": self.n_reused,
            "n_splits": len(self.folds),
            "n_neighbor_searches": self.n_neighbor_searches,
            "n_neighbor_searches_loaded": self.n_loaded,
            "n_neighbor_searches_computed": self.n_neighbor_searches - self.n_loaded,
            "mean_test_score": [float(s) for s in mean],
            "std_test_score": [float(s) for s in std],
            "params": [json_params(p) for p in params],
            "seconds": self.seconds,
        }
        if self.metrics.multimetric:
            summary["scores"] = {
                key: {
                    stat: [float(s) for s in self.cv_results[f"{stat}_test_{key}"]]
                    for stat in ("mean", "std")
                }
                for key in self.metrics.keys
            }
        return summary

    def write_csv(self, path) -> None:
        """``cv_results.csv``: one row per candidate, params and scores."""
        from ..outputs import atomic_path

        keys = [k for k in self.cv_results if k != "params"]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["params", *keys])
            for i, params in enumerate(self.cv_results["params"]):
                writer.writerow([repr(params), *(self.cv_results[k][i] for k in keys)])


def cv_folds(cv, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, test)`` row indices of each fold, as ``GridSearchCV`` would split.

    Parameters
    ----------
    cv : int, cross-validation generator, iterable of splits or None
        As in scikit-learn; an int (None: 5) means ``StratifiedKFold``
        without shuffling.
    y : ndarray of shape (n_samples,)
        The labels.

    Returns
    -------
    list of (ndarray, ndarray)
        Training and validation row indices of each fold.

    Raises
    ------
    OptionError
        If an int ``cv`` is below 2 or above the size of the smallest class.
    """
    if isinstance(cv, int) or cv is None:
        n_splits = 5 if cv is None else cv
        if isinstance(n_splits, bool) or n_splits < 2:
            raise OptionError(f"cv must be at least 2, got {cv}")
        smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
        if n_splits > smallest:
            raise OptionError(
                f"cv={n_splits} is more folds than the {smallest} samples of the smallest class"
            )
    splitter = check_cv(cv, y, classifier=True)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(np.zeros((len(y), 1)), y)]


@dataclasses.dataclass
class _Scoring:
    """What every group of one call to :func:`score_candidates` is scored with."""

    X: da.Array
    y: np.ndarray
    folds: list
    metrics: Metrics
    store: ScoreStore
    journal: Journal | None
    rows: np.ndarray | None
    task_prefix: str
    shared: dict


def _group_scores(estimator, group: Group, label: str, run: _Scoring) -> tuple[np.ndarray, dict]:
    """A group's members' scores, shape (n_metrics, n_members, n_folds), and what it took.

    Scores the journal keeps for the group (found from as many neighbours as
    it needs now) are read back; the neighbours are searched, and the other
    ``(n_neighbors, weights)`` scored, only if some are missing.
    """
    scorers = run.metrics.scorers
    identity = group_identity(
        estimator, group, X_name=run.X.name, y=run.y, folds=run.folds, rows=run.rows
    )
    _, _, knn = split_pipeline(clone(estimator).set_params(**group.rest))
    k = candidates_needed(knn, group.k)
    stored, kept = {}, None
    for scorer in scorers:
        scores, found_k = run.store.load(identity, scorer)
        kept = found_k if found_k is not None else kept
        stored[scorer] = scores if found_k == k else {}
    had = {key for key in stored[scorers[0]] if all(key in stored[s] for s in scorers)}
    todo = [p for p in group.distinct() if param_key(*p) not in had]
    took = {"searches": 0, "loaded": 0, "rerank": 0.0, "neighbors": 0.0, "scoring": 0.0}
    took["more"] = (kept, k) if kept is not None and kept < k else None
    if took["more"]:
        log.info("%sgroup%s: the journal kept %d neighbours a row, %d are needed", run.task_prefix,
                 label, kept, k)  # fmt: skip
    eta = current_eta()
    if todo:
        t0 = time.perf_counter()
        graph, found = group_neighbors(
            estimator, run.X, run.y, group, run.folds, label=label, journal=run.journal,
            shared=run.shared, rows=run.rows, task_prefix=run.task_prefix, eta=eta,
        )  # fmt: skip
        t1 = time.perf_counter()
        with eta.step(f"{run.task_prefix}scores{label}") if eta else contextlib.nullcontext():
            new = score_folds(
                graph, run.y, run.folds, todo, scorers, label=label, task_prefix=run.task_prefix
            )
        took.update(found, neighbors=t1 - t0 - found["rerank"], scoring=time.perf_counter() - t1)
        for j, scorer in enumerate(scorers):
            stored[scorer].update({param_key(*p): new[i, j] for i, p in enumerate(todo)})
            run.store.save(identity, scorer, k, stored[scorer])
    elif eta is not None:  # every score read back: nothing of the group runs
        for kind in ("neighbors", "rerank", "scores"):
            eta.skip(f"{run.task_prefix}{kind}{label}")
    keys = group.member_keys()
    took["reused"] = sum(key in had for key in keys)
    return np.array([[stored[s][key] for key in keys] for s in scorers]), took


def _check_k_max(groups: list[Group], folds) -> None:
    smallest_train = min(len(tr) for tr, _ in folds)
    k_max = max(group.k for group in groups)
    if k_max > smallest_train:
        raise OptionError(
            f"n_neighbors={k_max} is larger than the smallest training fold ({smallest_train} rows)"
        )


@dataclasses.dataclass
class CandidateScores:
    """Every candidate's validation scores on every fold, from :func:`score_candidates`."""

    #: By ``cv_results`` key (:attr:`Metrics.keys`): an (n_candidates, n_folds) array.
    split_scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    #: Fold neighbor searches done (computed or read back); groups may share them.
    n_neighbor_searches: int
    n_loaded: int
    #: Groups of candidates, each scored from one neighbor graph.
    n_groups: int
    #: Candidates whose scores the journal kept.
    n_reused: int = 0
    #: ``(kept, needed)`` neighbours of each group the journal kept too few of.
    more_neighbors: list = dataclasses.field(default_factory=list)


def score_candidates(
    estimator: BaseEstimator,
    X: da.Array,
    y: np.ndarray,
    candidates: list[dict],
    folds,
    *,
    metrics: Metrics = ACCURACY,
    journal: Journal | None = None,
    rows: np.ndarray | None = None,
    task_prefix: str = "",
    shared: dict | None = None,
) -> CandidateScores:
    """Score candidates on folds: one neighbor search per fold and preprocessing group.

    The engine of :func:`neighbors_search`, open to searches that score
    several candidate lists on several row subsets (successive halving).

    Parameters
    ----------
    estimator : KNNClassifier or Pipeline ending in one
        What the candidates' parameters are set on.
    X : dask.array.Array of shape (n_samples, n_features)
        All the image rows.
    y : ndarray
        The labels of the rows searched: of ``rows`` when given, else of ``X``.
    candidates : list of dict
        Parameter settings, each checked against ``estimator`` already.
    folds : list of (ndarray, ndarray)
        Training and validation positions within the rows searched.
    metrics : Metrics, default=accuracy
        What to score (:func:`check_metrics`).
    journal : Journal, optional
        Saves and reads back each fold's neighbors, and each group's scores.
    rows : ndarray, optional
        Sorted row indices of ``X`` to search (default: every row).
    task_prefix : str, default=""
        Starts every task name, so the dashboard shows which search a task is for.
    shared : dict, optional
        What groups share (images transformed by stateless steps, neighbors);
        pass the same dict to several calls on the same ``X`` to transform the
        images once.

    Returns
    -------
    CandidateScores

    Raises
    ------
    OptionError
        If a KNN parameter is invalid or ``n_neighbors`` exceeds a training fold.
    """
    groups = group_candidates(candidates, estimator)
    _check_k_max(groups, folds)
    eta = current_eta()
    if eta is not None:
        plan_groups(
            eta, estimator, groups, prefix=task_prefix, n_rows=len(y), n_folds=len(folds),
            n_features=X.shape[1],
        )  # fmt: skip
    run = _Scoring(
        X, y, folds, metrics, ScoreStore(journal), journal, rows, task_prefix,
        {} if shared is None else shared,
    )  # fmt: skip
    split = np.empty((len(metrics.keys), len(candidates), len(folds)))
    total = {"neighbors": 0.0, "scoring": 0.0}
    counts = {"searches": 0, "loaded": 0, "reused": 0}
    more = []
    for g, group in enumerate(groups):
        split[:, group.members], took = _group_scores(estimator, group, group.label, run)
        for phase in ("neighbors", "scoring", "rerank"):
            if took[phase] or phase != "rerank":
                total[phase] = total.get(phase, 0.0) + took[phase]
        counts = {name: n + took[name] for name, n in counts.items()}
        if took["more"] is not None:
            more.append(took["more"])
        log.info(
            "%sgroup %d: %d candidates (%d from the journal) scored from one neighbor "
            "search per fold", task_prefix, g, len(group.members), took["reused"],
        )  # fmt: skip
    scores = dict(zip(metrics.keys, split, strict=True))
    return CandidateScores(
        scores, total, counts["searches"], counts["loaded"], len(groups), counts["reused"], more
    )


def assemble_cv_results(
    candidates: list[dict], split_scores: dict[str, np.ndarray], metrics: Metrics = ACCURACY
) -> tuple[dict, int]:
    """scikit-learn's ``cv_results_`` layout from each candidate's fold scores; and the best.

    Keys as scikit-learn's: ``params``, ``param_<name>``, then for each metric
    ``split<f>_test_<key>``, ``mean_test_<key>``, ``std_test_<key>`` and
    ``rank_test_<key>`` (ties share the best rank). The best candidate is the
    first ranked first by ``metrics.refit``.
    """
    cv_results: dict = {"params": candidates}
    for name in sorted({n for c in candidates for n in c}):
        cv_results[f"param_{name}"] = [c.get(name) for c in candidates]
    for key in metrics.keys:
        scores = split_scores[key]
        for f in range(scores.shape[1]):
            cv_results[f"split{f}_test_{key}"] = scores[:, f]
        mean = scores.mean(axis=1)
        cv_results[f"mean_test_{key}"] = mean
        cv_results[f"std_test_{key}"] = scores.std(axis=1)
        cv_results[f"rank_test_{key}"] = rankdata(-mean, method="min").astype(int)
    best = int(np.argmin(cv_results[f"rank_test_{metrics.refit}"]))
    return cv_results, best


def checked_inputs(X: da.Array, y, spec: SearchSpec) -> tuple[BaseEstimator, np.ndarray, list]:
    """The estimator, labels and candidates of a search, refused now if they cannot work."""
    estimator = KNNClassifier() if spec.estimator is None else spec.estimator
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != len(y):
        raise OptionError(f"X has shape {X.shape} but there are {len(y)} labels")
    return estimator, y, search_candidates(spec)


def neighbors_search(
    X: da.Array, y, *, journal: Journal | None = None, shared: dict | None = None, **params
) -> SearchResult:
    """Grid-search (or random-search) a KNN classifier, or a pipeline ending in one, by
    cross-validation.

    Candidates that differ only in the classifier's ``weights`` or
    ``n_neighbors`` share one neighbor search per fold (tasks named
    ``neighbors-fold-<f>``) on the current Dask client; their scores equal
    scikit-learn's ``GridSearchCV`` (``RandomizedSearchCV`` with
    ``strategy="random"``) on the same folds, for every metric.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Image rows.
    y : array-like of shape (n_samples,)
        Labels, in NumPy (folds and votes need them on the client).
    journal : Journal, optional
        Saves each fold's neighbors and each group's scores as they finish and
        reads back those already there, so an interrupted search can resume
        and a finished one be extended.
    shared : dict, optional
        As :func:`~mnistdist.model_selection.search`'s.
    **params
        :class:`SearchSpec`'s: ``estimator``, ``param_grid``, ``cv``,
        ``scoring``, ``refit``, ``strategy`` (``"grid"`` or ``"random"``),
        ``n_iter``, ``random_state``.

    Returns
    -------
    SearchResult
        ``cv_results`` in scikit-learn's layout, the best candidate, the
        folds and the time spent finding neighbors and scoring.

    Raises
    ------
    OptionError
        If the shapes disagree, the grid is empty or names unknown
        parameters, a value is one the estimator refuses, a metric is
        unknown, ``cv`` cannot split ``y``, or ``n_neighbors`` exceeds a
        training fold.
    """
    spec = SearchSpec(**params)
    if spec.strategy == "halving":
        raise OptionError("successive halving is halving_search's")
    estimator, y, candidates = checked_inputs(X, y, spec)
    metrics = check_metrics(spec.scoring, spec.refit, y)
    folds = cv_folds(spec.cv, y)
    with estimating():
        scores = score_candidates(
            estimator, X, y, candidates, folds, metrics=metrics, journal=journal, shared=shared
        )
    cv_results, best = assemble_cv_results(candidates, scores.split_scores, metrics)
    return SearchResult(
        cv_results,
        best,
        folds,
        scores.n_neighbor_searches,
        scores.seconds,
        scores.n_loaded,
        scores.n_groups,
        metrics,
        spec.strategy,
        scores.n_reused,
        scores.more_neighbors,
    )
