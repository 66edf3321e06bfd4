import numpy as np
import pytest
import scipy.ndimage
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from mnistdist.errors import OptionError
from mnistdist.neighbors import KNNClassifier
from mnistdist.preprocessing import Augment, Deskew, GaussianBlur, image_moments


def slanted_bar(
    side: int = 28, slope: float = 0.4, offset: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """A bar leaning right by ``slope`` columns per row, three pixels thick, moved by ``offset``."""
    image = np.zeros((side, side))
    for r in range(5, side - 5):
        c = side / 2 + offset[1] + slope * (r - side / 2)
        image[int(r + offset[0]), round(c) - 1 : round(c) + 2] = 255
    return image


def _moments(image: np.ndarray):
    _mass, centre, var_r, cov_rc = image_moments(image[None].astype(np.float64))
    return centre[0], cov_rc[0] / var_r[0]


@pytest.mark.parametrize("slope", [-0.5, -0.2, 0.3, 0.6])
def test_deskew_straightens_a_slanted_bar_and_centres_it(slope):
    bar = slanted_bar(slope=slope, offset=(3, -4))
    centre, tilt = _moments(bar)
    assert abs(tilt) > 0.15 and np.abs(centre - 13.5).max() > 2  # slanted and off-centre before
    out = Deskew().fit_transform(bar.reshape(1, -1)).reshape(28, 28)
    centre, tilt = _moments(out)
    assert abs(tilt) < 0.02  # the pixel covariance is gone: the bar stands upright
    np.testing.assert_allclose(centre, 13.5, atol=0.15)  # its mass sits at the centre
    assert out.sum() == pytest.approx(bar.sum(), rel=0.03)  # nothing cut off on the way


def test_deskew_leaves_blank_and_upright_centred_images_alone():
    blank = np.zeros((2, 784))
    np.testing.assert_array_equal(Deskew().fit_transform(blank), blank)
    upright = slanted_bar(slope=0.0)
    upright = scipy.ndimage.shift(upright, np.array([13.5, 13.5]) - _moments(upright)[0], order=1)
    out = Deskew().fit_transform(upright.reshape(1, -1))
    np.testing.assert_allclose(out[0], upright.ravel(), atol=1.0)


def ndimage_deskew(images: np.ndarray) -> np.ndarray:
    """Deskewing as it was written first: ``scipy.ndimage.affine_transform`` an image."""
    side = images.shape[1]
    mass, centre, var_r, cov_rc = image_moments(images)
    out = images.copy()
    for i in np.flatnonzero((mass > 0) & (var_r > 1e-12)):
        shear = np.array([[1.0, 0.0], [cov_rc[i] / var_r[i], 1.0]])
        offset = centre[i] - shear @ np.full(2, (side - 1) / 2.0)
        out[i] = scipy.ndimage.affine_transform(
            images[i], shear, offset=offset, order=1, mode="constant", cval=0.0
        )
    return out


def strokes(n: int, side: int, seed: int = 0) -> np.ndarray:
    """Random slanted strokes, some touching the edges, some blank, as float32 images."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side), dtype=np.float32)
    for image in images[1:]:
        for _ in range(rng.integers(1, 4)):
            r = rng.integers(0, side, size=2)
            c = rng.integers(0, side, size=2)
            rows = np.linspace(r[0], r[1], 3 * side).round().astype(int)
            cols = np.linspace(c[0], c[1], 3 * side).round().astype(int)
            image[rows, cols] = rng.uniform(1, 255)
    return images


@pytest.mark.parametrize("side", [8, 28])
def test_deskew_gives_ndimage_numbers_to_the_bit(side):
    images = strokes(300, side)
    images[5, :, side - 1] = 200.0  # mass on the last column: reads at the very edge
    images[6, side - 1, :] = 200.0
    straight = Deskew().fit_transform(images.reshape(len(images), -1))
    np.testing.assert_array_equal(straight.reshape(images.shape), ndimage_deskew(images))


def test_deskew_gives_ndimage_numbers_on_the_digits():
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32)
    expected = ndimage_deskew(X.reshape(-1, 8, 8)).reshape(len(X), -1)
    np.testing.assert_array_equal(Deskew().fit_transform(X), expected)


@pytest.mark.slow
def test_deskew_gives_ndimage_numbers_on_mnist(mnist_dir):
    from mnistdist.data import load_dataset

    X = load_dataset("mnist", data_dir=mnist_dir, train_size=10000).X_train.compute()
    expected = ndimage_deskew(X.astype(np.float32).reshape(-1, 28, 28)).reshape(len(X), -1)
    np.testing.assert_array_equal(Deskew().fit_transform(X), expected)


def test_deskew_works_row_by_row_on_any_square_side():
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size=(6, 64)).astype(np.uint8)
    out = Deskew().fit_transform(block)
    assert out.shape == (6, 64) and out.dtype == np.float32
    np.testing.assert_allclose(out[3], Deskew().fit_transform(block[3:4])[0])


def test_blur_is_scipy_gaussian_filter_per_image():
    rng = np.random.default_rng(1)
    block = rng.random((3, 100)).astype(np.float32)
    out = GaussianBlur(sigma=1.5).fit_transform(block)
    for img, blurred in zip(block, out, strict=False):
        expected = scipy.ndimage.gaussian_filter(img.reshape(10, 10), 1.5, mode="constant")
        np.testing.assert_allclose(blurred, expected.ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(GaussianBlur(sigma=0).fit_transform(block), block)


@pytest.mark.parametrize("make", [Deskew, GaussianBlur, Augment])
def test_non_square_images_are_refused(make):
    with pytest.raises(OptionError, match="not a square image"):
        make().fit(np.zeros((3, 30)))


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="sigma"):
        GaussianBlur(sigma=-1).fit(np.zeros((2, 4)))
    with pytest.raises(OptionError, match="unknown augmentation 'sideways'"):
        Augment("sideways").fit(np.zeros((2, 4)))


def test_transformers_in_a_plain_sklearn_pipeline(digits_arrays):
    X, y, X_test, y_test = digits_arrays
    pipe = Pipeline(
        [
            ("deskew", Deskew()),
            ("blur", GaussianBlur(0.5)),
            ("pca", PCA(20, random_state=0)),
            ("knn", KNNClassifier(n_neighbors=3)),
        ]
    )
    assert pipe.fit(X, y).score(X_test, y_test) > 0.9
    assert pipe.get_params()["blur__sigma"] == 0.5


# The checks feed 2, 3, 5 or 10 columns, which are not images: for these checks
# the transformers' contract is the one clear "not a square image" error
# (test_non_square_images_are_refused), so scikit-learn cannot run them.
