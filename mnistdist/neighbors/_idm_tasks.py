"""Re-ranking on the cluster: each fold's (or the test set's) Euclidean candidates by IDM.

The cross-validated search (:mod:`mnistdist.model_selection._search`) and the final fit
(:mod:`mnistdist.model_selection._refit`) find Euclidean neighbours as for any KNN; when the
classifier is a :class:`~mnistdist.neighbors.DeformationKNNClassifier`, they
ask for ``n_candidates`` of them and hand them here. Queries are re-ranked in
row blocks by tasks named ``rerank-idm-fold-<f>`` (``rerank-idm-<name>`` for
the test set); every task reads the one copy of the image rows that Dask
keeps per worker, so memory is the images plus one block of pair features.
"""

from __future__ import annotations

import logging
import time

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from sklearn.base import clone

from .. import config
from ..errors import OptionError
from ._idm_classification import DeformationKNNClassifier, idm_rerank, reference_copies

log = logging.getLogger(__name__)


def is_reranking(knn) -> bool:
    """Whether the classifier re-ranks its Euclidean candidates."""
    return isinstance(knn, DeformationKNNClassifier)


def candidates_needed(knn, n_neighbors: int) -> int:
    """Euclidean neighbors to find per query: ``n_candidates`` for a re-ranking classifier."""
    return max(n_neighbors, knn.n_candidates) if is_reranking(knn) else n_neighbors


def _rerank_block(images, query_rows, candidate_ids, warp, context, queries=None, copies=None):
    src = images if queries is None else queries
    return idm_rerank(src[query_rows], images, candidate_ids, warp, context, copies)


def rerank_lazy(
    knn: DeformationKNNClassifier,
    images,
    candidate_ids: np.ndarray,
    *,
    name: str,
    query_rows: np.ndarray | None = None,
    queries=None,
) -> list:
    """Lazy ``(dist, ids)`` of each block of queries, candidates re-ranked by IDM.

    Parameters
    ----------
    knn : DeformationKNNClassifier
        Gives ``warp``, ``context`` and the reference copies.
    images : dask.array.Array of shape (n_images, n_pixels)
        The images that ``candidate_ids`` index (and the queries, without ``queries``);
        a row's copies are drawn for its index.
    candidate_ids : ndarray of shape (n_queries, n_candidates)
        Each query's candidates.
    name : str
        Task name (``rerank-idm-fold-3``, say).
    query_rows : ndarray of shape (n_queries,), optional
        Rows of ``queries`` (or of ``images``) that are the queries; default all.
    queries : dask.array.Array, optional
        The query images, if they are not rows of ``images``.

    Returns
    -------
    list of dask.delayed.Delayed
        One ``(dist, ids)`` per block of ``mnistdist.rerank-queries`` queries.
    """
    n = len(candidate_ids)
    query_rows = np.arange(n) if query_rows is None else np.asarray(query_rows)
    # One key for the whole array: each worker fetches it once, not once a task.
    whole = dask.delayed(np.asarray)(images, dask_key_name=f"images-{name}-{tokenize(images)}")
    whole_q = None
    if queries is not None:
        whole_q = dask.delayed(np.asarray)(queries, dask_key_name=f"queries-{tokenize(queries)}")
    step = int(config.get("rerank-queries"))
    copies = reference_copies(knn)
    blocks = []
    for b, start in enumerate(range(0, n, step)):
        rows, cand = query_rows[start : start + step], candidate_ids[start : start + step]
        token = tokenize(whole, rows, cand, knn.warp, knn.context, whole_q, copies)
        blocks.append(
            dask.delayed(_rerank_block, pure=True)(
                whole,
                rows,
                cand,
                knn.warp,
                knn.context,
                whole_q,
                copies,
                dask_key_name=(f"{name}-{token}", b),
            )
        )
    return blocks


