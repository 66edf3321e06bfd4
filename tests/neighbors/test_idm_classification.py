import dataclasses

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from mnistdist.data import load_dataset
from mnistdist.neighbors import DeformationKNNClassifier, KNNClassifier, idm_distances, idm_rerank
from mnistdist.preprocessing import DISTORTION_RECIPES, Deskew, distort_images


def test_rerank_sorts_the_candidates_by_idm(digits_arrays):
    X, _, Q, _ = digits_arrays
    ids = np.tile(np.arange(12), (5, 1))
    dist, order = idm_rerank(Q[:5], X, ids, warp=1, context=1)
    for i in range(5):
        want = idm_distances(np.repeat(Q[i : i + 1], 12, axis=0), X[:12], warp=1, context=1)
        np.testing.assert_allclose(dist[i], np.sort(want))
        np.testing.assert_array_equal(order[i], np.argsort(want, kind="stable"))


def test_better_than_euclidean_on_digits(digits_arrays):
    X, y, Q, yq = digits_arrays
    euclid = KNNClassifier(n_neighbors=3).fit(X, y).score(Q, yq)
    idm = DeformationKNNClassifier(n_neighbors=3, n_candidates=10, warp=1).fit(X, y)
    assert idm.score(Q, yq) > euclid


def test_all_candidates_is_a_full_idm_search(digits_arrays):
    X, y, Q, _ = digits_arrays
    model = DeformationKNNClassifier(n_neighbors=1, n_candidates=len(X), warp=1).fit(X, y)
    dist, _ = model.kneighbors(Q[:3])
    for i in range(3):
        full = idm_distances(np.repeat(Q[i : i + 1], len(X), axis=0), X, warp=1)
        assert dist[i, 0] == pytest.approx(full.min())


def test_clone_pickle_and_predict_alone(tmp_path, digits_arrays):
    X, y, Q, _ = digits_arrays
    model = clone(DeformationKNNClassifier(n_neighbors=4, weights="distance", n_candidates=8))
    model.fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    again = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(again.predict(Q), model.predict(Q))
    np.testing.assert_allclose(again.predict_proba(Q).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_candidates": 2, "n_neighbors": 3}, "n_candidates"),
        ({"warp": -1}, "warp"),
        ({"context": 1.5}, "context"),
        ({"weights": "nearest"}, "weights"),
    ],
)
def test_fit_rejects_bad_parameters(digits_arrays, params, message):
    X, y, _, _ = digits_arrays
    with pytest.raises(ValueError, match=message):
        DeformationKNNClassifier(**params).fit(X, y)


def test_fit_rejects_rows_that_are_not_images():
    with pytest.raises(ValueError, match="square"):
        DeformationKNNClassifier().fit(np.zeros((30, 10)), np.arange(30) % 2)


@pytest.mark.slow
def test_real_mnist_idm_beats_euclidean_on_a_training_holdout(mnist_dir):
    # Training images only: the test set is scored by the report job's final run alone.
    ds = load_dataset("mnist", data_dir=mnist_dir)
    X, y = ds.X_train[:11000].compute(), ds.y_train[:11000]
    deskew = Deskew()
    train, held = deskew.fit_transform(X[:10000]), deskew.transform(X[10000:])
    euclid = KNNClassifier(n_neighbors=4, weights="distance").fit(train, y[:10000])
    idm = DeformationKNNClassifier(n_neighbors=4, weights="distance", n_candidates=20, warp=1)
    idm.fit(train, y[:10000])
    assert idm.score(held, y[10000:]) > euclid.score(held, y[10000:]) + 0.005


def test_reference_copies_are_neighbours_at_their_penalised_distance(digits_arrays):
    X, y, Q, _ = digits_arrays
    params = {"reference_copies": 2, "copy_candidates": 3, "copy_penalty": 0.25}
    params |= {"distortion": "affine", "random_state": 5}
    model = DeformationKNNClassifier(n_neighbors=3, n_candidates=8, warp=1, **params).fit(X, y)
    plain = DeformationKNNClassifier(n_neighbors=3, n_candidates=8, warp=1).fit(X, y)
    dist, ids = model.kneighbors(Q[:6])
    base_d, base_i = plain.kneighbors(Q[:6])
    recipe = dataclasses.replace(DISTORTION_RECIPES["affine"], seed=5)
    for i in range(6):
        # By hand: the 8 candidates, and 2 copies of each of the 3 nearest, drawn by row.
        found = list(zip(base_d[i], base_i[i], strict=True))
        for c in range(2):
            drawn = distort_images(X[base_i[i, :3]], base_i[i, :3], c, recipe)
            d = idm_distances(np.repeat(Q[i : i + 1], 3, axis=0), drawn, warp=1)
            found += list(zip(1.25 * d, base_i[i, :3], strict=True))
        found.sort(key=lambda pair: pair[0])
        np.testing.assert_allclose(dist[i], [d for d, _ in found[:8]], rtol=1e-12)
        np.testing.assert_array_equal(ids[i], [j for _, j in found[:8]])
    # Copies are among the neighbours, and then an image may come twice.
    assert not np.isin(dist, base_d).all()
    assert (ids[:, :, None] == ids[:, None, :]).sum() > ids.size


def test_copies_are_drawn_again_by_a_loaded_model(tmp_path, digits_arrays):
    X, y, Q, yq = digits_arrays
    model = DeformationKNNClassifier(
        n_neighbors=4, weights="distance", n_candidates=10, reference_copies=3
    ).fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    again = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(again.kneighbors(Q)[1], model.kneighbors(Q)[1])
    assert again.score(Q, yq) > 0.9
    # The model holds the training images and the recipe: no copy is stored.
    assert not any(isinstance(v, np.ndarray) and v.size > X.size for v in vars(again).values())


@pytest.mark.parametrize(
    "params, message",
    [
        ({"reference_copies": -1}, "reference_copies"),
        ({"reference_copies": 2, "copy_candidates": 0}, "copy_candidates"),
        ({"copy_penalty": float("nan")}, "copy_penalty"),
        ({"distortion": "melt"}, "distortion"),
        ({"random_state": -3}, "seed"),
    ],
)
def test_fit_rejects_bad_copy_parameters(digits_arrays, params, message):
    X, y, _, _ = digits_arrays
    with pytest.raises(ValueError, match=message):
        DeformationKNNClassifier(**params).fit(X, y)
