"""What every job does on the cluster, as the options ask and with what it prints: connect,
load the data, search, keep the journal."""

from __future__ import annotations

import contextlib
import importlib
import pathlib
import time
import weakref
from collections.abc import Iterator

import dask.config
from distributed import performance_report

from ..data import Dataset, load_on_cluster
from ..model_selection import Preset, SearchResult, SearchSpec, search
from ..outputs import JOURNAL_FILE, Journal, atomic_path
from ..preprocessing import AUGMENTATIONS
from ..runtime import (
    check_worker_memory,
    connect,
    describe,
    embedded_processes,
    peak_memory,
    worker_memory_limits,
)
from ._forecast_files import recording
from ._job_run import JobRun
from ._logging import LOG
from ._preset_args import preset_from_args, spec_from_args

#: Modules the library imports only where they are first used, which the job will need:
#: imported while the cluster starts, which leaves the process otherwise idle.
LATER_MODULES = ("sklearn.neighbors",)  # the searches' scoring


def _import_later_modules() -> None:
    for name in LATER_MODULES:
        importlib.import_module(name)


@contextlib.contextmanager
def connect_as_asked(run: JobRun, *, holds_gil: bool = False) -> Iterator:
    """Connect as the options say, print the dashboard link, and turn progress bars on.

    ``holds_gil``: the job's tasks hold the GIL in places, as do those of
    presets that say so (``--preset deform``), so an embedded cluster's workers
    are processes (unless ``mnistdist.processes`` says otherwise).

    The block's tasks and the client's time are recorded for the job's
    scaling forecast (:mod:`._forecast_files`). Where the job runs is
    ``--cluster`` (a cluster deployed for it, closed after it),
    ``--scheduler-file``, ``--scheduler`` or the embedded cluster; one
    started elsewhere is waited for, checked and watched (:func:`connect`).
    """
    args = run.args
    log_file = None if args.verbose else run.staging
    t = time.perf_counter()
    with (
        connect(
            args.scheduler,
            scheduler_file=getattr(args, "scheduler_file", None),
            cluster=getattr(args, "cluster", None),
            n_workers=args.workers,
            processes=embedded_processes(holds_gil or _preset_holds_gil(args)),
            worker_log=log_file and log_file / LOG,
            while_starting=_import_later_modules,
            report=lambda line: print(f"cluster: {line}", flush=True),
        ) as client,
        dask.config.set({"mnistdist.progress": not args.quiet}),
    ):
        run.phases["cluster_start"] = time.perf_counter() - t
        info = describe(client)
        threads = " (threads of this process)" if info["in_process"] else ""
        print(f"cluster: {info['scheduler']} with {len(info['workers'])} workers{threads}")
        print(f"dashboard: {info['dashboard']}")
        with recording(run, client):  # every job's graphs, for its scaling forecast
            yield client
        t = time.perf_counter()
    run.phases["cluster_close"] = time.perf_counter() - t


def _preset_holds_gil(args) -> bool:
    return hasattr(args, "preset") and preset_from_args(args, None).holds_gil


def load_data(run: JobRun, client=None) -> Dataset:
    """The dataset the options ask for, read by the cluster's workers; prints what was loaded."""
    args = run.args
    dataset = load_on_cluster(args.dataset, client, data_dir=args.data, train_size=args.train_size)
    if dataset.unreadable:
        paths = sorted({p for ps in dataset.unreadable.values() for p in ps})
        print(
            f"data: {len(dataset.unreadable)} workers cannot read {', '.join(paths)} "
            "(or hold other content there); "
            "sending the images from the client once"
        )
    info = dataset.summary()
    print(
        f"data: {info['dataset']} from {info['source']}: {info['n_train']} train, "
        f"{info['n_test']} test images of {info['image_shape'][0]}x{info['image_shape'][1]}"
    )
    if client is not None:
        _check_memory(run, client, dataset)
    return dataset


#: Each client's workers' estimated peak memory for the run, for the job's JSON.
_ESTIMATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _check_memory(run: JobRun, client, dataset: Dataset) -> None:
    """Refuse, before any work, a run whose estimated peak is above a worker's memory limit."""
    n_rows, n_features = dataset.X_train.shape
    estimates = check_worker_memory(
        n_rows,
        n_features,
        worker_memory_limits(client),
        copies=_copies(run, n_features),
        in_process=describe(client)["in_process"],
    )
    _ESTIMATES[client] = {addr: e["total"] for addr, e in estimates.items()}


