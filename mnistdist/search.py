"""Cross-validated grid search of a KNN pipeline on the cluster, one neighbour search per fold.

The expensive part of KNN is finding neighbours, and it does not depend on
``weights`` or on ``n_neighbors`` up to the largest in the grid. So the search
runs in two stages:

1. **Neighbours** - for every fold (and every distinct preprocessing setting,
   if the pipeline has some in the grid), the validation rows' ``k_max``
   nearest training-fold rows are found once, by tasks named
   ``neighbours-fold-<f>`` on the workers. Together they form a sparse
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

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from dask_ml.model_selection import GridSearchCV
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import EfficiencyWarning
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.neighbors import KNeighborsClassifier

from . import config
from .errors import OptionError
from .journal import Journal, compute_journaled
from .knn import KNNClassifier, check_knn_params
from .neighbors import kneighbors_dask
from .preprocess import (
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
    n_neighbour_searches: int
    seconds: dict[str, float]
    #: Of the neighbour searches, how many were read back from a journal.
    n_loaded: int = 0

    @property
    def best_params(self) -> dict:
        return self.cv_results["params"][self.best_index]

    @property
    def best_score(self) -> float:
        return float(self.cv_results["mean_test_score"][self.best_index])

    def summary(self) -> dict:
        """The numbers a report needs, JSON-ready."""
        return {
            "best_params": self.best_params,
            "best_score": self.best_score,
            "n_candidates": len(self.cv_results["params"]),
            "n_splits": len(self.folds),
            "n_neighbour_searches": self.n_neighbour_searches,
            "n_neighbour_searches_loaded": self.n_loaded,
            "n_neighbour_searches_computed": self.n_neighbour_searches - self.n_loaded,
            "mean_test_score": [float(s) for s in self.cv_results["mean_test_score"]],
            "std_test_score": [float(s) for s in self.cv_results["std_test_score"]],
            "params": self.cv_results["params"],
            "seconds": self.seconds,
        }

    def write_csv(self, path) -> None:
        """``cv_results.csv``: one row per candidate, params and scores."""
        from .outputs import atomic_path

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


def _folds(cv, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
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


def _neighbour_graph(n: int, k: int, folds, results) -> sp.csr_matrix:
    """The (n, n) graph whose row i holds i's k neighbours from the training part of its fold.

    A neighbour that is an augmented copy (reference row ``j >= n``) stands
    for its image ``j % n``: a row may then name one image twice, and
    scikit-learn counts each as a neighbour, as it would the copies.
    """
    data = np.empty((n, k))
    indices = np.empty((n, k), dtype=np.int64)
    for (_, test), (dist, ids) in zip(folds, results, strict=False):
        rows = np.sort(test)  # the order _fold_neighbours queried them in
        data[rows], indices[rows] = dist, ids % n
    # Rows are sorted by distance, as KNeighborsClassifier(metric="precomputed") wants.
    return sp.csr_matrix((data.ravel(), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))


def _fold_neighbours(
    X: da.Array, y: np.ndarray, prep: Preprocessing | None, folds, k: int, label: str
) -> list:
    """Lazy neighbours of every fold's validation rows among its training rows (and their copies).

    The reference of fold f is every image and every augmented copy of it,
    with the validation images *and their copies* masked out: no version of
    a validation image is ever a neighbour of one, and validation rows are
    never augmented.
    """
    query_rows = int(config.get("query-rows"))
    n = X.shape[0]
    fitted = [None] * len(folds)
    if prep is not None:
        tasks = [
            fit_task(prep, X[np.sort(train)], y[np.sort(train)], name=f"fit-preprocessing-fold-{f}")
            for f, (train, _) in enumerate(folds)
        ]
        fitted = dask.compute(*tasks)
    pairs = []
    for f, ((train, test), fit) in enumerate(zip(folds, fitted, strict=False)):
        reference = X if fit is None else reference_blocks(fit, X, name=f"preprocess-fold-{f}")
        keep = np.zeros(n, dtype=bool)
        keep[train] = True
        keep = np.tile(keep, reference.shape[0] // n)
        query = reference[:n][np.sort(test)].rechunk({0: query_rows})
        pairs.append(
            kneighbors_dask(query, reference, k, name=f"neighbours-fold-{f}{label}", ref_keep=keep)
        )
    return pairs


def neighbour_search(
    X: da.Array,
    y: np.ndarray,
    *,
    estimator: BaseEstimator | None = None,
    param_grid: Mapping | Sequence[Mapping] | None = None,
    cv=5,
    journal: Journal | None = None,
) -> SearchResult:
    """Grid-search a KNN classifier (or a pipeline ending in one) by cross-validation.

    ``X`` is a Dask array of image rows, ``y`` the labels in NumPy. ``cv``
    follows scikit-learn (an int means ``StratifiedKFold`` without shuffling,
    as in ``GridSearchCV``). Candidates that differ only in the classifier's
    ``weights`` or ``n_neighbors`` share one neighbour search per fold.
    Runs on the current Dask client (or Dask's default scheduler).
    """
    estimator = KNNClassifier() if estimator is None else estimator
    param_grid = DEFAULT_GRID if param_grid is None else param_grid
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != len(y):
        raise OptionError(f"X has shape {X.shape} but there are {len(y)} labels")
    _, prefix, knn = split_pipeline(estimator)
    candidates = _grid_candidates(estimator, param_grid)
    knn_names = {prefix + p: p for p in KNN_PARAMS}
    folds = _folds(cv, y)
    base_knn = knn.get_params(deep=False)

    # Candidates sharing everything but weights and n_neighbors share neighbours.
    groups: dict[str, list[int]] = {}
    for i, cand in enumerate(candidates):
        knn_params = {p: cand.get(prefix + p, base_knn[p]) for p in KNN_PARAMS}
        try:
            check_knn_params(**knn_params)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        rest = {n: v for n, v in cand.items() if n not in knn_names}
        groups.setdefault(tokenize(sorted(rest.items(), key=lambda kv: kv[0])), []).append(i)

    smallest_train = min(len(tr) for tr, _ in folds)
    k_max = max(cand.get(prefix + "n_neighbors", base_knn["n_neighbors"]) for cand in candidates)
    if k_max > smallest_train:
        raise OptionError(
            f"n_neighbors={k_max} is larger than the smallest training fold ({smallest_train} rows)"
        )

    split_scores = np.empty((len(candidates), len(folds)))
    seconds = {"neighbours": 0.0, "scoring": 0.0}
    n_loaded = 0
    shared: dict[str, da.Array] = {}
    for g, members in enumerate(groups.values()):
        rest = {n: v for n, v in candidates[members[0]].items() if n not in knn_names}
        group_prep, X_group = apply_stateless_before(
            split_pipeline(clone(estimator).set_params(**rest))[0], X
        )
        if X_group is not X:
            # Deskewed (or otherwise) images, computed once and shared by the groups that use them.
            if X_group.name not in shared:
                shared[X_group.name] = X_group.persist()
            X_group = shared[X_group.name]
        label = f"-group-{g}" if len(groups) > 1 else ""
        k = max(candidates[i].get(prefix + "n_neighbors", base_knn["n_neighbors"]) for i in members)

        t0 = time.perf_counter()
        lazy = _fold_neighbours(X_group, y, group_prep, folds, k, label)
        results = compute_journaled(lazy, journal, label=f"neighbours of {len(folds)} folds{label}")
        n_loaded += sum(r.loaded for r in results)
        graph = _neighbour_graph(len(y), k, folds, [(r.dist, r.ids) for r in results])
        t1 = time.perf_counter()

        grid = [
            {p: [candidates[i].get(prefix + p, base_knn[p])] for p in KNN_PARAMS} for i in members
        ]
        scorer = GridSearchCV(
            KNeighborsClassifier(metric="precomputed"),
            grid,
            cv=folds,
            refit=False,
            iid=False,
            error_score="raise",
            return_train_score=False,
        )
        with warnings.catch_warnings():
            # Column-slicing the graph per fold may unsort rows; they are re-sorted anyway.
            warnings.simplefilter("ignore", EfficiencyWarning)
            scorer.fit(graph, y)
        seconds["neighbours"] += t1 - t0
        seconds["scoring"] += time.perf_counter() - t1
        for j, i in enumerate(members):
            split_scores[i] = [
                scorer.cv_results_[f"split{f}_test_score"][j] for f in range(len(folds))
            ]
        log.info(
            "group %d: %d candidates scored from one neighbour search per fold", g, len(members)
        )

    mean = split_scores.mean(axis=1)
    cv_results: dict = {"params": candidates}
    for name in sorted({n for c in candidates for n in c}):
        cv_results[f"param_{name}"] = [c.get(name) for c in candidates]
    for f in range(len(folds)):
        cv_results[f"split{f}_test_score"] = split_scores[:, f]
    cv_results["mean_test_score"] = mean
    cv_results["std_test_score"] = split_scores.std(axis=1)
    cv_results["rank_test_score"] = rankdata(-mean, method="min").astype(
        int
    )  # as scikit-learn ranks
    best = int(np.flatnonzero(cv_results["rank_test_score"] == 1)[0])
    return SearchResult(cv_results, best, folds, len(groups) * len(folds), seconds, n_loaded)
