"""The jobs of the ``mnistdist`` command, and their result files: the one list of them."""

from __future__ import annotations

from ..outputs import JOURNAL_FILE
from . import _augment, _benchmark, _report, _search, _tour
from ._job_run import Job


def _description(module) -> str:
    return module.__doc__.strip().splitlines()[0]


JOBS: tuple[Job, ...] = (
    Job(
        name="report",
        help="search, refit the best model (and the book's), evaluate on the test set, "
        "write the report",
        description=_description(_report),
        default_out="results",
        grid="presets",
        results=("metrics.json", "cv_results.csv", JOURNAL_FILE),
        result_json="metrics.json",
        figure="scaling.png",
        work=_report.job,
    ),
    Job(
        name="search",
        help="cross-validated grid search on the cluster (the book's KNN grid, or --preset best), "
        "exhaustive or by successive halving (--strategy halving)",
        description=_description(_search),
        default_out="search-results",
        grid="presets",
        results=("search.json", "cv_results.csv", JOURNAL_FILE),
        result_json="search.json",
        figure="search_scaling.png",
        work=_search.job,
    ),
    Job(
        name="tour",
        help="the rest of the chapter: 5-detector, precision/recall, ROC, multiclass, errors, "
        "multilabel, denoising",
        description=_description(_tour),
        default_out="results",  # beside the report's outputs, in the same report.html
        grid=None,
        results=("tour.json",),
        result_json="tour.json",
        figure="tour_scaling.png",
        work=_tour.job,
        add_arguments=_tour.add_arguments,
    ),
    Job(
        name="augment",
        help="build the training set plus its four one-pixel shifts (5x) and save it as IDX files",
        description=_description(_augment),
        default_out="augmented",
        grid=None,
        results=("augment.json",),
        result_json="augment.json",
        figure="augment_scaling.png",
        work=_augment.job,
    ),
    Job(
        name="benchmark",
        help="time scikit-learn's GridSearchCV against mnistdist's distributed search",
        description=_description(_benchmark),
        default_out="bench-results",
        grid="book",
        results=("benchmark.json",),
        result_json="benchmark.json",
        figure="benchmark_scaling.png",
        work=_benchmark.job,
        add_arguments=_benchmark.add_arguments,
    ),
)
