"""The pixel range a saved model takes, checked at its door.

A model trained on 0-255 pixels answers garbage, silently, for pixels scaled
to 0-1 (14% accuracy on MNIST). The saved model therefore starts with
:class:`PixelRange`, which refuses input outside 0-255 and a batch that lies
wholly within 0-1 (all of it at most 1, some of it above 0: a blank batch is
valid 0-255 input).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import validate_data

from ..errors import DataError

#: The largest pixel value of MNIST (and of the 8x8 digits, stored as uint8).
PIXEL_MAX = 255


def check_pixels(X, high: float = PIXEL_MAX) -> np.ndarray:
    """``X`` as an array, if it holds pixels in 0-``high``; else raise :class:`DataError`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_pixels)
        Images, one flat row each.
    high : float, default=255
        The largest pixel value.

    Returns
    -------
    numpy.ndarray
        ``X`` as an array.

    Raises
    ------
    DataError
        For values outside 0-``high`` (NaN included), or a batch wholly within
        0-1 that is not blank.
    """
    if sp.issparse(X):
        raise DataError("sparse input is not supported: pass pixels as a dense array")
    X = np.asarray(X)
    if X.dtype == object:  # numbers in an object array are pixels too; anything else raises
        X = X.astype(np.float64)
    if X.size == 0:
        return X
    if np.iscomplexobj(X):
        raise DataError(f"Complex data not supported: pixels are real numbers 0-{high:g}")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"pixels must be real numbers 0-{high:g}, got dtype {X.dtype}")
    low, top = X.min(), X.max()
    if not (np.isfinite(low) and np.isfinite(top)):
        raise DataError(f"pixels must lie within 0-{high:g}; this input holds NaN or infinity")
    if low < 0 or top > high:
        negative = "Negative values in data: " if low < 0 else ""
        raise DataError(
            f"{negative}pixels must lie within 0-{high:g}; this input holds {low:g} to {top:g}"
        )
    if 0 < top <= 1:
        raise DataError(
            f"every pixel of this input lies within 0-1: pass pixels 0-{high:g} "
            "(as MNIST gives them), not pixels scaled to 0-1"
        )
    return X


class PixelRange(TransformerMixin, BaseEstimator):
    """Pass pixels through unchanged, refusing any outside 0-``high`` or a batch scaled to 0-1.

    Parameters
    ----------
    high : float, default=255
        The largest pixel value.
    """

    def __init__(self, high: float = PIXEL_MAX):
        self.high = high

    def fit(self, X, y=None) -> PixelRange:
        """Learn nothing but the number of pixels; check the range."""
        validate_data(self, check_pixels(X, self.high), dtype=None)
        return self

    def transform(self, X):
        """``X`` unchanged, once checked."""
        X = validate_data(self, check_pixels(X, self.high), dtype=None, reset=False)
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.positive_only = True
        return tags


def with_pixel_check(model, high: float = PIXEL_MAX) -> Pipeline:
    """A fitted ``model`` behind a :class:`PixelRange` (fitted: no refit needed), as one pipeline.

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted model whose input is flat pixel rows.
    high : float, default=255
        The largest pixel value.

    Returns
    -------
    Pipeline
        ``pixels`` then the model's steps (or the model as step ``model``).
    """
    steps = list(model.steps) if isinstance(model, Pipeline) else [("model", model)]
    n_features = getattr(model, "n_features_in_", None)
    check = PixelRange(high)
    if n_features is not None:
        check.n_features_in_ = n_features
    return Pipeline([("pixels", check), *steps])
