"""What a job is, and one run of it: its options, its output folder, what it records as it goes."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from collections.abc import Callable

from .. import outputs
from ._command import PROG
from ._logging import LOG, log_to


@dataclasses.dataclass(frozen=True)
class Job:
    """A job of the ``mnistdist`` command: its name, its options, its outputs and its work.

    Attributes
    ----------
    name, help, description : str
        The subcommand, its line in ``mnistdist --help``, and the first line of its own help.
    default_out : str
        Its ``--out``.
    grid : {"presets", "book"} or None
        Its grid-search options: the presets, the book's grid alone, or none.
    results : tuple of str
        Its result files: their presence means a folder already holds its results. The
        first is its JSON, which its scaling forecast joins.
    work : callable ``(JobRun) -> int``
        The job itself; it returns the exit code.
    add_arguments : callable ``(parser) -> None``, optional
        Options of its own.
    """

    name: str
    help: str
    description: str
    default_out: str
    grid: str | None
    results: tuple[str, ...]
    work: Callable[[JobRun], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None

    @property
    def result_json(self) -> str:
        """The JSON its scaling forecast joins."""
        return self.results[0]

    @property
    def figure(self) -> str:
        """The forecast figure's file: jobs that share a folder have names of their own."""
        return "scaling.png" if self.name == "report" else f"{self.name}_scaling.png"


@dataclasses.dataclass
class JobRun:
    """One run of a job: the options it was given, and the state it builds up.

    Attributes
    ----------
    job : Job
        What runs.
    args : argparse.Namespace
        The options, as parsed; never written to.
    started : float
        ``time.perf_counter()`` when the run began (the command's imports included where
        it ran as the command).
    phases : dict of str to float
        Seconds of the run outside the job's own work: ``imports``, ``cluster_start``,
        ``cluster_close``; the job adds them to its JSON.
    out : pathlib.Path or None
        ``--out`` resolved once, symlinks included (:meth:`take_out`): where the results land.
    lock : mnistdist.outputs.FolderLock or None
        The results folder's lock, held from :meth:`take_out` to :meth:`release`.
    staging : pathlib.Path or None
        The folder the job writes into (:meth:`out_dir`), swapped into place as ``--out``
        when it has finished.
    data_identity : dict or None
        The data's dataset and its files' SHA-256 (``Dataset.identity``), as checked
        before any work: the journal ties its rows to it.
    recording : object or None
        The job's tasks, recorded for its scaling forecast while it is on the cluster.
    """

    job: Job
    args: argparse.Namespace
    started: float
    phases: dict[str, float] = dataclasses.field(default_factory=dict)
    out: pathlib.Path | None = None
    lock: outputs.FolderLock | None = None
    staging: pathlib.Path | None = None
    data_identity: dict | None = None
    recording: object | None = None

    def take_out(self) -> None:
        """Resolve ``--out`` and lock it for this run, before any work; refused if another
        live run holds it. A lock left by a run that died is taken over, and that is printed."""
        self.out = outputs.check_out(self.args.out)
        if self.lock is None or self.lock.out != self.out:  # not taken as the command started
            self.release()
            self.lock = outputs.lock_folder(self.out, command=f"{PROG} {self.job.name}")
        if self.lock.previous is not None:
            print(
                f"{PROG} {self.job.name}: {self.out} was held by "
                f"{outputs.describe_holder(self.lock.previous)}, which is gone: taking it over"
            )

    def release(self) -> None:
        """Release the results folder's lock (the kernel does it too, when the process ends)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def out_dir(self) -> pathlib.Path:
        """The folder the job writes into, made before any work: a staging folder beside ``--out``.

        The run swaps it into place as ``--out`` when the job has finished
        (:mod:`mnistdist.outputs`); the job's log is written there. The job's
        result files say whether ``--out`` already holds its results.
        """
        self.staging = outputs.begin(
            self.out or self.args.out,
            results=self.job.results,
            overwrite=self.args.overwrite,
            resume=self.args.resume,
            dataset=(self.data_identity or {}).get("dataset"),
            job=self.job.name,
        )
        log_to(self.staging / LOG)
        return self.staging

    def result_path(self, name: str = "") -> pathlib.Path:
        """Where an output will be once the run has finished: in ``--out``, not in staging."""
        return pathlib.Path(self.args.out) / name
