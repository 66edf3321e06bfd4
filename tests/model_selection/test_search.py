import csv

import numpy as np
import pytest
from dask.utils import key_split
from distributed import get_task_stream
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold, ParameterSampler, RandomizedSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from mnistdist.errors import OptionError
from mnistdist.model_selection import DEFAULT_GRID, grid_file, neighbors_search
from mnistdist.model_selection import _group_neighbors as group_neighbors_module
from mnistdist.model_selection._group_neighbors import _fold_neighbors
from mnistdist.model_selection._pipeline_tasks import (
    Preprocessing,
    fit_preprocessing,
    reference_blocks,
)
from mnistdist.neighbors import KNNClassifier, kneighbors_dask
from mnistdist.outputs import Journal
from mnistdist.preprocessing import AUGMENTATIONS, Augment, Deskew
from mnistdist.preprocessing._augment import make_copy


def _split_scores(cv_results, n_splits):
    return np.array([cv_results[f"split{f}_test_score"] for f in range(n_splits)]).T


@pytest.mark.parametrize("cv", [5, 2])
def test_scores_equal_sklearn_grid_search(client, digits, digits_arrays, cv):
    X, y, _, _ = digits_arrays
    ours = neighbors_search(digits.X_train, y, cv=cv)
    ref = GridSearchCV(KNeighborsClassifier(), DEFAULT_GRID, cv=cv).fit(X, y)
    assert ours.cv_results["params"] == ref.cv_results_["params"]
    np.testing.assert_allclose(
        _split_scores(ours.cv_results, cv), _split_scores(ref.cv_results_, cv), atol=1e-3
    )
    np.testing.assert_allclose(
        ours.cv_results["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-3
    )
    np.testing.assert_array_equal(
        ours.cv_results["rank_test_score"], ref.cv_results_["rank_test_score"]
    )
    assert ours.best_params == ref.best_params_ and ours.best_score == pytest.approx(
        ref.best_score_, abs=1e-3
    )
    assert ours.n_neighbor_searches == cv
    assert set(ours.seconds) == {"neighbors", "scoring"}  # no re-ranking phase without one


def _neighbor_tasks(client, **kwargs):
    with get_task_stream(client) as stream:
        result = neighbors_search(**kwargs)
    names = [t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in stream.data]
    return result, sum(n.startswith("neighbors-fold-") for n in names)


def test_candidates_share_one_neighbor_search_per_fold(client, digits):
    """Six candidates run exactly the neighbour tasks of one (counted by the scheduler)."""
    X, y = digits.X_train, digits.y_train
    six, n_six = _neighbor_tasks(client, X=X, y=y, param_grid=DEFAULT_GRID, cv=4)
    one, n_one = _neighbor_tasks(
        client, X=X, y=y, param_grid={"n_neighbors": [5], "weights": ["uniform"]}, cv=4
    )
    assert n_six == n_one > 0
    assert (
        len(six.cv_results["params"]) == 6
        and six.n_neighbor_searches == one.n_neighbor_searches == 4
    )


def test_folds_are_sklearns_and_cv_objects_work(client, digits, digits_arrays):
    X, y, _, _ = digits_arrays
    cv = KFold(3, shuffle=True, random_state=0)
    ours = neighbors_search(
        digits.X_train, y, cv=cv, param_grid={"n_neighbors": [1, 2], "weights": ["uniform"]}
    )
    ref = GridSearchCV(
        KNeighborsClassifier(), {"n_neighbors": [1, 2], "weights": ["uniform"]}, cv=cv
    ).fit(X, y)
    np.testing.assert_allclose(
        ours.cv_results["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-3
    )
    for (_a_train, a_test), (_b_train, b_test) in zip(ours.folds, cv.split(X, y), strict=False):
        np.testing.assert_array_equal(a_test, b_test)


def test_pipeline_with_preprocessing_in_the_grid(client, digits, digits_arrays):
    X, y, _, _ = digits_arrays
    pipe = Pipeline(
        [("scale", StandardScaler()), ("pca", PCA(random_state=0)), ("knn", KNeighborsClassifier())]
    )
    grid = {
        "pca__n_components": [8, 16],
        "knn__n_neighbors": [1, 3],
        "knn__weights": ["uniform", "distance"],
    }
    ours = neighbors_search(digits.X_train, y, estimator=pipe, param_grid=grid, cv=3)
    ref = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert ours.cv_results["params"] == ref.cv_results_["params"]
    np.testing.assert_allclose(
        ours.cv_results["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-3
    )
    assert ours.n_neighbor_searches == 2 * 3  # one per PCA setting and fold
    assert ours.best_params == ref.best_params_


def test_unsorted_user_folds(client, digits, digits_arrays):
    """Folds given as a list, validation rows in any order, score as scikit-learn scores them."""
    X, y, _, _ = digits_arrays
    rng = np.random.default_rng(0)
    folds = [
        (train, rng.permutation(test))
        for train, test in KFold(3, shuffle=True, random_state=1).split(X)
    ]
    grid = {"n_neighbors": [1, 3], "weights": ["distance"]}
    ours = neighbors_search(digits.X_train, y, cv=folds, param_grid=grid)
    ref = GridSearchCV(KNeighborsClassifier(), grid, cv=folds).fit(X, y)
    np.testing.assert_allclose(
        _split_scores(ours.cv_results, 3), _split_scores(ref.cv_results_, 3), atol=1e-3
    )


def test_cv_results_csv(tmp_path, client, digits):
    result = neighbors_search(digits.X_train[:300], digits.y_train[:300], cv=3)
    result.write_csv(tmp_path / "cv_results.csv")
    with open(tmp_path / "cv_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert {
        "params",
        "param_n_neighbors",
        "param_weights",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
        "split2_test_score",
    } <= set(rows[0])
    assert [float(r["mean_test_score"]) for r in rows] == pytest.approx(
        list(result.cv_results["mean_test_score"])
    )
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"param_grid": {}}, "expected a non-empty mapping of parameters"),
        ({"param_grid": []}, "expected a mapping or a non-empty list"),
        ({"param_grid": {"n_neighbors": [], "weights": ["uniform"]}}, "non-empty list"),
        ({"param_grid": {"n_neighbors": 3}}, "expected a list of values, got 3"),
        ({"param_grid": {"n_neighbors": [-1]}}, r"n_neighbors.*must be an int in the range"),
        ({"param_grid": {"weights": ["closest"]}}, r"'weights' parameter .* must be a str among"),
        ({"param_grid": {"n_neighbors": [True]}}, "expected a value like 5, got True"),
        ({"param_grid": {"n_neighbors": [3]}, "scoring": "closeness"}, "unknown metric"),
        ({"scoring": ["accuracy", "f1"]}, "metric 'f1' cannot score these labels"),
        ({"scoring": ["accuracy", "f1_macro"], "refit": "recall"}, "refit 'recall' is not"),
        ({"strategy": "anneal"}, "unknown strategy"),
        ({"param_grid": {"leaf": [3]}}, "has no parameter 'leaf'"),
        ({"cv": 1}, "cv must be at least 2"),
        ({"cv": 200}, "more folds than the"),
        ({"param_grid": {"n_neighbors": [2000]}}, "larger than the smallest training fold"),
        ({"estimator": StandardScaler()}, "last step must be a k-nearest-neighbours classifier"),
        ({"estimator": KNeighborsClassifier(metric="manhattan")}, "Euclidean"),
    ],
)
def test_bad_options_raise_option_error(digits, kwargs, message):
    with pytest.raises(OptionError, match=message):
        neighbors_search(digits.X_train, digits.y_train, **kwargs)


