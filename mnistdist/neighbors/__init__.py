"""Nearest neighbours: the exact search in row blocks (NumPy and Dask), the CV search's fold-pair
tiles, the lower-bound search, the KNN classifier, and the image distortion model (IDM) with its
re-ranking classifier and tasks."""

from ._chain import FULL_SUB_QUERIES, bounded_kneighbors_dask, kneighbors_dask, local_kneighbors
from ._classification import WEIGHTS, KNNClassifier, check_knn_params, predict_from_neighbors, vote
from ._cv import CHAIN_MAX_K, cv_kneighbors, cv_method, fold_chain_kneighbors
from ._exact import block_kneighbors, kneighbors, merge_kneighbors
from ._fold_pairs import fold_pair_kneighbors, fold_pairs_on, folds_partition
from ._idm import idm_distances
from ._idm_classification import (
    DeformationKNNClassifier,
    ReferenceCopies,
    idm_rerank,
    reference_copies,
)
from ._idm_tasks import (
    candidates_needed,
    format_throughput,
    is_reranking,
    rerank_graph,
    rerank_queries,
    search_rerank_throughput,
)
from ._journaled import Neighbors, compute_journaled, compute_journaled_after
from ._lower_bound import bound_components

__all__ = [
    "CHAIN_MAX_K",
    "FULL_SUB_QUERIES",
    "WEIGHTS",
    "DeformationKNNClassifier",
    "KNNClassifier",
    "Neighbors",
    "ReferenceCopies",
    "block_kneighbors",
    "bound_components",
    "bounded_kneighbors_dask",
    "candidates_needed",
    "check_knn_params",
    "compute_journaled",
    "compute_journaled_after",
    "cv_kneighbors",
    "cv_method",
    "fold_chain_kneighbors",
    "fold_pair_kneighbors",
    "fold_pairs_on",
    "folds_partition",
    "format_throughput",
    "idm_distances",
    "idm_rerank",
    "is_reranking",
    "kneighbors",
    "kneighbors_dask",
    "local_kneighbors",
    "merge_kneighbors",
    "predict_from_neighbors",
    "reference_copies",
    "rerank_graph",
    "rerank_queries",
    "search_rerank_throughput",
    "vote",
]
