"""Real MNIST, end to end: runs when MNISTDIST_DATA names the IDX folder (CI sets it)."""

import json
import os

import numpy as np
import pytest
from distributed import Client
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from mnistdist.data import load_dataset
from mnistdist.model_selection import DEFAULT_GRID, neighbors_search
from mnistdist.tour import _parts as tour

from helpers import mnistdist

pytestmark = pytest.mark.slow
#: scikit-learn 1.9.1 reproduces the book's SGD numbers exactly; other versions may drift a little.
SGD_TOLERANCE = 0.01


def test_real_mnist_loads_and_checks(mnist_dir):
    ds = load_dataset("mnist", data_dir=mnist_dir)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.y_train[0] == 5  # as the book and OpenML have it
    assert np.bincount(ds.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    first = ds.X_train[:1].compute(scheduler="sync")
    assert first.max() == 255 and first.dtype == np.uint8


def test_search_matches_sklearn_on_real_digits(client, mnist_dir):
    ds = load_dataset("mnist", data_dir=mnist_dir, train_size=6000)
    X, y = ds.X_train.compute(), ds.y_train
    ours = neighbors_search(ds.X_train, y, cv=3)
    ref = GridSearchCV(KNeighborsClassifier(), DEFAULT_GRID, cv=3, n_jobs=-1).fit(
        X.astype(np.float64), y
    )
    for f in range(3):
        np.testing.assert_allclose(
            ours.cv_results[f"split{f}_test_score"],
            ref.cv_results_[f"split{f}_test_score"],
            atol=1e-3,
        )
    assert ours.best_params == ref.best_params_


def test_main_job_on_full_mnist_reaches_the_book_in_2gb_workers(start_cluster, tmp_path, mnist_dir):
    """The whole report on real MNIST, on two worker processes limited to 2 GiB each.

    The 10,000 x 300,000 augmented prediction must fit without the nannies
    restarting a worker: same worker processes before and after, and each
    worker's measured peak memory below the limit.
    """
    cluster = start_cluster(2, env={"MNISTDIST_WORKER_MEMORY": "2GiB"})
    with Client(cluster.address) as client:
        pids = client.run(os.getpid)
        proc = mnistdist(
            "report",
            "--data",
            mnist_dir,
            "--out",
            tmp_path,
            "--scheduler",
            cluster.address,
            "--quiet",
            timeout=1200,
        )
        assert proc.returncode == 0, proc.stderr
        assert client.run(os.getpid) == pids  # no worker was restarted
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    peaks = metrics["cluster"]["peak_memory_bytes"]
    assert len(peaks) == 2 and all(0 < peak < 2 * 2**30 for peak in peaks.values()), peaks
    assert metrics["best_params"] == {"n_neighbors": 4, "weights": "distance"}
    assert metrics["search"]["best_score"] == pytest.approx(0.9716, abs=5e-4)
    assert metrics["test_accuracy_plain"] > 0.97
    assert metrics["test_accuracy_augmented"] == pytest.approx(0.9763, abs=2e-3)
    print(
        json.dumps(
            {
                "seconds": metrics["seconds"],
                "peak_memory_mib": {k: round(v / 2**20) for k, v in peaks.items()},
            }
        )
    )


def test_tour_detector_matches_the_book(client, mnist_dir):
    """Part 1 of the tour on the real 60,000: deterministic numbers exactly, SGD's closely."""
    ds = load_dataset("mnist", data_dir=mnist_dir)
    numbers, _scores = tour.detector(ds.X_train.compute(), ds.y_train)
    assert numbers["never5_cv_accuracy"] == pytest.approx([0.91125, 0.90855, 0.90915], abs=1e-12)
    assert numbers["sgd5_manual_cv_accuracy"] == pytest.approx(numbers["sgd5_cv_accuracy"])
    assert numbers["sgd5_cv_accuracy"] == pytest.approx(
        [0.95035, 0.96035, 0.9604], abs=SGD_TOLERANCE
    )
    assert numbers["sgd5_precision"] == pytest.approx(0.837, abs=SGD_TOLERANCE)
    assert numbers["sgd5_recall"] == pytest.approx(0.651, abs=SGD_TOLERANCE)


def test_best_preset_beats_the_book_on_real_digits(tmp_path, mnist_dir):
    """The search of issue 6 on a tenth of MNIST.

    Deskewing is chosen, and the chosen model beats the book's.
    """
    proc = mnistdist(
        "report",
        "--preset",
        "best",
        "--strategy",
        "grid",  # its groups and choice are the exhaustive search's
        "--data",
        mnist_dir,
        "--train-size",
        "6000",
        "--cv",
        "3",
        "--out",
        tmp_path,
        "--workers",
        "2",
        "--quiet",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"]["n_train"] == 6000
    steps = " ".join(metrics["chosen"]["steps"])
    assert "Deskew" in steps and "normalize" in steps  # what cross-validation keeps of the pipeline
    assert (
        metrics["test_accuracy_chosen"]
        > max(metrics["test_accuracy_plain"], metrics["test_accuracy_augmented"]) + 0.01
    )
