"""Every job's scaling forecast: recorded while it runs on the cluster, written when it ends.

:func:`recording` runs inside :func:`jobs.common.cluster`, so every job's
graphs are recorded; :func:`finish` runs in the one exit path
(:func:`jobs.runner.run`) once a job has succeeded: it adds the forecast
under ``scaling`` to the job's JSON, draws the figure, rewrites
``report.html`` where the folder has one, and prints the forecast line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Iterator

from mnistdist import scaling
from mnistdist.figures import save, scaling_figure
from mnistdist.html_report import write_report
from mnistdist.outputs import write_json

log = logging.getLogger(__name__)

#: Each job's JSON, where its forecast goes under ``scaling``.
RESULT_JSON = {
    "report": "metrics.json",
    "search": "search.json",
    "tour": "tour.json",
    "augment": "augment.json",
    "benchmark": "benchmark.json",
}
#: The forecast figure's file; the tour's has its own, as the tour can join the report's folder.
FIGURE = {"report": "scaling.png", "tour": "tour_scaling.png"}


@contextlib.contextmanager
def recording(args: argparse.Namespace, client) -> Iterator[None]:
    """Record the block's tasks and client time for the job's forecast (kept in ``args``)."""
    with scaling.record(client) as rec:
        args.recording = rec
        yield


def finish(args: argparse.Namespace, started: float) -> None:
    """After a successful job: its forecast into its JSON and figure, and the forecast line.

    ``started`` is the ``time.perf_counter()`` of the job's start (its
    imports included where known): everything outside the recorded block
    is overhead (see :func:`mnistdist.scaling.summarize`). A forecast that
    cannot be made is a warning in the log and a line: the job's results
    are kept either way.
    """
    rec = getattr(args, "recording", None)
    if rec is None:
        return
    if rec.records is None:  # the scheduler could not record: the warning is in the log
        print("forecast: none, the scheduler could not record the job's tasks (see its log)")
        return
    wall = time.perf_counter() - started
    try:
        summary = scaling.summarize(
            rec.records,
            workers=rec.workers,
            wall_s=wall,
            recorded_s=rec.seconds,
        )
        _write(args, summary)
    except Exception:  # a diagnostic must not cost the job its results
        log.warning("scaling: no forecast", exc_info=True)
        print("forecast: none, it could not be made (see the job's log)")
        return
    print(scaling.forecast_line(summary))


def _write(args: argparse.Namespace, summary: dict) -> None:
    """The forecast under ``scaling`` in the job's JSON, its figure, and the HTML report."""
    out = args.staging
    summary["figure"] = FIGURE.get(args.command, f"{args.command}_scaling.png")
    save(scaling_figure(summary), out / summary["figure"])
    path = out / RESULT_JSON[args.command]
    result = json.loads(path.read_text())
    result["scaling"] = summary
    write_json(path, result)
    if (out / "report.html").exists():  # the report and the tour show the forecast there
        write_report(out)
