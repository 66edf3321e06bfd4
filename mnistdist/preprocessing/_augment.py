"""Augmentation: the training set plus copies of it, shifted, rotated or distorted.

For integer shifts, moving pixels is slicing with zero fill: exactly what
``scipy.ndimage.shift(image, [dy, dx], cval=0, mode="constant")`` computes
(the book's way), without its spline filter, and for a whole block at once.

:data:`AUGMENTATIONS` names the choices a grid can make (the book's four
one-pixel shifts, eight-way shifts, two-pixel shifts, small rotations), and
:data:`DISTORTIONS` the random ones (elastic and small affine distortions,
:mod:`._elastic`), each copy a function of (image id, copy number, seed): the
image id is the row in the set being augmented. :class:`Augment` puts one in a
pipeline: the search and the final fit add its copies to the training rows
only, never to the rows being predicted.
"""

from __future__ import annotations

import functools
import logging
import numbers
from typing import ClassVar

import dask.array as da
import numba
import numpy as np
import scipy.ndimage
import scipy.sparse
from dask.base import tokenize
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ..data import image_side
from ..errors import OptionError
from ._elastic import Distortion, distort_images

log = logging.getLogger(__name__)

#: The book's four one-pixel shifts as (dx, dy), in the book's order.
FOUR_SHIFTS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "down": (0, 1),
    "up": (0, -1),
}
_DIAGONALS = {"down-left": (-1, 1), "down-right": (1, 1), "up-left": (-1, -1), "up-right": (1, -1)}
#: Rotation copies, in degrees (positive: anticlockwise).
ROTATIONS = (-8.0, 8.0)

#: The augmentation choices: name -> copies, each
#: ``(copy name, ("shift", dx, dy) or ("rotate", degrees))``.
AUGMENTATIONS: dict[str, tuple[tuple[str, tuple], ...]] = {
    "none": (),
    "shift4": tuple((d, ("shift", dx, dy)) for d, (dx, dy) in FOUR_SHIFTS.items()),
    "shift8": tuple(
        (d, ("shift", dx, dy)) for d, (dx, dy) in {**FOUR_SHIFTS, **_DIAGONALS}.items()
    ),
    "shift2": tuple((f"{d}2", ("shift", 2 * dx, 2 * dy)) for d, (dx, dy) in FOUR_SHIFTS.items()),
    "rotate": tuple((f"rotate{deg:+g}", ("rotate", deg)) for deg in ROTATIONS),
}
AUGMENTATIONS["shift8+rotate"] = AUGMENTATIONS["shift8"] + AUGMENTATIONS["rotate"]

#: Simard et al.'s elastic distortion (alpha 34, sigma 4 pixels) and a small affine one
#: (rotation within +-10 degrees, scale within a factor e^+-0.1, shear within +-0.2).
ELASTIC = Distortion(alpha=34.0, sigma=4.0)
AFFINE = Distortion(alpha=0.0, sigma=0.0, rotate=10.0, scale=0.1, shear=0.2)
#: The recipes by name (their seed 0: a user of one sets its own).
DISTORTION_RECIPES: dict[str, Distortion] = {"elastic": ELASTIC, "affine": AFFINE}


def _distorted(prefix: str, recipe: Distortion, n: int) -> tuple[tuple[str, tuple], ...]:
    fields = (recipe.alpha, recipe.sigma, recipe.rotate, recipe.scale, recipe.shear)
    return tuple((f"{prefix}{c}", ("distort", c, *fields)) for c in range(n))


