"""The jobs as a user runs them: real processes, real files, exit codes and one-line errors."""

import csv
import dataclasses
import hashlib
import json
import os

import joblib
import numpy as np
import pytest

from mnistdist.data import MNIST_FILES, read_idx
from mnistdist.preprocessing import DISTORTION_RECIPES, distort_images

from helpers import assert_one_line_error, free_port, in_process, mnistdist

FIGURES = (
    "digits.png",
    "shifts.png",
    "search_heatmap.png",
    "confusion_matrix.png",
    "error_matrix.png",
    "confused_pair.png",
    "precision_recall.png",
    "wrong_digits.png",
)


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    proc = mnistdist("report", "--dataset", "digits", "--out", out, "--workers", "2", "--quiet")
    return out, proc


def test_report_job_writes_every_output(report_run, digits_arrays):
    out, proc = report_run
    assert proc.returncode == 0, proc.stderr
    assert "dashboard: http" in proc.stdout and "augmented: test accuracy" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy_plain"] > 0.95 and metrics["test_accuracy_augmented"] > 0.95
    assert metrics["best_params"] == {"n_neighbors": 4, "weights": "distance"}
    assert metrics["data"]["n_train"] == 1437 and metrics["data"]["n_train_augmented"] == 5 * 1437
    assert {"load", "search_neighbors", "final_plain", "final_augmented", "total"} <= set(
        metrics["seconds"]
    )
    # Where the rest of the time went: the imports, the cluster, the figures (drawn meanwhile).
    phases = {"imports", "cluster_start", "cluster_close", "performance_report", "figures"}
    assert phases <= set(metrics["seconds"]) and all(metrics["seconds"][p] > 0 for p in phases)
    assert "time: imports " in proc.stdout and "cluster start " in proc.stdout
    assert metrics["versions"]["dask-ml"] and len(metrics["cluster"]["workers"]) == 2
    # Each worker's measured peak memory beside the estimate the run was checked with.
    estimates = metrics["cluster"]["peak_memory_estimate_bytes"]
    assert set(estimates) == set(metrics["cluster"]["peak_memory_bytes"]) and estimates
    assert metrics["search"]["n_neighbor_searches"] == 5 and len(metrics["search"]["params"]) == 6
    for name in (
        *FIGURES,
        "report.html",
        "dask-report.html",
        "cv_results.csv",
        "predictions.csv",
        "model.joblib",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*.tmp"))
    # The model is a pickle: metrics.json names the one file that may be loaded.
    assert (
        metrics["model_sha256"] == hashlib.sha256((out / "model.joblib").read_bytes()).hexdigest()
    )


def test_report_shows_its_scaling_forecast(report_run):
    out, proc = report_run
    assert proc.returncode == 0, proc.stderr
    scaling = json.loads((out / "metrics.json").read_text())["scaling"]
    assert scaling["figure"] == "scaling.png"
    assert (out / "scaling.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "report.html").read_text()
    assert "Scaling forecast (report)" in html and 'src="scaling.png"' in html
    assert proc.stdout.strip().splitlines()[-1].startswith("forecast: 16 workers about ")


@pytest.fixture(scope="module")
def best_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("best")
    proc = mnistdist(
        "report",
        "--preset",
        "best",
        "--strategy",
        "grid",  # its groups and choice are the exhaustive search's
        "--dataset",
        "digits",
        "--cv",
        "3",
        "--out",
        out,
        "--workers",
        "2",
        "--quiet",
    )
    return out, proc


def test_best_preset_report(best_run, digits_arrays):
    out, proc = best_run
    assert proc.returncode == 0, proc.stderr
    assert "chosen: test accuracy" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["preset"] == "best" and metrics["book_params"] == {
        "n_neighbors": 4,
        "weights": "distance",
    }
    search = metrics["search"]
    best = max(range(len(search["params"])), key=lambda i: (search["mean_test_score"][i], -i))
    assert (
        metrics["best_params"] == search["params"][best]
    )  # chosen by cross-validation, nothing else
    groups = (
        6 + 2 + 2 + 1 + 1
    )  # augmentations; PCA sizes below 64 pixels; two blurs; deskew left out; normalize left out
    assert (
        len(search["params"]) == 3 * groups and search["n_neighbor_searches"] == 3 * groups
    )  # 3 KNN candidates, 3 folds
    assert metrics["test_accuracy_chosen"] > 0.9 and metrics["chosen"]["steps"][-1].startswith(
        "knn: KNNClassifier"
    )
    _, _, Q, y_test = digits_arrays
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    chosen = np.array([int(r["chosen"]) for r in rows])
    assert metrics["test_accuracy_chosen"] == pytest.approx(np.mean(chosen == y_test))
    np.testing.assert_array_equal(
        joblib.load(out / "model.joblib").predict(Q), chosen
    )  # the saved pipeline is the chosen model
    html = (out / "report.html").read_text()
    assert "Beyond the book" in html and "wrong_digits.png" in html
    assert ("deskew.png" in html) == ("deskew" in " ".join(metrics["chosen"]["steps"]))


def test_saved_model_predicts_like_the_cluster(report_run, digits_arrays):
    out, _ = report_run
    _, _, Q, y_test = digits_arrays
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["true"]) for r in rows] == list(y_test)
    model = joblib.load(out / "model.joblib")
    np.testing.assert_array_equal(model.predict(Q), [int(r["augmented"]) for r in rows])
    assert model[-1].get_params()["n_neighbors"] == 4


