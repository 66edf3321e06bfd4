"""What every job shares: its options, its cluster connection and its error handling."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import pathlib
import sys
from collections.abc import Callable, Iterator

import dask.config
from distributed import performance_report

from mnistdist import staging
from mnistdist.addresses import check_scheduler_address
from mnistdist.cluster import connect, describe, prepare, scheduler_address
from mnistdist.compute import peak_memory, show_progress
from mnistdist.data import (
    DATA_ENV,
    DATASETS,
    Dataset,
    load_dataset,
    scatter_dataset,
    unreadable_files,
)
from mnistdist.errors import MnistDistError, OptionError, OutputError
from mnistdist.interrupts import interrupt_once
from mnistdist.journal import FILENAME as JOURNAL
from mnistdist.journal import Journal
from mnistdist.knn import WEIGHTS
from mnistdist.outputs import JOB_RESULTS, atomic_path
from mnistdist.presets import PRESETS, Preset, get_preset
from mnistdist.search import DEFAULT_GRID, SearchResult, cv_folds, neighbors_search

PROG = "mnistdist"
#: The job's log in its results folder: Dask's and scikit-learn's warnings, the library's steps.
LOG = "mnistdist.log"
#: More worker processes than this per core would only compete for the cores.
MAX_WORKERS_PER_CORE = 8
log = logging.getLogger(__name__)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def folds(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"cv must be at least 2, got {value}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser, *, default_out: str) -> None:
    """The options every job takes."""
    group = parser.add_argument_group("data and cluster")
    group.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist",
        help="mnist (IDX folder or OpenML) or scikit-learn's bundled 8x8 digits (default: mnist)",
    )
    group.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help=f"folder of the four MNIST IDX files, .gz or raw "
        f"(default: ${DATA_ENV}, else download from OpenML)",
    )
    group.add_argument(
        "--train-size",
        metavar="N",
        type=positive_int,
        default=None,
        help="use only the first N training images (default: all)",
    )
    group.add_argument(
        "--out", metavar="DIR", default=default_out, help=f"output folder (default: {default_out})"
    )
    group.add_argument(
        "--overwrite", action="store_true", help="replace results already in the output folder"
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run in the same output folder, reusing its finished work",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler, e.g. tcp://host:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else an embedded LocalCluster)",
    )
    group.add_argument(
        "--workers",
        metavar="N",
        type=positive_int,
        default=None,
        help="worker processes of the embedded LocalCluster (default: one per core)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    group.add_argument("-v", "--verbose", action="store_true", help="log the library's steps")


def add_grid_arguments(parser: argparse.ArgumentParser, *, presets: bool = True) -> None:
    """The search: ``--preset book|best``; for the book's grid ``--n-neighbors`` and ``--weights``;
    ``--cv``."""
    group = parser.add_argument_group("grid search")
    if presets:
        group.add_argument(
            "--preset",
            choices=list(PRESETS),
            default="book",
            help="book: the chapter's KNN grid; best: deskewing x augmentation x PCA x KNN "
            "(default: book)",
        )
    group.add_argument(
        "--n-neighbors",
        metavar="K",
        type=positive_int,
        nargs="+",
        default=None,
        help="book preset: values of n_neighbors to try (default: 3 4 5)",
    )
    group.add_argument(
        "--weights",
        choices=WEIGHTS,
        nargs="+",
        default=None,
        help="book preset: values of weights to try (default: uniform distance)",
    )
    group.add_argument(
        "--cv",
        metavar="FOLDS",
        type=folds,
        default=5,
        help="cross-validation folds, at least 2 (default: 5)",
    )


def preset_from_args(args: argparse.Namespace, n_features: int = 784) -> Preset:
    """The estimator and grid the options ask for (the book's grid without duplicates, in order)."""
    preset = get_preset(getattr(args, "preset", "book"), n_features)
    if preset.name != "book":
        if args.n_neighbors is not None or args.weights is not None:
            raise OptionError(
                f"--n-neighbors and --weights set the book's grid; "
                f"--preset {preset.name} has a grid of its own"
            )
        return preset
    grid = {
        "n_neighbors": list(dict.fromkeys(args.n_neighbors or DEFAULT_GRID["n_neighbors"])),
        "weights": list(dict.fromkeys(args.weights or DEFAULT_GRID["weights"])),
    }
    return dataclasses.replace(preset, param_grid=grid)


def load(args: argparse.Namespace, client=None) -> Dataset:
    """The dataset the options ask for, readable by the cluster's workers; prints what was loaded.

    Workers read the IDX files themselves, once (the images stay in their
    memory for the job); where some cannot (another machine, another
    mount), the client sends the images once.
    """
    dataset = load_dataset(args.dataset, data_dir=args.data, train_size=args.train_size)
    if client is not None and (unreadable := unreadable_files(dataset, client)):
        print(
            f"data: {len(unreadable)} workers cannot read "
            f"{', '.join(sorted({p for ps in unreadable.values() for p in ps}))}; "
            "sending the images from the client once"
        )
        dataset = scatter_dataset(dataset, client)
    if client is not None:
        dataset = dataset.persist()  # read the files once, whatever the phases that follow
    info = dataset.summary()
    print(
        f"data: {info['dataset']} from {info['source']}: {info['n_train']} train, "
        f"{info['n_test']} test images of {info['image_shape'][0]}x{info['image_shape'][1]}"
    )
    return dataset


@contextlib.contextmanager
def cluster(args: argparse.Namespace) -> Iterator:
    """Connect as the options say, print the dashboard link, and turn progress bars on."""
    log_file = None if args.verbose else getattr(args, "staging", None)
    with (
        connect(
            args.scheduler,
            n_workers=args.workers,
            worker_log=log_file and log_file / LOG,
        ) as client,
        dask.config.set({"mnistdist.progress": not args.quiet}),
    ):
        info = describe(client)
        print(f"cluster: {info['scheduler']} with {len(info['workers'])} workers")
        print(f"dashboard: {info['dashboard']}")
        if scheduler_address(args.scheduler):  # a cluster started elsewhere
            for line in prepare(client):
                print(f"cluster: {line}")
        yield client


def search(
    args: argparse.Namespace, dataset: Dataset, journal: Journal
) -> tuple[Preset, SearchResult]:
    """The cross-validated search the options ask for, on the current client; prints its result."""
    preset = preset_from_args(args, dataset.X_train.shape[1])
    print(f"search ({preset.name}): {preset.description}, {args.cv} folds")
    result = neighbors_search(
        dataset.X_train,
        dataset.y_train,
        estimator=preset.estimator,
        param_grid=preset.param_grid,
        cv=args.cv,
        journal=journal,
    )
    print(f"search: best {result.best_params} with mean CV accuracy {result.best_score:.4f}")
    return preset, result


def cluster_summary(client) -> dict:
    """The cluster's description for a job's JSON, with each worker's peak memory so far."""
    return {**describe(client), "peak_memory_bytes": peak_memory(client)}


def out_dir(args: argparse.Namespace) -> pathlib.Path:
    """The folder the job writes into, before any work starts: a staging folder beside ``--out``.

    :func:`run` swaps it into place as ``--out`` when the job has finished
    (see :mod:`mnistdist.staging`); the job's log is written there. The job's
    result files (``outputs.JOB_RESULTS``) say whether ``--out`` already holds
    its results.
    """
    results = JOB_RESULTS[args.command]
    args.staging = staging.begin(
        args.out, results=results, overwrite=args.overwrite, resume=args.resume
    )
    _log_to(args.staging / LOG)
    return args.staging


def result_path(args: argparse.Namespace, name: str = "") -> pathlib.Path:
    """Where an output will be once the run has finished: in ``--out``, not the staging folder."""
    return pathlib.Path(args.out) / name


@contextlib.contextmanager
def journal(out) -> Iterator[Journal]:
    """The output folder's journal of finished work, reporting what it saved and reused."""
    with Journal(out / JOURNAL) as j:
        yield j
        if j.loaded:
            print(
                f"resume: {j.loaded} finished neighbor searches read from {out / JOURNAL}, "
                "not recomputed"
            )


@contextlib.contextmanager
def performance_report_file(path: pathlib.Path) -> Iterator[None]:
    """Dask's ``performance_report`` of the block, written atomically, only if the block succeeds.

    After a failure (a lost scheduler, Ctrl-C) the report is skipped rather
    than fetched from a cluster that may be gone, so the job's own error line
    is what the user sees.
    """
    with atomic_path(path) as tmp:
        report = performance_report(filename=str(tmp))
        report.__enter__()
        yield
        report.__exit__(None, None, None)


def run(job: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a job inside the one exit path; return its exit code.

    Options that cannot work are refused before any folder is touched or any
    cluster started (:func:`preflight`). The job writes into a staging
    folder, swapped into place as ``--out`` only when it has finished. Any
    error is one line on stderr and its exit code (typed errors their own, an
    unexpected one 1, with its traceback in the log); Ctrl-C exits 130.
    Where finished work was kept, the line says how to resume.
    """
    with interrupt_once(), _job_logging(args.verbose):
        show_progress(sys.stdout)  # the library reports its phases on a logger; jobs print them
        try:
            preflight(args)
            code = job(args)
            if code == 0 and getattr(args, "staging", None):
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
            f"--workers {args.workers}: more than {MAX_WORKERS_PER_CORE} worker processes "
            f"per core ({cores} cores)"
        )
    staging.check_out(args.out)
    if args.data is not None and not args.data.strip():  # "" would mean: download from OpenML
        raise OptionError("--data is empty: name the folder of the MNIST IDX files")
    dataset = load_dataset(args.dataset, data_dir=args.data, train_size=args.train_size)
    if getattr(args, "cv", None) is None:
        return
    folds = cv_folds(args.cv, dataset.y_train)
    grid = preset_from_args(args, dataset.X_train.shape[1]).param_grid
    if not isinstance(grid, dict):  # a preset's own grid: its sizes depend on its augmentations
        return
    smallest_train = min(len(train) for train, _ in folds)
    k_max = max(grid.get("n_neighbors", [1]))
    if k_max > smallest_train:
        raise OptionError(
            f"n_neighbors={k_max} is larger than the smallest training fold ({smallest_train} rows)"
        )


_FILE_HANDLERS: list[logging.Handler] = []


def _log_to(path: pathlib.Path) -> None:
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
