"""The chosen model, refit on a training set and evaluated on the test set, on the cluster.

The test set's neighbours are found by tasks over (test block x training
chunk) pairs and merged per test block, so no worker ever holds more than one
block of distances, whatever the training set's size (60,000 or 300,000
rows). The saved model is a plain scikit-learn estimator (a
:class:`~mnistdist.neighbors.KNNClassifier`, or a pipeline ending in one) that
predicts the same labels on one machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dask.array as da
import numpy as np
from dask.core import flatten
from distributed import futures_of
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline

from .. import config
from ..neighbors import (
    KNNClassifier,
    Neighbors,
    bound_components,
    bounded_kneighbors_dask,
    candidates_needed,
    compute_journaled,
    is_reranking,
    kneighbors_dask,
    predict_from_neighbors,
    rerank_queries,
)
from ..outputs import Journal
from ..preprocessing import augment_shifts
from ..runtime import current_client
from ._pipeline_tasks import (
    KNN_PARAMS,
    fit_preprocessing,
    reference_blocks,
    split_pipeline,
    split_stateless,
    stateless_rows,
    transform_blocks,
)
from ._presets import Preset

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
    #: The test rows' nearest training rows (before any re-ranking).
    neighbors: Neighbors | None = None

    def accuracy(self, y_true: np.ndarray) -> float:
        return float(np.mean(self.y_pred == np.asarray(y_true)))


def _preprocessed(estimator: BaseEstimator, X_train, y_train, X_test, name: str, shared: dict):
    """The pipeline's preprocessing fitted on the training rows (or None), and the rows it makes.

    Training rows gain the augmented copies (and their labels); test rows
    only go through the steps. Steps that learn nothing (deskewing) run chunk
    by chunk on every worker before the fit: inside the fit's single task one
    worker deskewed the whole training set while the others waited. Their rows
    are kept on the workers, and in ``shared`` (:func:`stateless_rows`: made
    only where a search there did not make them), for the fit and the reference
    after it, which would otherwise make them twice; the test rows' are made
    beside the fit.
    """
    prep, _, _ = split_pipeline(estimator)
    ready, rest = split_stateless(prep, X_train)
    if ready is not None:
        X_train = stateless_rows(prep, X_train, None, shared)[1]
        X_test = transform_blocks(ready, X_test)
    if rest is None:
        return ready, X_train, y_train, X_test
    if ready is not None:
        X_test = X_test.persist()
    fitted = fit_preprocessing(rest, X_train, y_train, name=f"fit-preprocessing-{name}")
    return (
        fitted if ready is None else dataclasses.replace(fitted, before=ready.before),
        reference_blocks(fitted, X_train, name=f"preprocess-{name}-train"),
        np.tile(y_train, 1 + fitted.copies_per_image),
        transform_blocks(fitted, X_test, name=f"preprocess-{name}-test"),
    )


def _test_neighbors(
    X_train, X_test, k: int, name: str, journal: Journal | None, known=None
) -> Neighbors:
    """The test rows' k nearest training rows, searched on the cluster or read from the journal.

    ``known``, ``(m, Neighbors)``: their k nearest among the first ``m`` training
    rows, already found; only the rest are searched, by chains that start from them
    (ties to the lower row, as one search of all the rows breaks them).
    """
    options = {"name": f"neighbors-{name}"}
    if known is not None:
        m, first = known
        options |= {"ref_keep": np.arange(X_train.shape[0]) >= m, "known": (first.dist, first.ids)}
    query = X_test.rechunk({0: int(config.get("query-rows"))})
    if n_components := bound_components(X_train.shape[1]):
        dist, ids, _ = bounded_kneighbors_dask(query, X_train, k, n_components, **options)
    else:
        dist, ids = kneighbors_dask(query, X_train, k, **options)
    (found,) = compute_journaled(
        [(dist, ids)], journal, label=f"predict {X_test.shape[0]} test images ({name})"
    )
    return found


@contextlib.contextmanager
def _gathered_beside(X_train: da.Array):
    """A future of ``X_train``'s rows in one array, gathered by a thread of this process as
    the workers make them: beside the test set's search, which the workers run.

    ``X_train`` is persisted, in one column chunk. Leaving the block on an error
    (Ctrl-C included) cancels its chunks, so that the thread stops too.
    """
    client = current_client()
    chunks = {future.key: future for future in futures_of(X_train)}
    keys = [chunks[key] for key in flatten(X_train.__dask_keys__())]

    def gather() -> np.ndarray:
        t = time.perf_counter()
        rows = np.concatenate(client.gather(keys))
        log.info("gathered %d training rows in %.1f s", len(rows), time.perf_counter() - t)
        return rows

    pool = ThreadPoolExecutor(1, thread_name_prefix="mnistdist-gather")
    try:
        yield pool.submit(gather)
    except BaseException:
        client.cancel(keys)
        raise
    finally:
        pool.shutdown(wait=True)


def _gathered_model(fitted_prep, train_rows: np.ndarray, y_train, knn):
    """The scikit-learn model: the training rows, behind the fitted steps."""
    clf = clone(knn).fit(train_rows, y_train)
    return clf if fitted_prep is None else Pipeline([*fitted_prep.steps, ("knn", clf)])


def final_model(
    estimator: BaseEstimator,
    X_train: da.Array,
    y_train: np.ndarray,
    X_test: da.Array,
    *,
    name: str = "final",
    keep_model: bool = True,
    journal: Journal | None = None,
    known: tuple[int, Neighbors] | None = None,
    shared: dict | None = None,
) -> FinalModel:
    """Refit ``estimator``'s parameters on ``X_train`` and predict ``X_test`` on the cluster.

    An :class:`~mnistdist.preprocessing.Augment` step adds its copies to the
    training rows (never to the test rows).

    Parameters
    ----------
    estimator : KNNClassifier or Pipeline ending in one
        Its classifier's ``n_neighbors`` and ``weights`` are used.
    X_train : dask.array.Array of shape (n_train, n_features)
        Training rows.
    y_train : array-like of shape (n_train,)
        Their labels.
    X_test : dask.array.Array of shape (n_test, n_features)
        Rows to predict.
    name : str, default="final"
        Names the tasks (``neighbors-<name>``) and the log lines.
    keep_model : bool, default=True
        Gather the training set to build the returned scikit-learn model.
    journal : Journal, optional
        Keeps the test set's neighbors once found, and gives them back on a rerun.
    known : (int, Neighbors), optional
        ``(m, neighbors)``: the test rows' nearest among the first ``m`` training
        rows, as a model on those rows alone found them (the book's plain model,
        for the augmented one, whose training set starts with the plain one's):
        only the other rows are searched. Not with preprocessing steps.
    shared : dict, optional
        The search's (:func:`~mnistdist.model_selection.search`): the training
        images its stateless steps made (deskewed, say) are taken from it, and
        only the rows it did not hold are made here.

    Returns
    -------
    FinalModel
        Model (None without ``keep_model``), predictions, probabilities, cost.

    Raises
    ------
    OptionError
        If ``estimator`` does not end in a Euclidean KNN classifier.
    ClusterError
        If the connection to the scheduler is lost.
    """
    t0 = time.perf_counter()
    _, _, knn = split_pipeline(estimator)
    params = {p: knn.get_params()[p] for p in KNN_PARAMS}
    fitted_prep, X_train, y_train, X_test = _preprocessed(
        estimator, X_train, np.asarray(y_train), X_test, name, {} if shared is None else shared
    )
    model = None
    if keep_model:
        # The neighbor search and the gathered model share these chunks:
        # computed once (and recomputed by Dask if a worker holding some dies).
        X_train = X_train.rechunk({1: -1}).persist()
    with _gathered_beside(X_train) if keep_model else contextlib.nullcontext() as rows:
        k = candidates_needed(knn, params["n_neighbors"])
        found = _test_neighbors(X_train, X_test, k, name, journal, known)
        dist, ids = found.dist, found.ids
        if is_reranking(knn):
            dist, ids = rerank_queries(knn, X_train, X_test, ids, name)
        y_pred, proba = predict_from_neighbors(dist, ids, y_train, **params)
        if keep_model:
            model = _gathered_model(fitted_prep, rows.result(), y_train, knn)
    seconds, n_train = time.perf_counter() - t0, int(X_train.shape[0])
    log.info("%s: %d training rows, %d predictions in %.1f s", name, n_train, len(y_pred), seconds)
    return FinalModel(model, y_pred, proba, n_train, seconds, found.loaded, found)


#: The book's two models: a KNN on the plain and on the shift-augmented training set.
BOOK_MODELS = ("plain", "augmented")


def report_models(preset: Preset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The report's models: those fitted beside the search, and those that need its result.

    Where the search's estimator is a plain KNN (the book preset's), its two models
    (:data:`BOOK_MODELS`) use the searched KNN. Otherwise they use the book's own choice
    (:data:`BOOK_BEST`), known before the search, and the ``chosen`` pipeline follows it.
    """
    return ((), BOOK_MODELS) if preset.plain_knn else (BOOK_MODELS, ("chosen",))


def _model_fit(name: str, dataset, preset: Preset, params: dict):
    """``(estimator, X, y, keep_model)`` of the report's model ``name`` with ``params``."""
    if name == "chosen":
        estimator = clone(preset.estimator).set_params(**params)
        if not isinstance(estimator, Pipeline):  # a classifier alone: the report shows steps
            estimator = Pipeline([("knn", estimator)])
        return estimator, dataset.X_train, dataset.y_train, True
    knn = KNNClassifier(**params)
    if name == "plain":
        return knn, dataset.X_train, dataset.y_train, False
    X_aug, y_aug = augment_shifts(dataset.X_train, dataset.y_train)
    return knn, X_aug, y_aug, preset.plain_knn  # the book's final model is saved


def fit_report_models(
    dataset,
    preset: Preset,
    params: dict,
    names: tuple[str, ...],
    *,
    journal: Journal | None = None,
    on_done: Callable[[str, FinalModel], None] | None = None,
    shared: dict | None = None,
) -> dict[str, FinalModel]:
    """The report's models ``names`` with ``params``, each refit and evaluated on the cluster.

    Parameters
    ----------
    dataset : Dataset
        Its training set is refit on (``augmented``: with its four one-pixel shifts),
        its test set predicted.
    preset : Preset
        Its estimator is the ``chosen`` model's.
    params : dict
        The parameters to set: the KNN's for the book's models, the pipeline's for ``chosen``.
    names : tuple of str
        Of ``plain``, ``augmented`` and ``chosen`` (:func:`report_models`).
    journal : Journal, optional
        As for :func:`final_model`.
    on_done : callable ``(name, FinalModel)``, optional
        Called as each model is done.
    shared : dict, optional
        As for :func:`final_model`.

    Returns
    -------
    dict of str to FinalModel
    """
    models = {}
    for name in names:
        estimator, X, y, keep = _model_fit(name, dataset, preset, params)
        # The augmented training set starts with the plain one: its neighbours there are found.
        plain = models.get("plain") if name == "augmented" else None
        known = plain and (dataset.X_train.shape[0], plain.neighbors)
        models[name] = final_model(
            estimator,
            X,
            y,
            dataset.X_test,
            name=name,
            keep_model=keep,
            journal=journal,
            known=known,
            shared=shared,
        )
        if on_done is not None:
            on_done(name, models[name])
    return models
