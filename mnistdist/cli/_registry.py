"""The jobs of the ``mnistdist`` command, and their result files: the one list of them."""

from __future__ import annotations

from ..outputs import JOURNAL_FILE
from . import _augment, _benchmark, _report, _search, _tour
from ._job_run import Job


def _job(name: str, module, default_out: str, grid: str | None, results: tuple) -> Job:
    """The job ``name`` of ``module`` (its ``HELP``, ``job`` and any ``add_arguments``)."""
    return Job(
        name=name,
        help=module.HELP,
        description=module.__doc__.strip().splitlines()[0],
        default_out=default_out,
        grid=grid,
        results=results,
        work=module.job,
        add_arguments=getattr(module, "add_arguments", None),
    )


#: Each job: its name, module, default ``--out``, grid options (``"presets"``, the book's grid
#: alone, or none) and result files, whose presence means a folder holds its results. The
#: first result file is the JSON that its scaling forecast joins. The tour defaults to the
#: report's folder, to join its ``report.html``.
#: A search's files: its scores, and the journal of its finished neighbour searches.
_SEARCHED = ("cv_results.csv", JOURNAL_FILE)

JOBS: tuple[Job, ...] = (
    _job("report", _report, "results", "presets", ("metrics.json", *_SEARCHED)),
    _job("search", _search, "search-results", "presets", ("search.json", *_SEARCHED)),
    _job("tour", _tour, "results", None, ("tour.json",)),
    _job("augment", _augment, "augmented", None, ("augment.json",)),
    _job("benchmark", _benchmark, "bench-results", "book", ("benchmark.json",)),
)
