import dask
import numpy as np
import pytest
import scipy.ndimage

from mnistdist.data import image_side
from mnistdist.errors import OptionError
from mnistdist.preprocessing import (
    AUGMENTATIONS,
    FOUR_SHIFTS,
    Augment,
    augment_shifts,
    augmented_copies,
    check_augmentation,
    rotate_images,
    shift_images,
)
from mnistdist.preprocessing._augment import make_copy

SHIFTS = [(dx, dy) for dx in (-3, -1, 0, 1, 2) for dy in (-2, -1, 0, 1)]


def shift_image(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """One square image (flat or 2-D) shifted by whole pixels, flat, as blocks are shifted."""
    return shift_images(np.asarray(image).reshape(1, -1), dx, dy)[0]


def copies(kind: str, images: np.ndarray) -> list[np.ndarray]:
    """The copies augmentation ``kind`` adds to a block of training images, in order."""
    return [make_copy(images, how) for _, how in check_augmentation(kind)]


@pytest.mark.parametrize("side", [5, 8, 28])
@pytest.mark.parametrize("dx, dy", SHIFTS)
def test_shift_image_equals_scipy_for_integer_shifts(side, dx, dy):
    rng = np.random.default_rng(side)
    image = rng.integers(0, 256, size=side * side).astype(np.float64)
    expected = scipy.ndimage.shift(image.reshape(side, side), [dy, dx], cval=0, mode="constant")
    np.testing.assert_allclose(shift_image(image, dx, dy), expected.ravel(), atol=1e-9)
    # uint8 (the datasets' dtype): exactly equal, dtype kept.
    u8 = image.astype(np.uint8)
    out = shift_image(u8.reshape(side, side), dx, dy)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(
        out, scipy.ndimage.shift(u8.reshape(side, side), [dy, dx], cval=0, mode="constant").ravel()
    )


def test_shift_direction():
    image = np.zeros((5, 5), dtype=np.uint8)
    image[2, 2] = 9
    assert shift_image(image, 1, 0).reshape(5, 5)[2, 3] == 9  # right
    assert shift_image(image, 0, -1).reshape(5, 5)[1, 2] == 9  # up
    assert not shift_image(image, 5, 0).any()  # moved out entirely


def test_vectorised_block_equals_one_by_one():
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, size=(30, 100), dtype=np.uint8)
    for dx, dy in SHIFTS:
        expected = np.stack([shift_image(img, dx, dy) for img in block])
        np.testing.assert_array_equal(shift_images(block, dx, dy), expected)


def test_non_square_images_are_refused():
    with pytest.raises(OptionError, match="not a square image"):
        shift_images(np.zeros((2, 30)), 1, 0)
    with pytest.raises(OptionError, match="not a square image"):
        image_side(783)
    with pytest.raises(ValueError, match="integer shifts"):
        shift_images(np.zeros((2, 9)), 0.5, 0)


def test_augment_shifts_is_lazy_named_and_right(digits):
    X, y = digits.X_train[:100], digits.y_train[:100]
    X_aug, y_aug = augment_shifts(X, y)
    assert X_aug.shape == (500, 64) and X_aug.dtype == np.uint8
    np.testing.assert_array_equal(y_aug, np.tile(y, 5))
    names = {key[0] for key in dict(X_aug.__dask_graph__())}
    for direction in FOUR_SHIFTS:
        assert any(n.startswith(f"shift-augment-{direction}-") for n in names)
    X_np, aug = X.compute(scheduler="sync"), X_aug.compute(scheduler="sync")
    np.testing.assert_array_equal(aug[:100], X_np)
    for i, (dx, dy) in enumerate(FOUR_SHIFTS.values(), start=1):
        np.testing.assert_array_equal(aug[100 * i : 100 * (i + 1)], shift_images(X_np, dx, dy))