def rerank_graph(
    knn, images: da.Array, graph: sp.csr_matrix, folds, label: str = "", task_prefix: str = ""
) -> sp.csr_matrix:
    """The neighbor graph with each row's candidates re-ranked by IDM (unchanged for plain KNN).

    Parameters
    ----------
    knn : estimator
        The search's classifier; only a :class:`DeformationKNNClassifier` re-ranks.
    images : dask.array.Array of shape (n, n_pixels)
        The images the graph's rows and columns index.
    graph : scipy.sparse.csr_matrix of shape (n, n)
        Each row's candidates from the training part of its fold, equally many a row.
    folds : list of (ndarray, ndarray)
        The folds the graph was built on.
    label : str
        Ends the task names.
    task_prefix : str
        Starts the task names (``halving-iter-1-``, say, for a round of a halving search).

    Returns
    -------
    scipy.sparse.csr_matrix
        Rows sorted by IDM distance, as ``KNeighborsClassifier(metric="precomputed")`` reads.

    Raises
    ------
    OptionError
        If the rows are not square images.
    """
    if not is_reranking(knn):
        return graph
    n = graph.shape[0]
    side = int(np.sqrt(images.shape[1]))
    if images.ndim != 2 or side * side != images.shape[1]:
        raise OptionError("re-ranking needs image rows: no step may change their shape")
    k = graph.indptr[1] - graph.indptr[0]
    ids = graph.indices.reshape(n, k)
    lazy = []
    for f, (_, test) in enumerate(folds):
        rows = np.sort(test)
        lazy.append(
            rerank_lazy(
                knn,
                images,
                ids[rows],
                name=f"{task_prefix}rerank-idm-fold-{f}{label}",
                query_rows=rows,
            )
        )
    t0 = time.perf_counter()
    found = dask.compute(*lazy)
    data, indices = np.empty((n, k)), np.empty((n, k), dtype=np.int64)
    for (_, test), blocks in zip(folds, found, strict=True):
        rows = np.sort(test)
        data[rows] = np.concatenate([d for d, _ in blocks])
        indices[rows] = np.concatenate([i for _, i in blocks])
    log.info("re-ranked %d x %d candidates in %.1f s", n, k, time.perf_counter() - t0)
    return sp.csr_matrix((data.ravel(), indices.ravel(), graph.indptr.copy()), shape=(n, n))


def rerank_queries(
    knn: DeformationKNNClassifier, train: da.Array, queries: da.Array, candidate_ids, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The queries' candidates among ``train`` re-ranked by IDM, as tasks ``rerank-idm-<name>``.

    Parameters
    ----------
    knn : DeformationKNNClassifier
        Gives ``warp`` and ``context``.
    train, queries : dask.array.Array of shape (n, n_pixels)
        Training images (that ``candidate_ids`` index) and query images.
    candidate_ids : ndarray of shape (n_queries, n_candidates)
        Each query's Euclidean candidates.
    name : str
        Ends the task name.

    Returns
    -------
    dist, ids : ndarray of shape (n_queries, n_candidates)
        IDM distances (ascending per row) and training-row indices.
    """
    t0 = time.perf_counter()
    lazy = rerank_lazy(
        knn, train, np.asarray(candidate_ids), name=f"rerank-idm-{name}", queries=queries
    )
    blocks = dask.compute(*lazy)
    log.info(
        "%s: re-ranked %d x %d candidates in %.1f s",
        name,
        *np.shape(candidate_ids),
        time.perf_counter() - t0,
    )
    return np.concatenate([d for d, _ in blocks]), np.concatenate([i for _, i in blocks])


def _pairs_per_query(knn, params: list[dict], prefix: str) -> float:
    """Image pairs a query compares, averaged over the grid's re-ranking settings: its
    candidates, and its best candidates' copies where a setting asks for them."""
    settings = {}
    for p in params:
        own = {k[len(prefix) :]: v for k, v in p.items() if k.startswith(prefix)}
        own = {k: v for k, v in own.items() if k not in ("n_neighbors", "weights")}
        settings[repr(sorted(own.items()))] = own
    counts = []
    for own in settings.values() or [{}]:
        setting = clone(knn).set_params(**own)
        copies = reference_copies(setting)
        extra = copies.pairs(setting.n_candidates) if copies else 0
        counts.append(setting.n_candidates + extra)
    return float(np.mean(counts))


def search_rerank_throughput(estimator, result, cluster_info: dict, seconds: dict) -> dict:
    """The search's re-ranking: image pairs, seconds, pairs per second per core, share of the run.

    Parameters
    ----------
    estimator : Pipeline or DeformationKNNClassifier
        The searched estimator; the grid's settings (``cv_results["params"]``) say how
        many pairs a query compares.
    result : SearchResult
        The search, with ``seconds["rerank"]``.
    cluster_info : dict
        :func:`jobs.common.cluster_summary`'s, whose workers' threads are the cores.
    seconds : dict
        The run's timings, with ``total``.

    Returns
    -------
    dict
        ``pairs``, ``seconds``, ``cores``, ``pairs_per_second_per_core``, ``share_of_run``.
    """
    knn = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    prefix = f"{estimator.steps[-1][0]}__" if hasattr(estimator, "steps") else ""
    pairs = result.queries_searched * _pairs_per_query(knn, result.cv_results["params"], prefix)
    cores = sum(w.get("threads", 1) for w in cluster_info.get("workers", [])) or 1
    spent = result.seconds["rerank"]
    return {
        "pairs": int(pairs),
        "seconds": round(spent, 3),
        "cores": int(cores),
        "pairs_per_second_per_core": round(pairs / spent / cores, 1),
        "share_of_run": round(spent / seconds["total"], 4),
    }


def format_throughput(stats: dict) -> str:
    """One line: the search's re-ranking throughput and its share of the run."""
    return (
        f"rerank: {stats['pairs']} image pairs in {stats['seconds']:.0f} s on {stats['cores']} "
        f"cores = {stats['pairs_per_second_per_core']:.0f} pairs/s/core, "
        f"{100 * stats['share_of_run']:.0f}% of the run"
    )
