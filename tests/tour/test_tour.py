"""The chapter's tour on the bundled digits: split into tasks, it equals scikit-learn's own calls.

Sections mirror the modules: ``tour_fits`` (each split fit against the
unsplit estimator, without a cluster), ``tour_graph`` and ``tour`` (the
whole tour on a real two-process cluster against scikit-learn's
``cross_val_score``, ``cross_val_predict`` and meta-estimators, number by
number, with exact equality), ``cpu_time``, and the ``tour`` job.
"""

import json
import time
import warnings

import numpy as np
import pytest
from distributed import Client, get_task_stream
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score
from sklearn.model_selection import KFold, cross_val_predict, cross_val_score
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mnistdist.drawing import draw_here
from mnistdist.runtime import _cpu_time as cpu_time
from mnistdist.tour import TourConfig, build_tour
from mnistdist.tour import _fits as fits
from mnistdist.tour import _parts as tour

from helpers import mnistdist

#: Small enough for seconds on the digits; odd sizes, so chunks and blocks split unevenly.
CONFIG = TourConfig(
    svc_size=500, forest_trees=20, forest_chunk=7, block_rows=256, denoise_test_size=120
)


@pytest.fixture(scope="module")
def data(digits_arrays):
    X, y, X_test, _ = digits_arrays
    return X, y, X_test


@pytest.fixture(autouse=True)
def _quiet_sgd():
    # The book's SGDs stop at max_iter on some classes; scikit-learn warns, as in the book.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# --- tour_fits: each split fit equals the unsplit one -------------------------------------


def test_never5_accuracy_is_the_share_of_non_fives(data):
    X, y, _ = data
    scores = cross_val_score(fits.Never5Classifier(), X, y == 5, cv=3, scoring="accuracy")
    expected = [np.mean(y[test] != 5) for _, test in KFold(3).split(X)]
    np.testing.assert_allclose(scores, expected)


def test_sgd_one_vs_rest_class_by_class_is_bit_exact(data):
    X, y, _ = data
    whole = fits.sgd().fit(X, y)
    classes = [fits.fit_sgd_class(fits.sgd(), X, y, None, None, i) for i in range(10)]
    split = fits.sgd_from_classes(fits.sgd(), classes)
    np.testing.assert_array_equal(split.coef_, whole.coef_)
    np.testing.assert_array_equal(split.intercept_, whole.intercept_)
    assert (split.n_iter_, split.t_) == (whole.n_iter_, whole.t_)
    np.testing.assert_array_equal(split.decision_function(X), whole.decision_function(X))
    np.testing.assert_array_equal(split.predict(X), whole.predict(X))


def test_one_vs_one_pair_by_pair_and_one_vs_rest_class_by_class(data):
    X, y, _ = data
    classes = np.unique(y)
    pairs = [fits.fit_ovo_pair(fits.sgd(), X, y, a, b) for i, a in enumerate(classes)
             for b in classes[i + 1 :]]  # fmt: skip
    assert len(pairs) == 45
    ovo = OneVsOneClassifier(fits.sgd()).fit(X, y)
    np.testing.assert_array_equal(fits.ovo_predict(fits.sgd(), classes, pairs, X), ovo.predict(X))
    n, svc = 300, SVC(random_state=fits.SEED)
    models = [fits.fit_ovr_class(svc, X, y, i, n) for i in range(10)]
    ovr = OneVsRestClassifier(svc).fit(X[:n], y[:n])
    np.testing.assert_array_equal(fits.ovr_predict(svc, y, models, X, n), ovr.predict(X))


def test_forest_in_uneven_chunks_of_trees_is_bit_exact(data):
    X, y, _ = data
    forest = RandomForestClassifier(n_estimators=11, random_state=fits.SEED)
    whole = forest.fit(X, y)
    bounds = [(0, 4), (4, 5), (5, 11)]
    chunks = [
        fits.forest_chunk_proba(forest, X, y, None, None, a, b, slice(None)) for a, b in bounds
    ]
    assert [len(c) for c in chunks] == [4, 1, 6]
    np.testing.assert_array_equal(fits.forest_proba(chunks), whole.predict_proba(X))


def test_knn_in_blocks_equals_one_call(data):
    X, y, _ = data
    y_multi = fits.multilabel_targets(y)
    folds = list(KFold(3).split(X))
    blocks = [fits.knn_predict_block(X, y_multi, folds, 0, a, a + 256) for a in (0, 256)]
    whole = KNeighborsClassifier().fit(X[folds[0][0]].astype(np.float32), y_multi[folds[0][0]])
    np.testing.assert_array_equal(
        np.concatenate(blocks), whole.predict(X[folds[0][1]].astype(np.float32))
    )


def test_multilabel_targets():
    targets = fits.multilabel_targets(np.array([0, 7, 8, 9, 3]))
    np.testing.assert_array_equal(
        targets, [[False, False], [True, True], [True, False], [True, True], [False, True]]
    )


# --- tour_graph and tour: the whole tour on the cluster --------------------------------------


