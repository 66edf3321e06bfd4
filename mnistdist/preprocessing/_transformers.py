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

import numba
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
    mass moves to the image's centre. Resampling is bilinear, zero outside:
    ``scipy.ndimage.affine_transform``'s numbers (order 1), compiled
    (:func:`_sheared`). Blank images, and any without vertical extent, pass
    through unchanged.

    It has no parameters; ``fit`` and ``transform`` are described on them.
    """

    _verb = "deskew"

    def _transform_images(self, images: np.ndarray) -> np.ndarray:
        side = images.shape[1]
        mass, centre, var_r, cov_rc = image_moments(images)
        todo = np.flatnonzero((mass > 0) & (var_r > 1e-12))
        alphas = cov_rc[todo] / var_r[todo]
        shears = np.zeros((len(todo), 2, 2))
        shears[:, 0, 0] = shears[:, 1, 1] = 1.0
        shears[:, 1, 0] = alphas
        # Each output pixel o reads the input at shear @ o + offset: the output's middle
        # reads the input's centre of mass. One stacked product gives the offsets that each
        # image's own shear @ middle gives (an einsum rounds some of them differently).
        offsets = centre[todo] - shears @ np.full(2, (side - 1) / 2.0)
        out = images.copy()
        _sheared(images, todo, alphas, offsets, out)
        return out


@numba.njit(cache=True, nogil=True)
def _sheared(images, todo, alphas, offsets, out):  # pragma: no cover - compiled
    """``out[todo[j]]`` = ``images[todo[j]]`` sheared by ``alphas[j]`` and moved by
    ``offsets[j]``: ``scipy.ndimage.affine_transform(order=1, mode="constant")``'s
    numbers to the bit (each coordinate summed from the offset, the weights ``1 - d``
    and ``1 - (1 - d)``, the four terms summed in float64 in its order, then rounded to
    ``out``'s dtype), 3 to 6 times faster than its call an image."""
    last = images.shape[1] - 1
    for j in range(len(todo)):
        i, alpha, s0, s1 = todo[j], alphas[j], offsets[j, 0], offsets[j, 1]
        for r in range(last + 1):
            for c in range(last + 1):
                x0 = (s0 + r * 1.0) + c * 0.0
                x1 = (s1 + r * alpha) + c * 1.0
                if x0 < 0.0 or x0 > last or x1 < 0.0 or x1 > last:
                    out[i, r, c] = 0.0  # beyond the edge: no interpolation, zero
                    continue
                f0, f1 = np.floor(x0), np.floor(x1)
                r0, c0 = int(f0), int(f1)
                # At the last row or column the second term's weight is 0: ndimage
                # reads the mirrored pixel there.
                r1 = r0 + 1 if r0 < last else last - 1
                c1 = c0 + 1 if c0 < last else last - 1
                u0 = 1.0 - (x0 - f0)
                u1 = 1.0 - u0
                v0 = 1.0 - (x1 - f1)
                v1 = 1.0 - v0
                t = 0.0
                t += np.float64(images[i, r0, c0]) * u0 * v0
                t += np.float64(images[i, r0, c1]) * u0 * v1
                t += np.float64(images[i, r1, c0]) * u1 * v0
                t += np.float64(images[i, r1, c1]) * u1 * v1
                out[i, r, c] = t


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
