"""What every job shares: its options, its cluster connection and its error handling."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import pathlib
import sys
from collections.abc import Callable, Iterator, Sequence

import dask.config
from distributed import performance_report

from mnistdist.cluster import connect, describe, prepare, scheduler_address
from mnistdist.compute import show_progress
from mnistdist.data import (
    DATA_ENV,
    DATASETS,
    Dataset,
    load_dataset,
    scatter_dataset,
    unreadable_files,
)
from mnistdist.errors import MnistDistError, OptionError, OutputError
from mnistdist.journal import FILENAME as JOURNAL
from mnistdist.journal import Journal
from mnistdist.knn import WEIGHTS
from mnistdist.outputs import atomic_path, prepare_out_dir
from mnistdist.presets import PRESETS, Preset, get_preset
from mnistdist.search import DEFAULT_GRID

PROG = "mnistdist"


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
        help=f"folder of the four MNIST IDX files, .gz or raw (default: ${DATA_ENV}, else download from OpenML)",
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
        help="Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else an embedded LocalCluster)",
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
    """The search: ``--preset book|best``, and for the book's grid ``--n-neighbors 3 4 5 --weights uniform distance``; ``--cv 5``."""
    group = parser.add_argument_group("grid search")
    if presets:
        group.add_argument(
            "--preset",
            choices=list(PRESETS),
            default="book",
            help="book: the chapter's KNN grid; best: deskewing x augmentation x PCA x KNN (default: book)",
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
    """The estimator and grid the options ask for (duplicates in the book's grid dropped, order kept)."""
    preset = get_preset(getattr(args, "preset", "book"), n_features)
    if preset.name != "book":
        if args.n_neighbors is not None or args.weights is not None:
            raise OptionError(
                f"--n-neighbors and --weights set the book's grid; --preset {preset.name} has a grid of its own"
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
            f"data: {len(unreadable)} workers cannot read {', '.join(sorted({p for ps in unreadable.values() for p in ps}))}; sending the images from the client once"
        )
        dataset = scatter_dataset(dataset, client)
    if client is not None:
        dataset = dataset.persist()  # read the files once, whatever the phases that follow
    info = dataset.summary()
    print(
        f"data: {info['dataset']} from {info['source']}: {info['n_train']} train, {info['n_test']} test images of {info['image_shape'][0]}x{info['image_shape'][1]}"
    )
    return dataset


@contextlib.contextmanager
def cluster(args: argparse.Namespace) -> Iterator:
    """Connect as the options say, print the dashboard link, and turn progress bars on."""
    with (
        connect(args.scheduler, n_workers=args.workers) as client,
        dask.config.set({"mnistdist.progress": not args.quiet}),
    ):
        info = describe(client)
        print(f"cluster: {info['scheduler']} with {len(info['workers'])} workers")
        print(f"dashboard: {info['dashboard']}")
        if scheduler_address(args.scheduler):  # a cluster started elsewhere
            for line in prepare(client):
                print(f"cluster: {line}")
        yield client


def out_dir(args: argparse.Namespace, results: tuple[str, ...]):
    """The output folder, created and checked (for this job's ``results``) before any work starts."""
    return prepare_out_dir(args.out, overwrite=args.overwrite, resume=args.resume, results=results)


@contextlib.contextmanager
def journal(out) -> Iterator[Journal]:
    """The output folder's journal of finished work, reporting what it saved and reused."""
    with Journal(out / JOURNAL) as j:
        yield j
        if j.loaded:
            print(
                f"resume: {j.loaded} finished neighbour searches read from {out / JOURNAL}, not recomputed"
            )


@contextlib.contextmanager
def performance_report_file(path: pathlib.Path) -> Iterator[None]:
    """Dask's ``performance_report`` of the block, written atomically, and only if the block succeeds.

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
    """Run a job: typed errors become one line and their exit code, Ctrl-C exits 130."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    show_progress(sys.stdout)  # the library reports phases on a logger; jobs print them
    if not args.verbose:
        # The client logs every reconnection attempt with a traceback; the
        # job says what went wrong in one line instead.
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    try:
        return job(args)
    except (OptionError, OutputError) as exc:  # raised before any work started
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MnistDistError as exc:
        print(f"{PROG} {args.command}: error: {exc}{_resume_hint(args)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"{PROG} {args.command}: interrupted{_resume_hint(args) or '; nothing was finished'}",
            file=sys.stderr,
        )
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    """Where finished work was kept and how to finish, if the job keeps a journal."""
    path = pathlib.Path(getattr(args, "out", "") or ".") / JOURNAL
    if not getattr(args, "out", None) or not path.exists():
        return ""
    return f"; finished work is saved in {path}: rerun with --resume to finish"


def standalone(
    name: str, description: str, add_arguments, job, argv: Sequence[str] | None = None
) -> int:
    """Entry point for running one job module directly (``python -m jobs.<name>``)."""
    parser = Parser(prog=f"{PROG} {name}", description=description)
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.command = name
    return run(job, args)
