import csv

import numpy as np
import pytest
import scipy.sparse as sp
from dask.utils import key_split
from distributed import get_task_stream
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mnistdist.errors import OptionError
from mnistdist.model_selection import DEFAULT_GRID, neighbors_search
from mnistdist.model_selection._pipeline_tasks import Preprocessing
from mnistdist.model_selection._group_neighbors import _fold_neighbors
from mnistdist.neighbors import KNNClassifier
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
    found = _fold_neighbors(X, y, prep, folds, 30, "", journal=None)
    for (train, test), (dist, ids) in zip(folds, ((f.dist, f.ids) for f in found), strict=True):
        assert ids.max() >= n  # copies are there...
        source = ids % n
        assert np.isin(source, train).all()  # ...but only of the fold's training images
        assert not np.isin(source, test).any()
        # A validation image's own copies are the nearest thing to it; they must not be found.
        assert (dist > 0).all()


def test_augmented_grid_shares_deskewing(client, digits):
    """Deskewing runs once for all folds and groups.

    Candidates differing in KNN params share each group's search.
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
