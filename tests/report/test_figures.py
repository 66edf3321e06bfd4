import numpy as np
import pytest

from mnistdist.report import _figures as figures
from mnistdist.report import evaluate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def predictions(digits_arrays):
    _, _, Q, y = digits_arrays
    rng = np.random.default_rng(0)
    y_pred = y.copy()
    wrong = rng.choice(len(y), 30, replace=False)
    y_pred[wrong] = (y[wrong] + 1) % 10
    return Q, y, y_pred


def test_every_report_figure_is_a_real_png(tmp_path, digits_arrays, predictions):
    X, y, _, _ = digits_arrays
    Q, y_test, y_pred = predictions
    params = [{"n_neighbors": k, "weights": w} for w in ("uniform", "distance") for k in (3, 4, 5)]
    refs = figures.write_report_figures(
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
    refs = figures.write_report_figures(
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
    fig = figures.wrong_digits_figure(Q, y_test, y_pred)
    labels = [t.get_text() for t in fig.axes[0].texts]
    wrong = np.flatnonzero(y_test != y_pred)
    assert labels == [f"{y_test[i]}→{y_pred[i]}" for i in wrong]
    deskew = figures.deskew_figure(X[:6])
    assert [t.get_text() for t in deskew.axes[0].texts] == ["original", "deskewed"]
    assert deskew.axes[0].images[0].get_array().shape == (2 * (8 + 1 + 4) + 1, 6 * 9 + 1)


def test_tile_leaves_gutters():
    tiles = figures._tile(np.ones((3, 4)), n_cols=2, n_rows=2)
    assert tiles.shape == (7, 7)
    assert tiles[0].sum() == 0 and tiles[:, 3].sum() == 0
    assert tiles[1:3, 1:3].sum() == 4 and tiles[4:6, 4:6].sum() == 0  # the fourth cell is blank


def test_heatmap_with_extra_grid_dimensions_shows_the_best(tmp_path):
    params = [
        {"knn__n_neighbors": 3, "knn__weights": "uniform", "pca__n_components": c} for c in (10, 20)
    ]
    fig = figures.search_heatmap(
        params, np.array([0.9, 0.95]), np.array([0.01, 0.02]), prefix="knn__"
    )
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.9500\n± 0.0200"]
    figures.save(fig, tmp_path / "h.png")


def test_importing_the_jobs_leaves_matplotlib_and_dask_ml_for_later():
    import subprocess
    import sys

    # The jobs import them while the cluster starts (cli._on_cluster.LATER_MODULES).
    code = (
        "import sys, mnistdist.cli._parser, mnistdist.cli._run;"
        "print(*(m in sys.modules for m in ('matplotlib', 'dask_ml')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]  # off the path to the cluster's start