def test_rerun_refuses_to_overwrite(report_run):
    out, _ = report_run
    before = (out / "metrics.json").read_text()
    proc = mnistdist("report", "--dataset", "digits", "--out", out)
    assert_one_line_error(
        proc, 1, "pass --resume to finish an interrupted run or --overwrite to replace them"
    )
    assert (out / "metrics.json").read_text() == before


@pytest.mark.parametrize(
    "args, text",
    [
        (["--cv", "1"], "cv must be at least 2"),
        (["--n-neighbors", "0"], "not a positive integer"),
        (["--n-neighbors", "-3"], "not a positive integer"),
        (["--n-neighbors"], "expected at least one argument"),
        (["--weights", "closest"], "invalid choice"),
        (["--dataset", "fashion"], "invalid choice"),
        (["--train-size", "x"], "not an integer"),
        (["--bogus"], "unrecognized arguments"),
        (["--preset", "fastest"], "invalid choice"),
        (["--preset", "best", "--n-neighbors", "3"], "--preset best has a grid of its own"),
    ],
)
def test_invalid_options_exit_2_with_one_line(tmp_path, args, text):
    # In this process: the command's parser is the same (tests/cli/test_fuzz.py runs a few
    # as a user does).
    proc = in_process("report", "--dataset", "digits", "--out", tmp_path, *args)
    assert_one_line_error(proc, 2, text)


def test_grid_that_cannot_work_exits_2(tmp_path, cluster):
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--train-size",
        "200",
        "--n-neighbors",
        "170",
        "--out",
        tmp_path,
        "--scheduler",
        cluster.scheduler_address,
    )
    assert_one_line_error(proc, 2, "larger than the smallest training fold")


def test_bad_data_exits_1_naming_the_file(tmp_path, idx_folder, cluster):
    folder, _ = idx_folder
    proc = mnistdist(
        "search",
        "--data",
        tmp_path / "missing",
        "--out",
        tmp_path / "o1",
        "--scheduler",
        cluster.scheduler_address,
    )
    assert_one_line_error(proc, 1, "data folder not found")
    labels = folder / (MNIST_FILES["train_labels"] + ".gz")
    labels.write_bytes(labels.read_bytes()[:-8])
    proc = mnistdist(
        "search",
        "--data",
        folder,
        "--out",
        tmp_path / "o2",
        "--scheduler",
        cluster.scheduler_address,
    )
    assert_one_line_error(proc, 1, "train-labels-idx1-ubyte.gz")


