"""One run of a job: its options, its output folder, what it records as it goes."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import TYPE_CHECKING

from .. import outputs
from ..drawing import DrawingProcess
from ._command import PROG
from ._logging import LOG, log_to

if TYPE_CHECKING:
    from ._registry import Job


@dataclasses.dataclass
class JobRun:
    """One run of a job: the options it was given, and the state it builds up.

    Attributes
    ----------
    job : mnistdist.cli._registry.Job
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
    drawing : mnistdist.drawing.DrawingProcess
        Draws the job's figures: the command's drawing process, else (not started) this
        process.
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
    drawing: DrawingProcess = dataclasses.field(default_factory=DrawingProcess)

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