def _copies(run: JobRun, n_features: int) -> int:
    """The training set's copies the job makes: itself and its largest augmentation's (the
    search's, and the report's book model refitted on the four shifts)."""
    args = run.args
    kinds = {"shift4"} if run.job.name == "report" else set()
    if getattr(args, "cv", None) is not None and hasattr(args, "n_neighbors"):
        grid = preset_from_args(args, n_features).param_grid
        grids = grid if isinstance(grid, list) else [grid]
        kinds |= {kind for g in grids for kind in g.get("augment__kind", [])}
    return 1 + max((len(AUGMENTATIONS[k]) for k in kinds if k in AUGMENTATIONS), default=0)


def chosen_preset(run: JobRun, dataset: Dataset) -> Preset:
    """The preset the options ask for, for the dataset's images."""
    return preset_from_args(run.args, dataset.X_train.shape[1])


def run_search(
    run: JobRun, dataset: Dataset, journal: Journal, preset: Preset, shared: dict | None = None
) -> SearchResult:
    """The cross-validated search of ``preset`` on the current client; prints its result.

    ``shared``: :func:`~mnistdist.model_selection.search`'s.
    """
    spec = spec_from_args(run.args, preset)
    print(f"search ({preset.name}): {preset.description}, {run.args.cv} folds{_how(spec)}")
    result = search(dataset.X_train, dataset.y_train, spec, journal=journal, shared=shared)
    if spec.strategy == "halving":
        sizes = zip(result.n_candidates, result.n_resources, strict=True)
        for i, (n, n_resources) in enumerate(sizes):
            print(f"search: round {i}: {n} candidates on {n_resources} images")
    for line in _extension_lines(result):
        print(f"search: {line}")
    metric = result.metrics.scorers[result.metrics.keys.index(result.metrics.refit)]
    print(f"search: best {result.best_params} with mean CV {metric} {result.best_score:.4f}")
    return result


def _how(spec: SearchSpec) -> str:
    if spec.strategy == "halving":
        return ", successive halving"
    if spec.strategy == "random":
        return f", {spec.n_iter} candidates drawn at random (seed {spec.random_state})"
    return ""


def _extension_lines(result: SearchResult) -> list[str]:
    """What a search extended from a journal reused, and where it needed more neighbours."""
    lines = []
    for kept, needed in sorted(set(result.more_neighbors)):
        lines.append(
            f"the new candidates need {needed} neighbours per image where the journal kept "
            f"{kept}: their neighbour searches ran again"
        )
    n = len(result.cv_results["params"])
    if result.n_reused:
        lines.append(
            f"reused the scores of {result.n_reused} of {n} candidates from the journal, "
            f"scored {n - result.n_reused}"
        )
    return lines


def cluster_summary(client) -> dict:
    """The cluster's description for a job's JSON: each worker's peak memory so far, measured,
    beside the estimate its run was checked with (:func:`load_data`)."""
    return {
        **describe(client),
        "peak_memory_bytes": peak_memory(client),
        "peak_memory_estimate_bytes": _ESTIMATES.get(client, {}),
    }


@contextlib.contextmanager
def open_journal(run: JobRun) -> Iterator[Journal]:
    """The run's journal of finished work, in its staging folder, tied to its data; prints
    what it reused, and why rows it holds are not reused (another version, other data)."""
    path = run.staging / JOURNAL_FILE
    with Journal(path) as journal:
        if run.data_identity is not None and (line := journal.bind(run.data_identity)):
            print(f"resume: {line}")
        yield journal
        if journal.loaded:
            print(
                f"resume: {journal.loaded} finished neighbor searches read from "
                f"{path}, not recomputed"
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


def rounded_phases(run: JobRun) -> dict[str, float]:
    """The run's phases outside the job's own work, rounded for its JSON."""
    return {name: round(seconds, 3) for name, seconds in run.phases.items()}


def time_line(seconds: dict[str, float]) -> str:
    """Where a job's time went, as one printed line: its phases in order, then the total."""
    phases = ", ".join(
        f"{name.replace('_', ' ')} {s:.1f} s" for name, s in seconds.items() if name != "total"
    )
    return f"time: {phases}; total {seconds['total']:.1f} s"
