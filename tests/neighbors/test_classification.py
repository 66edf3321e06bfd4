import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from mnistdist.neighbors import KNNClassifier, vote


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_same_predictions_as_sklearn(digits_arrays, weights, k):
    X, y, Q, _ = digits_arrays
    # A tiny jitter removes exact distance ties, the one place where the two
    # may pick different (equally near) neighbours.
    rng = np.random.default_rng(k)
    Xj, Qj = X + rng.uniform(0, 1e-3, X.shape), Q + rng.uniform(0, 1e-3, Q.shape)
    ours = KNNClassifier(n_neighbors=k, weights=weights, ref_rows=500).fit(Xj, y)
    ref = KNeighborsClassifier(n_neighbors=k, weights=weights).fit(Xj, y)
    np.testing.assert_array_equal(ours.predict(Qj), ref.predict(Qj))
    np.testing.assert_allclose(ours.predict_proba(Qj), ref.predict_proba(Qj), atol=1e-9)
    # On the raw integer pixels, ties are common but rarely change a vote.
    same = KNNClassifier(n_neighbors=k, weights=weights).fit(X, y).predict(
        Q
    ) == KNeighborsClassifier(n_neighbors=k, weights=weights).fit(X, y).predict(Q)
    assert same.mean() >= 0.99


def test_keeps_uint8_training_set(digits_arrays):
    X, y, _, _ = digits_arrays
    model = KNNClassifier().fit(X, y)
    assert model._fit_X.dtype == np.uint8 and model.n_features_in_ == 64


def test_zero_distance_takes_all_the_weight():
    dist = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 4.0]])
    ids = np.array([[0, 1, 2], [0, 1, 2]])
    codes = np.array([0, 1, 1])
    proba = vote(dist, ids, codes, 2, 3, "distance")
    np.testing.assert_array_equal(proba[0], [1.0, 0.0])
    np.testing.assert_allclose(proba[1], np.array([1, 0.5 + 0.25]) / 1.75)


def test_uniform_ties_go_to_the_lower_class():
    proba = vote(np.ones((1, 4)), np.array([[0, 1, 2, 3]]), np.array([2, 2, 1, 1]), 3, 4, "uniform")
    assert np.argmax(proba) == 1


def test_string_labels(digits_arrays):
    X, y, Q, _ = digits_arrays
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    pred = KNNClassifier(n_neighbors=3).fit(X, names[y]).predict(Q[:20])
    np.testing.assert_array_equal(
        pred, names[KNNClassifier(n_neighbors=3).fit(X, y).predict(Q[:20])]
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_neighbors": 0}, "positive integer"),
        ({"weights": "inverse"}, "weights must be"),
        ({"n_neighbors": 2.5}, "positive integer"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        KNNClassifier(**params).fit(np.zeros((5, 2)), [0, 1, 0, 1, 0])


def test_more_neighbors_than_samples():
    with pytest.raises(ValueError, match=r"larger than the training set \(n_samples = 3\)"):
        KNNClassifier(n_neighbors=4).fit(np.zeros((3, 2)), [0, 1, 0])
