import dask.array as da
import numpy as np
import pytest

from mnistdist.preprocessing import (
    DISTORTIONS,
    Augment,
    Distortion,
    augmented_copies,
    check_augmentation,
    distort_images,
)
from mnistdist.preprocessing._augment import make_copy

ELASTIC = Distortion(alpha=34.0, sigma=4.0, seed=7)


def test_a_copy_is_a_function_of_image_id_copy_and_seed(digits_arrays):
    X, _, _, _ = digits_arrays
    block = X[:40]
    ids = np.arange(100, 140)
    first = distort_images(block, ids, 3, ELASTIC)
    np.testing.assert_array_equal(distort_images(block, ids, 3, ELASTIC), first)
    # Made alone, or in another block in another order: the same pixels for the same id.
    np.testing.assert_array_equal(distort_images(block[[5]], [105], 3, ELASTIC)[0], first[5])
    np.testing.assert_array_equal(distort_images(block[::-1], ids[::-1], 3, ELASTIC)[::-1], first)
    # Another copy, seed or id draws another field.
    other_seed = Distortion(alpha=34.0, sigma=4.0, seed=8)
    for other in (
        distort_images(block, ids, 4, ELASTIC),
        distort_images(block, ids, 3, other_seed),
        distort_images(block, ids + 1, 3, ELASTIC),
    ):
        changed = (other != first).any(axis=1)
        assert changed[block.any(axis=1)].mean() > 0.9


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_pixels_stay_in_range(dtype):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 28 * 28)).astype(dtype)
    for recipe in (
        ELASTIC,
        Distortion(alpha=80.0, sigma=2.0),
        Distortion(alpha=0.0, sigma=0.0, rotate=30.0, scale=0.3, shear=0.5),
    ):
        copies = distort_images(images, np.arange(50), 0, recipe)
        assert copies.dtype == dtype
        assert copies.min() >= 0 and copies.max() <= 255
        assert not np.array_equal(copies, images)


def _displacement(recipe: Distortion, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """The field a copy reads at, recovered from copies of two ramps (value = 1 + coordinate)."""
    ramp = np.arange(side, dtype=np.float64) + 1.0
    along_x = np.tile(ramp, (side, 1)).reshape(1, -1)
    along_y = np.tile(ramp[:, None], (1, side)).reshape(1, -1)
    x = distort_images(along_x, [5], 0, recipe).reshape(side, side) - along_x.reshape(side, side)
    y = distort_images(along_y, [5], 0, recipe).reshape(side, side) - along_y.reshape(side, side)
    inner = (slice(8, side - 8),) * 2  # far from the zero fill beyond the border
    return x[inner], y[inner]


def test_the_mass_moves_smoothly():
    dx, dy = _displacement(ELASTIC)
    # Pixels move by up to a few pixels, coherently: neighbours move by less than a pixel
    # apart, so no stroke folds over or tears.
    assert 1.0 < max(np.abs(dx).max(), np.abs(dy).max()) < 8
    for d in (dx, dy):
        assert np.abs(np.diff(d, axis=0)).max() < 1.0
        assert np.abs(np.diff(d, axis=1)).max() < 1.0
    # Without smoothing (a tiny sigma) the same strength tears the image apart.
    rough_x, _ = _displacement(Distortion(alpha=3.0, sigma=0.05))
    assert np.abs(np.diff(rough_x, axis=1)).max() > 2.0
    # Ink is moved, not made or lost (a blank frame keeps it inside the image).
    digit = np.zeros((28, 28))
    digit[9:19, 11:17] = 200.0
    copy = distort_images(digit.reshape(1, -1), [3], 0, ELASTIC)
    assert copy.sum() == pytest.approx(digit.sum(), rel=0.15)


def test_no_distortion_is_the_identity(digits_arrays):
    X, _, _, _ = digits_arrays
    still = Distortion(alpha=0.0, sigma=0.0)
    np.testing.assert_array_equal(distort_images(X[:20], np.arange(20), 0, still), X[:20])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": -1.0}, "alpha"),
        ({"sigma": 0.0}, "sigma > 0"),
        ({"rotate": float("nan")}, "rotate"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_recipes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Distortion(**kwargs)


def test_augment_kinds_draw_each_row_by_its_id(digits_arrays):
    X, _, _, _ = digits_arrays
    assert {"elastic2", "elastic4", "elastic8", "affine4"} <= set(DISTORTIONS)
    lazy = augmented_copies(da.from_array(X[:90], chunks=(25, -1)), "elastic2", random_state=3)
    assert [c.name.split("-")[1] for c in lazy] == ["elastic0", "elastic1"]
    for c, (_, how) in enumerate(check_augmentation("elastic2")):
        made = lazy[c].compute(scheduler="sync")
        np.testing.assert_array_equal(made, make_copy(X[:90], how, 0, 3))
        # Rows of a later chunk are drawn for their own ids, not for their place in it.
        np.testing.assert_array_equal(made[60:70], make_copy(X[60:70], how, 60, 3))
    assert Augment("elastic4", random_state=3).fit(X).transform(X) is not None
    with pytest.raises(ValueError, match="seed"):
        Augment("elastic4", random_state=-2).fit(X)
