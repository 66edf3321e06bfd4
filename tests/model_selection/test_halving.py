"""Successive halving (``--strategy halving``): each round is an exact grid search on its
images, the survivors are each round's best third, and the schedule is scikit-learn's."""

import itertools
import math
import warnings

import dask.array as da
import numpy as np
import pytest
from distributed import Client, get_task_stream
from sklearn.decomposition import PCA
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, KFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from mnistdist.cli._parser import build_parser
from mnistdist.cli._preset_args import preset_from_args
from mnistdist.errors import OptionError
from mnistdist.model_selection import get_preset, halving_search, neighbors_search, plan_rounds
from mnistdist.model_selection._halving import best_of_round, halving_schedule, stratified_order
from mnistdist.neighbors import DeformationKNNClassifier, KNNClassifier, search_rerank_throughput
from mnistdist.preprocessing import Deskew

#: Ten candidates: three rounds on the digits' 1,437 training images (159, 477, 1,431).
GRID = {"n_neighbors": [1, 2, 3, 4, 5], "weights": ["uniform", "distance"]}
TIME_COLUMNS = {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"}


def _task_names(stream) -> list[str]:
    return [t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in stream.data]


@pytest.fixture(scope="module")
def jittered(digits_arrays):
    """The digits' training images, jittered so that no two neighbours are equidistant:
    scikit-learn's choice among tied neighbours is then no choice, and scores compare exactly."""
    X, y, _, _ = digits_arrays
    X = X + np.random.default_rng(0).uniform(-0.05, 0.05, size=X.shape)
    return da.from_array(X, chunks=(512, -1)), X, y


@pytest.fixture(scope="module")
def halving(cluster, jittered):
    """One halving search of GRID on the (jittered) digits, with the names of the tasks it ran."""
    X, _, y = jittered
    with Client(cluster, set_as_default=True) as client, get_task_stream(client) as stream:
        result = halving_search(X, y, param_grid=GRID)
    return result, _task_names(stream)


def _one_point_grid(candidates: list[dict]) -> list[dict]:
    """A grid whose candidates are exactly ``candidates``, in their order."""
    return [{name: [value] for name, value in c.items()} for c in candidates]


def _split_scores(cv_results, n_splits):
    return np.array([cv_results[f"split{f}_test_score"] for f in range(n_splits)]).T


def test_each_round_equals_a_grid_search_on_its_images(client, halving, jittered):
    result, _ = halving
    X_dask, X, y = jittered
    assert result.n_resources == [159, 477, 1431] and result.n_candidates == [10, 4, 2]
    for r in result.rounds:
        grid = _one_point_grid(r.candidates)
        exhaustive = neighbors_search(X_dask[r.rows], y[r.rows], param_grid=grid, cv=5)
        np.testing.assert_array_equal(
            r.scores.split_scores["score"], _split_scores(exhaustive.cv_results, 5)
        )
        # And scikit-learn's own grid search on the round's images, same StratifiedKFold.
        ref = GridSearchCV(KNeighborsClassifier(), grid, cv=5).fit(X[r.rows], y[r.rows])
        np.testing.assert_allclose(
            r.scores.split_scores["score"], _split_scores(ref.cv_results_, 5), rtol=0, atol=1e-12
        )


def test_survivors_are_each_rounds_best_third(halving):
    result, _ = halving
    for r, after in zip(result.rounds, result.rounds[1:], strict=False):
        keep = math.ceil(len(r.candidates) / 3)
        kept = [r.candidates.index(c) for c in after.candidates]
        dropped = sorted(set(range(len(r.candidates))) - set(kept))
        assert len(kept) == keep
        assert r.mean_scores[kept].min() >= r.mean_scores[dropped].max()
    assert result.n_remaining_candidates == 1


def test_best_of_round_keeps_scikit_learns_top_k():
    scores = np.array([0.5, np.nan, 0.9, 0.7, 0.9, 0.1, 0.8])
    kept = best_of_round(scores)
    assert len(kept) == 3 and set(scores[kept]) == {0.8, 0.9}
    assert np.all(np.diff(scores[kept]) >= 0)  # worst first, as scikit-learn lists them
    assert list(best_of_round(np.array([np.nan, np.nan, 0.2]))) == [2]  # NaN ranks last


def test_subsets_are_nested_and_stratified(digits):
    y = digits.y_train
    schedule, subsets = plan_rounds(y, n_candidates=10)
    assert [len(s) for s in subsets] == list(schedule.n_resources) == [159, 477, 1431]
    for small, large in itertools.pairwise(subsets):
        assert np.all(np.isin(small, large))
    for rows in subsets:
        assert np.all(np.diff(rows) > 0)
        share = np.bincount(y) / len(y)
        assert np.abs(np.bincount(y[rows], minlength=10) - len(rows) * share).max() <= 1.1


@pytest.mark.parametrize("seed", range(5))
def test_every_prefix_of_the_order_is_stratified(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    y = rng.choice(k, size=int(rng.integers(50, 1500)), p=rng.dirichlet(np.full(k, 0.5)))
    order = stratified_order(y, seed)
    assert np.array_equal(np.sort(order), np.arange(len(y)))
    classes, counts = np.unique(y, return_counts=True)
    running = (y[order][:, None] == classes[None, :]).cumsum(axis=0)
    expected = np.arange(1, len(y) + 1)[:, None] * counts / len(y)
    assert np.abs(running - expected).max() <= 1.1


def test_cv_results_have_scikit_learns_columns_and_schedule(halving, jittered):
    result, _ = halving
    _, X, y = jittered
    ref = HalvingGridSearchCV(
        KNeighborsClassifier(), GRID, cv=5, factor=3, return_train_score=False, random_state=0
    ).fit(X, y)
    assert set(result.cv_results) == set(ref.cv_results_) - TIME_COLUMNS
    assert {"iter", "n_resources"} <= set(result.cv_results)
    np.testing.assert_array_equal(result.cv_results["iter"], ref.cv_results_["iter"])
    np.testing.assert_array_equal(result.cv_results["n_resources"], ref.cv_results_["n_resources"])
    assert result.n_resources == ref.n_resources_ and result.n_candidates == ref.n_candidates_
    schedule = result.schedule
    assert (schedule.n_iterations, schedule.n_required_iterations) == (
        ref.n_iterations_,
        ref.n_required_iterations_,
    )
    assert schedule.n_possible_iterations == ref.n_possible_iterations_
    assert (schedule.min_resources, schedule.max_resources) == (
        ref.min_resources_,
        ref.max_resources_,
    )
    assert result.n_remaining_candidates == ref.n_remaining_candidates_
    # The best candidate is the last round's best, as scikit-learn picks it.
    last = result.cv_results["iter"] == 2
    assert result.cv_results["iter"][result.best_index] == 2
    assert result.best_score == result.cv_results["mean_test_score"][last].max()


@pytest.mark.parametrize(
    ("n_samples", "n_candidates", "options"),
    [
        (300, 6, {}),
        (2000, 39, {}),
        (1000, 27, {}),
        (500, 10, {"min_resources": "smallest"}),
        (400, 30, {"aggressive_elimination": True}),
        (900, 12, {"min_resources": 120, "factor": 2}),
    ],
)
def test_schedule_is_scikit_learns(n_samples, n_candidates, options):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n_samples, 2)), np.arange(n_samples) % 3
    grid = {"n_neighbors": list(range(1, n_candidates + 1))}
    ref = HalvingGridSearchCV(
        KNeighborsClassifier(), grid, cv=KFold(3), return_train_score=False, **options
    )
    with warnings.catch_warnings():  # candidates whose n_neighbors exceeds a round's folds
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    ours = halving_schedule(n_candidates, n_samples, n_splits=3, n_classes=3, **options)
    assert list(ours.n_resources) == ref.n_resources_
    assert ours.min_resources == ref.min_resources_
    assert ours.n_required_iterations == ref.n_required_iterations_
    assert ours.n_possible_iterations == ref.n_possible_iterations_