@pytest.fixture(scope="module")
def toured(cluster, data):
    """The tour on the cluster once, with the keys of every task it ran."""
    X, y, X_test = data
    with Client(cluster, set_as_default=True) as client, get_task_stream(client) as stream:
        numbers, figs = tour.run_tour(X, y, X_test, CONFIG)
    keys = {str(t["key"]).rsplit("-", 1)[0] for t in stream.data}  # less the run's token
    return numbers, figs, keys


def _expected(X, y, X_test) -> dict:
    """Every number of the tour by scikit-learn's own, unsplit calls (the book's code)."""
    y5, sgd, n = y == 5, fits.sgd, CONFIG.svc_size
    forest = RandomForestClassifier(n_estimators=CONFIG.forest_trees, random_state=fits.SEED)
    X_scaled = StandardScaler().fit_transform(X.astype(np.float64))
    y_pred5 = cross_val_predict(sgd(), X, y5, cv=3)
    y_multi = fits.multilabel_targets(y)
    multi = cross_val_predict(KNeighborsClassifier(), X.astype(np.float32), y_multi, cv=3)
    svc = SVC(random_state=fits.SEED).fit(X[:n], y[:n])
    ten = sgd().fit(X, y)
    return {
        "never5_cv_accuracy": cross_val_score(
            fits.Never5Classifier(), X, y5, cv=3, scoring="accuracy"
        ).tolist(),
        "sgd5_cv_accuracy": cross_val_score(sgd(), X, y5, cv=3, scoring="accuracy").tolist(),
        "sgd5_confusion_matrix": confusion_matrix(y5, y_pred5).tolist(),
        "sgd5_precision": precision_score(y5, y_pred5),
        "sgd5_recall": recall_score(y5, y_pred5),
        "sgd5_f1": f1_score(y5, y_pred5),
        "scores": cross_val_predict(sgd(), X, y5, cv=3, method="decision_function"),
        "forest5": cross_val_predict(forest, X, y5, cv=3, method="predict_proba")[:, 1],
        "svc_prediction": svc.predict(X[:1])[0],
        "svc_decision_scores": np.round(svc.decision_function(X[:1])[0], 2).tolist(),
        "ovr_prediction": OneVsRestClassifier(svc).fit(X[:n], y[:n]).predict(X[:1])[0],
        "sgd_prediction": ten.predict(X[:1])[0],
        "sgd_decision_scores": np.round(ten.decision_function(X[:1])[0]).tolist(),
        "ovo_prediction": OneVsOneClassifier(sgd()).fit(X, y).predict(X[:1])[0],
        "forest_prediction_proba": np.round(forest.fit(X, y).predict_proba(X[:1])[0], 3).tolist(),
        "sgd_cv_accuracy": cross_val_score(sgd(), X, y, cv=3, scoring="accuracy").tolist(),
        "sgd_scaled_cv_accuracy": cross_val_score(sgd(), X_scaled, y, cv=3).tolist(),
        "sgd_scaled_confusion_matrix": confusion_matrix(
            y, cross_val_predict(sgd(), X_scaled, y, cv=3)
        ).tolist(),
        "multilabel_f1_macro": f1_score(y_multi, multi, average="macro"),
        "multilabel_f1_weighted": f1_score(y_multi, multi, average="weighted"),
    }


def test_split_tour_equals_scikit_learns_unsplit_calls(toured, data):
    numbers, _, _ = toured
    expected = _expected(*data)
    scores, forest5 = expected.pop("scores"), expected.pop("forest5")
    for key, value in expected.items():
        assert numbers[key] == value, key  # exact: the same fits on the same folds
    assert numbers["sgd5_manual_cv_accuracy"] == numbers["sgd5_cv_accuracy"]
    y5 = data[1] == 5
    threshold, _, recall = tour.threshold_for_precision(y5, scores)
    assert numbers["threshold_90_precision"] == threshold
    assert numbers["recall_at_90_precision"] == recall
    from sklearn.metrics import roc_auc_score

    assert numbers["sgd5_roc_auc"] == roc_auc_score(y5, scores)
    assert numbers["forest5_roc_auc"] == roc_auc_score(y5, forest5)
    assert numbers["forest5_recall"] == recall_score(y5, forest5 >= 0.5)
    assert (numbers["ovr_n_estimators"], numbers["ovo_n_estimators"]) == (10, 45)


def test_denoising_equals_one_knn_over_the_test_images(toured, data):
    numbers, figs, _ = toured
    X, _, X_test = data
    rng = np.random.default_rng(fits.SEED)
    noisy, test_noisy = fits.add_noise(X, rng), fits.add_noise(X_test, rng)
    n = CONFIG.denoise_test_size
    cleaned = KNeighborsClassifier().fit(noisy.astype(np.float32), X)
    cleaned = cleaned.predict(test_noisy[:n].astype(np.float32))
    truth = X_test[:n].astype(np.float64)
    assert numbers["denoise_test_size"] == n
    assert numbers["denoise_mae_cleaned"] == float(np.mean(np.abs(cleaned - truth)))
    assert numbers["denoise_mae_noisy"] == float(np.mean(np.abs(test_noisy[:n] - truth)))
    assert numbers["denoise_mae_cleaned"] < numbers["denoise_mae_noisy"]
    assert "tour_denoise.png" in figs


