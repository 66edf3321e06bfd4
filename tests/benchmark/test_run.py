"""``run_benchmark`` on small data: each neighbour phase's GEMM limit, the halving comparison."""

import dask
import numpy as np
import pytest

from mnistdist.benchmark import cv_multiply_adds, format_table, run_benchmark
from mnistdist.benchmark._bound_phase import bound_search

BOOK_GRID = {"n_neighbors": [3, 4, 5], "weights": ["uniform", "distance"]}


@pytest.fixture(scope="module")
def small(digits):
    return digits.X_train[:600], np.asarray(digits.y_train[:600])


def test_grid_rows_have_their_gemm_limit(client, small):
    X, y = small
    report = run_benchmark(X, y, BOOK_GRID, 3, book=False, gemm_seconds=0.05)
    gemm = report["gemm"]
    assert gemm["shape"] == [200, 64, 600] and gemm["threads"] == 2 and gemm["gflops"] > 0
    folds = [(np.arange(400), np.arange(200))] * 3  # 600 rows in 3 stratified folds
    for row in report["rows"]:
        assert row["neighbor_multiply_adds"] == cv_multiply_adds(folds, 64) == 15_360_000
        assert row["gemm_limit_s"] > 0 and row["gemm_limit_multiple"] > 0
        assert row["gemm_limit_multiple"] == pytest.approx(
            row["seconds_neighbors"] / row["gemm_limit_s"]
        )
    assert "halving" not in report
    assert "lower_bound" not in report  # 128 components of 64 features would not pay
    text = format_table(report)
    assert "GEMM limit: float32 200 x 64 times 64 x 600 on 2 worker threads" in text
    assert "neighbours, mnistdist, 6 candidates: " in text and "x the GEMM limit (" in text


def test_halving_against_scikit_learns(client, small):
    X, y = small
    report = run_benchmark(X, y, BOOK_GRID, 3, strategy="halving", gemm_seconds=0.05)
    assert "rows" not in report  # the grid searches are not run
    halving = report["halving"]
    book, ours = halving["rows"]
    assert book["method"].startswith("book: scikit-learn HalvingGridSearchCV")
    assert book["seconds"] > 0 and ours["seconds"] > 0 and halving["speedup"] > 0
    assert halving["schedule_agree"] and halving["n_resources"] == halving["book_n_resources"]
    assert halving["n_candidates"] == [6, 2] and halving["last_round_all_images"]
    assert isinstance(halving["best_agree"], bool)
    rounds = ours["rounds"]
    assert [r["n_resources"] for r in rounds] == [200, 600]
    assert all(r["gemm_limit_s"] > 0 and r["gemm_limit_multiple"] > 0 for r in rounds)
    assert ours["neighbor_multiply_adds"] == sum(r["neighbor_multiply_adds"] for r in rounds)
    assert rounds[1]["neighbor_multiply_adds"] == 3 * 200 * 400 * 64
    text = format_table(report)
    assert "speed-up of mnistdist's halving over scikit-learn's: " in text
    assert "neighbours, mnistdist, halving round 1 (2 candidates, 600 images): " in text


def test_one_round_halving_compares_its_scores_with_scikit_learns(client, small):
    # Two candidates make one round on every image: the same folds, comparable scores.
    X, y = small
    grid = {"n_neighbors": [3], "weights": ["uniform", "distance"]}
    report = run_benchmark(X, y, grid, 3, strategy="both", gemm_seconds=0.05)
    halving = report["halving"]
    assert halving["n_resources"] == [600] and halving["last_round_common_candidates"] == 2
    # The same rows and folds; scikit-learn's subsampler shuffles the training rows, which
    # changes its picks between neighbours at equal distances (a few of 200 images at most).
    assert halving["best_agree"] and halving["last_round_max_images_differ"] <= 3
    assert halving["last_round_scores_max_abs_diff"] <= 3 / 200
    assert report["scores_agree"] and len(report["rows"]) == 3
    assert "2 candidates kept by both, CV scores apart by at most " in format_table(report)


def test_lower_bound_search_against_the_full_one(client, small):
    X, _ = small
    with dask.config.set({"mnistdist.bound-components": 16}):
        bound = bound_search(X, rate=1e9)
    assert bound["n_query"] == 100 and bound["n_reference"] == 5 * 500
    assert bound["same_neighbors"] and 0 < bound["exact_pairs_share"] < 1
    assert bound["full"]["neighbor_multiply_adds"] == 100 * 2500 * 64
    assert bound["speedup"] == pytest.approx(
        bound["full"]["seconds_neighbors"] / bound["bound"]["seconds_neighbors"]
    )
    text = format_table(
        {"gemm": {"shape": [1, 1, 1], "threads": 2, "gflops": 2.0}, "lower_bound": bound}
    )
    assert "100 held-out images against 2500" in text and "same neighbours: yes" in text
    assert "neighbours, the same, lower bound: " in text
