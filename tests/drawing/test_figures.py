import numpy as np
import pytest

from mnistdist import drawing
from mnistdist.drawing import _digits
from mnistdist.report import deskew_request


def test_wrong_digits_are_titled_true_then_predicted(digits_arrays):
    _, _, Q, y = digits_arrays
    y_pred = y.copy()
    y_pred[[3, 10, 50]] = (y[[3, 10, 50]] + 1) % 10
    fig = drawing.wrong_digits_figure(Q, y, y_pred)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == [f"{y[i]}→{y_pred[i]}" for i in (3, 10, 50)]


def test_deskewed_digits_sit_under_their_originals(digits_arrays):
    X = digits_arrays[0]
    request = deskew_request(X[:6])
    fig = drawing.digits_grid(*request.args, **request.kwargs)
    assert [t.get_text() for t in fig.axes[0].texts] == ["original", "deskewed"]
    assert fig.axes[0].images[0].get_array().shape == (2 * (8 + 1 + 4) + 1, 6 * 9 + 1)


def test_tile_leaves_gutters():
    tiles = _digits._tile(np.ones((3, 4)), n_cols=2, n_rows=2)
    assert tiles.shape == (7, 7)
    assert tiles[0].sum() == 0 and tiles[:, 3].sum() == 0
    assert tiles[1:3, 1:3].sum() == 4 and tiles[4:6, 4:6].sum() == 0  # the fourth cell is blank


def test_images_that_are_not_square_are_refused():
    with pytest.raises(ValueError, match="7 pixels are not a square image"):
        drawing.digits_grid(np.zeros((2, 7)))


def test_heatmap_with_extra_grid_dimensions_shows_the_best():
    params = [
        {"knn__n_neighbors": 3, "knn__weights": "uniform", "pca__n_components": c} for c in (10, 20)
    ]
    fig = drawing.search_heatmap(
        params, np.array([0.9, 0.95]), np.array([0.01, 0.02]), prefix="knn__"
    )
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.9500\n± 0.0200"]
    assert drawing.png_bytes(fig).startswith(b"\x89PNG\r\n\x1a\n")
