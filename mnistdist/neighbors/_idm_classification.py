"""k-NN that re-ranks each query's Euclidean candidates by a deformation-aware distance.

The exact Euclidean search of :class:`~mnistdist.knn.KNNClassifier` gives each
query its ``n_candidates`` nearest training images; the image distortion model
of :mod:`mnistdist.deformation` re-ranks them, and the ``n_neighbors`` nearest
by that distance vote as in :func:`~mnistdist.knn.vote`. The costly distance
is thus computed ``n_candidates`` times a query, not once a training image.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data import image_side
from ._classification import KNNClassifier, check_knn_params, vote
from ._idm import DEFAULT_BLOCK_PAIRS, check_idm_params, idm_distances

#: Image pairs whose pixels :func:`rerank` gathers at once (4096 MNIST pairs: 25 MB).
PAIRS_AT_ONCE = 4096


def idm_rerank(
    queries: np.ndarray,
    train: np.ndarray,
    candidate_ids: np.ndarray,
    warp: int = 2,
    context: int = 1,
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's candidates sorted by IDM distance, nearest first.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_pixels)
        Query images.
    train : ndarray of shape (n_train, n_pixels)
        Training images that ``candidate_ids`` index.
    candidate_ids : ndarray of shape (n_queries, n_candidates)
        Each query's candidates (from a Euclidean search, say).
    warp, context, block_pairs : int
        As in :func:`mnistdist.deformation.idm_distances`.

    Returns
    -------
    dist : ndarray of shape (n_queries, n_candidates)
        IDM distances, ascending along each row (ties keep the candidates' order).
    ids : ndarray of shape (n_queries, n_candidates)
        The candidates in that order.
    """
    candidate_ids = np.asarray(candidate_ids)
    queries, train = np.asarray(queries), np.asarray(train)
    n, m = candidate_ids.shape
    dist = np.empty((n, m))
    # Some queries at a time: the pairs' pixels are then 25 MB at most, not n * m images.
    step = max(1, PAIRS_AT_ONCE // max(m, 1))
    for start in range(0, n, step):
        ids = candidate_ids[start : start + step]
        pairs_q = np.repeat(queries[start : start + step], m, axis=0)
        found = idm_distances(pairs_q, train[ids.ravel()], warp, context, block_pairs)
        dist[start : start + step] = found.reshape(len(ids), m)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(candidate_ids, order, 1)


class DeformationKNNClassifier(ClassifierMixin, BaseEstimator):
    """k-NN voting on the IDM re-ranking of each query's Euclidean candidates.

    Parameters
    ----------
    n_neighbors : int, default=3
        Re-ranked neighbours that vote.
    weights : {"uniform", "distance"}, default="uniform"
        ``"distance"`` weighs each vote by the inverse of its IDM distance.
    n_candidates : int, default=20
        Euclidean nearest neighbours re-ranked per query (at least ``n_neighbors``).
    warp : int, default=2
        IDM warp range in pixels.
    context : int, default=1
        Half-width of the gradient context patch.
    ref_rows : int, default=16384
        Training rows compared at once in the Euclidean search.
    block_pairs : int, default=64
        Image pairs whose IDM features are held at once.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels seen by ``fit``.
    n_features_in_ : int
        Pixels per training row.
    """

    def __init__(
        self,
        n_neighbors: int = 3,
        weights: str = "uniform",
        n_candidates: int = 20,
        warp: int = 2,
        context: int = 1,
        ref_rows: int = 16384,
        block_pairs: int = DEFAULT_BLOCK_PAIRS,
    ):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.n_candidates = n_candidates
        self.warp = warp
        self.context = context
        self.ref_rows = ref_rows
        self.block_pairs = block_pairs

    def fit(self, X, y) -> DeformationKNNClassifier:
        """Check the parameters and store the training images.

        Parameters
        ----------
        X : array-like of shape (n_samples, side * side)
            Training images.
        y : array-like of shape (n_samples,)
            Their class labels.

        Returns
        -------
        DeformationKNNClassifier
            This classifier, fitted.

        Raises
        ------
        ValueError
            If a parameter is invalid, ``n_candidates < n_neighbors``, the rows are not
            square images, or there are fewer training rows than candidates.
        """
        check_knn_params(self.n_neighbors, self.weights)
        check_idm_params(self.warp, self.context)
        if (
            isinstance(self.n_candidates, bool)
            or not isinstance(self.n_candidates, numbers.Integral)
            or self.n_candidates < self.n_neighbors
        ):
            raise ValueError(
                f"n_candidates must be an integer >= n_neighbors ({self.n_neighbors}), "
                f"got {self.n_candidates!r}"
            )
        X, y = validate_data(self, X, y, dtype=None)
        image_side(X.shape[1], "compare")
        self.knn_ = KNNClassifier(self.n_candidates, ref_rows=self.ref_rows).fit(X, y)
        self.classes_ = self.knn_.classes_
        return self

    def kneighbors(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_candidates`` Euclidean candidates of each row, re-ranked by IDM distance.

        Parameters
        ----------
        X : array-like of shape (n_queries, side * side)
            Query images.

        Returns
        -------
        dist, ids : ndarray of shape (n_queries, n_candidates)
            IDM distances (ascending) and training-row indices.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=None)
        ids = self.knn_.kneighbors(X, return_distance=False)
        return idm_rerank(X, self.knn_._fit_X, ids, self.warp, self.context, self.block_pairs)

    def predict_proba(self, X) -> np.ndarray:
        """Share of the (weighted) votes of each class among the re-ranked neighbours.

        Parameters
        ----------
        X : array-like of shape (n_queries, side * side)
            Query images.

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Probabilities, columns in ``classes_`` order.
        """
        dist, ids = self.kneighbors(X)
        return vote(
            dist, ids, self.knn_._y_codes, len(self.classes_), self.n_neighbors, self.weights
        )

    def predict(self, X) -> np.ndarray:
        """The class with most votes (ties to the lowest class).

        Parameters
        ----------
        X : array-like of shape (n_queries, side * side)
            Query images.

        Returns
        -------
        ndarray of shape (n_queries,)
            Labels from ``classes_``.
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