def test_non_square_images_are_refused_before_any_work(tmp_path, cluster):
    from helpers import make_idx_folder

    folder = tmp_path / "wide"
    make_idx_folder(folder, side=28)
    rng = np.random.default_rng(0)
    from mnistdist.data import write_idx

    for split, n in (("train", 60), ("test", 20)):
        (folder / (MNIST_FILES[f"{split}_images"] + ".gz")).unlink()
        write_idx(
            folder / (MNIST_FILES[f"{split}_images"] + ".gz"),
            rng.integers(0, 256, size=(n, 27, 28), dtype=np.uint8),
        )
    proc = mnistdist(
        "report",
        "--data",
        folder,
        "--out",
        tmp_path / "out",
        "--scheduler",
        cluster.scheduler_address,
    )
    assert_one_line_error(proc, 1, "the header says images of 27x28, not square")
    assert sorted(os.listdir(tmp_path)) == ["wide"]  # no results, staging folder or lock


def test_images_of_784_pixels_that_are_not_square_are_refused(tmp_path):
    from mnistdist.data import write_idx

    folder = tmp_path / "wide"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("test", 20)):
        write_idx(
            folder / MNIST_FILES[f"{split}_images"], rng.integers(0, 256, (n, 14, 56), np.uint8)
        )
        write_idx(folder / MNIST_FILES[f"{split}_labels"], rng.integers(0, 10, n, np.uint8))
    proc = mnistdist("report", "--data", folder, "--out", tmp_path / "out", timeout=60)
    assert_one_line_error(proc, 1, "images of 14x56, not square")
    assert sorted(os.listdir(tmp_path)) == ["wide"] and "cluster:" not in proc.stdout


def test_a_data_file_that_is_a_symlink_loop_says_so(tmp_path, idx_folder):
    folder, _ = idx_folder
    labels = folder / (MNIST_FILES["train_labels"] + ".gz")
    labels.unlink()
    labels.symlink_to(labels)
    proc = mnistdist("search", "--data", folder, "--out", tmp_path / "out", timeout=60)
    assert_one_line_error(proc, 1, "Too many levels of symbolic links")


def test_the_embedded_dashboard_listens_on_loopback(tmp_path, monkeypatch):
    from mnistdist.runtime import connect

    with connect(n_workers=1) as client:
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        listening = {
            s.getsockname()[0] for s in client.cluster.scheduler.http_server._sockets.values()
        }
    assert listening == {"127.0.0.1"}


def test_the_book_search_runs_on_worker_threads_of_the_job(tmp_path):
    out = tmp_path / "out"
    proc = mnistdist("search", "--dataset", "digits", "--cv", "2", "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "with 2 workers (threads of this process)" in proc.stdout, proc.stdout
    assert json.loads((out / "search.json").read_text())["cluster"]["in_process"]


@pytest.mark.parametrize("preset, threads", [("book", True), ("best", True), ("deform", False)])
def test_a_preset_whose_tasks_hold_the_gil_gets_worker_processes(tmp_path, preset, threads):
    from mnistdist.cli._job_run import JobRun
    from mnistdist.cli._on_cluster import connect_as_asked
    from mnistdist.cli._parser import build_parser
    from mnistdist.runtime import describe

    argv = ["search", "--dataset", "digits", "--preset", preset, "--out", str(tmp_path)]
    args = build_parser().parse_args([*argv, "--workers", "1", "--quiet"])
    with connect_as_asked(JobRun(args.job, args, started=0.0)) as client:
        assert describe(client)["in_process"] == threads


def test_overwrite_and_resume_exclude_each_other(tmp_path):
    proc = mnistdist(
        "search", "--dataset", "digits", "--out", tmp_path, "--overwrite", "--resume", timeout=60
    )
    assert_one_line_error(proc, 1, "--overwrite and --resume exclude each other")


def test_unreachable_scheduler_exits_1_quickly(tmp_path):
    port = free_port()  # nothing listens there
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--out",
        tmp_path,
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        env={"DASK_MNISTDIST__CONNECT_TIMEOUT": "2s"},
        timeout=60,
    )
    assert_one_line_error(proc, 1, "could not reach the Dask scheduler")


