import numpy as np
import pytest
from distributed import get_task_stream
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from mnistdist.errors import OptionError
from mnistdist.model_selection import final_model, get_preset, neighbors_search
from mnistdist.neighbors import (
    DeformationKNNClassifier,
    idm_rerank,
    kneighbors,
    predict_from_neighbors,
    reference_copies,
    search_rerank_throughput,
)
from mnistdist.preprocessing import Deskew

GRID = {"knn__warp": [0, 1], "knn__n_neighbors": [1, 3], "knn__weights": ["uniform", "distance"]}


def _pipeline():
    return Pipeline(
        [("deskew", Deskew()), ("knn", DeformationKNNClassifier(n_candidates=6, warp=1))]
    )


def test_search_scores_equal_sklearns_grid_search(client, digits, digits_arrays):
    X, y, _, _ = digits_arrays
    with get_task_stream(client) as stream:
        ours = neighbors_search(digits.X_train, y, estimator=_pipeline(), param_grid=GRID)
    ref = GridSearchCV(_pipeline(), GRID, cv=5).fit(X, y)
    assert ours.cv_results["params"] == ref.cv_results_["params"]
    np.testing.assert_allclose(
        ours.cv_results["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-9
    )
    keys = [str(t["key"]) for t in stream.data]
    for f in range(5):  # a group's tasks end in -group- and its settings' token
        rerank = f"rerank-idm-fold-{f}-group-"
        assert len({k.split(rerank)[1][:8] for k in keys if rerank in k}) == 2
    # The two warp settings re-rank the same Euclidean candidates, searched once.
    assert ours.n_neighbor_searches == 5 and ours.n_groups == 2
    stats = search_rerank_throughput(
        _pipeline(), ours, {"workers": [{"threads": 1}] * 2}, {"total": 2 * ours.seconds["rerank"]}
    )
    assert stats["pairs"] == len(y) * 6 * 2 and stats["share_of_run"] == 0.5
    assert stats["pairs_per_second_per_core"] > 0


def test_candidates_and_context_are_searched_like_the_rest(client, digits, digits_arrays):
    X, y, _, _ = digits_arrays
    grid = {"knn__n_candidates": [4, 8], "knn__context": [0, 1], "knn__n_neighbors": [1, 3]}
    ours = neighbors_search(digits.X_train, y, estimator=_pipeline(), param_grid=grid)
    ref = GridSearchCV(_pipeline(), grid, cv=5).fit(X, y)
    assert ours.cv_results["params"] == ref.cv_results_["params"]
    np.testing.assert_allclose(
        ours.cv_results["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-9
    )
    # Two candidate counts: two Euclidean searches, each shared by both contexts.
    assert ours.n_groups == 4 and ours.n_neighbor_searches == 2 * 5


def test_final_predictions_equal_the_saved_model(client, digits, digits_arrays):
    X, y, Q, y_test = digits_arrays
    chosen = _pipeline().set_params(knn__n_neighbors=3, knn__weights="distance")
    with get_task_stream(client) as stream:
        final = final_model(chosen, digits.X_train, y, digits.X_test, name="deform")
    assert any("'rerank-idm-deform-" in str(t["key"]) for t in stream.data)
    assert isinstance(final.model.steps[-1][1], DeformationKNNClassifier)
    np.testing.assert_array_equal(final.model.predict(Q), final.y_pred)
    np.testing.assert_array_equal(clone(chosen).fit(X, y).predict(Q), final.y_pred)
    assert final.accuracy(y_test) > 0.9


def test_stateful_steps_before_reranking_are_refused(client, digits):
    pipe = Pipeline([("pca", PCA(16)), ("knn", DeformationKNNClassifier(n_candidates=4))])
    with pytest.raises(OptionError, match="image rows"):
        neighbors_search(digits.X_train, digits.y_train, estimator=pipe, param_grid=GRID)


@pytest.mark.parametrize("name", ["deform", "elastic"])
def test_deformation_presets_search_their_own_pipelines(name):
    preset = get_preset(name)
    assert isinstance(preset.estimator.steps[-1][1], DeformationKNNClassifier)
    assert preset.estimator.get_params()["knn__n_candidates"] >= max(
        preset.param_grid["knn__n_neighbors"]
    )
    assert preset.holds_gil


def test_elastic_preset_lets_cross_validation_decide_on_the_copies():
    preset = get_preset("elastic")
    assert preset.param_grid["knn__reference_copies"] == [0, 10]
    knn = preset.estimator.steps[-1][1]
    assert (knn.warp, knn.copy_candidates, knn.copy_penalty, knn.distortion) == (
        2,
        10,
        0.2,
        "elastic",
    )


def test_search_with_reference_copies_equals_the_fold_loop_by_hand(client, digits, digits_arrays):
    """Copies are drawn for the training set's rows, in every fold as in the final model."""
    X, y, _, _ = digits_arrays
    pipe = _pipeline().set_params(
        knn__reference_copies=2, knn__copy_candidates=3, knn__distortion="affine"
    )
    grid = {"knn__n_neighbors": [1, 3], "knn__weights": ["distance"]}
    ours = neighbors_search(digits.X_train, y, estimator=pipe, param_grid=grid, cv=3)
    knn = pipe.steps[-1][1]
    images = Deskew().fit_transform(X)
    expected = np.zeros((2, 3))
    for f, (train, test) in enumerate(ours.folds):
        train, test = np.sort(train), np.sort(test)
        _, cand = kneighbors(images[test], images[train], 6)
        dist, ids = idm_rerank(images[test], images, train[cand], 1, 1, reference_copies(knn))
        assert np.isin(ids, train).all()  # no validation image, nor a copy of one
        for c, k in enumerate((1, 3)):
            pred, _ = predict_from_neighbors(dist, ids, y, k, "distance")
            expected[c, f] = (pred == y[test]).mean()
    np.testing.assert_allclose(ours.cv_results["mean_test_score"], expected.mean(axis=1))
    stats = search_rerank_throughput(
        pipe, ours, {"workers": [{"threads": 1}] * 2}, {"total": ours.seconds["rerank"]}
    )
    assert stats["pairs"] == len(y) * (6 + 2 * 3)
