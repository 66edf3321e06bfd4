"""Cross-validated grid search of a KNN pipeline on the cluster, one neighbour search per fold.

The expensive part of KNN is finding neighbours, and it does not depend on
``weights`` or on ``n_neighbors`` up to the largest in the grid. So the search
runs in two stages:

1. **Neighbours** - for every fold (and every distinct preprocessing setting,
   if the pipeline has some in the grid), the validation rows' ``k_max``
   nearest training-fold rows are found once, by tasks named
   ``neighbors-fold-<f>`` on the workers. Together they form a sparse
   precomputed neighbour graph: row i holds i's neighbours from the training
   part of the fold that validates i.
2. **Scoring** - dask-ml's ``GridSearchCV`` distributes every
   ``weights x n_neighbors`` candidate on every fold over the cluster, with
   scikit-learn's own ``KNeighborsClassifier(metric="precomputed")`` reading
   that graph: the votes are scikit-learn's, bit for bit.

Scores therefore equal scikit-learn's ``GridSearchCV`` on the same folds,
while a grid of six candidates costs barely more than one.

A pipeline with an :class:`~mnistdist.augment.Augment` step searches each
fold's validation rows among the training rows *and their copies*; the
copies of validation rows are masked out with the rows themselves, so no
version of an image is ever on both sides of a split. A copy found as a
neighbour stands for its image in the graph.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping, Sequence

import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import get_scheduler, tokenize
from distributed import Client
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import EfficiencyWarning
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.neighbors import KNeighborsClassifier

from .. import config
from ..errors import OptionError
from ..neighbors import (
    KNNClassifier,
    Neighbors,
    candidates_needed,
    check_knn_params,
    compute_journaled,
    compute_journaled_after,
    cv_kneighbors,
    fold_pairs_on,
    folds_partition,
    is_reranking,
    kneighbors_dask,
    rerank_graph,
)
from ..outputs import Journal
from ._pipeline_tasks import (
    KNN_PARAMS,
    Preprocessing,
    apply_stateless_before,
    fit_task,
    reference_blocks,
    split_pipeline,
)

log = logging.getLogger(__name__)

#: The book's grid.
DEFAULT_GRID = {"n_neighbors": [3, 4, 5], "weights": ["uniform", "distance"]}


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

    @property
    def best_params(self) -> dict:
        return self.cv_results["params"][self.best_index]

    @property
    def best_score(self) -> float:
        return float(self.cv_results["mean_test_score"][self.best_index])

    @property
    def queries_searched(self) -> int:
        """Query rows over all the neighbor graphs scored: every row once per group."""
        return sum(len(test) for _, test in self.folds) * self.n_groups

    def candidate_scores(self) -> tuple[list[dict], np.ndarray, np.ndarray]:
        """Each candidate's parameters, mean and std of its validation scores."""
        cv = self.cv_results
        return cv["params"], np.asarray(cv["mean_test_score"]), np.asarray(cv["std_test_score"])

    def summary(self) -> dict:
        """The numbers a report needs, JSON-ready."""
        return {
            "strategy": "grid",
            "best_index": self.best_index,
            "best_params": self.best_params,
            "best_score": self.best_score,
            "n_candidates": len(self.cv_results["params"]),
            "n_splits": len(self.folds),
            "n_neighbor_searches": self.n_neighbor_searches,
            "n_neighbor_searches_loaded": self.n_loaded,
            "n_neighbor_searches_computed": self.n_neighbor_searches - self.n_loaded,
            "mean_test_score": [float(s) for s in self.cv_results["mean_test_score"]],
            "std_test_score": [float(s) for s in self.cv_results["std_test_score"]],
            "params": self.cv_results["params"],
            "seconds": self.seconds,
        }

    def write_csv(self, path) -> None:
        """``cv_results.csv``: one row per candidate, params and scores."""
        from ..outputs import atomic_path

        keys = [k for k in self.cv_results if k != "params"]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["params", *keys])
            for i, params in enumerate(self.cv_results["params"]):
                writer.writerow([repr(params), *(self.cv_results[k][i] for k in keys)])


