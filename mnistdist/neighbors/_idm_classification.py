"""k-NN that re-ranks each query's Euclidean candidates by a deformation-aware distance.

The exact Euclidean search of :class:`~mnistdist.neighbors.KNNClassifier` gives each
query its ``n_candidates`` nearest training images; the image distortion model
(:func:`~mnistdist.neighbors.idm_distances`) re-ranks them, and the ``n_neighbors``
nearest by that distance vote as in :func:`~mnistdist.neighbors.vote`. The costly distance
is thus computed ``n_candidates`` times a query, not once a training image.

With reference copies (:class:`ReferenceCopies`), the nearest few candidates are also
compared with distorted copies of themselves (:func:`mnistdist.preprocessing.distort_images`,
each a function of the image's row, the copy number and the seed): every copy is a
neighbour of its own, standing for its image, at its distance times ``1 + penalty``. The
copies are drawn where they are compared and never kept.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data import image_side
from ..preprocessing import DISTORTION_RECIPES, Distortion, distort_images
from ._classification import KNNClassifier
from ._exact import kneighbors
from ._idm import check_idm_params
from ._idm_kernel import idm_candidate_distances


@dataclasses.dataclass(frozen=True)
class ReferenceCopies:
    """Distorted copies of each query's ``n_best`` nearest candidates, compared as well.

    ``n_copies`` copies an image, drawn by ``distortion`` (its seed included); a copy's
    distance counts ``1 + penalty`` times, so that an original wins a tie.
    """

    n_copies: int
    n_best: int
    penalty: float
    distortion: Distortion

    def pairs(self, n_candidates: int) -> int:
        """Image pairs a query compares beyond its ``n_candidates``."""
        return self.n_copies * min(self.n_best, n_candidates)


def _with_copies(queries, train, dist, ids, side, warp, context, copies: ReferenceCopies):
    """Each row's neighbours among its candidates and their best ones' copies, nearest first,
    as many as there were candidates."""
    m = ids.shape[1]
    best = ids[:, : min(copies.n_best, m)]
    images, at = np.unique(best, return_inverse=True)
    at = at.reshape(best.shape)
    found_d, found_i = [dist], [ids]
    for c in range(copies.n_copies):
        drawn = distort_images(train[images], images, c, copies.distortion)
        found = idm_candidate_distances(queries, drawn, at, side, warp, context)
        found_d.append(found * (1.0 + copies.penalty))
        found_i.append(best)
    dist, ids = np.concatenate(found_d, axis=1), np.concatenate(found_i, axis=1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :m]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ids, order, axis=1)


def idm_rerank(
    queries: np.ndarray,
    train: np.ndarray,
    candidate_ids: np.ndarray,
    warp: int = 2,
    context: int = 1,
    copies: ReferenceCopies | None = None,
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
    copies : ReferenceCopies, optional
        Also compare the nearest candidates' distorted copies (rows of ``train`` are the
        images' ids); each copy is a neighbour standing for its image.

    Returns
    -------
    dist : ndarray of shape (n_queries, n_candidates)
        IDM distances, ascending along each row (ties keep the candidates' order).
    ids : ndarray of shape (n_queries, n_candidates)
        The candidates in that order (with copies: the nearest of candidates and copies,
        a copy named by its image, so an image may appear more than once).
    """
    candidate_ids = np.asarray(candidate_ids)
    queries, train = np.asarray(queries), np.asarray(train)
    check_idm_params(warp, context)
    side = image_side(train.shape[1], "compare")
    # The compiled kernel reads the candidates' rows where they are: nothing is gathered.
    dist = idm_candidate_distances(queries, train, candidate_ids, side, warp, context)
    order = np.argsort(dist, axis=1, kind="stable")
    dist, ids = np.take_along_axis(dist, order, axis=1), np.take_along_axis(candidate_ids, order, 1)
    if copies is None or copies.n_copies == 0 or ids.shape[1] == 0:
        return dist, ids
    return _with_copies(queries, train, dist, ids, side, warp, context, copies)


