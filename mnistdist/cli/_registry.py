"""The jobs of the ``mnistdist`` command, and their result files: the one list of them."""

from __future__ import annotations

from ..outputs import JOURNAL_FILE
from . import _augment, _benchmark, _report, _search, _tour
from ._command import DEFAULT_OUTS
from ._job_run import Job


def _job(name: str, module, grid: str | None, results: tuple) -> Job:
    """The job ``name`` of ``module`` (its ``HELP``, ``job`` and any ``add_arguments``), with
    its default ``--out`` from :data:`DEFAULT_OUTS`."""
    return Job(
        name=name,
        help=module.HELP,
        description=module.__doc__.strip().splitlines()[0],
        default_out=DEFAULT_OUTS[name],
        grid=grid,
        results=results,
        work=module.job,
        add_arguments=getattr(module, "add_arguments", None),
    )


#: Each job: its name, module, grid options (``"presets"``, the book's grid alone, or none)
#: and result files, whose presence means a folder holds its results. The first result file
#: is the JSON that its scaling forecast joins. Its default ``--out`` is in
#: :data:`DEFAULT_OUTS` (the tour's is the report's folder, to join its ``report.html``).
#: A search's files: its scores, and the journal of its finished neighbour searches.
_SEARCHED = ("cv_results.csv", JOURNAL_FILE)

JOBS: tuple[Job, ...] = (
    _job("report", _report, "presets", ("metrics.json", *_SEARCHED)),
    _job("search", _search, "presets", ("search.json", *_SEARCHED)),
    _job("tour", _tour, None, ("tour.json",)),
    _job("augment", _augment, None, ("augment.json",)),
    _job("benchmark", _benchmark, "book", ("benchmark.json",)),
)
