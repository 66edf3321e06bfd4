"""The one exit path every job runs in.

Options that cannot work are refused before anything is touched (:func:`preflight`); the
job writes into a staging folder that is swapped into place only when it has finished; any
error is one line on stderr and an exit code, Ctrl-C exit 130, with the resume hint where
finished work was kept; Dask's and scikit-learn's warnings go to the job's log.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pathlib
import sys
import time
from collections.abc import Callable, Iterator

from sklearn.model_selection import ParameterGrid

from jobs import console, forecast
from jobs.options import PROG, preset_from_args
from mnistdist import staging
from mnistdist.addresses import check_scheduler_address
from mnistdist.cluster import scheduler_address
from mnistdist.compute import show_progress
from mnistdist.data import (
    load_dataset,
)
from mnistdist.errors import MnistDistError, OptionError, OutputError
from mnistdist.halving import plan_rounds
from mnistdist.interrupts import interrupt_once
from mnistdist.journal import FILENAME as JOURNAL
from mnistdist.search import cv_folds

#: The job's log in its results folder: Dask's and scikit-learn's warnings, the library's steps.
LOG = "mnistdist.log"


#: More workers than this per core would only compete for the cores.
MAX_WORKERS_PER_CORE = 8


log = logging.getLogger(__name__)


def run(job: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a job inside the one exit path; return its exit code.

    Options that cannot work are refused before any folder is touched or any
    cluster started (:func:`preflight`). The job writes into a staging
    folder, swapped into place as ``--out`` only when it has finished. Any
    error is one line on stderr and its exit code (typed errors their own, an
    unexpected one 1, with its traceback in the log); Ctrl-C exits 130.
    Where finished work was kept, the line says how to resume. A job that
    succeeded gets its scaling forecast (:func:`jobs.forecast.finish`).
    """
    # From the command's first instant where it ran as one: its imports are overhead too.
    started = console.STARTED or time.perf_counter()
    # The job's phases outside its own work (imports, the cluster's start and close), for its JSON.
    args.phases = {}
    if console.STARTED is not None:  # run as the command: its imports are known
        args.phases["imports"] = time.perf_counter() - console.STARTED
    with interrupt_once(), _job_logging(args.verbose):
        show_progress(sys.stdout)  # the library reports its phases on a logger; jobs print them
        try:
            preflight(args)
            code = job(args)
            if code == 0 and getattr(args, "staging", None):
                forecast.finish(args, started)
                staging.commit(args.out)
                return code
            _abandon(args)
            return code
        except (OptionError, OutputError) as exc:  # raised before any work started
            _abandon(args)
            return _fail(args, exc, exc.exit_code)
        except MnistDistError as exc:
            return _fail(args, exc, exc.exit_code, _abandon(args))
        except KeyboardInterrupt:
            hint = _abandon(args)
            print(
                f"{PROG} {args.command}: interrupted{hint or '; nothing was finished'}",
                file=sys.stderr,
            )
            return 130
        except Exception as exc:  # a bug: one line here, the traceback in the log
            log.exception("unexpected error")
            where = f" (traceback in {args.staging / LOG})" if _kept(args) else ""
            hint = _abandon(args)
            return _fail(args, f"unexpected {type(exc).__name__}: {exc}{where}", 1, hint)


def _fail(args: argparse.Namespace, message, code: int, hint: str = "") -> int:
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{PROG} {args.command}: error: {text}{hint}", file=sys.stderr)
    return code


def _kept(args: argparse.Namespace) -> bool:
    folder = getattr(args, "staging", None)
    return folder is not None and (folder / JOURNAL).exists()


def _abandon(args: argparse.Namespace) -> str:
    """After a failure: drop the staging folder unless it holds finished work; the resume hint."""
    if getattr(args, "staging", None) is None:
        return ""
    _close_log_files()  # the log file may be deleted with the folder
    return _resume_hint(staging.abandon(args.out))


def _resume_hint(journal_path: pathlib.Path | None) -> str:
    """Where finished work was kept and how to finish, if any was."""
    if journal_path is None:
        return ""
    return f"; finished work is saved in {journal_path}: rerun with --resume to finish"


