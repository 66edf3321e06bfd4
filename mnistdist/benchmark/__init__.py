"""The book's search against mnistdist's on the same folds, timed, with each neighbour phase
against the cluster's GEMM limit (its float32 matrix-product rate)."""

from ._gemm import cv_multiply_adds, gemm_limit, gemm_shape, measure_gemm_rate, multiply_adds
from ._run import BENCHMARK_STRATEGIES, SCORE_TOLERANCE, book_search, run_benchmark
from ._table import format_table

__all__ = [
    "BENCHMARK_STRATEGIES",
    "SCORE_TOLERANCE",
    "book_search",
    "cv_multiply_adds",
    "format_table",
    "gemm_limit",
    "gemm_shape",
    "measure_gemm_rate",
    "multiply_adds",
    "run_benchmark",
]