def _by_hand(pipe, X, y, folds, kind):
    """The fold loop written out: fit on training rows, add their copies, score validation rows."""
    scores = []
    for train, test in folds:
        model = clone(pipe).set_params(augment=None)
        prep = Pipeline(model.steps[:-1]).fit(X[train], y[train])
        train_rows = prep.transform(X[train])
        copies = [prep.transform(make_copy(X[train], how)) for _, how in AUGMENTATIONS[kind]]
        knn = clone(model.steps[-1][1]).fit(
            np.concatenate([train_rows, *copies]), np.tile(y[train], 1 + len(copies))
        )
        scores.append(knn.score(prep.transform(X[test]), y[test]))
    return np.array(scores)


@pytest.mark.parametrize("kind", ["shift4", "rotate"])
def test_augmented_search_equals_the_fold_loop_by_hand(client, digits, digits_arrays, kind):
    X, y, _, _ = digits_arrays
    pipe = Pipeline(
        [
            ("augment", Augment(kind)),
            ("pca", PCA(16, random_state=0)),
            ("knn", KNeighborsClassifier(n_neighbors=3, weights="distance")),
        ]
    )
    ours = neighbors_search(
        digits.X_train, y, estimator=pipe, param_grid={"knn__n_neighbors": [3]}, cv=3
    )
    folds = ours.folds
    # PCA here is fitted on the original training rows, as mnistdist fits the steps after Augment.
    expected = _by_hand(pipe, X, y, folds, kind)
    np.testing.assert_allclose(_split_scores(ours.cv_results, 3)[0], expected, atol=1e-3)


