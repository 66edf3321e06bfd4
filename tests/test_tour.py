"""The chapter's tour on the bundled digits: each part computes what it claims."""

import json

import numpy as np
import pytest
from distributed import get_task_stream
from sklearn.metrics import precision_score
from sklearn.model_selection import KFold, cross_val_score

from mnistdist import tour

from helpers import mnistdist


@pytest.fixture(scope="module")
def data(digits_arrays):
    X, y, X_test, _ = digits_arrays
    return X, y, X_test


def test_never5_accuracy_is_the_share_of_non_fives(data):
    X, y, _ = data
    scores = cross_val_score(tour.Never5Classifier(), X, y == 5, cv=3, scoring="accuracy")
    expected = [np.mean(y[test] != 5) for _, test in KFold(3).split(X)]
    np.testing.assert_allclose(scores, expected)


def test_detector_on_the_cluster(client, data):
    X, y, _ = data
    with get_task_stream(client) as stream:
        numbers, _, scores = tour.part_detector(X, y)
    keys = {str(t["key"]) for t in stream.data}
    manual = {k.rsplit("-", 1)[0] for k in keys if k.startswith("sgd5-manual-cv-fold-")}
    assert manual == {
        f"sgd5-manual-cv-fold-{f}" for f in range(3)
    }  # the hand-written loop ran as named tasks
    assert len(keys) > 3  # and the cross-validations ran there too (joblib's Dask backend)
    # The hand-written loop is cross_val_score's folds and estimator: the same numbers.
    np.testing.assert_allclose(numbers["sgd5_manual_cv_accuracy"], numbers["sgd5_cv_accuracy"])
    (tn, fp), (fn, tp) = numbers["sgd5_confusion_matrix"]
    assert tn + fp + fn + tp == len(y) and fn + tp == np.sum(y == 5)
    assert numbers["sgd5_precision"] == pytest.approx(tp / (tp + fp))
    assert numbers["sgd5_recall"] == pytest.approx(tp / (tp + fn))
    p, r = numbers["sgd5_precision"], numbers["sgd5_recall"]
    assert numbers["sgd5_f1"] == pytest.approx(2 * p * r / (p + r))
    assert scores.shape == (len(y),)


def test_ninety_percent_precision_threshold(data):
    X, y, _ = data
    _, _, scores = tour.part_detector(X, y)
    threshold, precision, recall = tour.threshold_for_precision(y == 5, scores)
    assert precision >= 0.90 and precision == precision_score(y == 5, scores >= threshold)
    # It is the lowest such threshold: one score lower, precision drops below 90%.
    below = scores[scores < threshold].max()
    assert precision_score(y == 5, scores >= below) < 0.90
    numbers, figs = tour.part_tradeoff(y, scores)
    assert (
        numbers["threshold_90_precision"] == threshold
        and numbers["recall_at_90_precision"] == recall
    )
    assert set(figs) == {"tour_threshold.png", "tour_precision_recall.png"}


def test_roc(client, data):
    X, y, _ = data
    _, _, scores = tour.part_detector(X, y)
    numbers, figs = tour.part_roc(X, y, scores, tour.TourConfig(forest_trees=20))
    assert 0.5 < numbers["sgd5_roc_auc"] <= 1 and 0.5 < numbers["forest5_roc_auc"] <= 1
    assert "tour_roc.png" in figs


def test_multiclass_strategies(client, data):
    X, y, _ = data
    numbers, _, X_scaled = tour.part_multiclass(
        X, y, tour.TourConfig(svc_size=500, forest_trees=20)
    )
    assert numbers["ovr_n_estimators"] == 10
    assert numbers["ovo_n_estimators"] == 10 * 9 // 2
    assert len(numbers["svc_decision_scores"]) == 10 and numbers["svc_train_size"] == 500
    assert np.argmax(numbers["svc_decision_scores"]) == numbers["svc_prediction"]
    assert len(numbers["sgd_cv_accuracy"]) == len(numbers["sgd_scaled_cv_accuracy"]) == 3
    np.testing.assert_allclose(X_scaled.mean(axis=0), 0, atol=1e-9)


def test_multilabel_targets_and_f1(client, data):
    X, y, _ = data
    targets = tour.multilabel_targets(np.array([0, 7, 8, 9, 3]))
    np.testing.assert_array_equal(
        targets, [[False, False], [True, True], [True, False], [True, True], [False, True]]
    )
    numbers, _ = tour.part_multilabel(X, y)
    assert 0.9 < numbers["multilabel_f1_macro"] <= 1 and len(numbers["multilabel_prediction"]) == 2


def test_denoising_cleans_and_is_reproducible(client, data):
    X, _, X_test = data
    config = tour.TourConfig(denoise_test_size=120)
    first, figs = tour.part_denoise(X, X_test, config)
    again, _ = tour.part_denoise(X, X_test, config)
    assert first == again
    assert first["denoise_test_size"] == 120
    assert first["denoise_mae_cleaned"] < first["denoise_mae_noisy"]
    assert "tour_denoise.png" in figs


def test_tour_job_writes_json_figures_and_report_section(tmp_path, cluster):
    proc = mnistdist(
        "tour",
        "--dataset",
        "digits",
        "--forest-trees",
        "20",
        "--out",
        tmp_path,
        "--scheduler",
        cluster.scheduler_address,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads((tmp_path / "tour.json").read_text())
    for key in (
        "never5_cv_accuracy",
        "sgd5_cv_accuracy",
        "sgd5_confusion_matrix",
        "sgd5_precision",
        "sgd5_recall",
        "sgd5_f1",
        "sgd5_roc_auc",
        "forest5_roc_auc",
        "multilabel_f1_macro",
        "sgd_cv_accuracy",
        "sgd_scaled_cv_accuracy",
        "seconds",
    ):
        assert key in numbers, key
    assert set(numbers["seconds"]) >= {
        "detector",
        "tradeoff",
        "roc",
        "multiclass",
        "errors",
        "multilabel",
        "denoise",
        "total",
    }
    for name in numbers["figures"]:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
    assert "Classification tour" in (tmp_path / "report.html").read_text()
    again = mnistdist(
        "tour", "--dataset", "digits", "--out", tmp_path, "--scheduler", cluster.scheduler_address
    )
    assert again.returncode == 1 and "already holds results (tour.json)" in again.stderr
