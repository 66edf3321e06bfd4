"""A group's neighbour graph: one neighbour search per fold for candidates that differ only in
the classifier's ``n_neighbors`` and ``weights``, re-ranked where the classifier re-ranks.

The reference of each fold is its training rows (and, with an
:class:`~mnistdist.preprocessing.Augment` step, their copies); a validation
row's neighbours form a row of a sparse graph whose columns are images, so
each fold is scored from its own rows of it (:mod:`._scoring`).
"""

from __future__ import annotations

import contextlib
import time

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from sklearn.base import BaseEstimator, clone

from .. import config
from ..errors import OptionError
from ..neighbors import (
    Neighbors,
    candidates_needed,
    compute_journaled,
    compute_journaled_after,
    cv_kneighbors,
    fold_pairs_on,
    folds_partition,
    is_reranking,
    kneighbors_dask,
    local_kneighbors,
    rerank_graph,
)
from ..outputs import Journal
from ..runtime import Eta
from ._candidates import Group
from ._pipeline_tasks import (
    Preprocessing,
    fit_after_augment_task,
    fit_task,
    reference_blocks,
    reference_rows,
    split_pipeline,
    stateless_rows,
    transform_blocks,
    transform_rows,
)


def _neighbor_graph(n: int, k: int, folds, results) -> sp.csr_matrix:
    """The (n, n) graph whose row i holds i's k neighbors from the training part of its fold.

    A neighbor that is an augmented copy (reference row ``j >= n``) stands
    for its image ``j % n``: a row may then name one image twice, and
    scikit-learn counts each as a neighbor, as it would the copies.
    """
    data = np.empty((n, k))
    indices = np.empty((n, k), dtype=np.int64)
    for (_, test), (dist, ids) in zip(folds, results, strict=False):
        rows = np.sort(test)  # the order _fold_neighbors queried them in
        data[rows], indices[rows] = dist, ids % n
    # Rows are sorted by distance, as KNeighborsClassifier(metric="precomputed") wants.
    return sp.csr_matrix((data.ravel(), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))


def _all_rows_ids(ids: np.ndarray, train: np.ndarray, n: int) -> np.ndarray:
    """Ids among a fold's training rows and their copies as ids among all ``n`` rows and theirs."""
    copy, row = np.divmod(ids, len(train))
    return copy * n + train[row]


#: A fold's search of at most this many pairs (validation rows x training rows and their
#: copies) is one task: a halving round's first folds, of 444 queries among 19,558 rows,
#: were each a hundred tasks of a few milliseconds that the scheduler, the client and the
#: workers pass through one interpreter.
LOCAL_PAIRS = 2**27


def _local_fold_search(X: da.Array, fit: Preprocessing, fold, k: int, name: str, token: str):
    """:func:`_fitted_fold_search` as one task (``<name>-local``): the same neighbours."""
    train, test = fold
    key = tokenize(token, train, test, k, X.shape[0])
    found = dask.delayed(_searched_here, pure=True, nout=2)(
        fit, X[train], X[test], k, train, X.shape[0], dask_key_name=f"{name}-local-{key}"
    )
    return tuple(
        da.from_delayed(part, (len(test), k), dtype=dtype, name=f"{name}-{what}-{key}")
        for part, what, dtype in zip(
            found, ("distances", "ids"), (np.float64, np.int64), strict=True
        )
    )


def _searched_here(fit: Preprocessing, train_rows, test_rows, k: int, train, n: int):
    reference = reference_rows(fit, train_rows)
    dist, ids = local_kneighbors(transform_rows(fit, test_rows), reference, k)
    return dist, _all_rows_ids(ids, train, n)


def _fitted_fold_search(
    X: da.Array, fit: Preprocessing, fold, k: int, query_rows: int, names: tuple, token: str
) -> tuple[da.Array, da.Array]:
    """A fold's search with its fitted steps: its validation rows among its training rows
    and their copies, ids as among all of ``X``'s rows and their copies.

    Only the training rows are copied and transformed: the validation rows'
    copies would be a fifth of the work, for rows no search may use. The
    reference keeps the order of all rows (each copy's rows in the images'
    order), so ties fall to the same rows as among all of them. ``names``: the
    search's and the fold's steps' task names.
    """
    name, prep_name = names
    train, test = (np.sort(rows) for rows in fold)
    if len(test) * len(train) * (1 + fit.copies_per_image) <= LOCAL_PAIRS:
        return _local_fold_search(X, fit, (train, test), k, name, token)
    options = {"name": prep_name, "token": token}
    reference = reference_blocks(fit, X[train], **options)
    query = transform_blocks(fit, X[test], **options).rechunk({0: query_rows})
    dist, ids = kneighbors_dask(query, reference, k, name=name)
    n = X.shape[0]
    renamed = f"{name}-ids-{tokenize(ids.name, train, n)}"
    return dist, ids.map_blocks(_all_rows_ids, train, n, dtype=ids.dtype, name=renamed)


