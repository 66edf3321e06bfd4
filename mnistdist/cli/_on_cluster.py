"""What every job does on the cluster: connect, load, search, and the output folder."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pathlib
import time
from collections.abc import Iterator

import dask.config
from distributed import performance_report

from jobs import forecast
from jobs.options import preset_from_args
from jobs.runner import LOG, log_to
from mnistdist import staging
from mnistdist.cluster import (
    connect,
    describe,
    embedded_processes,
    prepare,
    scheduler_address,
)
from mnistdist.compute import peak_memory
from mnistdist.data import (
    Dataset,
    load_dataset,
    scatter_dataset,
    unreadable_files,
)
from mnistdist.halving import halving_search
from mnistdist.journal import FILENAME as JOURNAL
from mnistdist.journal import Journal
from mnistdist.outputs import JOB_RESULTS, atomic_path
from mnistdist.presets import Preset, get_preset
from mnistdist.search import SearchResult, neighbors_search

#: Modules the library imports only where they are first used, which the job will need:
#: imported while the cluster starts, which leaves the process otherwise idle.
LATER_MODULES = (
    "matplotlib.figure",  # every job draws its forecast's figure at the end
    "matplotlib.backends.backend_agg",
    "dask_ml.model_selection",  # the searches' scoring
)


def _import_later_modules() -> None:
    for name in LATER_MODULES:
        importlib.import_module(name)


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
def cluster(args: argparse.Namespace, *, holds_gil: bool = False) -> Iterator:
    """Connect as the options say, print the dashboard link, and turn progress bars on.

    ``holds_gil``: the job's tasks hold the GIL in places, as do those of
    presets that say so (``--preset deform``), so an embedded cluster's workers
    are processes (unless ``mnistdist.processes`` says otherwise).

    The block's tasks and the client's time are recorded for the job's
    scaling forecast (:mod:`jobs.forecast`).
    """
    log_file = None if args.verbose else getattr(args, "staging", None)
    phases = job_phases(args)
    t = time.perf_counter()
    with (
        connect(
            args.scheduler,
            n_workers=args.workers,
            processes=embedded_processes(holds_gil or _preset_holds_gil(args)),
            worker_log=log_file and log_file / LOG,
            while_starting=_import_later_modules,
        ) as client,
        dask.config.set({"mnistdist.progress": not args.quiet}),
    ):
        phases["cluster_start"] = time.perf_counter() - t
        info = describe(client)
        threads = " (threads of this process)" if info["in_process"] else ""
        print(f"cluster: {info['scheduler']} with {len(info['workers'])} workers{threads}")
        print(f"dashboard: {info['dashboard']}")
        if scheduler_address(args.scheduler):  # a cluster started elsewhere
            for line in prepare(client):
                print(f"cluster: {line}")
        with forecast.recording(args, client):  # every job's graphs, for its scaling forecast
            yield client
        t = time.perf_counter()
    phases["cluster_close"] = time.perf_counter() - t


def _preset_holds_gil(args: argparse.Namespace) -> bool:
    return hasattr(args, "preset") and get_preset(args.preset).holds_gil


def job_phases(args: argparse.Namespace) -> dict[str, float]:
    """The job's phases outside its own work, in seconds: ``imports`` (where known, see
    :func:`jobs.runner.run`), ``cluster_start`` and ``cluster_close`` (:func:`cluster`).

    The dict lives in ``args``, so the job adds them to its JSON's ``seconds``.
    """
    if getattr(args, "phases", None) is None:
        args.phases = {}
    return args.phases


def preset(args: argparse.Namespace, dataset: Dataset) -> Preset:
    """The preset the options ask for, for the dataset's images."""
    return preset_from_args(args, dataset.X_train.shape[1])


def search(
    args: argparse.Namespace, dataset: Dataset, journal: Journal, preset: Preset
) -> SearchResult:
    """The cross-validated search of ``preset`` on the current client; prints its result."""
    halving = preset.strategy == "halving"
    how = ", successive halving" if halving else ""
    print(f"search ({preset.name}): {preset.description}, {args.cv} folds{how}")
    result = (halving_search if halving else neighbors_search)(
        dataset.X_train,
        dataset.y_train,
        estimator=preset.estimator,
        param_grid=preset.param_grid,
        cv=args.cv,
        journal=journal,
    )
    if halving:
        sizes = zip(result.n_candidates, result.n_resources, strict=True)
        for i, (n, n_resources) in enumerate(sizes):
            print(f"search: round {i}: {n} candidates on {n_resources} images")
    print(f"search: best {result.best_params} with mean CV accuracy {result.best_score:.4f}")
    return result


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
    log_to(args.staging / LOG)
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
def performance_report_file(path: pathlib.Path, seconds: dict | None = None) -> Iterator[None]:
    """Dask's ``performance_report`` of the block, written atomically, only if the block succeeds.

    After a failure (a lost scheduler, Ctrl-C) the report is skipped rather
    than fetched from a cluster that may be gone, so the job's own error line
    is what the user sees. The time its fetching and writing took goes into
    ``seconds`` as ``performance_report``.
    """
    with atomic_path(path) as tmp:
        report = performance_report(filename=str(tmp))
        report.__enter__()
        yield
        t = time.perf_counter()
        report.__exit__(None, None, None)
        if seconds is not None:
            seconds["performance_report"] = time.perf_counter() - t


def time_line(seconds: dict[str, float]) -> str:
    """Where a job's time went, as one printed line: its phases in order, then the total."""
    phases = ", ".join(
        f"{name.replace('_', ' ')} {s:.1f} s" for name, s in seconds.items() if name != "total"
    )
    return f"time: {phases}; total {seconds['total']:.1f} s"