def test_rounds_are_named_tasks_one_neighbor_search_per_fold(halving):
    result, names = halving
    for r in range(3):
        for f in range(5):
            # The fold's neighbours: merged from fold-pair tiles, or searched per fold.
            fold = (
                f"halving-iter-{r}-merge-neighbors-fold-{f}-",
                f"halving-iter-{r}-neighbors-fold-{f}-",
            )
            assert any(n.startswith(fold) for n in names)
    assert not any(n.startswith(("neighbors-fold-", "merge-neighbors-fold-")) for n in names)
    assert result.n_neighbor_searches == 3 * 5  # one group: one search per fold and round


def test_pipeline_rounds_share_the_grid_searchs_machinery(client, digits):
    """Preprocessing groups per round, fitted per fold; stateless deskewing shared by rounds."""
    pipe = Pipeline([("deskew", Deskew()), ("pca", PCA(random_state=0)), ("knn", KNNClassifier())])
    grid = {
        "pca__n_components": [8, 16],
        "knn__n_neighbors": [1, 3, 5],
        "knn__weights": ["distance"],
    }
    X, y = digits.X_train, digits.y_train
    with get_task_stream(client) as stream:
        result = halving_search(X, y, estimator=pipe, param_grid=grid, cv=3)
    names = _task_names(stream)
    assert result.n_candidates == [6, 2]
    groups = [len({c["pca__n_components"] for c in r.candidates}) for r in result.rounds]
    assert result.n_neighbor_searches == 3 * sum(groups)
    assert any(n.startswith("halving-iter-1-fit-preprocessing-fold-0") for n in names)
    for r in result.rounds:
        exhaustive = neighbors_search(
            X[r.rows], y[r.rows], estimator=pipe, param_grid=_one_point_grid(r.candidates), cv=3
        )
        np.testing.assert_array_equal(
            r.scores.split_scores["score"], _split_scores(exhaustive.cv_results, 3)
        )


