"""k-NN that re-ranks each query's Euclidean candidates by a deformation-aware distance.

The exact Euclidean search of :class:`~mnistdist.neighbors.KNNClassifier` gives each
query its ``n_candidates`` nearest training images; the image distortion model
(:func:`~mnistdist.neighbors.idm_distances`) re-ranks them, and the ``n_neighbors``
nearest by that distance vote as in :func:`~mnistdist.neighbors.vote`. The costly distance
is thus computed ``n_candidates`` times a query, not once a training image.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data import image_side
from ._classification import KNNClassifier
from ._exact import kneighbors
from ._idm import DEFAULT_BLOCK_PAIRS, check_idm_params
from ._idm_kernel import idm_candidate_distances


def idm_rerank(
    queries: np.ndarray,
    train: np.ndarray,
    candidate_ids: np.ndarray,
    warp: int = 2,
    context: int = 1,
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
    warp, context : int
        As in :func:`mnistdist.neighbors.idm_distances`.

    Returns
    -------
    dist : ndarray of shape (n_queries, n_candidates)
        IDM distances, ascending along each row (ties keep the candidates' order).
    ids : ndarray of shape (n_queries, n_candidates)
        The candidates in that order.
    """
    candidate_ids = np.asarray(candidate_ids)
    queries, train = np.asarray(queries), np.asarray(train)
    check_idm_params(warp, context)
    side = image_side(train.shape[1], "compare")
    # The compiled kernel reads the candidates' rows where they are: nothing is gathered.
    dist = idm_candidate_distances(queries, train, candidate_ids, side, warp, context)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(candidate_ids, order, 1)


class DeformationKNNClassifier(KNNClassifier):
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

    Its attributes are :class:`KNNClassifier`'s; its votes come from :meth:`kneighbors`.
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
        super().__init__(n_neighbors=n_neighbors, weights=weights, ref_rows=ref_rows)
        self.n_candidates = n_candidates
        self.warp = warp
        self.context = context
        self.block_pairs = block_pairs

    def fit(self, X, y) -> DeformationKNNClassifier:
        """Check the IDM parameters, then store the training images as
        :meth:`KNNClassifier.fit` does.

        Raises
        ------
        ValueError
            If a parameter is invalid, ``n_candidates < n_neighbors``, the rows are not
            square images, or there are fewer training rows than candidates.
        """
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
        super().fit(X, y)
        image_side(self.n_features_in_, "compare")
        if self.n_candidates > self._fit_X.shape[0]:
            raise ValueError(
                f"n_candidates={self.n_candidates} is larger than the training set "
                f"(n_samples = {self._fit_X.shape[0]})"
            )
        return self

    def kneighbors(self, X, n_neighbors: int | None = None, return_distance: bool = True):
        """Each row's ``n_candidates`` Euclidean candidates, re-ranked by IDM distance.

        Parameters
        ----------
        X : array-like of shape (n_queries, side * side)
            Query images.
        n_neighbors : int, optional
            How many of the re-ranked candidates (default: all ``n_candidates``).
        return_distance : bool, default=True
            Return the IDM distances too.

        Returns
        -------
        dist : ndarray of shape (n_queries, n_neighbors)
            IDM distances, ascending, only when ``return_distance``.
        ids : ndarray of shape (n_queries, n_neighbors)
            Indices of the training rows.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=None)
        _, ids = kneighbors(X, self._fit_X, self.n_candidates, ref_rows=self.ref_rows)
        dist, ids = idm_rerank(X, self._fit_X, ids, self.warp, self.context)
        k = self.n_candidates if n_neighbors is None else n_neighbors
        return (dist[:, :k], ids[:, :k]) if return_distance else ids[:, :k]

    def __setstate__(self, state: dict) -> None:
        # mnistdist 0.1 kept the Euclidean search in a KNNClassifier of its own.
        knn = state.pop("knn_", None)
        if knn is not None:
            state.update(_fit_X=knn._fit_X, _y_codes=knn._y_codes)
        super().__setstate__(state)
