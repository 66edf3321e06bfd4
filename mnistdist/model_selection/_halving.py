"""Successive halving on the cluster, with scikit-learn's ``HalvingGridSearchCV`` semantics.

The grid's candidates are first scored on a small stratified subset of the
training images; each round keeps the best ``ceil(n_candidates / factor)`` by
mean CV accuracy and scores them on ``factor`` times as many images. The
resource is the number of training images, and the schedule (how many
rounds, how many images in each) is scikit-learn's, computed by the same
formulas (:func:`halving_schedule`).

Two choices differ from scikit-learn's, both to make each round a plain
grid search on a known set of images:

- **Nested, stratified subsets.** The images of round r are a subset of
  round r+1's, and every round holds each class in proportion (to within about
  one image). scikit-learn instead draws a fresh random sample of each fold's
  training and validation rows in every round.
- **The CV splitter restricted to each round's subset.** Each round splits
  its own images with the search's ``cv`` (``StratifiedKFold`` for an int),
  so round r's scores are exactly those of :func:`~mnistdist.model_selection.neighbors_search`
  on round r's images, with round r's candidates.

Within a round, the grid search's machinery does the work
(:func:`~mnistdist.model_selection._search.score_candidates`): one neighbour search per fold
and preprocessing group, every KNN candidate scored from it, in tasks named
``halving-iter-<r>-neighbors-fold-<f>``. Images transformed by stateless
steps (deskewing) are made once for all rounds.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import dask.array as da
import numpy as np

from ..errors import OptionError
from ..outputs import Journal
from ..runtime import estimating
from ._candidates import group_candidates
from ._plan import plan_later_rounds
from ._scoring import Metrics, check_metrics
from ._search import (
    CandidateScores,
    SearchResult,
    assemble_cv_results,
    checked_inputs,
    cv_folds,
    json_params,
    score_candidates,
)
from ._spec import FACTOR, SearchSpec

log = logging.getLogger(__name__)

__all__ = ["FACTOR"]  # re-exported: halving's default factor is scikit-learn's


@dataclasses.dataclass(frozen=True)
class HalvingSchedule:
    """How many rounds, and how many images each, as ``HalvingGridSearchCV`` plans them."""

    factor: float
    min_resources: int
    max_resources: int
    n_required_iterations: int
    n_possible_iterations: int
    n_resources: tuple[int, ...]

    @property
    def n_iterations(self) -> int:
        return len(self.n_resources)


def _initial_min_resources(min_resources, n_splits: int, n_classes: int) -> int:
    """scikit-learn's ``min_resources_`` before 'exhaust' raises it."""
    if min_resources in ("exhaust", "smallest"):
        # scikit-learn's rule for a classifier: two images per class in each of the folds.
        return n_splits * 2 * n_classes
    if isinstance(min_resources, bool) or not isinstance(min_resources, (int, np.integer)):
        raise OptionError(
            f"min_resources must be 'exhaust', 'smallest' or a positive int, got {min_resources!r}"
        )
    if min_resources < 1:
        raise OptionError(f"min_resources must be positive, got {min_resources}")
    return int(min_resources)


