"""The one exit path every job runs in.

The results folder is locked for the whole run (one run per folder); options that cannot work
are refused before any work (:mod:`._preflight`); the job writes into a staging folder that is
swapped into place only when it has finished; any
error is one line on stderr and an exit code, Ctrl-C exit 130, with the resume hint where
finished work was kept; Dask's and scikit-learn's warnings go to the job's log.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time

from .. import outputs
from ..drawing import DrawingProcess
from ..errors import MnistDistError, OptionError, OutputError
from ..outputs import JOURNAL_FILE
from ..runtime import interrupt_once, show_progress
from ._command import PROG
from ._forecast_files import write_forecast
from ._job_run import JobRun
from ._logging import LOG, close_log_files, job_logging
from ._preflight import preflight

log = logging.getLogger(__name__)


def run(
    args: argparse.Namespace,
    *,
    started: float | None = None,
    lock: outputs.FolderLock | None = None,
    drawing: DrawingProcess | None = None,
) -> int:
    """Run the job ``args.job`` inside the one exit path; return its exit code.

    ``started`` is the ``time.perf_counter()`` of the command's start, before
    its imports, where it ran as the command: the imports are then one of the
    run's phases. ``--out`` is resolved and locked first (``lock``: the command
    locked it before its imports; the run adopts it where it is the same
    folder): a folder another live run holds is refused at once. Options that
    cannot work are refused before any folder is touched or any cluster started.
    The job writes into a staging folder, swapped into place as ``--out`` once it has finished
    (its result file written, whatever its exit code). Any error is one line
    on stderr and its exit code (typed errors their own, an unexpected one 1,
    with its traceback in the log); Ctrl-C exits 130. Where finished work
    was kept, the line says where and how to resume. A job that succeeded
    gets its scaling forecast. ``drawing`` draws its figures (the command's drawing
    process; by default this process). The lock is released last.
    """
    now = time.perf_counter()
    run = JobRun(
        job=args.job,
        args=args,
        started=started if started is not None else now,
        lock=lock,
        drawing=drawing or DrawingProcess(),
    )
    if started is not None:
        run.phases["imports"] = now - started
    with interrupt_once(), job_logging(args.verbose):
        show_progress(sys.stdout)  # the library reports its phases on a logger; jobs print them
        try:
            return _run(run)
        finally:
            run.release()


def _run(run: JobRun) -> int:
    """The job between its lock and its release: every error one line and its exit code."""
    try:
        run.take_out()
        run.data_identity = preflight(run.args).identity
        return _finish(run, run.job.load()(run))
    except (OptionError, OutputError) as exc:  # before any work, or a journal that cannot be used
        _abandon(run)
        return _fail(run, exc, exc.exit_code)
    except MnistDistError as exc:
        return _fail(run, exc, exc.exit_code, _abandon(run))
    except KeyboardInterrupt:
        hint = _abandon(run)
        print(
            f"{PROG} {run.job.name}: interrupted{hint or '; nothing was finished'}",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # a bug: one line here, the traceback in the log
        log.exception("unexpected error")
        where = f" (traceback in {run.staging / LOG})" if _kept(run) else ""
        hint = _abandon(run)
        return _fail(run, f"unexpected {type(exc).__name__}: {exc}{where}", 1, hint)


def _finish(run: JobRun, code: int) -> int:
    """After the job returned: its folder swapped into place if it finished its results.

    A job that exits non-zero with its result file written (the benchmark whose scores
    disagree) keeps that evidence: its folder is committed too. A commit that fails
    keeps the finished results in the staging folder, and its line says so.
    """
    if run.staging is None:
        return code
    if code != 0 and not (run.staging / run.job.result_json).exists():
        _abandon(run)
        return code
    if code == 0:
        write_forecast(run)
    try:
        outputs.commit(run.out or run.args.out, job=run.job.name)
    except OutputError as exc:
        return _fail(run, exc, exc.exit_code)
    if code != 0:  # its own verdict (the benchmark's scores disagree): say so, and where
        _fail(run, f"its checks failed (exit {code}); its results are in {run.result_path()}", code)
    return code


def _fail(run: JobRun, message, code: int, hint: str = "") -> int:
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{PROG} {run.job.name}: error: {text}{hint}", file=sys.stderr)
    return code


def _kept(run: JobRun) -> bool:
    return run.staging is not None and (run.staging / JOURNAL_FILE).exists()


def _abandon(run: JobRun) -> str:
    """After a failure: drop the staging folder unless it holds finished work; the hint."""
    if run.staging is None:
        return ""
    close_log_files()  # the log file may be deleted with the folder
    return _resume_hint(outputs.abandon(run.out or run.args.out, run.job.results))


def _resume_hint(kept: pathlib.Path | None) -> str:
    """Where finished work was kept and how to finish, if any was."""
    if kept is None:
        return ""
    if kept.name == JOURNAL_FILE:
        return f"; finished work is saved in {kept}: rerun with --resume to finish"
    return f"; its finished results are kept in {kept}"
