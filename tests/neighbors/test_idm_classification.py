import joblib
import numpy as np
import pytest
from sklearn.base import clone

from mnistdist.data import load_dataset
from mnistdist.neighbors import DeformationKNNClassifier, KNNClassifier, idm_distances, idm_rerank
from mnistdist.preprocessing import Deskew


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