def test_search_job_on_a_running_cluster(tmp_path, cluster):
    proc = mnistdist(
        "search",
        "--dataset",
        "digits",
        "--n-neighbors",
        "1",
        "3",
        "--weights",
        "uniform",
        "--cv",
        "3",
        "--out",
        tmp_path,
        "--scheduler",
        cluster.scheduler_address,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "search.json").read_text())
    assert summary["n_candidates"] == 2 and summary["n_splits"] == 3
    assert {"imports", "cluster_start", "cluster_close", "neighbors"} <= set(summary["seconds"])
    assert summary["cluster"]["scheduler"] == cluster.scheduler_address
    assert (tmp_path / "cv_results.csv").exists()


def test_augment_job_writes_readable_idx(tmp_path, cluster):
    proc = mnistdist(
        "augment",
        "--dataset",
        "digits",
        "--train-size",
        "100",
        "--out",
        tmp_path,
        "--scheduler",
        cluster.scheduler_address,
    )
    assert proc.returncode == 0, proc.stderr
    images = read_idx(tmp_path / "train-images-augmented-idx3-ubyte")
    labels = read_idx(tmp_path / "train-labels-augmented-idx1-ubyte")
    assert images.shape == (500, 8, 8) and labels.shape == (500,)
    summary = json.loads((tmp_path / "augment.json").read_text())
    assert summary["rows"] == 500
    assert summary["scaling"]["measured"]["workers"] == 2 and summary["scaling"]["tasks"] > 0


