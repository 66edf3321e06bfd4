"""The chosen model, refit on a training set and evaluated on the test set, on the cluster.

The test set's neighbours are found by tasks over (test block x training
chunk) pairs and merged per test block, so no worker ever holds more than one
block of distances, whatever the training set's size (60,000 or 300,000
rows). The saved model is a plain scikit-learn estimator (a
:class:`~mnistdist.knn.KNNClassifier`, or a pipeline ending in one) that
predicts the same labels on one machine.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from . import config
from .cluster import compute
from .journal import Journal, compute_journaled
from .knn import KNNClassifier, vote
from .neighbors import kneighbors_dask
from .preprocess import (
    KNN_PARAMS,
    fit_preprocessing,
    reference_blocks,
    split_pipeline,
    transform_blocks,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FinalModel:
    """A refit model, its test predictions and what they cost."""

    model: BaseEstimator | None
    y_pred: np.ndarray
    proba: np.ndarray
    n_train: int
    seconds: float
    loaded: bool = False

    def accuracy(self, y_true: np.ndarray) -> float:
        return float(np.mean(self.y_pred == np.asarray(y_true)))


def fit_predict(
    estimator: BaseEstimator,
    X_train: da.Array,
    y_train: np.ndarray,
    X_test: da.Array,
    *,
    name: str = "final",
    keep_model: bool = True,
    journal: Journal | None = None,
) -> FinalModel:
    """Refit ``estimator``'s parameters on ``X_train`` and predict ``X_test`` on the cluster.

    ``estimator`` is a KNN classifier or a pipeline ending in one; its
    classifier's ``n_neighbors`` and ``weights`` are used. An
    :class:`~mnistdist.augment.Augment` step adds its copies to the training
    rows (never to the test rows). Neighbour tasks show
    in the dashboard as ``neighbours-<name>``. With ``keep_model`` the training
    set is gathered to build the returned scikit-learn model. With a
    ``journal``, the test set's neighbours are saved once found, and read
    back instead of searched again when already there.
    """
    t0 = time.perf_counter()
    prep, _, knn = split_pipeline(estimator)
    params = {p: knn.get_params()[p] for p in KNN_PARAMS}
    y_train = np.asarray(y_train)
    fitted_prep = None
    if prep is not None:
        fitted_prep = fit_preprocessing(prep, X_train, y_train, name=f"fit-preprocessing-{name}")
        n_versions = 1 + fitted_prep.copies_per_image
        X_train = reference_blocks(fitted_prep, X_train, name=f"preprocess-{name}-train")
        y_train = np.tile(y_train, n_versions)
        X_test = transform_blocks(fitted_prep, X_test, name=f"preprocess-{name}-test")

    if keep_model:
        # The neighbour search and the gathered model share these chunks:
        # computed once (and recomputed by Dask if a worker holding some dies).
        X_train = X_train.persist()
    query = X_test.rechunk({0: int(config.get("query-rows"))})
    lazy = kneighbors_dask(query, X_train, params["n_neighbors"], name=f"neighbours-{name}")
    (found,) = compute_journaled(
        [lazy], journal, label=f"predict {X_test.shape[0]} test images ({name})"
    )
    dist, ids = found.dist, found.ids
    if keep_model:
        (train_rows,) = compute(
            X_train, label=f"gather {X_train.shape[0]} training images ({name})"
        )

    classes, codes = np.unique(y_train, return_inverse=True)
    proba = vote(dist, ids, codes, len(classes), **params)
    y_pred = classes[np.argmax(proba, axis=1)]
    model = None
    if keep_model:
        clf = KNNClassifier(**params).fit(train_rows, y_train)
        model = clf if fitted_prep is None else Pipeline([*fitted_prep.steps, ("knn", clf)])
    seconds = time.perf_counter() - t0
    log.info(
        "%s: %d training rows, %d test predictions in %.1f s",
        name,
        X_train.shape[0],
        len(y_pred),
        seconds,
    )
    return FinalModel(model, y_pred, proba, int(X_train.shape[0]), seconds, found.loaded)