def _grid_candidates(
    estimator: BaseEstimator, param_grid: Mapping | Sequence[Mapping]
) -> list[dict]:
    """The grid's candidates in ParameterGrid order, each checked against the estimator."""
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    if not grids or any(not g for g in grids):
        raise OptionError("the parameter grid is empty")
    for g in grids:
        for name, values in g.items():
            if (
                isinstance(values, (str, bytes))
                or not hasattr(values, "__len__")
                or len(values) == 0
            ):
                raise OptionError(
                    f"grid parameter {name!r} needs a non-empty list of values, got {values!r}"
                )
    valid = estimator.get_params(deep=True)
    candidates = list(ParameterGrid(grids))
    for name in {n for c in candidates for n in c}:
        if name not in valid:
            raise OptionError(f"{type(estimator).__name__} has no parameter {name!r}")
    return candidates


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
class _Group:
    """Candidates that differ only in the classifier's parameters: they share neighbors."""

    rest: dict  # the candidates' other parameters (preprocessing), all equal
    members: list[int]  # indices into the candidates
    knn_params: list[dict]  # each member's n_neighbors and weights

    @property
    def k(self) -> int:
        return max(p["n_neighbors"] for p in self.knn_params)


def _group_candidates(candidates: list[dict], prefix: str, base_knn: dict) -> list[_Group]:
    """Candidates grouped by everything but ``weights`` and ``n_neighbors``, in grid order."""
    groups: dict[str, _Group] = {}
    for i, cand in enumerate(candidates):
        knn_params = {p: cand.get(prefix + p, base_knn[p]) for p in KNN_PARAMS}
        try:
            check_knn_params(**knn_params)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        rest = {n: v for n, v in cand.items() if n not in {prefix + p for p in KNN_PARAMS}}
        key = tokenize(sorted(rest.items(), key=lambda kv: kv[0]))
        group = groups.setdefault(key, _Group(rest, [], []))
        group.members.append(i)
        group.knn_params.append(knn_params)
    return list(groups.values())


def _neighbor_graph(n: int, k: int, folds, results) -> sp.csr_matrix:
    """The (n, n) graph whose row i holds i's k neighbors from the training part of its fold.

    A neighbor that is an augmented copy (reference row ``j >= n``) stands
    for its image ``j % n``: a row may then name one image twice, and
    scikit-learn counts each as a neighbor, as it would the copies.
    """
    data = np.empty((n, k))
    indices = np.empty((n, k), dtype=np.int64)
    for (_, test), (dist, ids) in zip(folds, results, strict=False):
        rows = np.sort(test)  # the order _fold_neighbors queried them in
        data[rows], indices[rows] = dist, ids % n
    # Rows are sorted by distance, as KNeighborsClassifier(metric="precomputed") wants.
    return sp.csr_matrix((data.ravel(), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))


