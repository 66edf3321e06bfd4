import numpy as np
import pytest

from mnistdist.drawing import DrawingProcess
from mnistdist.report import evaluate, write_report_figures

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def predictions(digits_arrays):
    _, _, Q, y = digits_arrays
    rng = np.random.default_rng(0)
    y_pred = y.copy()
    wrong = rng.choice(len(y), 30, replace=False)
    y_pred[wrong] = (y[wrong] + 1) % 10
    return Q, y, y_pred


@pytest.mark.parametrize("where", ["here", "process"])
def test_every_report_figure_is_a_real_png(tmp_path, digits_arrays, predictions, where):
    X, y, _, _ = digits_arrays
    Q, y_test, y_pred = predictions
    params = [{"n_neighbors": k, "weights": w} for w in ("uniform", "distance") for k in (3, 4, 5)]
    with DrawingProcess() as drawing:
        refs = write_report_figures(
            tmp_path,
            X_train_sample=X[:40],
            y_train_sample=y[:40],
            search_params=params,
            search_mean=np.linspace(0.95, 0.97, 6),
            search_std=np.full(6, 0.01),
            X_test=Q,
            y_test=y_test,
            y_pred=y_pred,
            evaluation=evaluate(y_test, y_pred),
            drawing=drawing.start() if where == "process" else None,
        )
    assert set(refs) == {
        "samples",
        "shifts",
        "search",
        "confusion",
        "errors",
        "pair",
        "precision_recall",
        "wrong",
    }
    for ref in refs.values():
        data = (tmp_path / ref.filename).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, ref.filename
    assert not list(tmp_path.glob(".*"))


def test_deskew_and_wrong_digit_figures(tmp_path, digits_arrays, predictions):
    X, y, _, _ = digits_arrays
    Q, y_test, y_pred = predictions
    refs = write_report_figures(
        tmp_path,
        X_train_sample=X[:40],
        y_train_sample=y[:40],
        search_params=[
            {"augment__kind": "none", "knn__n_neighbors": 4, "knn__weights": "distance"}
        ],
        search_mean=np.array([0.98]),
        search_std=np.array([0.01]),
        X_test=Q,
        y_test=y_test,
        y_pred=y_pred,
        evaluation=evaluate(y_test, y_pred),
        model="chosen",
        deskew=True,
    )
    assert {"deskew", "wrong", "search"} <= set(refs) and "30 test digits the chosen model" in refs[
        "wrong"
    ].caption
    assert (tmp_path / "deskew.png").read_bytes().startswith(PNG)


def test_importing_the_jobs_leaves_matplotlib_and_dask_ml_for_later():
    import subprocess
    import sys

    # dask_ml is imported while the cluster starts (cli._on_cluster.LATER_MODULES); the
    # figures are drawn in the drawing process, so the job never imports matplotlib.
    code = (
        "import sys, mnistdist.cli._parser, mnistdist.cli._run;"
        "print(*(m in sys.modules for m in ('matplotlib', 'dask_ml')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]  # off the path to the cluster's start