def test_augment_runs_on_the_cluster(client, digits):
    X_aug, _ = augment_shifts(digits.X_train, digits.y_train)
    with dask.config.set(scheduler=client):
        total = int(X_aug.sum(dtype=np.int64).compute())
    assert X_aug.shape[0] == 5 * 1437
    # Shifts lose only pixels pushed over the border: the sum can only shrink.
    assert 0 < total <= 5 * int(digits.X_train.sum(dtype=np.int64).compute(scheduler="sync"))


def test_rotation_turns_about_the_centre():
    rng = np.random.default_rng(3)
    block = rng.integers(0, 256, size=(4, 49)).astype(np.uint8)
    quarter = rotate_images(block, 90)  # anticlockwise: what np.rot90 does
    np.testing.assert_array_equal(
        quarter, np.rot90(block.reshape(4, 7, 7), axes=(1, 2)).reshape(4, 49)
    )
    small = rotate_images(block.astype(np.float32), 8)
    expected = scipy.ndimage.rotate(
        block[1].reshape(7, 7).astype(np.float32), 8, reshape=False, order=1, mode="constant"
    )
    np.testing.assert_allclose(small[1], expected.ravel(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("side", [8, 28, 33])  # 33 x 33 = 1089 pixels: ndimage image by image
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_rotation_gives_ndimage_numbers_to_the_bit(side, dtype):
    rng = np.random.default_rng(side)
    block = (rng.random((50, side * side)) * 255).astype(dtype)
    for degrees in (-8.0, 8.0, 33.0):
        turned = scipy.ndimage.rotate(
            block.reshape(-1, side, side).astype(np.float32),
            degrees,
            axes=(2, 1),
            reshape=False,
            order=1,
            mode="constant",
        )
        if dtype == np.uint8:
            turned = np.clip(np.rint(turned), 0, 255)
        np.testing.assert_array_equal(
            rotate_images(block, degrees), turned.astype(dtype).reshape(block.shape)
        )


@pytest.mark.parametrize(
    "kind, n_copies",
    [
        ("none", 0),
        ("shift4", 4),
        ("shift8", 8),
        ("shift2", 4),
        ("rotate", 2),
        ("shift8+rotate", 10),
    ],
)
def test_augmentation_choices(kind, n_copies):
    block = np.random.default_rng(0).integers(0, 256, size=(5, 64)).astype(np.uint8)
    made = copies(kind, block)
    Augment(kind).fit(block)  # a known kind, square images
    assert len(made) == n_copies and all(
        c.shape == block.shape and c.dtype == np.uint8 for c in made
    )
    assert len({c.tobytes() for c in made}) == n_copies  # every copy differs from the others
    np.testing.assert_array_equal(
        Augment(kind).fit_transform(block), block
    )  # transform never augments


def test_two_pixel_and_diagonal_shifts():
    image = np.zeros((1, 49), dtype=np.uint8)
    image[0, 3 * 7 + 3] = 1
    moved = {
        name: np.argwhere(c.reshape(7, 7))[0].tolist()
        for name, c in zip(
            [n for n, _ in AUGMENTATIONS["shift8"]], copies("shift8", image), strict=False
        )
    }
    assert moved["down-right"] == [4, 4] and moved["up-left"] == [2, 2]
    two = dict(zip([n for n, _ in AUGMENTATIONS["shift2"]], copies("shift2", image), strict=False))
    assert np.argwhere(two["left2"].reshape(7, 7))[0].tolist() == [3, 1]


def test_augmented_copies_are_named_tasks(digits):
    X = digits.X_train[:100]
    copies = augmented_copies(X, "shift8+rotate")
    names = [c.name.rsplit("-", 1)[0] for c in copies]
    assert names[0] == "augment-left" and names[-1] == "augment-rotate+8" and len(names) == 10
    assert [c.name for c in augmented_copies(X, "shift8+rotate")] == [
        c.name for c in copies
    ]  # shared, not duplicated
    np.testing.assert_array_equal(
        copies[-1].compute(scheduler="sync"), rotate_images(X.compute(scheduler="sync"), 8.0)
    )
    with pytest.raises(OptionError, match="unknown augmentation"):
        augmented_copies(X, "flip")
