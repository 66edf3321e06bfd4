import numpy as np
import pytest
from distributed import get_task_stream
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from mnistdist.errors import OptionError
from mnistdist.model_selection import final_model, get_preset, neighbors_search
from mnistdist.neighbors import DeformationKNNClassifier, search_rerank_throughput
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


def test_deform_preset_searches_its_own_pipeline():
    preset = get_preset("deform")
    assert isinstance(preset.estimator.steps[-1][1], DeformationKNNClassifier)
    assert preset.estimator.get_params()["knn__n_candidates"] >= max(
        preset.param_grid["knn__n_neighbors"]
    )
