import threading
import time

import dask
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mnistdist.model_selection import _refit as final_module
from mnistdist.model_selection import final_model, halving_search
from mnistdist.neighbors import KNNClassifier, Neighbors
from mnistdist.outputs import Journal
from mnistdist.preprocessing import AUGMENTATIONS, Augment, Deskew, augment_shifts
from mnistdist.preprocessing._augment import make_copy

from helpers import counted_deskew, counted_rows


def assert_differences_are_distance_ties(X, Q, ours, theirs, k: int) -> None:
    """Every query whose prediction differs from scikit-learn's has an exact tie at its k-th
    neighbour's distance (the k-th and (k+1)-th nearest training rows equally far), so that
    which of them is a neighbour is arbitrary; any other difference fails."""
    differ = np.flatnonzero(np.asarray(ours) != np.asarray(theirs))
    for i in differ:  # few: one row of distances each
        d = np.sort(((np.asarray(X, np.float64) - np.asarray(Q[i], np.float64)) ** 2).sum(axis=1))
        assert d[k - 1] == d[k], f"query {i}: {ours[i]} vs {theirs[i]} without a tie: {d[: k + 1]}"


def test_the_tie_check_fails_where_a_difference_is_not_a_tie():
    X = np.array([[0.0], [1.0], [3.0], [5.0]])
    assert_differences_are_distance_ties(X, np.array([[2.0]]), [1], [3], k=1)  # 1 or 3: a tie
    with pytest.raises(AssertionError, match="without a tie"):
        assert_differences_are_distance_ties(X, np.array([[1.9]]), [1], [3], k=1)


def test_cluster_predictions_equal_the_saved_model(client, digits, digits_arrays):
    X, y, Q, y_test = digits_arrays
    final = final_model(
        KNNClassifier(n_neighbors=4, weights="distance"),
        digits.X_train,
        y,
        digits.X_test,
        name="plain",
    )
    np.testing.assert_array_equal(final.model.predict(Q), final.y_pred)
    ref = KNeighborsClassifier(n_neighbors=4, weights="distance").fit(X, y).predict(Q)
    assert_differences_are_distance_ties(X, Q, final.y_pred, ref, k=4)
    assert final.accuracy(y_test) > 0.95 and final.n_train == len(y)
    np.testing.assert_allclose(final.proba.sum(axis=1), 1.0)


def test_augmented_model_on_five_times_the_rows(client, digits, digits_arrays):
    _, y, Q, _y_test = digits_arrays
    X_aug, y_aug = augment_shifts(digits.X_train, y)
    final = final_model(
        KNNClassifier(n_neighbors=4, weights="distance"),
        X_aug,
        y_aug,
        digits.X_test,
        name="augmented",
    )
    assert final.n_train == 5 * len(y) and final.model._fit_X.shape == (5 * len(y), 64)
    np.testing.assert_array_equal(final.model.predict(Q), final.y_pred)


def test_the_augmented_search_starts_from_the_plain_models_neighbours(client, digits):
    # Rows tied at 0 distance across the originals and their copies: the merge must break
    # ties to the lower row, as one search of the whole augmented set does.
    y = digits.y_train
    X_aug, y_aug = augment_shifts(digits.X_train, y)
    knn = KNNClassifier(n_neighbors=5, weights="distance")
    plain = final_model(knn, digits.X_train, y, digits.X_test, keep_model=False)
    whole = final_model(knn, X_aug, y_aug, digits.X_test, keep_model=False)
    known = (len(y), plain.neighbors)
    seeded = final_model(knn, X_aug, y_aug, digits.X_test, keep_model=False, known=known)
    np.testing.assert_array_equal(seeded.neighbors.ids, whole.neighbors.ids)
    np.testing.assert_array_equal(seeded.neighbors.dist, whole.neighbors.dist)
    np.testing.assert_array_equal(seeded.y_pred, whole.y_pred)
    assert (seeded.neighbors.ids >= len(y)).any() and (seeded.neighbors.ids < len(y)).any()
    # The first rows are not searched again: what ``known`` says of them is what counts.
    forged = Neighbors(np.zeros_like(plain.neighbors.dist), np.zeros_like(plain.neighbors.ids))
    lied = final_model(knn, X_aug, y_aug, digits.X_test, keep_model=False, known=(len(y), forged))
    assert (lied.neighbors.ids == 0).all()