def halving_schedule(
    n_candidates: int,
    n_samples: int,
    *,
    n_splits: int,
    n_classes: int,
    factor: float = FACTOR,
    min_resources="exhaust",
    aggressive_elimination: bool = False,
) -> HalvingSchedule:
    """The rounds and their sizes, by ``HalvingGridSearchCV``'s formulas (resource: images).

    Parameters
    ----------
    n_candidates : int
        Candidates in the first round.
    n_samples : int
        Training images: ``max_resources``, as scikit-learn's ``'auto'``.
    n_splits : int
        Folds of the cross-validation.
    n_classes : int
        Classes in the labels.
    factor : float, default=3
        Each round keeps ``ceil(n / factor)`` candidates on ``factor`` times the images.
    min_resources : {'exhaust', 'smallest'} or int, default='exhaust'
        As in scikit-learn: 'smallest' is two images per class and fold;
        'exhaust' raises that so the last round uses as many images as possible.
    aggressive_elimination : bool, default=False
        As in scikit-learn: repeat the first size until few enough candidates are left.

    Returns
    -------
    HalvingSchedule

    Raises
    ------
    OptionError
        If ``factor`` is not above 1, or the first round needs more images than there are.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise OptionError(f"factor must be a number above 1, got {factor!r}")
    min_res = _initial_min_resources(min_resources, n_splits, n_classes)
    if min_res > n_samples:
        raise OptionError(
            f"successive halving needs at least {min_res} images in its first round "
            f"({n_splits} folds x 2 x {n_classes} classes), but there are {n_samples}"
        )
    # The same expressions as scikit-learn's _run_search, so float rounding agrees too.
    n_required = 1 + math.floor(math.log(n_candidates, factor))
    if min_resources == "exhaust":
        min_res = max(min_res, n_samples // factor ** (n_required - 1))
    n_possible = 1 + math.floor(math.log(n_samples // min_res, factor))
    n_iterations = n_required if aggressive_elimination else min(n_possible, n_required)
    sizes = []
    for itr in range(n_iterations):
        power = max(0, itr - n_required + n_possible) if aggressive_elimination else itr
        sizes.append(min(int(factor**power * min_res), n_samples))
    return HalvingSchedule(factor, int(min_res), n_samples, n_required, n_possible, tuple(sizes))


def stratified_order(y: np.ndarray, random_state: int | None = 0) -> np.ndarray:
    """An order of the rows whose every prefix holds each class in proportion.

    Taking the first ``m`` rows of it gives nested subsets: the images of a
    smaller round are always among those of a larger one. In every prefix,
    each class's count is within about one image of its proportional share.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The labels.
    random_state : int or None, default=0
        Seeds the order of the rows within each class.

    Returns
    -------
    ndarray of shape (n_samples,)
        A permutation of ``range(n_samples)``.
    """
    rng = np.random.default_rng(random_state)
    _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    share = counts / len(y)
    pools = [rng.permutation(np.flatnonzero(codes == c)) for c in range(len(counts))]
    taken = np.zeros(len(counts), dtype=np.int64)
    order = np.empty(len(y), dtype=np.int64)
    for m in range(len(y)):
        # The class furthest below its share of the first m+1 rows comes next. An exhausted
        # class is never furthest below: its deficit is <= 0 while the deficits sum to 1.
        c = int(np.argmax((m + 1) * share - taken))
        order[m] = pools[c][taken[c]]
        taken[c] += 1
    return order


def best_of_round(mean_scores: np.ndarray, factor: float = FACTOR) -> np.ndarray:
    """Positions of the ``ceil(n / factor)`` best mean scores, worst first, as scikit-learn keeps.

    NaN scores rank below every number; ties fall as NumPy's ``argsort``
    leaves them, the same as in scikit-learn's ``_top_k``.
    """
    mean_scores = np.asarray(mean_scores, dtype=float)
    keep = math.ceil(len(mean_scores) / factor)
    ranked = np.roll(np.argsort(mean_scores), np.count_nonzero(np.isnan(mean_scores)))
    return ranked[-keep:]


@dataclasses.dataclass
class HalvingRound:
    """One round: its images (row indices), folds, candidates and their scores."""

    iteration: int
    rows: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    candidates: list[dict]
    scores: CandidateScores
    #: The ``cv_results`` key of the metric that keeps candidates.
    refit: str = "score"

    @property
    def mean_scores(self) -> np.ndarray:
        return self.scores.split_scores[self.refit].mean(axis=1)


@dataclasses.dataclass
class HalvingResult(SearchResult):
    """A halving search: every round's rows in ``cv_results`` (with ``iter`` and ``n_resources``).

    ``best_index`` is the best candidate of the last round, as in scikit-learn;
    ``folds`` are the last round's (positions within its rows).
    """

    schedule: HalvingSchedule | None = None
    rounds: list[HalvingRound] = dataclasses.field(default_factory=list)
    n_remaining_candidates: int = 0

    @property
    def n_resources(self) -> list[int]:
        return [len(r.rows) for r in self.rounds]

    @property
    def n_candidates(self) -> list[int]:
        return [len(r.candidates) for r in self.rounds]

    @property
    def queries_searched(self) -> int:
        """Query rows over all the rounds' neighbor graphs: each round's rows once per group."""
        return sum(len(r.rows) * r.scores.n_groups for r in self.rounds)

    def candidate_scores(self) -> tuple[list[dict], np.ndarray, np.ndarray]:
        """Each candidate once, with its mean and std (``refit``'s) from the last round it
        reached."""
        last = {repr(p): i for i, p in enumerate(self.cv_results["params"])}
        rows = sorted(last.values())
        key = self.metrics.refit
        return (
            [self.cv_results["params"][i] for i in rows],
            np.asarray(self.cv_results[f"mean_test_{key}"])[rows],
            np.asarray(self.cv_results[f"std_test_{key}"])[rows],
        )

    def summary(self) -> dict:
        """The grid search's summary, rows of every round, and the schedule."""
        schedule = self.schedule
        summary = super().summary()
        key = self.metrics.refit
        return {
            **summary,
            "mean_test_score": [float(s) for s in self.cv_results[f"mean_test_{key}"]],
            "std_test_score": [float(s) for s in self.cv_results[f"std_test_{key}"]],
            "params": [json_params(p) for p in self.cv_results["params"]],
            "n_candidates": self.n_candidates[0],
            "iter": [int(i) for i in self.cv_results["iter"]],
            "n_resources": [int(n) for n in self.cv_results["n_resources"]],
            "halving": {
                "factor": schedule.factor,
                "min_resources": schedule.min_resources,
                "max_resources": schedule.max_resources,
                "n_iterations": schedule.n_iterations,
                "n_required_iterations": schedule.n_required_iterations,
                "n_possible_iterations": schedule.n_possible_iterations,
                "n_resources": self.n_resources,
                "n_candidates": self.n_candidates,
                "n_remaining_candidates": self.n_remaining_candidates,
                "seconds": [dict(r.scores.seconds) for r in self.rounds],
            },
        }


def _n_splits(cv, y: np.ndarray) -> int:
    """How many folds ``cv`` makes; only a splitter (or an int) can split every round's subset."""
    if cv is None or isinstance(cv, (int, np.integer)):
        return 5 if cv is None else int(cv)
    if not hasattr(cv, "split") or not hasattr(cv, "get_n_splits"):
        raise OptionError(
            "successive halving splits each round's images anew: cv must be an int or a "
            f"cross-validation splitter, not {type(cv).__name__}"
        )
    return cv.get_n_splits(np.zeros((len(y), 1)), y)


def plan_rounds(
    y: np.ndarray,
    n_candidates: int,
    cv=5,
    *,
    factor: float = FACTOR,
    min_resources="exhaust",
    aggressive_elimination: bool = False,
    random_state: int | None = 0,
) -> tuple[HalvingSchedule, list[np.ndarray]]:
    """The schedule of a halving search and each round's images, before any work.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The labels.
    n_candidates : int
        Candidates in the first round.
    cv, factor, min_resources, aggressive_elimination, random_state
        As in :func:`halving_search`.

    Returns
    -------
    schedule : HalvingSchedule
    rows : list of ndarray
        Each round's row indices, sorted; each round's are among the next one's.

    Raises
    ------
    OptionError
        If ``cv`` cannot split every round's images or the schedule cannot be made.
    """
    y = np.asarray(y)
    schedule = halving_schedule(
        n_candidates,
        len(y),
        n_splits=_n_splits(cv, y),
        n_classes=len(np.unique(y)),
        factor=factor,
        min_resources=min_resources,
        aggressive_elimination=aggressive_elimination,
    )
    order = stratified_order(y, random_state)
    return schedule, [np.sort(order[:n]) for n in schedule.n_resources]


def _run_round(
    estimator, X, y, candidates, rows, *, spec: SearchSpec, metrics, iteration, journal, shared
) -> HalvingRound:
    """Round ``iteration``: every candidate on ``rows`` (sorted), by the grid search's engine."""
    n = X.shape[0]
    folds = cv_folds(spec.cv, y[rows])
    log.info(
        "halving round %d: %d candidates on %d of %d images",
        iteration,
        len(candidates),
        len(rows),
        n,
    )
    scores = score_candidates(
        estimator,
        X,
        y[rows],
        candidates,
        folds,
        metrics=metrics,
        journal=journal,
        rows=None if len(rows) == n else rows,  # the whole set: no copy of it
        task_prefix=f"halving-iter-{iteration}-",
        shared=shared,
    )
    return HalvingRound(iteration, rows, folds, candidates, scores, metrics.refit)


def _result(
    rounds: list[HalvingRound], schedule: HalvingSchedule, remaining: int, metrics: Metrics
) -> HalvingResult:
    """Every round's rows in one ``cv_results``, scikit-learn's layout; the last round's best."""
    params = [c for r in rounds for c in r.candidates]
    split_scores = {
        key: np.concatenate([r.scores.split_scores[key] for r in rounds]) for key in metrics.keys
    }
    # Ranks run over the rows of every round, as scikit-learn's do.
    cv_results, _ = assemble_cv_results(params, split_scores, metrics)
    cv_results["iter"] = np.concatenate([[r.iteration] * len(r.candidates) for r in rounds])
    cv_results["n_resources"] = np.concatenate([[len(r.rows)] * len(r.candidates) for r in rounds])
    last = np.flatnonzero(cv_results["iter"] == rounds[-1].iteration)
    means = cv_results[f"mean_test_{metrics.refit}"][last]
    best = int(last[0 if np.isnan(means).all() else np.nanargmax(means)])
    seconds: dict[str, float] = {}
    for r in rounds:
        for phase, s in r.scores.seconds.items():
            seconds[phase] = seconds.get(phase, 0.0) + s
    return HalvingResult(
        cv_results,
        best,
        rounds[-1].folds,
        sum(r.scores.n_neighbor_searches for r in rounds),
        seconds,
        sum(r.scores.n_loaded for r in rounds),
        sum(r.scores.n_groups for r in rounds),  # the graphs scored, over all rounds
        metrics,
        "halving",
        sum(r.scores.n_reused for r in rounds),
        [more for r in rounds for more in r.scores.more_neighbors],
        schedule=schedule,
        rounds=rounds,
        n_remaining_candidates=remaining,
    )


def halving_search(
    X: da.Array, y, *, journal: Journal | None = None, shared: dict | None = None, **params
) -> HalvingResult:
    """Successive halving over a KNN grid on the cluster (scikit-learn's ``HalvingGridSearchCV``).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Image rows.
    y : array-like of shape (n_samples,)
        Labels, in NumPy.
    journal : Journal, optional
        Saves each round's fold neighbours and scores as they finish and reads back
        those already there.
    shared : dict, optional
        As :func:`~mnistdist.model_selection.search`'s: what the rounds share,
        left in it for a refit of the best pipeline.
    **params
        :class:`SearchSpec`'s: ``estimator``, ``param_grid``, ``cv`` (an int or a
        splitter: each round's images are split anew), ``scoring``, ``refit`` (the
        metric that keeps candidates), ``factor``, ``min_resources``,
        ``aggressive_elimination`` (see :func:`halving_schedule`) and
        ``random_state`` (which images each round holds, :func:`stratified_order`).

    Returns
    -------
    HalvingResult
        ``cv_results`` with a row per candidate and round, ``iter`` and
        ``n_resources`` columns; the best candidate of the last round.

    Raises
    ------
    OptionError
        As :func:`~mnistdist.model_selection.neighbors_search`, or if the
        schedule cannot be made (see :func:`halving_schedule`).
    """
    spec = SearchSpec(**{"strategy": "halving", **params})
    if spec.strategy != "halving":
        raise OptionError(f"halving_search runs successive halving, not {spec.strategy!r}")
    estimator, y, candidates = checked_inputs(X, y, spec)
    metrics = check_metrics(spec.scoring, spec.refit, y)
    schedule, subsets = plan_rounds(
        y,
        len(candidates),
        spec.cv,
        factor=spec.factor,
        min_resources=spec.min_resources,
        aggressive_elimination=spec.aggressive_elimination,
        random_state=spec.random_state,
    )
    rounds, shared = [], {} if shared is None else shared
    with estimating() as eta:
        _plan_later_rounds(eta, estimator, candidates, schedule, subsets, _n_splits(spec.cv, y), X)
        for iteration, rows in enumerate(subsets):
            found = _run_round(
                estimator,
                X,
                y,
                candidates,
                rows,
                spec=spec,
                metrics=metrics,
                iteration=iteration,
                journal=journal,
                shared=shared,
            )
            rounds.append(found)
            candidates = [candidates[i] for i in best_of_round(found.mean_scores, spec.factor)]
    return _result(rounds, schedule, len(candidates), metrics)


def _plan_later_rounds(eta, estimator, candidates, schedule, subsets, n_folds, X) -> None:
    """Before the first round, the later ones estimated from its groups, for the time left."""
    n_candidates, sizes = len(candidates), []
    for rows in subsets[1:]:
        n_candidates = math.ceil(n_candidates / schedule.factor)
        sizes.append((n_candidates, len(rows)))
    plan_later_rounds(
        eta,
        estimator,
        group_candidates(candidates, estimator),
        sizes,
        n_folds=n_folds,
        n_features=X.shape[1],
    )