#: The random choices: name -> copies, each ``(copy name, ("distort", copy number, alpha,
#: sigma, rotate, scale, shear))``; the seed is :class:`Augment`'s ``random_state``.
DISTORTIONS: dict[str, tuple[tuple[str, tuple], ...]] = {
    **{f"elastic{n}": _distorted("elastic", ELASTIC, n) for n in (2, 4, 8)},
    "affine4": _distorted("affine", AFFINE, 4),
}


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift a block of flat square images by ``dx`` columns and ``dy`` rows, filling with 0.

    ``images`` has shape ``(n, side * side)``; positive ``dx`` moves content
    right, positive ``dy`` down. The dtype is kept.
    """
    images = np.asarray(images)
    if images.ndim != 2:
        raise ValueError(f"expected a 2-D block of flat images, got shape {images.shape}")
    side = image_side(images.shape[1])
    if dx != int(dx) or dy != int(dy):
        raise ValueError(f"shift_images takes integer shifts, got dx={dx}, dy={dy}")
    dx, dy = int(dx), int(dy)
    square = images.reshape(-1, side, side)
    out = np.zeros_like(square)
    if abs(dx) < side and abs(dy) < side:
        src_rows = slice(max(0, -dy), side - max(0, dy))
        dst_rows = slice(max(0, dy), side - max(0, -dy))
        src_cols = slice(max(0, -dx), side - max(0, dx))
        dst_cols = slice(max(0, dx), side - max(0, -dx))
        out[:, dst_rows, dst_cols] = square[:, src_rows, src_cols]
    return out.reshape(images.shape)


#: Pixels an image may have for its rotation to be one sparse product (its map has this
#: many rows and columns, made once from as many basis images).
ROTATION_MAP_PIXELS = 1024


def _rotate(square: np.ndarray, degrees: float) -> np.ndarray:
    return scipy.ndimage.rotate(
        square, degrees, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0
    )


@functools.lru_cache(maxsize=32)
def _rotation_map(side: int, degrees: float) -> scipy.sparse.csr_matrix:
    """Bilinear rotation with zero fill as a sparse linear map of flat images.

    Rotation is linear, so column ``p`` is ``scipy.ndimage.rotate`` of the
    basis image ``p``, in float64: each output pixel weighs at most four
    input pixels with ndimage's own weights.
    """
    basis = np.eye(side * side).reshape(-1, side, side)
    return scipy.sparse.csr_matrix(_rotate(basis, degrees).reshape(side * side, -1).T)


@numba.njit(cache=True, nogil=True)
def _mapped(flat, indptr, indices, weights, out):  # pragma: no cover - compiled
    """``out`` = ``flat`` through the sparse map ``(indptr, indices, weights)``, image by image.

    Each output pixel sums its weighted input pixels in float64 in the map's
    order from 0, as SciPy's sparse product sums them (no fused multiply-add),
    then rounds to ``out``'s float32: the product's numbers to the bit.
    """
    for b in range(flat.shape[0]):
        for i in range(len(indptr) - 1):
            total = 0.0
            for t in range(indptr[i], indptr[i + 1]):
                total += weights[t] * np.float64(flat[b, indices[t]])
            out[b, i] = total


def rotate_images(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate a block of flat square images about their centres (bilinear, zero fill).

    ``scipy.ndimage.rotate``'s numbers (its weights, summed in float64, then
    float32): for images of up to :data:`ROTATION_MAP_PIXELS` pixels, through
    :func:`_rotation_map`, compiled image by image (:func:`_mapped`: 2.3 to 2.8
    times the map's sparse product on 10,000 MNIST images, which was twice
    ndimage's speed). The dtype is kept.
    """
    images = np.asarray(images)
    side = image_side(images.shape[1])
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    if side * side <= ROTATION_MAP_PIXELS:
        rotation = _rotation_map(side, float(degrees))
        turned = np.empty(flat.shape, dtype=np.float32)
        _mapped(flat, rotation.indptr, rotation.indices, rotation.data, turned)
    else:
        turned = _rotate(flat.reshape(-1, side, side).astype(np.float32), degrees)
    if np.issubdtype(images.dtype, np.integer):
        turned = np.clip(np.rint(turned), np.iinfo(images.dtype).min, np.iinfo(images.dtype).max)
    return turned.astype(images.dtype, copy=False).reshape(images.shape)


def check_augmentation(kind: str) -> tuple[tuple[str, tuple], ...]:
    """The copies of augmentation ``kind``; an unknown name is an :class:`OptionError`."""
    if isinstance(kind, str) and kind in DISTORTIONS:
        return DISTORTIONS[kind]
    if not isinstance(kind, str) or kind not in AUGMENTATIONS:
        names = ", ".join([*AUGMENTATIONS, *DISTORTIONS])
        raise OptionError(f"unknown augmentation {kind!r}: choose from {names}")
    return AUGMENTATIONS[kind]


def make_copy(images: np.ndarray, how: tuple, first_id: int = 0, seed: int = 0) -> np.ndarray:
    """One augmented copy of a block of flat images.

    ``how`` is ``("shift", dx, dy)``, ``("rotate", degrees)`` or ``("distort", copy,
    alpha, sigma, rotate, scale, shear)``; a distorted copy of the block's image ``j``
    is drawn for image id ``first_id + j`` under ``seed``.
    """
    if how[0] == "shift":
        return shift_images(images, how[1], how[2])
    if how[0] == "rotate":
        return rotate_images(images, how[1])
    recipe = Distortion(*how[2:], seed=seed)
    return distort_images(images, first_id + np.arange(len(images)), how[1], recipe)