def test_copies_of_an_image_never_cross_a_split(client, digits):
    """Every neighbour of a validation image is a version of a training image of its fold."""
    n = 600
    X, y = digits.X_train[:n], digits.y_train[:n]
    folds = [(tr, te) for tr, te in KFold(3, shuffle=True, random_state=0).split(np.zeros(n))]
    prep = Preprocessing(augment=Augment("shift8+rotate").fit(np.zeros((1, 64))))
    found = _fold_neighbors(X, y, prep, folds, 30, "", journal=None, shared={})
    for (train, test), (dist, ids) in zip(folds, ((f.dist, f.ids) for f in found), strict=True):
        assert ids.max() >= n  # copies are there...
        source = ids % n
        assert np.isin(source, train).all()  # ...but only of the fold's training images
        assert not np.isin(source, test).any()
        # A validation image's own copies are the nearest thing to it; they must not be found.
        assert (dist > 0).all()


def test_a_fold_copies_only_its_training_rows_and_finds_what_all_rows_masked_give(client, digits):
    """Each fold searches its training rows and their copies alone; the same neighbours, ties
    and ids as a search among every row and every copy with the validation ones masked out."""
    n, k = 600, 12
    X, y = digits.X_train[:n], digits.y_train[:n]
    folds = list(KFold(3, shuffle=True, random_state=1).split(np.zeros(n)))
    steps = [("augment", Augment("shift8")), ("pca", PCA(6, random_state=0))]
    prep = Preprocessing.from_steps(steps)
    found = _fold_neighbors(X, y, prep, folds, k, "", journal=None, shared={})
    for (train, test), got in zip(folds, found, strict=True):
        fitted = fit_preprocessing(prep, X[np.sort(train)], y[np.sort(train)])
        every = reference_blocks(fitted, X)
        keep = np.tile(np.isin(np.arange(n), train), every.shape[0] // n)
        dist, ids = kneighbors_dask(every[:n][np.sort(test)], every, k, ref_keep=keep)
        np.testing.assert_array_equal(got.ids, ids.compute())
        np.testing.assert_array_equal(got.dist, dist.compute())


@pytest.mark.parametrize("kind", ["shift8+rotate", "elastic2"])
def test_a_small_fold_searched_in_one_task_finds_what_its_tasks_find(
    client, digits, monkeypatch, kind
):
    """Small folds' searches (halving's first rounds) run in one task a fold: the same
    neighbours, distances and ids, bit for bit, as the tasks of the larger folds' way."""
    n, k = 600, 6
    X, y = digits.X_train[:n].rechunk({0: 150}), digits.y_train[:n]
    folds = list(KFold(3, shuffle=True, random_state=2).split(np.zeros(n)))
    steps = [("augment", Augment(kind)), ("pca", PCA(8, random_state=0))]
    prep = Preprocessing.from_steps(steps)
    found = {}
    for way, pairs in (("one task", 2**40), ("tasks", 0)):
        monkeypatch.setattr(group_neighbors_module, "LOCAL_PAIRS", pairs)
        with get_task_stream(client) as stream:
            found[way] = _fold_neighbors(X, y, prep, folds, k, "", journal=None, shared={})
        names = [t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in stream.data]
        local = [name for name in names if "-local-" in name]
        assert len(local) == (len(folds) if way == "one task" else 0)
    for ours, theirs in zip(found["one task"], found["tasks"], strict=True):
        np.testing.assert_array_equal(ours.ids, theirs.ids)
        np.testing.assert_array_equal(ours.dist, theirs.dist)


def test_groups_differing_only_in_augmentation_fit_the_steps_after_it_once(client, digits):
    """The steps after Augment see the original rows alone: one fit a fold for every kind,
    and each kind's scores those of its search alone."""
    pipe = Pipeline(
        [
            ("augment", Augment("none")),
            ("normalize", Normalizer()),
            ("pca", PCA(8, random_state=0)),
            ("knn", KNNClassifier(n_neighbors=3)),
        ]
    )
    kinds = ["none", "shift4", "rotate"]
    X, y = digits.X_train, digits.y_train
    with get_task_stream(client) as stream:
        together = neighbors_search(X, y, estimator=pipe, param_grid={"augment__kind": kinds}, cv=3)
    names = [key_split(t["key"]) for t in stream.data]
    assert sum(n.startswith("fit-after-fold") for n in names) == 3  # one a fold
    assert sum(n.startswith("fit-preprocessing-fold") for n in names) == 3 * len(kinds)
    for i, kind in enumerate(kinds):
        alone = neighbors_search(X, y, estimator=pipe, param_grid={"augment__kind": [kind]}, cv=3)
        np.testing.assert_array_equal(
            _split_scores(alone.cv_results, 3)[0], _split_scores(together.cv_results, 3)[i]
        )


def test_augmented_grid_shares_deskewing(client, digits, monkeypatch):
    """Deskewing runs once for all folds and groups.

    Candidates differing in KNN params share each group's search. The folds are searched
    by tasks, as larger ones are (small ones are one task a fold).
    """
    pipe = Pipeline(
        [
            ("deskew", Deskew()),
            ("augment", Augment("none")),
            ("pca", PCA(16, random_state=0)),
            ("knn", KNNClassifier()),
        ]
    )
    grid = {
        "augment__kind": ["none", "shift4"],
        "knn__n_neighbors": [3, 5],
        "knn__weights": ["uniform", "distance"],
    }
    X = digits.X_train
    monkeypatch.setattr(group_neighbors_module, "LOCAL_PAIRS", 0)
    with get_task_stream(client) as stream:
        result = neighbors_search(X, digits.y_train, estimator=pipe, param_grid=grid, cv=3)
    prefixes = [key_split(t["key"]) for t in stream.data]
    deskew = [t["key"] for t in stream.data if "deskew" in key_split(t["key"])]
    # One deskewed array (Dask may fuse a chunk's load into its deskew task and alias it),
    # every chunk of it computed once: not once per fold or per group.
    assert len({key[0].rsplit("-", 1)[1] for key in deskew}) == 1
    assert sorted({key[1] for key in deskew}) == list(range(X.numblocks[0]))
    assert len(deskew) == len(set(deskew)) <= 2 * X.numblocks[0]
    # The copies are made on the workers, chunk by chunk, inside each fold's preprocessing.
    assert {f"augment-{d}" for d in ("left", "right", "up", "down")} <= {
        p.split("-concatenate")[0] for p in prefixes
    }
    assert result.n_neighbor_searches == 2 * 3 and len(result.cv_results["params"]) == 8


#: A four-step pipeline, in a grid file's words.
PIPELINE = """\
estimator:
  - deskew: Deskew
  - normalize: Normalizer
  - pca: {PCA: {n_components: 16, random_state: 0}}
  - knn: KNNClassifier
"""

#: A grid over three of its steps (and the KNN's two parameters).
THREE_STEPS = (
    PIPELINE
    + """\
param_grid:
  - deskew: [passthrough, Deskew]
    pca__n_components: [8, 16]
    knn__n_neighbors: [1, 4]
    knn__weights: [uniform, distance]
  - normalize: [passthrough]
    knn__n_neighbors: [3]
"""
)

#: The same pipeline, its parameters drawn: a list, and scipy.stats distributions.
DRAWN = (
    PIPELINE
    + """\
param_grid:
  deskew: [passthrough, Deskew]
  pca__n_components: {randint: [6, 20]}
  knn__n_neighbors: {randint: [1, 8]}
  knn__weights: [uniform, distance]
"""
)

METRICS = ["accuracy", "balanced_accuracy", "f1_macro"]


def _assert_same_search(ours, ref, n_splits):
    """The same candidates, every metric's fold scores and ranks, and the same choice."""
    assert ours.cv_results["params"] == ref.cv_results_["params"]
    for metric in METRICS:
        for stat in ("mean", "std", "rank"):
            np.testing.assert_allclose(
                ours.cv_results[f"{stat}_test_{metric}"],
                ref.cv_results_[f"{stat}_test_{metric}"],
                rtol=0,
                atol=1e-12,
            )
        for f in range(n_splits):
            np.testing.assert_array_equal(
                ours.cv_results[f"split{f}_test_{metric}"],
                ref.cv_results_[f"split{f}_test_{metric}"],
            )
    assert ours.best_params == ref.best_params_ and ours.best_index == ref.best_index_


def test_a_grid_file_over_three_steps_scores_as_grid_search_cv(
    client, digits, digits_arrays, tmp_path
):
    X, y, _, _ = digits_arrays
    (tmp_path / "three.yaml").write_text(THREE_STEPS)
    preset = grid_file(tmp_path / "three.yaml", X.shape[1])
    ours = neighbors_search(
        digits.X_train, y, estimator=preset.estimator, param_grid=preset.param_grid, cv=3,
        scoring=METRICS, refit="balanced_accuracy",
    )  # fmt: skip
    ref = GridSearchCV(
        clone(preset.estimator), preset.param_grid, cv=3, scoring=METRICS, refit="balanced_accuracy"
    ).fit(X, y)
    _assert_same_search(ours, ref, 3)
    assert ours.n_groups == 5 and len(ours.cv_results["params"]) == 17


def test_a_random_search_draws_and_scores_as_randomized_search_cv(
    client, digits, digits_arrays, tmp_path
):
    X, y, _, _ = digits_arrays
    (tmp_path / "drawn.yaml").write_text(DRAWN)
    preset = grid_file(tmp_path / "drawn.yaml", X.shape[1])
    assert preset.strategy == "random"
    ours = neighbors_search(
        digits.X_train, y, estimator=preset.estimator, param_grid=preset.param_grid, cv=3,
        scoring=METRICS, refit="f1_macro", strategy="random", n_iter=12, random_state=7,
    )  # fmt: skip
    ref = RandomizedSearchCV(
        clone(preset.estimator), preset.param_grid, n_iter=12, random_state=7, cv=3,
        scoring=METRICS, refit="f1_macro",
    ).fit(X, y)  # fmt: skip
    assert ours.cv_results["params"] == list(
        ParameterSampler(preset.param_grid, 12, random_state=7)
    )
    _assert_same_search(ours, ref, 3)
    # Candidates that share a preprocessing setting share its neighbour search.
    settings = {(repr(c["deskew"]), c["pca__n_components"]) for c in ours.cv_results["params"]}
    assert ours.n_groups == len(settings) < 12


def test_one_metric_keeps_the_score_columns(client, digits):
    result = neighbors_search(digits.X_train, digits.y_train, cv=3, scoring="balanced_accuracy")
    assert "mean_test_score" in result.cv_results and result.metrics.scorers == (
        "balanced_accuracy",
    )
    several = neighbors_search(digits.X_train, digits.y_train, cv=3, scoring=METRICS)
    assert "mean_test_score" not in several.cv_results and several.metrics.refit == "accuracy"
    np.testing.assert_array_equal(
        result.cv_results["mean_test_score"], several.cv_results["mean_test_balanced_accuracy"]
    )


def _journaled(tmp_path, name, digits, **params):
    with Journal(tmp_path / f"{name}.sqlite") as journal:
        return neighbors_search(
            digits.X_train, digits.y_train, cv=3, scoring=METRICS, journal=journal, **params
        )


def test_an_extended_search_scores_only_its_new_candidates(client, digits, tmp_path):
    """A larger grid over a finished search's journal: the earlier candidates' scores are read
    back, and the whole equals a fresh search of the larger grid."""
    pipe = grid_file(io_file(tmp_path, THREE_STEPS), 64).estimator
    small = {"pca__n_components": [8], "knn__n_neighbors": [1, 4], "knn__weights": ["uniform"]}
    large = {**small, "pca__n_components": [8, 16], "knn__weights": ["uniform", "distance"]}
    _journaled(tmp_path, "extended", digits, estimator=pipe, param_grid=small)
    with get_task_stream(client) as stream:
        extended = _journaled(tmp_path, "extended", digits, estimator=pipe, param_grid=large)
    fresh = _journaled(tmp_path, "fresh", digits, estimator=pipe, param_grid=large)
    assert extended.n_reused == 2 and fresh.n_reused == 0
    for key in fresh.cv_results:
        assert repr(list(extended.cv_results[key])) == repr(list(fresh.cv_results[key])), key
    # The reused group's neighbours came from the journal: one new group searched, 3 folds.
    assert extended.n_neighbor_searches == 6 and extended.n_loaded == 3
    keys = [str(t["key"]) for t in stream.data if "neighbors-fold-0-group-" in str(t["key"])]
    assert len({key.split("-group-")[1][:8] for key in keys}) == 1  # the new group's alone
    again = _journaled(tmp_path, "extended", digits, estimator=pipe, param_grid=large)
    assert again.n_reused == 8 and again.n_neighbor_searches == 0


def test_more_neighbours_than_the_journal_kept_are_searched_again(client, digits, tmp_path):
    _journaled(tmp_path, "k", digits, param_grid={"n_neighbors": [1, 4]})
    grown = _journaled(tmp_path, "k", digits, param_grid={"n_neighbors": [1, 4, 6]})
    fresh = _journaled(tmp_path, "k-fresh", digits, param_grid={"n_neighbors": [1, 4, 6]})
    assert grown.more_neighbors == [(4, 6)] and grown.n_reused == 0 and grown.n_loaded == 0
    for f in range(3):
        np.testing.assert_array_equal(
            grown.cv_results[f"split{f}_test_f1_macro"], fresh.cv_results[f"split{f}_test_f1_macro"]
        )


def io_file(tmp_path, text: str):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path