def _fold_neighbors(
    X: da.Array,
    y: np.ndarray,
    prep: Preprocessing | None,
    folds,
    k: int,
    label: str,
    journal: Journal | None,
    shared: dict,
    task_prefix: str = "",
) -> list[Neighbors]:
    """The neighbors of every fold's validation rows among its training rows (and their copies).

    The reference of fold f is its training images and their augmented copies
    alone: no version of a validation image is ever a neighbor of one, and
    validation rows are never augmented. Where no step is fitted per fold and
    the folds partition the rows, the folds are searched together
    (:func:`mnistdist.neighbors.cv_kneighbors`: bounded chains through the other
    folds, or each fold pair's distances once).
    Where steps are fitted per fold, each fold's search starts as soon as its own
    fit is done; the steps after an augmentation, which see the original rows
    alone, are fitted once a fold for the groups that differ only in the
    augmentation, the fit kept in ``shared``. ``task_prefix`` starts every task
    name, so that a caller running several searches (halving's rounds) tells
    them apart on the dashboard.
    """
    query_rows = int(config.get("query-rows"))
    n = X.shape[0]
    progress = f"neighbors of {len(folds)} folds{label}"

    fits: list = []

    def search(f: int, fit: Preprocessing | None) -> tuple[da.Array, da.Array]:
        name = f"{task_prefix}neighbors-fold-{f}{label}"
        if fit is not None:
            names = (name, f"{task_prefix}preprocess-fold-{f}")
            return _fitted_fold_search(X, fit, folds[f], k, query_rows, names, fits[f].key)
        train, test = folds[f]
        keep = np.zeros(n, dtype=bool)
        keep[train] = True
        query = X[np.sort(test)].rechunk({0: query_rows})
        return kneighbors_dask(query, X, k, name=name, ref_keep=keep)

    if prep is None:
        if fold_pairs_on() and folds_partition(folds, n):
            lazy = cv_kneighbors(
                X, folds, k, query_rows=query_rows, label=label, task_prefix=task_prefix
            )
        else:
            lazy = [search(f, None) for f in range(len(folds))]
        return compute_journaled(lazy, journal, label=progress)
    for f, rows in enumerate(np.sort(train) for train, _ in folds):
        names = (f"{task_prefix}fit-preprocessing-fold-{f}", f"{task_prefix}fit-after-fold-{f}")
        fit = fit_after_augment_task(prep, X[rows], y[rows], names=names, shared=shared)
        fits.append(fit if fit is not None else fit_task(prep, X[rows], y[rows], name=names[0]))
    return compute_journaled_after(fits, search, journal, label=progress)


def group_neighbors(
    estimator: BaseEstimator,
    X: da.Array,
    y: np.ndarray,
    group: Group,
    folds,
    *,
    label: str,
    journal: Journal | None,
    shared: dict,
    rows: np.ndarray | None = None,
    task_prefix: str = "",
    eta: Eta | None = None,
) -> tuple[sp.csr_matrix, dict]:
    """One group's neighbor graph over all folds, and what it took: ``searches`` (fold
    neighbor searches computed or read back, 0 where another group's were shared),
    ``loaded`` (of those, read back from the journal) and ``rerank`` (seconds re-ranking
    the candidates, 0 for a plain KNN).

    ``label`` ends the task names and ``task_prefix`` starts them; ``shared``
    holds what groups share: images transformed once by stateless steps
    (deskewed, say), and the neighbors of images that no data-fitted step
    changes, by images, k and task prefix. ``rows`` (sorted) searches only
    those rows of ``X``, ``y`` and ``folds`` being theirs: the stateless steps
    transform those rows alone, and a search of a larger set that holds them
    (halving's next round) transforms only the rows it adds. ``eta`` times the
    search and the re-ranking as its steps ``<task_prefix>neighbors<label>`` and
    ``<task_prefix>rerank<label>``.
    """
    prep, _, knn = split_pipeline(clone(estimator).set_params(**group.rest))
    prep, X_group = stateless_rows(prep, X, rows, shared)
    k = candidates_needed(knn, group.k)
    # Groups that differ only in the re-ranking (warp, say) search the same images for the
    # same k: the Euclidean candidates are found once and shared. The prefix keeps another
    # search's (halving's other rounds, with other folds) apart.
    key = ("neighbors", X_group.name, k, task_prefix) if prep is None else None
    found, searches = shared.get(key), 0
    step = f"{task_prefix}neighbors{label}"
    if found is None:
        searches = len(folds)
        with eta.step(step) if eta else contextlib.nullcontext():
            found = _fold_neighbors(X_group, y, prep, folds, k, label, journal, shared, task_prefix)
        if key is not None:
            shared[key] = found
    elif eta is not None:
        eta.skip(step)
    graph = _neighbor_graph(len(y), k, folds, [(r.dist, r.ids) for r in found])
    reranking = 0.0
    if is_reranking(knn):
        if prep is not None:
            raise OptionError("re-ranking needs image rows: only stateless steps before it")
        t0 = time.perf_counter()
        with eta.step(f"{task_prefix}rerank{label}") if eta else contextlib.nullcontext():
            graph = rerank_graph(knn, X_group, graph, folds, label, task_prefix)
        reranking = time.perf_counter() - t0
    loaded = sum(r.loaded for r in found) if searches else 0
    return graph, {"searches": searches, "loaded": loaded, "rerank": reranking}
