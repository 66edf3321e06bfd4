"""The k-nearest-neighbours classifier: a scikit-learn estimator, and its vote.

:class:`KNNClassifier` votes as scikit-learn's
``KNeighborsClassifier(n_neighbors, weights)`` with the Euclidean metric
(same weights, ties between classes to the lower class), but finds neighbours
with the blocked float32/float64 search of :mod:`mnistdist.neighbors`: faster,
exact, and in bounded memory whatever the training set's size. It keeps the
training images in their own dtype (uint8 for MNIST), so the model of the
300,000 augmented images stays a quarter of a GB.

Tie rule: among training rows at exactly the same distance from a query,
the one with the lower index is the nearer. scikit-learn's choice between
such rows depends on float rounding and on the input's dtype, so on integer
pixels with exact distance ties the two can pick different neighbours, and
their CV scores can differ slightly. On float64 input the scores equal
scikit-learn's.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._exact import kneighbors

WEIGHTS = ("uniform", "distance")


def check_knn_params(n_neighbors: object, weights: object) -> None:
    """Raise ``ValueError`` unless ``n_neighbors`` is a positive int and ``weights`` is known."""
    if (
        isinstance(n_neighbors, bool)
        or not isinstance(n_neighbors, numbers.Integral)
        or n_neighbors < 1
    ):
        raise ValueError(f"n_neighbors must be a positive integer, got {n_neighbors!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")


def vote(
    dist: np.ndarray,
    ids: np.ndarray,
    y_codes: np.ndarray,
    n_classes: int,
    n_neighbors: int,
    weights: str,
) -> np.ndarray:
    """Class probabilities from the neighbours' labels, as scikit-learn computes them.

    ``dist`` and ``ids`` hold at least ``n_neighbors`` neighbours per row,
    nearest first; ``y_codes`` maps a training row to its class index. With
    ``weights="distance"`` a neighbour weighs 1/distance, and a row with a
    neighbour at distance 0 counts only those.
    """
    dist, ids = dist[:, :n_neighbors], ids[:, :n_neighbors]
    if weights == "uniform":
        w = np.ones_like(dist)
    else:
        with np.errstate(divide="ignore"):
            w = 1.0 / dist
        exact = np.isinf(w).any(axis=1)
        w[exact] = np.isinf(w[exact])
    labels = y_codes[ids]
    n = dist.shape[0]
    flat = (np.arange(n)[:, None] * n_classes + labels).ravel()
    proba = np.bincount(flat, weights=w.ravel(), minlength=n * n_classes).reshape(n, n_classes)
    total = proba.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return proba / total


def predict_from_neighbors(
    dist: np.ndarray, ids: np.ndarray, y_train: np.ndarray, n_neighbors: int, weights: str
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and class probabilities from neighbors found elsewhere (on the cluster, say).

    ``ids`` index the training rows labelled ``y_train``; the vote is
    :func:`vote`'s, the label the most voted class (ties to the lower), as
    :meth:`KNNClassifier.predict` decides.
    """
    classes, codes = np.unique(np.asarray(y_train), return_inverse=True)
    proba = vote(dist, ids, codes, len(classes), n_neighbors, weights)
    return classes[np.argmax(proba, axis=1)], proba


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbours classifier (Euclidean) with exact blocked neighbour search.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    weights : {"uniform", "distance"}, default="uniform"
        ``"distance"`` weighs each vote by the inverse of its distance.
    ref_rows : int, default=16384
        Training rows compared at once; memory grows with it, speed barely.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels seen by ``fit``.
    n_features_in_ : int
        Pixels per training row.
    """

    #: scikit-learn's declaration of the valid values, which a grid file's are checked against.
    _parameter_constraints: ClassVar[dict] = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "weights": [StrOptions(set(WEIGHTS))],
        "ref_rows": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", ref_rows: int = 16384):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.ref_rows = ref_rows

    def fit(self, X, y) -> KNNClassifier:
        """Store the training set (in its own numeric dtype) and its classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,)
            Their class labels.

        Returns
        -------
        KNNClassifier
            This classifier, fitted.

        Raises
        ------
        ValueError
            If the parameters are invalid, or ``n_neighbors`` exceeds the training rows.
        """
        check_knn_params(self.n_neighbors, self.weights)
        X, y = validate_data(self, X, y, dtype=None if _is_numeric(X) else np.float64)
        check_classification_targets(y)
        if self.n_neighbors > X.shape[0]:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the training set "
                f"(n_samples = {X.shape[0]})"
            )
        self.classes_, self._y_codes = np.unique(y, return_inverse=True)
        self._fit_X = X
        return self

    def kneighbors(self, X, n_neighbors: int | None = None, return_distance: bool = True):
        """Distances and training-row indices of each row's nearest neighbors, nearest first.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.
        n_neighbors : int, optional
            How many neighbors (default: the classifier's ``n_neighbors``).
        return_distance : bool, default=True
            Return the distances too.

        Returns
        -------
        dist : ndarray of shape (n_queries, n_neighbors)
            Euclidean distances, only when ``return_distance``.
        ids : ndarray of shape (n_queries, n_neighbors)
            Indices of the training rows.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=None if _is_numeric(X) else np.float64)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        dist, ids = kneighbors(X, self._fit_X, k, ref_rows=self.ref_rows)
        return (dist, ids) if return_distance else ids

    def predict_proba(self, X) -> np.ndarray:
        """Share of the (weighted) votes of each class.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Rows to classify.

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Probabilities, columns in ``classes_`` order.
        """
        dist, ids = self.kneighbors(X)
        return self.proba_from_neighbors(dist, ids)

    def proba_from_neighbors(self, dist: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Class probabilities from neighbors found elsewhere (for example on the cluster)."""
        check_is_fitted(self)
        return vote(dist, ids, self._y_codes, len(self.classes_), self.n_neighbors, self.weights)

    def predict(self, X) -> np.ndarray:
        """The label of each row of ``X``: the class with most votes in :meth:`predict_proba`,
        ties to the lowest class, as in scikit-learn."""
        proba = self.predict_proba(X)  # first: it checks that the classifier is fitted
        return self.classes_[np.argmax(proba, axis=1)]


def _is_numeric(X) -> bool:
    return (
        hasattr(X, "dtype")
        and np.issubdtype(X.dtype, np.number)
        and not np.issubdtype(X.dtype, np.complexfloating)
    )