def _copy_block(block: np.ndarray, how: tuple, seed: int, block_info=None) -> np.ndarray:
    first = block_info[0]["array-location"][0][0] if block_info else 0
    return make_copy(block, how, first, seed)


def augmented_copies(
    X: da.Array, kind: str, *, name: str = "augment", random_state: int = 0
) -> list[da.Array]:
    """The copies of ``X`` that augmentation ``kind`` adds, lazily, in its list's order.

    Each copy is made chunk by chunk on the workers by tasks named
    ``<name>-<copy>`` (``augment-left``, ``augment-rotate+8``, ``augment-elastic0``, ...),
    never on the client; a distorted copy of row ``i`` is drawn for image id ``i`` under
    seed ``random_state``. Dask may fuse a copy into the task that consumes it (a
    fold's PCA): a cheap copy made again beats holding every copy in memory.
    """
    copies = check_augmentation(kind)
    image_side(X.shape[1])
    return [
        X.map_blocks(
            _copy_block,
            how,
            random_state,
            dtype=X.dtype,
            name=f"{name}-{label}-{tokenize(X, how, random_state)}",
        )
        for label, how in copies
    ]


class Augment(TransformerMixin, BaseEstimator):
    """A pipeline step that marks where, and how, the training images are augmented.

    Its ``transform`` is the identity: images being predicted (a validation
    fold, the test set) are never augmented. mnistdist's search and final
    fit see this step and add its copies of the *training* rows to the
    reference set after the steps before it (so deskewed images are shifted,
    not shifted images deskewed), then apply the steps after it to originals
    and copies alike; those later steps are fitted on the original training
    rows.

    Parameters
    ----------
    kind : str, default="shift4"
        One of :data:`AUGMENTATIONS` or :data:`DISTORTIONS`.
    random_state : int, default=0
        The seed of the distorted copies (the others have none): copy ``c`` of
        training row ``i`` is a function of ``(i, c, random_state)``.
    """

    #: scikit-learn's declaration of the valid values, which a grid file's are checked against.
    _parameter_constraints: ClassVar[dict] = {
        "kind": [StrOptions(set(AUGMENTATIONS) | set(DISTORTIONS))],
        "random_state": [Interval(numbers.Integral, 0, 2**63 - 1, closed="both")],
    }

    def __init__(self, kind: str = "shift4", random_state: int = 0):
        self.kind = kind
        self.random_state = random_state

    def fit(self, X, y=None):
        """Check the augmentation's name and that rows are square images.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels)
            Training images, flat; ``n_pixels`` must be a square.
        y : None
            Unused: every image is copied alike.

        Returns
        -------
        Augment
            This step.

        Raises
        ------
        OptionError
            If ``kind`` is unknown or the rows are not square images.
        """
        X = validate_data(self, X, reset=True)
        check_augmentation(self.kind)
        Distortion(seed=self.random_state)  # checks the seed
        image_side(X.shape[1], "augment")
        return self

    def transform(self, X):
        """Return ``X`` unchanged: rows being predicted are never augmented."""
        return validate_data(self, X, reset=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


def augment_set(
    X: da.Array,
    y: np.ndarray,
    kind: str = "shift4",
    *,
    random_state: int = 0,
    name: str = "augment",
) -> tuple[da.Array, np.ndarray]:
    """The training set followed by the copies augmentation ``kind`` makes, lazily.

    Returns ``(X_aug, y_aug)`` with ``(1 + copies) * n`` rows: the originals, then each
    copy of every image in ``X``'s order (:func:`check_augmentation`'s order), made by
    tasks on the workers named ``<name>-<copy>``; row ``j`` is a version of image ``j % n``.
    """
    copies = augmented_copies(X, kind, name=name, random_state=random_state)
    y_aug = np.tile(np.asarray(y), 1 + len(copies))
    log.info(
        "augmented %d images with %d copies (%s): %d rows",
        X.shape[0],
        len(copies),
        kind,
        len(y_aug),
    )
    return da.concatenate([X, *copies], axis=0), y_aug


def augment_shifts(X: da.Array, y: np.ndarray) -> tuple[da.Array, np.ndarray]:
    """The training set followed by its four one-pixel shifted copies (the book's), lazily.

    Returns ``(X_aug, y_aug)`` with ``5 * n`` rows: the originals, then all
    images shifted left, then right, down and up (:data:`FOUR_SHIFTS`'s
    order). The copies are :func:`augmented_copies`' ``"shift4"``, made by
    tasks on the workers named ``shift-augment-<direction>``.
    """
    return augment_set(X, y, "shift4", name="shift-augment")