def test_summary_and_csv_rows_per_round(halving, tmp_path):
    result, _ = halving
    summary = result.summary()
    assert summary["strategy"] == "halving" and summary["n_candidates"] == 10
    assert summary["halving"]["n_resources"] == [159, 477, 1431]
    assert len(summary["iter"]) == len(summary["params"]) == 16
    params, _, _ = result.candidate_scores()
    assert len(params) == 10 and len({repr(p) for p in params}) == 10
    result.write_csv(tmp_path / "cv_results.csv")
    lines = (tmp_path / "cv_results.csv").read_text().splitlines()
    assert len(lines) == 17 and lines[0].split(",")[-2:] == ["iter", "n_resources"]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"factor": 1}, "factor must be a number above 1"),
        ({"min_resources": 5000}, "needs at least 5000 images"),
        ({"min_resources": 0}, "min_resources must be positive"),
        ({"cv": [(np.arange(10), np.arange(10, 20))]}, "cv must be an int or a"),
    ],
)
def test_impossible_halving_is_an_option_error(digits, kwargs, text):
    with pytest.raises(OptionError, match=text):
        halving_search(digits.X_train, digits.y_train, param_grid=GRID, **kwargs)


def test_strategy_option_and_preset_defaults():
    assert get_preset("book").strategy == "grid" and get_preset("best").strategy == "halving"
    parser = build_parser()
    for job in ("search", "report"):
        args = parser.parse_args([job, "--strategy", "halving"])
        assert preset_from_args(args).strategy == "halving"
        assert preset_from_args(parser.parse_args([job])).strategy == "grid"
        best = parser.parse_args([job, "--preset", "best"])
        assert preset_from_args(best, 64).strategy == "halving"
        best = parser.parse_args([job, "--preset", "best", "--strategy", "grid"])
        assert preset_from_args(best, 64).strategy == "grid"
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "--strategy", "anneal"])


def test_reranking_rounds_are_named_and_counted(client, digits):
    """The deform preset's re-ranking runs per round too, named for it, and its pairs add up."""
    pipe = Pipeline(
        [("deskew", Deskew()), ("knn", DeformationKNNClassifier(n_candidates=4, warp=1))]
    )
    grid = {"knn__warp": [0, 1], "knn__n_neighbors": [1, 3], "knn__weights": ["uniform"]}
    X, y = digits.X_train[:450], digits.y_train[:450]
    with get_task_stream(client) as stream:
        result = halving_search(X, y, estimator=pipe, param_grid=grid, cv=3)
    names = _task_names(stream)
    assert result.n_resources == [150, 450] and result.n_candidates == [4, 2]
    for r in range(2):
        assert any(n.startswith(f"halving-iter-{r}-rerank-idm-fold-0") for n in names)
    # Round 0's two warps share one Euclidean search per fold, re-ranked once per warp.
    assert result.rounds[0].scores.n_groups == 2
    assert result.rounds[0].scores.n_neighbor_searches == 3
    groups = [r.scores.n_groups for r in result.rounds]
    assert result.queries_searched == 150 * groups[0] + 450 * groups[1]
    stats = search_rerank_throughput(pipe, result, {"workers": [{"threads": 1}]}, {"total": 100})
    assert stats["pairs"] == 4 * result.queries_searched


def test_several_metrics_keep_candidates_by_the_refit_metric(client, digits):
    """Each round keeps its best third by the refit metric, and every metric is scored."""
    grid = {"n_neighbors": [1, 2, 3, 5, 8, 13], "weights": ["uniform", "distance"]}
    scoring = ["accuracy", "f1_macro"]
    result = halving_search(
        digits.X_train, digits.y_train, param_grid=grid, scoring=scoring, refit="f1_macro"
    )
    first, second = result.rounds[0], result.rounds[1]
    f1 = first.scores.split_scores["f1_macro"].mean(axis=1)
    kept = [first.candidates[i] for i in best_of_round(f1)]
    assert second.candidates == kept
    for metric in scoring:
        assert (
            f"rank_test_{metric}" in result.cv_results
            and "mean_test_score" not in result.cv_results
        )
    last = np.flatnonzero(result.cv_results["iter"] == result.rounds[-1].iteration)
    best = last[np.argmax(result.cv_results["mean_test_f1_macro"][last])]
    assert result.best_index == best and result.summary()["refit"] == "f1_macro"
