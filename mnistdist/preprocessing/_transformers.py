"""Image preprocessing as scikit-learn transformers: deskewing and Gaussian blur.

Both work on rows of flat square images (any side, 28 for MNIST), are
stateless (``fit`` only checks the input; scikit-learn's ``requires_fit`` tag
is False, which lets the search apply them once for all folds), and fit in a
``Pipeline`` and in a grid like any scikit-learn transformer. Their output is float32: an augmented
training set of half a million rows stays half the size of float64.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

import numpy as np
import scipy.ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data

from ..data import image_side


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Shared ``fit``/``transform`` plumbing: rows are flat square images."""

    _verb = "transform"  # for the error on non-square rows

    def fit(self, X, y=None):
        """Check the parameters and that the rows are square images; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, side * side)
            Flat square images.
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        OptionError
            If the rows are not square images.
        ValueError
            If a parameter is invalid.
        """
        X = validate_data(self, X, dtype=(np.float32, np.float64, np.uint8), reset=True)
        self._check_params(X)
        return self

    def transform(self, X):
        """Transform every image.

        Parameters
        ----------
        X : array-like of shape (n_samples, side * side)
            Flat square images (float32, float64 or uint8).

        Returns
        -------
        ndarray of shape (n_samples, side * side), float32
            The transformed images, flat.

        Raises
        ------
        OptionError
            If the rows are not square images.
        """
        X = validate_data(self, X, dtype=(np.float32, np.float64, np.uint8), reset=False)
        side = image_side(X.shape[1], self._verb)
        images = X.astype(np.float32, copy=True).reshape(-1, side, side)
        return self._transform_images(images).reshape(X.shape[0], -1)

    def _check_params(self, X) -> None:
        image_side(X.shape[1], self._verb)

    def _transform_images(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def image_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per image: total mass, centre of mass ``(row, col)``, row variance and row-column covariance.

    ``images`` has shape ``(n, side, side)``; pixel values are the weights.
    Images with no mass get zeros.
    """
    n, side, _ = images.shape
    flat = images.reshape(n, -1).astype(np.float64)
    rows, cols = (g.ravel().astype(np.float64) for g in np.mgrid[:side, :side])
    mass = flat.sum(axis=1)
    safe = np.where(mass > 0, mass, 1.0)
    centre = np.stack([flat @ rows, flat @ cols], axis=1) / safe[:, None]
    var_r = (flat @ rows**2) / safe - centre[:, 0] ** 2
    cov_rc = (flat @ (rows * cols)) / safe - centre[:, 0] * centre[:, 1]
    return mass, centre, var_r, cov_rc


class Deskew(_ImageTransformer):
    """Straighten each image: shear it so its principal axis is vertical, centre its mass.

    The classic moment-based deskewing: with ``alpha = cov(row, col) / var(row)``
    of the pixel mass, the shear ``col' = col - alpha * (row - row_c)`` makes
    the row-column covariance zero (a slanted stroke becomes upright), and the
    mass moves to the image's centre. Resampling is bilinear
    (``scipy.ndimage.affine_transform``, order 1, zero outside). Blank images,
    and any without vertical extent, pass through unchanged.

    It has no parameters; ``fit`` and ``transform`` are described on them.
    """

    _verb = "deskew"

    def _transform_images(self, images: np.ndarray) -> np.ndarray:
        side = images.shape[1]
        mass, centre, var_r, cov_rc = image_moments(images)
        middle = np.full(2, (side - 1) / 2.0)
        out = images.copy()
        for i in np.flatnonzero((mass > 0) & (var_r > 1e-12)):
            shear = np.array([[1.0, 0.0], [cov_rc[i] / var_r[i], 1.0]])
            # affine_transform maps each output pixel o to the input at shear @ o + offset:
            # the output's middle reads the input's centre of mass.
            offset = centre[i] - shear @ middle
            out[i] = scipy.ndimage.affine_transform(
                images[i], shear, offset=offset, order=1, mode="constant", cval=0.0
            )
        return out


class GaussianBlur(_ImageTransformer):
    """Blur each image with a Gaussian, zero outside the image (a digit on a blank page).

    Parameters
    ----------
    sigma : float, default=1.0
        Standard deviation in pixels, at least 0 (0 leaves images unchanged).
    """

    _verb = "blur"
    #: scikit-learn's declaration of the valid values, which a grid file's are checked against.
    _parameter_constraints: ClassVar[dict] = {
        "sigma": [Interval(numbers.Real, 0, None, closed="left")]
    }

    def __init__(self, sigma: float = 1.0):
        self.sigma = sigma

    def _check_params(self, X) -> None:
        super()._check_params(X)
        if not np.isscalar(self.sigma) or not np.isfinite(self.sigma) or self.sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma!r}")

    def _transform_images(self, images: np.ndarray) -> np.ndarray:
        if self.sigma == 0:
            return images
        return scipy.ndimage.gaussian_filter(
            images, sigma=(0, self.sigma, self.sigma), mode="constant", cval=0.0
        )