def test_an_error_during_the_search_stops_the_gathering_beside_it(client, digits, monkeypatch):
    # The model's rows are gathered by a thread beside the test set's search; a search that
    # fails (or a Ctrl-C) must end that thread too, not leave it waiting for the rows.
    slow = dask.array.from_delayed(
        dask.delayed(lambda: (time.sleep(12), np.zeros((1437, 64)))[1])(), (1437, 64), float
    )

    def failing_search(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(final_module, "_test_neighbors", failing_search)
    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        final_model(KNNClassifier(n_neighbors=3), slow, digits.y_train, digits.X_test)
    assert time.perf_counter() - t < 6
    assert not [t for t in threading.enumerate() if t.name.startswith("mnistdist-gather")]


def test_without_keeping_the_model(client, digits):
    final = final_model(
        KNNClassifier(n_neighbors=3),
        digits.X_train,
        digits.y_train,
        digits.X_test,
        keep_model=False,
    )
    assert final.model is None and len(final.y_pred) == 360


def test_pipeline_model(client, digits, digits_arrays):
    X, y, Q, _ = digits_arrays
    pipe = Pipeline(
        [("pca", PCA(n_components=20, random_state=0)), ("knn", KNNClassifier(n_neighbors=3))]
    )
    final = final_model(pipe, digits.X_train, y, digits.X_test, name="pca")
    assert isinstance(final.model, Pipeline)
    np.testing.assert_array_equal(final.model.predict(Q), final.y_pred)
    ref = Pipeline(
        [
            ("pca", PCA(n_components=20, random_state=0)),
            ("knn", KNeighborsClassifier(n_neighbors=3)),
        ]
    ).fit(X, y)
    features = ref[:-1]  # the space the neighbours are searched in
    assert_differences_are_distance_ties(
        features.transform(X), features.transform(Q), final.y_pred, ref.predict(Q), k=3
    )


def test_augmented_pipeline_adds_copies_to_training_rows_only(client, digits, digits_arrays):
    X, y, Q, _y_test = digits_arrays
    pipe = Pipeline(
        [
            ("deskew", Deskew()),
            ("augment", Augment("shift8")),
            ("pca", PCA(20, random_state=0)),
            ("knn", KNNClassifier(n_neighbors=3, weights="distance")),
        ]
    )
    final = final_model(pipe, digits.X_train, y, digits.X_test, name="best")
    assert final.n_train == 9 * len(y) and len(final.y_pred) == len(Q)
    np.testing.assert_array_equal(
        final.model.predict(Q), final.y_pred
    )  # the saved pipeline is the cluster's model
    # By hand: deskew, PCA fitted on the originals, copies of the training images only.
    straight = Deskew().fit_transform(X)
    pca = PCA(20, random_state=0).fit(straight)
    rows = np.concatenate(
        [
            pca.transform(straight),
            *(pca.transform(make_copy(straight, how)) for _, how in AUGMENTATIONS["shift8"]),
        ]
    )
    queries = pca.transform(Deskew().fit_transform(Q))
    ref = KNeighborsClassifier(n_neighbors=3, weights="distance").fit(rows, np.tile(y, 9))
    assert_differences_are_distance_ties(rows, queries, final.y_pred, ref.predict(queries), k=3)


def _counted_pipeline(log) -> Pipeline:
    """Deskewing, shifts and a PCA, whose stateless deskewing counts the rows it makes."""
    deskew = FunctionTransformer(counted_deskew, kw_args={"log": str(log)})
    return Pipeline(
        [
            ("deskew", deskew),
            ("augment", Augment("shift4")),
            ("pca", PCA(10, random_state=0)),
            ("knn", KNNClassifier(n_neighbors=3)),
        ]
    )


def test_stateless_steps_run_once_where_a_fitted_step_follows(client, digits, tmp_path):
    # The fit of the PCA and the reference after it read the same deskewed rows: made once.
    log = tmp_path / "deskewed"
    pipe = _counted_pipeline(log)
    final_model(pipe, digits.X_train, digits.y_train, digits.X_test, keep_model=False)
    assert counted_rows(log) == len(digits.y_train) + len(digits.y_test)


def test_a_refit_deskews_only_the_images_its_search_did_not(client, digits, tmp_path):
    log = tmp_path / "deskewed"
    pipe = _counted_pipeline(log)
    grid = {"pca__n_components": [8, 16], "knn__n_neighbors": [1, 3, 5]}
    X, y = digits.X_train, digits.y_train
    shared = {}
    result = halving_search(
        X, y, estimator=pipe, param_grid=grid, cv=3, min_resources=150, shared=shared
    )
    last = len(result.rounds[-1].rows)
    assert last < len(y)  # the last round held some of the images
    assert counted_rows(log) == last
    chosen = clone(pipe).set_params(**result.best_params)
    with Journal(tmp_path / "journal.sqlite") as journal:
        taken = final_model(chosen, X, y, digits.X_test, shared=shared, journal=journal)
        assert counted_rows(log) == len(y) - last + len(digits.y_test)
        # The same neighbours by the same names: a refit without the search finds them.
        again = final_model(chosen, X, y, digits.X_test, journal=journal)
    assert again.loaded and not taken.loaded
    alone = final_model(chosen, X, y, digits.X_test)
    for final in (taken, again):
        np.testing.assert_array_equal(final.y_pred, alone.y_pred)
        np.testing.assert_array_equal(final.proba, alone.proba)
        np.testing.assert_array_equal(final.model.predict(digits.X_test), alone.y_pred)


def test_test_set_search_screened_by_the_bound_where_asked(client, digits, monkeypatch):
    calls = []
    real = final_module.bounded_kneighbors_dask

    def spy(*args, **kwargs):
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(final_module, "bounded_kneighbors_dask", spy)
    knn = KNNClassifier(n_neighbors=4, weights="distance")
    runs = {}
    for p in (0, 16, 128):  # 128 of the digits' 64 features would not pay: searched in full
        with dask.config.set({"mnistdist.bound-components": p}):
            runs[p] = final_model(knn, digits.X_train, digits.y_train, digits.X_test, name="plain")
    assert calls == [16]
    for p in (16, 128):
        np.testing.assert_array_equal(runs[p].y_pred, runs[0].y_pred)
        np.testing.assert_array_equal(runs[p].proba, runs[0].proba)