def preflight(args: argparse.Namespace) -> None:
    """Refuse, before any folder is touched or any cluster started, what the options alone rule out.

    The address and worker count, the output folder's name, and the data
    (read and checked, not computed on): its files, ``--train-size``, and
    the folds and grid that ``--cv`` and ``--n-neighbors`` ask of it.
    """
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    elif address := scheduler_address():
        check_scheduler_address(address)
    cores = os.cpu_count() or 1
    if args.workers is not None and args.workers > MAX_WORKERS_PER_CORE * cores:
        raise OptionError(
            f"--workers {args.workers}: more than {MAX_WORKERS_PER_CORE} workers "
            f"per core ({cores} cores)"
        )
    staging.check_out(args.out)
    if args.data is not None and not args.data.strip():  # "" would mean: download from OpenML
        raise OptionError("--data is empty: name the folder of the MNIST IDX files")
    dataset = load_dataset(args.dataset, data_dir=args.data, train_size=args.train_size)
    if getattr(args, "cv", None) is None:
        return
    preset = preset_from_args(args, dataset.X_train.shape[1])
    grid, y = preset.param_grid, dataset.y_train
    # The smallest folds are those of halving's first round (the benchmark's "both" has one too).
    if preset.strategy in ("halving", "both"):
        _, rows = plan_rounds(y, len(ParameterGrid(grid)), args.cv)
        y = y[rows[0]]
    folds = cv_folds(args.cv, y)
    smallest_train = min(len(train) for train, _ in folds)
    _check_components(preset, smallest_train)
    if not isinstance(grid, dict):  # a preset's own grid: its sizes depend on its augmentations
        return
    k_max = max(grid.get("n_neighbors", [1]))
    if k_max > smallest_train:
        raise OptionError(
            f"n_neighbors={k_max} is larger than the smallest training fold ({smallest_train} rows)"
        )


def _check_components(preset, smallest_train: int) -> None:
    """Every step's ``n_components`` (PCA's) must fit in the smallest training fold, where it
    is fitted: with few images, in halving's first round above all."""
    defaults = preset.estimator.get_params()
    for candidate in ParameterGrid(preset.param_grid):
        params = {**defaults, **candidate}
        for name, value in params.items():
            if params.get(name.rpartition("__")[0]) == "passthrough":  # the step is left out
                continue
            if name.endswith("n_components") and type(value) is int and value > smallest_train:
                raise OptionError(
                    f"{name}={value} is larger than the smallest training fold "
                    f"({smallest_train} rows): use more folds or images, or --strategy grid"
                )


_FILE_HANDLERS: list[logging.Handler] = []


def log_to(path: pathlib.Path) -> None:
    """Send the job's log to ``path`` too, from now on."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    _FILE_HANDLERS.append(handler)


def _close_log_files() -> None:
    for handler in _FILE_HANDLERS:
        logging.getLogger().removeHandler(handler)
        handler.close()
    _FILE_HANDLERS.clear()


@contextlib.contextmanager
def _job_logging(verbose: bool) -> Iterator[None]:
    """The job's logging: to its log file (:func:`out_dir`), and to stderr only with ``-v``.

    Python warnings (scikit-learn's among them) become log records, and
    Distributed's loggers, which write to stderr themselves, are routed here
    for the job's span; everything is put back afterwards.
    """
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    own = [logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()]
    own[0].setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.handlers = own  # NullHandler: no last-resort printing of warnings to stderr
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("mnistdist").setLevel(logging.INFO)
    routed = {}
    # Distributed gives some loggers (per its "logging" setting) stderr handlers of their own.
    names = [
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if name.split(".")[0] in ("distributed", "bokeh", "tornado")
        and isinstance(logger, logging.Logger)
        and (logger.handlers or name in ("distributed", "bokeh", "tornado"))
    ]
    for name in {"distributed", "bokeh", "tornado", *names}:
        logger = logging.getLogger(name)
        routed[name] = (logger.level, list(logger.handlers), logger.propagate)
        logger.handlers, logger.propagate = [], True
        if name in ("distributed", "bokeh", "tornado"):
            logger.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for name, (level, handlers, propagate) in routed.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers, logger.propagate = handlers, propagate
        if not verbose:
            # A client whose scheduler is gone goes on logging its reconnection attempts
            # from its own thread after the job has returned; the job's line said it all.
            logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        _close_log_files()
        root.setLevel(saved_root[0])
        root.handlers = saved_root[1]
        logging.getLogger("mnistdist").setLevel(logging.NOTSET)
