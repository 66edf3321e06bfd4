"""Every job's scaling forecast: recorded while it runs on the cluster, written when it ends.

:func:`recording` runs inside :func:`._on_cluster.connect_as_asked`, so every job's
graphs are recorded; :func:`write_forecast` runs in the one exit path
(:func:`._run.run`) once a job has succeeded: it adds the forecast under
``scaling`` to the job's JSON, draws the figure, rewrites ``report.html`` where
the folder has one, and prints the forecast line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator

from ..drawing import Request
from ..outputs import write_json
from ..report import write_figures, write_report
from ..runtime import forecast_line, record_tasks, summarize_forecast
from ._job_run import JobRun

log = logging.getLogger(__name__)


@contextlib.contextmanager
def recording(run: JobRun, client) -> Iterator[None]:
    """Record the block's tasks and client time for the job's forecast (kept in ``run``)."""
    with record_tasks(client) as rec:
        run.recording = rec
        yield


def write_forecast(run: JobRun) -> None:
    """After a successful job: its forecast into its JSON and figure, and the forecast line.

    Everything outside the recorded block since ``run.started`` (the imports
    included where known) is overhead (see
    :func:`mnistdist.runtime.summarize_forecast`). A forecast that cannot be
    made is a warning in the log and a line: the job's results are kept
    either way.
    """
    rec = run.recording
    if rec is None:
        return
    if rec.records is None:  # the scheduler could not record: the warning is in the log
        print("forecast: none, the scheduler could not record the job's tasks (see its log)")
        return
    wall = time.perf_counter() - run.started
    try:
        summary = summarize_forecast(
            rec.records, workers=rec.workers, wall_s=wall, recorded_s=rec.seconds
        )
        _write(run, summary)
    except Exception:  # a diagnostic must not cost the job its results
        log.warning("scaling: no forecast", exc_info=True)
        print("forecast: none, it could not be made (see the job's log)")
        return
    print(forecast_line(summary))


def _write(run: JobRun, summary: dict) -> None:
    """The forecast under ``scaling`` in the job's JSON, its figure, and the HTML report."""
    out = run.staging
    summary["figure"] = run.job.figure
    write_figures(out, {summary["figure"]: Request("forecast_figure", (summary,))}, run.drawing)
    path = out / run.job.result_json
    result = json.loads(path.read_text())
    result["scaling"] = summary
    write_json(path, result)
    if (out / "report.html").exists():  # the report and the tour show the forecast there
        write_report(out)
