"""The book's search against mnistdist's on the same folds, timed, with each neighbour phase
against the cluster's GEMM limit (its float32 matrix-product rate), the search's growth with the
images, and the final models' kind of search against FAISS's flat index."""

from ._final import final_search, final_searches
from ._gemm import cv_multiply_adds, gemm_limit, gemm_shape, measure_gemm_rate, multiply_adds
from ._growth import fitted_exponent, growth_table
from ._peers import faiss_installed, faiss_kneighbors, neighbour_agreement
from ._run import BENCHMARK_STRATEGIES, SCORE_TOLERANCE, book_search, run_benchmark
from ._table import format_table
from ._usage import cpu_during, peak_memory_during

__all__ = [
    "BENCHMARK_STRATEGIES",
    "SCORE_TOLERANCE",
    "book_search",
    "cpu_during",
    "cv_multiply_adds",
    "faiss_installed",
    "faiss_kneighbors",
    "final_search",
    "final_searches",
    "fitted_exponent",
    "format_table",
    "gemm_limit",
    "gemm_shape",
    "growth_table",
    "measure_gemm_rate",
    "multiply_adds",
    "neighbour_agreement",
    "peak_memory_during",
    "run_benchmark",
]
