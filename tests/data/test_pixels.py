import numpy as np
import pytest

from mnistdist.data import check_pixels, with_pixel_check
from mnistdist.errors import DataError
from mnistdist.neighbors import KNNClassifier


@pytest.fixture(scope="module")
def model(digits_arrays):
    X, y, _, _ = digits_arrays
    return with_pixel_check(KNNClassifier(n_neighbors=4, weights="distance").fit(X, y))


def test_the_saved_model_predicts_0_255_pixels(model, digits_arrays):
    _, _, Q, y_test = digits_arrays
    assert np.mean(model.predict(Q) == y_test) > 0.95
    assert list(model.predict(np.zeros((2, Q.shape[1])))) == list(model.predict(np.zeros((2, 64))))


def test_pixels_scaled_to_0_1_are_refused_with_what_to_do(model, digits_arrays):
    _, _, Q, _ = digits_arrays
    with pytest.raises(DataError, match="pass pixels 0-255"):
        model.predict(Q / 255)


@pytest.mark.parametrize("bad", [-1.0, 256.0, np.nan])
def test_pixels_outside_0_255_are_refused(model, digits_arrays, bad):
    Q = digits_arrays[2][:3].astype(float)
    Q[1, 5] = bad
    with pytest.raises(DataError, match="within 0-255"):
        model.predict(Q)


def test_check_pixels_accepts_blank_and_integer_batches():
    assert check_pixels(np.zeros((2, 4))).shape == (2, 4)
    assert check_pixels(np.full((1, 4), 255, dtype=np.uint8)).shape == (1, 4)
