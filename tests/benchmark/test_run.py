"""``run_benchmark`` on small data: each neighbour phase's GEMM limit, the halving comparison."""

import dask
import numpy as np
import pytest

from mnistdist.benchmark import (
    cv_multiply_adds,
    faiss_installed,
    final_searches,
    fitted_exponent,
    format_table,
    neighbour_agreement,
    run_benchmark,
)

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
    # 64 components of 64 features would not pay: no lower bound anywhere
    assert all("bound" not in row for row in report["final_searches"])
    text = format_table(report)
    assert "GEMM limit: float32 200 x 64 times 64 x 600 on 2 worker threads" in text
    assert "neighbours, mnistdist, 6 candidates: " in text and "x the GEMM limit (" in text


def test_growth_table_times_the_search_at_each_size_with_its_memory(client, small):
    X, y = small
    report = run_benchmark(X, y, BOOK_GRID, 3, book=False, gemm_seconds=0.05, peers=False)
    growth = report["growth"]
    assert [r["n_train"] for r in growth["rows"]] == [75, 150, 300, 600]
    assert growth["rows"][-1]["seconds"] == report["rows"][0]["seconds"]  # (b) itself
    for row in growth["rows"]:
        assert row["seconds"] >= row["seconds_neighbors"] > 0
        assert row["method"] == "fold-pair tiles"  # 64 features: no bound
        assert len(row["memory"]) == 2  # both workers report
        for worker in row["memory"].values():
            assert worker["peak_bytes"] >= worker["start_bytes"] > 0 and worker["pid"]
    assert np.isfinite(growth["exponent"]) and np.isfinite(growth["exponent_neighbors"])
    assert "fitted exponent of seconds against images: " in format_table(report)


def test_fitted_exponent_of_a_power_law():
    sizes = np.array([1000, 2000, 4000, 8000])
    assert fitted_exponent(sizes, 3e-6 * sizes**1.7) == pytest.approx(1.7)


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


def test_final_searches_in_full_with_the_bound_and_faiss(client, small):
    X, _ = small
    with dask.config.set({"mnistdist.bound-components": 16}):
        plain, shifted = final_searches(X, rate=1e9)
    assert plain["n_query"] == shifted["n_query"] == 100
    assert (plain["n_reference"], shifted["n_reference"]) == (500, 5 * 500)
    for row in (plain, shifted):
        assert row["same_neighbors"] and 0 < row["exact_pairs_share"] < 1
        assert row["full"]["neighbor_multiply_adds"] == 100 * row["n_reference"] * 64
        assert row["speedup"] == pytest.approx(
            row["full"]["seconds_neighbors"] / row["bound"]["seconds_neighbors"]
        )
        assert row["full"]["memory"] and row["bound"]["memory"]
        if faiss_installed():
            assert row["faiss"]["threads"] == 2 and row["faiss"]["seconds"] > 0
            assert row["faiss"]["same_sets"] > 0.9 and row["faiss"]["only_ties"]
        else:
            assert "faiss" not in row
    report = {"gemm": {"shape": [1, 1, 1], "threads": 2, "gflops": 2.0}}
    text = format_table(report | {"final_searches": [plain, shifted]})
    assert "100 held-out images against 2500" in text and "same neighbours: yes" in text
    assert "neighbours, the same against 2500, lower bound: " in text
    assert ("IndexFlatL2, 2 threads" in text) == faiss_installed()


def test_agreement_says_which_rows_differ_and_whether_by_ties():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    query = np.array([[0.0, 0.0], [3.0, 3.0]])
    dist = np.array([[0.0, 1.0], [0.0, np.sqrt(13.0)]])
    ids = np.array([[0, 1], [3, 1]])
    tie = np.array([[0, 2], [3, 1]])  # (0, 0) is as far from rows 1 and 2
    assert neighbour_agreement(query, ref, dist, ids, tie) == {
        "same_sets": 0.5,
        "rows_differ": 1,
        "only_ties": True,
    }
    wrong = np.array([[0, 3], [3, 1]])
    assert neighbour_agreement(query, ref, dist, ids, wrong)["only_ties"] is False
