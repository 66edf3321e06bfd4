"""The GEMM limit: multiply-adds counted by hand, the shape from the settings, the rate measured."""

import dask.config
import numpy as np

from mnistdist.benchmark import cv_multiply_adds, gemm_shape, measure_gemm_rate, multiply_adds


def test_multiply_adds_of_a_final_search():
    # 7 test rows x 10 training rows x 5 features
    assert multiply_adds(7, 10, 5) == 350


def test_cv_multiply_adds_are_validation_x_training_x_features_per_fold():
    # 10 rows in folds of 4, 3 and 3 validation rows: 4*6*5 + 3*7*5 + 3*7*5
    rows = np.arange(10)
    tests = [rows[:4], rows[4:7], rows[7:]]
    folds = [(np.setdiff1d(rows, t), t) for t in tests]
    assert cv_multiply_adds(folds, 5) == 120 + 105 + 105 == 330


def test_cv_multiply_adds_of_the_books_search():
    # MNIST, 5 folds: 12,000 validation rows x 48,000 training rows x 784 pixels, five times
    folds = [(np.arange(48_000), np.arange(12_000))] * 5
    assert cv_multiply_adds(folds, 784) == 2_257_920_000_000


def test_gemm_shape_is_one_tasks_from_the_settings_no_larger_than_the_data():
    with dask.config.set({"mnistdist.query-rows": 2000, "mnistdist.chunk-rows": 10000}):
        assert gemm_shape(12_000, 60_000, 784) == (2000, 784, 10000)
        assert gemm_shape(200, 600, 64) == (200, 64, 600)


def test_rate_is_measured_on_every_worker_thread(client):
    gemm = measure_gemm_rate((64, 32, 128), min_seconds=0.05)
    assert gemm["threads"] == 2 and gemm["shape"] == [64, 32, 128]
    rate = gemm["multiply_adds_per_s"]
    assert rate > 0 and gemm["gflops"] == 2 * rate / 1e9


def test_rate_without_a_cluster_is_measured_here():
    gemm = measure_gemm_rate((16, 8, 32), min_seconds=0.01)
    assert gemm["threads"] == 1 and gemm["multiply_adds_per_s"] > 0
