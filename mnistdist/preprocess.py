"""A pipeline's preprocessing steps, fitted on the cluster and applied block by block.

The search and the final model take any scikit-learn pipeline whose last step
is a k-nearest-neighbours classifier. Everything before that step is
"preprocessing": it is fitted once on the rows it may see (a training fold,
or the whole training set) and then applied to every chunk of the images on
the workers, so the neighbour search runs on the transformed features.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline

from .errors import OptionError

KNN_PARAMS = ("n_neighbors", "weights")


def split_pipeline(estimator: BaseEstimator) -> tuple[Pipeline | None, str, BaseEstimator]:
    """Split an estimator into ``(preprocessing or None, knn parameter prefix, knn step)``."""
    if isinstance(estimator, Pipeline):
        name, knn = estimator.steps[-1]
        prep = Pipeline(estimator.steps[:-1]) if len(estimator.steps) > 1 else None
        prefix = f"{name}__"
    else:
        prep, prefix, knn = None, "", estimator
    params = knn.get_params(deep=False) if hasattr(knn, "get_params") else {}
    if not all(p in params for p in KNN_PARAMS):
        raise OptionError(f"the last step must be a k-nearest-neighbours classifier with {' and '.join(KNN_PARAMS)}, got {type(knn).__name__}")
    if params.get("metric", "minkowski") not in ("minkowski", "euclidean") or params.get("p", 2) != 2:
        raise OptionError("the neighbour search is Euclidean: the classifier's metric must be euclidean (minkowski, p=2)")
    return prep, prefix, knn


def _fit(prep: Pipeline, X: np.ndarray, y: np.ndarray | None) -> Pipeline:
    return prep.fit(X, y)


def fit_preprocessing(prep: Pipeline, X: da.Array, y: np.ndarray | None = None, *, name: str = "fit-preprocessing") -> Pipeline:
    """Fit a clone of ``prep`` on the rows of ``X`` in one task on a worker; return it fitted."""
    prep = clone(prep)
    task = dask.delayed(_fit, pure=True)(prep, X, y, dask_key_name=f"{name}-{tokenize(prep, X, y)}")
    return task.compute()


def _transform(block: np.ndarray, prep: Pipeline) -> np.ndarray:
    return np.asarray(prep.transform(block))


def transform_blocks(prep: Pipeline, X: da.Array, *, name: str = "preprocess") -> da.Array:
    """Apply a fitted ``prep`` to every row chunk of ``X`` on the workers."""
    probe = _transform(np.zeros((1, X.shape[1]), dtype=X.dtype), prep)
    return X.map_blocks(
        _transform,
        prep,
        chunks=(X.chunks[0], (probe.shape[1],)),
        dtype=probe.dtype,
        name=f"{name}-{tokenize(prep, X)}",
    )