def _check_count(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def reference_copies(knn) -> ReferenceCopies | None:
    """The copies a :class:`DeformationKNNClassifier`'s parameters ask for (None: none).

    Raises
    ------
    ValueError
        If a copy parameter is invalid.
    """
    n_copies = getattr(knn, "reference_copies", 0)
    _check_count("reference_copies", n_copies, 0)
    _check_count("copy_candidates", knn.copy_candidates, 1)
    penalty = knn.copy_penalty
    if isinstance(penalty, bool) or not isinstance(penalty, numbers.Real) or not penalty >= 0:
        raise ValueError(f"copy_penalty must be a number >= 0, got {penalty!r}")
    if knn.distortion not in DISTORTION_RECIPES:
        names = ", ".join(DISTORTION_RECIPES)
        raise ValueError(f"distortion must be one of {names}, got {knn.distortion!r}")
    recipe = dataclasses.replace(DISTORTION_RECIPES[knn.distortion], seed=knn.random_state)
    if n_copies == 0:
        return None
    return ReferenceCopies(n_copies, knn.copy_candidates, float(penalty), recipe)


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
    reference_copies : int, default=0
        Distorted copies of each of the ``copy_candidates`` nearest candidates (by IDM)
        also compared; each copy is a neighbour standing for its image (0: none).
    copy_candidates : int, default=10
        How many of each query's nearest candidates are compared with their copies.
    copy_penalty : float, default=0.2
        A copy's IDM distance counts ``1 + copy_penalty`` times.
    distortion : {"elastic", "affine"}, default="elastic"
        How copies are drawn (:data:`mnistdist.preprocessing.DISTORTION_RECIPES`).
    random_state : int, default=0
        The copies' seed: copy ``c`` of training row ``i`` is a function of
        ``(i, c, random_state)``, so no copy is stored.
    ref_rows : int, default=16384
        Training rows compared at once in the Euclidean search.

    Its attributes are :class:`KNNClassifier`'s; its votes come from :meth:`kneighbors`.
    """

    _parameter_constraints: ClassVar[dict] = {
        **KNNClassifier._parameter_constraints,
        "n_candidates": [Interval(numbers.Integral, 1, None, closed="left")],
        "warp": [Interval(numbers.Integral, 0, None, closed="left")],
        "context": [Interval(numbers.Integral, 0, None, closed="left")],
        "reference_copies": [Interval(numbers.Integral, 0, None, closed="left")],
        "copy_candidates": [Interval(numbers.Integral, 1, None, closed="left")],
        "copy_penalty": [Interval(numbers.Real, 0, None, closed="left")],
        "distortion": [StrOptions(set(DISTORTION_RECIPES))],
        "random_state": [Interval(numbers.Integral, 0, 2**63 - 1, closed="both")],
    }

    def __init__(
        self,
        n_neighbors: int = 3,
        weights: str = "uniform",
        n_candidates: int = 20,
        warp: int = 2,
        context: int = 1,
        reference_copies: int = 0,
        copy_candidates: int = 10,
        copy_penalty: float = 0.2,
        distortion: str = "elastic",
        random_state: int = 0,
        ref_rows: int = 16384,
    ):
        super().__init__(n_neighbors=n_neighbors, weights=weights, ref_rows=ref_rows)
        self.n_candidates = n_candidates
        self.warp = warp
        self.context = context
        self.reference_copies = reference_copies
        self.copy_candidates = copy_candidates
        self.copy_penalty = copy_penalty
        self.distortion = distortion
        self.random_state = random_state

    def fit(self, X, y) -> DeformationKNNClassifier:
        """Check the IDM and copy parameters, then store the training images as
        :meth:`KNNClassifier.fit` does.

        Raises
        ------
        ValueError
            If a parameter is invalid, ``n_candidates < n_neighbors``, the rows are not
            square images, or there are fewer training rows than candidates.
        """
        check_idm_params(self.warp, self.context)
        reference_copies(self)
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
            How many of the re-ranked neighbours (default: all ``n_candidates``).
        return_distance : bool, default=True
            Return the IDM distances too.

        Returns
        -------
        dist : ndarray of shape (n_queries, n_neighbors)
            IDM distances, ascending, only when ``return_distance``.
        ids : ndarray of shape (n_queries, n_neighbors)
            Indices of the training rows (with reference copies, a copy's image's).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=None)
        _, ids = kneighbors(X, self._fit_X, self.n_candidates, ref_rows=self.ref_rows)
        copies = reference_copies(self)
        dist, ids = idm_rerank(X, self._fit_X, ids, self.warp, self.context, copies)
        k = self.n_candidates if n_neighbors is None else n_neighbors
        return (dist[:, :k], ids[:, :k]) if return_distance else ids[:, :k]

    def __setstate__(self, state: dict) -> None:
        # mnistdist 0.1 kept the Euclidean search in a KNNClassifier of its own, and 0.2
        # a block size for the NumPy kernel; models without reference copies had none.
        knn = state.pop("knn_", None)
        if knn is not None:
            state.update(_fit_X=knn._fit_X, _y_codes=knn._y_codes)
        state.pop("block_pairs", None)
        for name, value in (
            ("reference_copies", 0),
            ("copy_candidates", 10),
            ("copy_penalty", 0.2),
            ("distortion", "elastic"),
            ("random_state", 0),
        ):
            state.setdefault(name, value)
        super().__setstate__(state)