def test_benchmark_job_compares_with_sklearn(tmp_path, cluster):
    proc = mnistdist(
        "benchmark",
        "--dataset",
        "digits",
        "--train-size",
        "600",
        "--cv",
        "3",
        "--strategy",
        "both",
        "--out",
        tmp_path,
        "--scheduler",
        cluster.scheduler_address,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["scores_agree"] and report["scores_max_abs_diff"] <= 1e-3
    assert next(r["method"] for r in report["rows"]).startswith("book: scikit-learn")
    assert "speed-up of mnistdist" in proc.stdout
    # Each neighbour phase against the GEMM limit measured in the run, on the 2 workers
    assert report["gemm"]["threads"] == 2 and report["gemm"]["multiply_adds_per_s"] > 0
    assert all(r["gemm_limit_multiple"] > 0 for r in report["rows"][1:])
    assert "x the GEMM limit (" in proc.stdout
    halving = report["halving"]
    assert halving["rows"][0]["method"].startswith("book: scikit-learn HalvingGridSearchCV")
    assert halving["schedule_agree"] and halving["speedup"] > 0
    assert "speed-up of mnistdist's halving over scikit-learn's" in proc.stdout
    # scikit-learn's processes are the job's own work: its time is the client's, on the span
    assert report["scaling"]["client_s"] >= 0.95 * report["rows"][0]["seconds"]
    assert proc.stdout.strip().splitlines()[-1].startswith("forecast: ")


@pytest.mark.parametrize("job", ["report", "search", "augment", "benchmark"])
def test_help_documents_the_options(job):
    proc = mnistdist(job, "--help", timeout=60)
    assert proc.returncode == 0
    for option in ("--data", "--dataset", "--train-size", "--out", "--scheduler"):
        assert option in proc.stdout
    if job in ("report", "search", "benchmark"):
        assert (
            "--n-neighbors" in proc.stdout and "--weights" in proc.stdout and "--cv" in proc.stdout
        )


def _halving_job(job: str, out, cluster, *extra: str):
    options = ["--dataset", "digits", "--strategy", "halving", "--out", out, *extra]
    return mnistdist(job, *options, "--scheduler", cluster.scheduler_address)


def test_search_job_with_halving_strategy(tmp_path, cluster):
    proc = _halving_job("search", tmp_path, cluster)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "cv_results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # The book's six candidates on 479 of the 1,437 digits (a third), then the best two on all.
    assert [(r["iter"], r["n_resources"]) for r in rows] == [("0", "479")] * 6 + [("1", "1437")] * 2
    summary = json.loads((tmp_path / "search.json").read_text())
    assert summary["strategy"] == "halving" and summary["halving"]["n_candidates"] == [6, 2]
    assert summary["n_neighbor_searches"] == 10 and summary["iter"][summary["best_index"]] == 1
    assert "round 1: 2 candidates on 1437 images" in proc.stdout
    assert sum(line.startswith("*") for line in proc.stdout.splitlines()) == 1


def test_report_job_with_halving_strategy(tmp_path, cluster):
    proc = _halving_job("report", tmp_path, cluster, "--quiet")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    search = metrics["search"]
    assert (
        search["strategy"] == "halving"
        and metrics["best_params"]
        == search["params"][-2:][search["best_index"] - len(search["params"]) + 2]
    )
    assert "cv_results.csv" in {p.name for p in tmp_path.iterdir()}
    assert "by successive halving: 2 rounds" in (tmp_path / "report.html").read_text()


def test_help_documents_the_halving_strategy():
    for job in ("search", "report"):
        proc = mnistdist(job, "--help", timeout=60)
        assert proc.returncode == 0 and "--strategy {grid,halving,random}" in proc.stdout
        assert "successive halving" in proc.stdout


@pytest.mark.parametrize(
    ("args", "text"),
    [
        # 60 images: the first round needs two per class and fold (100).
        (["--train-size", "60"], "successive halving needs at least 100 images"),
        # 20 candidates: the first round has 159 images, training folds of about 127.
        (
            ["--n-neighbors", *map(str, range(1, 10)), "400"],
            "n_neighbors=400 is larger than the smallest training fold",
        ),
        # 2 folds: the first round's training folds (26 images) are smaller than PCA's 50.
        (
            ["--preset", "best", "--cv", "2"],
            "pca__n_components=50 is larger than the smallest training fold (26 rows)",
        ),
    ],
)
def test_halving_that_cannot_work_exits_2_before_any_work(tmp_path, args, text):
    proc = mnistdist(
        "search", "--dataset", "digits", "--strategy", "halving", "--out", tmp_path, *args
    )
    assert_one_line_error(proc, 2, text)
    # Nothing in the folder, nor beside it (its staging folder, its lock).
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))


def test_benchmark_with_halving_is_refused_before_any_work(tmp_path):
    # --strategy both runs a halving search: its first round is checked too.
    proc = mnistdist(
        "benchmark",
        "--dataset",
        "digits",
        "--strategy",
        "both",
        "--train-size",
        "60",
        "--out",
        tmp_path,
    )
    assert_one_line_error(proc, 2, "successive halving needs at least 100 images")
    # Nothing in the folder, nor beside it (its staging folder, its lock).
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))


def test_augment_job_writes_elastic_copies(tmp_path, cluster):
    args = ["augment", "--dataset", "digits", "--train-size", "60", "--kind", "elastic2"]
    proc = mnistdist(
        *args, "--seed", "4", "--out", tmp_path, "--scheduler", cluster.scheduler_address
    )
    assert proc.returncode == 0, proc.stderr
    images = read_idx(tmp_path / "train-images-augmented-idx3-ubyte").reshape(180, -1)
    summary = json.loads((tmp_path / "augment.json").read_text())
    assert summary["kind"] == "elastic2" and summary["order"] == [
        "original",
        "elastic0",
        "elastic1",
    ]
    # The copies are those of (row, copy, seed): the same as the library draws.
    recipe = dataclasses.replace(DISTORTION_RECIPES["elastic"], seed=4)
    np.testing.assert_array_equal(
        images[60:120], distort_images(images[:60], np.arange(60), 0, recipe)
    )
    assert (tmp_path / "copies.png").exists()
    bad = mnistdist("augment", "--dataset", "digits", "--kind", "melt", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