def _fold_neighbors(
    X: da.Array,
    y: np.ndarray,
    prep: Preprocessing | None,
    folds,
    k: int,
    label: str,
    journal: Journal | None,
    task_prefix: str = "",
) -> list[Neighbors]:
    """The neighbors of every fold's validation rows among its training rows (and their copies).

    The reference of fold f is every image and every augmented copy of it,
    with the validation images *and their copies* masked out: no version of
    a validation image is ever a neighbor of one, and validation rows are
    never augmented. Where no step is fitted per fold and the folds partition
    the rows, each fold pair's distances are computed once, for both folds
    (:mod:`mnistdist.fold_pairs`). Where steps are fitted per fold, each
    fold's search starts as soon as its own fit is done. ``task_prefix``
    starts every task name, so that a caller running several searches
    (halving's rounds) tells them apart on the dashboard.
    """
    query_rows = int(config.get("query-rows"))
    n = X.shape[0]
    progress = f"neighbors of {len(folds)} folds{label}"

    def search(f: int, fit: Preprocessing | None) -> tuple[da.Array, da.Array]:
        train, test = folds[f]
        reference = (
            X if fit is None else reference_blocks(fit, X, name=f"{task_prefix}preprocess-fold-{f}")
        )
        keep = np.zeros(n, dtype=bool)
        keep[train] = True
        keep = np.tile(keep, reference.shape[0] // n)
        query = reference[:n][np.sort(test)].rechunk({0: query_rows})
        name = f"{task_prefix}neighbors-fold-{f}{label}"
        return kneighbors_dask(query, reference, k, name=name, ref_keep=keep)

    if prep is None:
        if fold_pairs_on() and folds_partition(folds, n):
            lazy = cv_kneighbors(
                X, folds, k, query_rows=query_rows, label=label, task_prefix=task_prefix
            )
        else:
            lazy = [search(f, None) for f in range(len(folds))]
        return compute_journaled(lazy, journal, label=progress)
    fits = [
        fit_task(prep, X[rows], y[rows], name=f"{task_prefix}fit-preprocessing-fold-{f}")
        for f, rows in enumerate(np.sort(train) for train, _ in folds)
    ]
    return compute_journaled_after(fits, search, journal, label=progress)


def _search_group_neighbors(
    estimator: BaseEstimator,
    X: da.Array,
    y: np.ndarray,
    group: _Group,
    folds,
    *,
    label: str,
    journal: Journal | None,
    shared: dict,
    rows: np.ndarray | None = None,
    task_prefix: str = "",
) -> tuple[sp.csr_matrix, dict]:
    """One group's neighbor graph over all folds, and what it took: ``searches`` (fold
    neighbor searches computed or read back, 0 where another group's were shared),
    ``loaded`` (of those, read back from the journal) and ``rerank`` (seconds re-ranking
    the candidates, 0 for a plain KNN).

    ``label`` ends the task names and ``task_prefix`` starts them; ``shared``
    holds what groups share: images transformed once by stateless steps
    (deskewed, say), by Dask name, and the neighbors of images that no
    data-fitted step changes, by images, k and task prefix. ``rows`` (sorted)
    searches only those rows of ``X``, ``y`` and ``folds`` being theirs: the
    stateless steps still run on all of ``X``, so searches of nested subsets
    share them.
    """
    prep, _, knn = split_pipeline(clone(estimator).set_params(**group.rest))
    prep, X_group = apply_stateless_before(prep, X)
    if X_group is not X:
        if X_group.name not in shared:
            shared[X_group.name] = X_group.persist()
        X_group = shared[X_group.name]
    if rows is not None:
        X_group = X_group[rows]
    k = candidates_needed(knn, group.k)
    # Groups that differ only in the re-ranking (warp, say) search the same images for the
    # same k: the Euclidean candidates are found once and shared. The prefix keeps another
    # search's (halving's other rounds, with other folds) apart.
    key = ("neighbors", X_group.name, k, task_prefix) if prep is None else None
    found, searches = shared.get(key), 0
    if found is None:
        searches = len(folds)
        found = _fold_neighbors(X_group, y, prep, folds, k, label, journal, task_prefix)
        if key is not None:
            shared[key] = found
    graph = _neighbor_graph(len(y), k, folds, [(r.dist, r.ids) for r in found])
    reranking = 0.0
    if is_reranking(knn):
        if prep is not None:
            raise OptionError("re-ranking needs image rows: only stateless steps before it")
        t0 = time.perf_counter()
        graph = rerank_graph(knn, X_group, graph, folds, label, task_prefix)
        reranking = time.perf_counter() - t0
    loaded = sum(r.loaded for r in found) if searches else 0
    return graph, {"searches": searches, "loaded": loaded, "rerank": reranking}


def _scheduler_that_raises():
    """Dask's current scheduler for dask-ml, a client's ``get`` wrapped so that the first
    error is raised: given a client itself, dask-ml resubmits a failed task forever."""
    get = get_scheduler()
    client = getattr(get, "__self__", None)
    if not isinstance(client, Client):
        return get  # the local schedulers raise the first error
    return lambda dsk, keys, **_: client.get(dsk, keys)


def with_own_rows(graph: sp.csr_matrix) -> sp.csr_matrix:
    """``graph`` with each row's own column first, at distance 0 (an explicit zero).

    A fold's fit sees the graph's training rows and columns only, where a row's
    neighbours may all be missing (they are in the other folds): with 2 folds
    nothing is left, and scikit-learn fails on an empty precomputed graph. The
    diagonal keeps it non-empty. A fold's validation rows lose their own columns
    with the training columns' slice, so their neighbours, and the scores, are
    unchanged.
    """
    n = graph.shape[0]
    indptr = graph.indptr + np.arange(n + 1)
    own = np.zeros(graph.nnz + n, dtype=bool)
    own[indptr[:-1]] = True
    data = np.zeros(graph.nnz + n, dtype=graph.data.dtype)
    indices = np.empty(graph.nnz + n, dtype=graph.indices.dtype)
    data[~own], indices[~own], indices[own] = graph.data, graph.indices, np.arange(n)
    return sp.csr_matrix((data, indices, indptr), shape=graph.shape)


def _score_group(graph: sp.csr_matrix, y: np.ndarray, folds, group: _Group) -> np.ndarray:
    """Each member's validation score on each fold, by dask-ml over the precomputed graph."""
    # Imported here: dask-ml (with dask.dataframe) is only needed once a search scores, and
    # a job imports it while its cluster starts (jobs.common), not before its preflight.
    from dask_ml.model_selection import GridSearchCV

    grid = [{p: [params[p]] for p in KNN_PARAMS} for params in group.knn_params]
    scorer = GridSearchCV(
        KNeighborsClassifier(metric="precomputed"),
        grid,
        cv=folds,
        refit=False,
        iid=False,
        error_score="raise",
        return_train_score=False,
        scheduler=_scheduler_that_raises(),
    )
    with warnings.catch_warnings():
        # Column-slicing the graph per fold may unsort rows; they are re-sorted anyway.
        warnings.simplefilter("ignore", EfficiencyWarning)
        scorer.fit(with_own_rows(graph), y)
    return np.array([scorer.cv_results_[f"split{f}_test_score"] for f in range(len(folds))]).T


def _assemble_cv_results(candidates: list[dict], split_scores: np.ndarray) -> tuple[dict, int]:
    """scikit-learn's ``cv_results_`` layout from each candidate's fold scores; and the best."""
    mean = split_scores.mean(axis=1)
    cv_results: dict = {"params": candidates}
    for name in sorted({n for c in candidates for n in c}):
        cv_results[f"param_{name}"] = [c.get(name) for c in candidates]
    for f in range(split_scores.shape[1]):
        cv_results[f"split{f}_test_score"] = split_scores[:, f]
    cv_results["mean_test_score"] = mean
    cv_results["std_test_score"] = split_scores.std(axis=1)
    # Ranked as scikit-learn ranks: ties share the best rank.
    cv_results["rank_test_score"] = rankdata(-mean, method="min").astype(int)
    best = int(np.flatnonzero(cv_results["rank_test_score"] == 1)[0])
    return cv_results, best


def _search_groups(
    estimator,
    X,
    y,
    groups: list[_Group],
    folds,
    *,
    n_candidates,
    journal,
    rows=None,
    task_prefix="",
    shared=None,
):
    """Every group's neighbors searched, then its candidates scored.

    Returns every candidate's fold scores, the seconds spent on each stage,
    how many fold neighbor searches there were and how many of them the
    journal gave back.
    """
    split_scores = np.empty((n_candidates, len(folds)))
    seconds = {"neighbors": 0.0, "scoring": 0.0}
    n_searches, n_loaded = 0, 0
    shared = {} if shared is None else shared
    for g, group in enumerate(groups):
        label = f"-group-{g}" if len(groups) > 1 else ""
        t0 = time.perf_counter()
        graph, took = _search_group_neighbors(
            estimator,
            X,
            y,
            group,
            folds,
            label=label,
            journal=journal,
            shared=shared,
            rows=rows,
            task_prefix=task_prefix,
        )
        t1 = time.perf_counter()
        split_scores[group.members] = _score_group(graph, y, folds, group)
        seconds["neighbors"] += t1 - t0 - took["rerank"]
        if took["rerank"]:
            seconds["rerank"] = seconds.get("rerank", 0.0) + took["rerank"]
        seconds["scoring"] += time.perf_counter() - t1
        n_searches += took["searches"]
        n_loaded += took["loaded"]
        log.info(
            "%sgroup %d: %d candidates scored from one neighbor search per fold",
            task_prefix,
            g,
            len(group.members),
        )
    return split_scores, seconds, n_searches, n_loaded


def _check_k_max(groups: list[_Group], folds) -> None:
    smallest_train = min(len(tr) for tr, _ in folds)
    k_max = max(group.k for group in groups)
    if k_max > smallest_train:
        raise OptionError(
            f"n_neighbors={k_max} is larger than the smallest training fold ({smallest_train} rows)"
        )


@dataclasses.dataclass
class CandidateScores:
    """Every candidate's validation score on every fold, from :func:`score_candidates`."""

    split_scores: np.ndarray  # (n_candidates, n_folds)
    seconds: dict[str, float]
    #: Fold neighbor searches done (computed or read back); groups may share them.
    n_neighbor_searches: int
    n_loaded: int
    #: Groups of candidates, each scored from one neighbor graph.
    n_groups: int


def score_candidates(
    estimator: BaseEstimator,
    X: da.Array,
    y: np.ndarray,
    candidates: list[dict],
    folds,
    *,
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
    journal : Journal, optional
        Saves and reads back each fold's neighbors.
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
    _, prefix, knn = split_pipeline(estimator)
    groups = _group_candidates(candidates, prefix, knn.get_params(deep=False))
    _check_k_max(groups, folds)
    split_scores, seconds, n_searches, n_loaded = _search_groups(
        estimator,
        X,
        y,
        groups,
        folds,
        n_candidates=len(candidates),
        journal=journal,
        rows=rows,
        task_prefix=task_prefix,
        shared=shared,
    )
    return CandidateScores(split_scores, seconds, n_searches, n_loaded, len(groups))


def neighbors_search(
    X: da.Array,
    y: np.ndarray,
    *,
    estimator: BaseEstimator | None = None,
    param_grid: Mapping | Sequence[Mapping] | None = None,
    cv=5,
    journal: Journal | None = None,
) -> SearchResult:
    """Grid-search a KNN classifier (or a pipeline ending in one) by cross-validation.

    Candidates that differ only in the classifier's ``weights`` or
    ``n_neighbors`` share one neighbor search per fold (tasks named
    ``neighbors-fold-<f>``) on the current Dask client; their scores equal
    scikit-learn's ``GridSearchCV`` on the same folds.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Image rows.
    y : array-like of shape (n_samples,)
        Labels, in NumPy (folds and votes need them on the client).
    estimator : KNNClassifier or Pipeline ending in one, optional
        What to search (default: ``KNNClassifier()``).
    param_grid : dict or list of dicts, optional
        As in ``GridSearchCV`` (default: :data:`DEFAULT_GRID`, the book's).
    cv : int, cross-validation generator or iterable of splits, default=5
        As in scikit-learn: an int means ``StratifiedKFold`` without shuffling.
    journal : Journal, optional
        Saves each fold's neighbors as they finish and reads back those
        already there, so an interrupted search can resume.

    Returns
    -------
    SearchResult
        ``cv_results`` in scikit-learn's layout, the best candidate, the
        folds and the time spent finding neighbors and scoring.

    Raises
    ------
    OptionError
        If the shapes disagree, the grid is empty or names unknown
        parameters, a KNN parameter is invalid, ``cv`` cannot split ``y``, or
        ``n_neighbors`` exceeds a training fold.
    """
    estimator = KNNClassifier() if estimator is None else estimator
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != len(y):
        raise OptionError(f"X has shape {X.shape} but there are {len(y)} labels")
    split_pipeline(estimator)  # a pipeline that does not end in a KNN fails here, first
    candidates = _grid_candidates(estimator, DEFAULT_GRID if param_grid is None else param_grid)
    folds = cv_folds(cv, y)
    scores = score_candidates(estimator, X, y, candidates, folds, journal=journal)
    cv_results, best = _assemble_cv_results(candidates, scores.split_scores)
    return SearchResult(
        cv_results,
        best,
        folds,
        scores.n_neighbor_searches,
        scores.seconds,
        scores.n_loaded,
        scores.n_groups,
    )