def test_every_fit_is_a_named_task_and_shared_fits_run_once(toured):
    _, _, keys = toured
    folds, classes = range(3), range(10)
    expected = (
        {f"sgd-ovr-fold-{f}-class-{c}" for f in folds for c in classes}
        | {f"sgd-scaled-fold-{f}-class-{c}" for f in folds for c in classes}
        | {f"sgd-ovr-class-{c}" for c in classes}
        | {f"ovo-pair-{a}-{b}" for a in classes for b in classes if a < b}
        | {f"ovr-svc-class-{c}" for c in classes}
        | {"forest-trees-0-6", "forest-trees-7-13", "forest-trees-14-19", "svc-some-digit"}
        | {f"forest5-fold-{f}-trees-14-19" for f in folds}
        | {f"sgd5-fold-{f}" for f in folds}
        | {f"never5-fold-{f}" for f in folds}
        | {f"multilabel-fold-{f}-block-{b}" for f in folds for b in (0, 1)}
        | {"standardize", "denoise-noise", "denoise-block-0", "denoise-score"}
    )
    assert expected <= keys, sorted(expected - keys)
    # The 5-detector's four calls share three fits; the scaled SGD's two calls share thirty.
    assert len({k for k in keys if k.startswith("sgd5-fold-")}) == 3
    assert len({k for k in keys if k.startswith("sgd-scaled-fold-") and "-class-" in k}) == 30


def test_groups_of_longer_tasks_run_first(client, data):
    graph = build_tour(*data, CONFIG, groups=("sgd-ten", "denoise"))
    futures = client.compute([*graph.groups["sgd-ten"].tasks, *graph.groups["denoise"].tasks])
    client.gather(futures)

    def priorities(dask_scheduler):
        tasks = dask_scheduler.tasks.items()
        return {str(key): ts.priority[0] for key, ts in tasks if ts.priority}  # not scattered data

    first = {k.rsplit("-", 1)[0]: p for k, p in client.run_on_scheduler(priorities).items()}
    # The scheduler runs the lowest first: every SGD fit before any denoising task.
    assert max(first[f"sgd-ovr-class-{c}"] for c in range(10)) < first["denoise-block-0"]


def test_the_detector_alone_equals_its_part_of_the_tour(client, toured, data):
    X, y, _ = data
    with get_task_stream(client) as stream:
        numbers, scores = tour.detector(X, y)
    assert all(numbers[key] == value for key, value in toured[0].items() if key in numbers)
    assert scores.shape == y.shape
    names = {str(t["key"]).rsplit("-", 1)[0] for t in stream.data}
    assert names == {f"{name}-fold-{f}" for name in ("sgd5", "never5") for f in range(3)}


def test_tour_figures_and_seconds(toured):
    numbers, figs, _ = toured
    assert set(figs) == set(tour.CAPTIONS)
    pngs = draw_here(figs)  # what the job's drawing process draws
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs.values())
    assert set(numbers["seconds"]) >= set(tour.PART_GROUPS) | {"graph", "client"}
    assert numbers["seconds"]["graph"] == max(numbers["seconds"][p] for p in tour.PART_GROUPS)


# --- cpu_time -------------------------------------------------------------------------------


def _burner():
    # A closure, so it is pickled by value: the workers cannot import the tests.
    def burn(seconds: float) -> float:
        import time

        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return seconds

    return burn


def test_cpu_time_counts_the_workers_by_their_own_counters(client):
    with cpu_time.measure_cpu(client) as use:
        client.gather([client.submit(_burner(), 0.3, pure=False) for _ in range(2)])
    # psutil counts clock ticks (10 ms): allow a tick or two under the 0.6 s burned.
    assert use.workers_s >= 0.55 and len(use.workers) == 2
    assert 0 < use.client_s == pytest.approx(time.process_time(), abs=1)
    summary = use.summary()
    share = use.client_s / (use.client_s + use.workers_s)
    assert summary["client_share"] == pytest.approx(share, abs=1e-4)
    assert use.line().startswith("cpu: client ")


# --- the job --------------------------------------------------------------------------------


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
    assert set(numbers["seconds"]) >= set(tour.PART_GROUPS) | {"total"}
    cpu = numbers["cpu"]
    assert cpu["client_s"] > 0 and cpu["workers_s"] > 0 and len(cpu["workers"]) == 2
    assert "cpu: client " in proc.stdout
    for name in numbers["figures"]:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
    page = (tmp_path / "report.html").read_text()
    assert "Classification tour" in page and "CPU time: the job's process" in page
    again = mnistdist(
        "tour", "--dataset", "digits", "--out", tmp_path, "--scheduler", cluster.scheduler_address
    )
    assert again.returncode == 1 and "already holds results (tour.json)" in again.stderr
