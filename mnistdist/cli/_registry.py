"""The jobs of the ``mnistdist`` command, and their result files: the one list of them.

The parser reads it before any job is imported: a job's module (Dask, scikit-learn) is
imported once its command line has been read, so a refused option is refused at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable

from . import _options
from ._command import DEFAULT_OUTS


@dataclasses.dataclass(frozen=True)
class Job:
    """A job of the ``mnistdist`` command: its name, its options, its outputs and its work.

    Attributes
    ----------
    name, help, description : str
        The subcommand, its line in ``mnistdist --help``, and the first line of its own help
        (its module's docstring's).
    module : str
        Its module in :mod:`mnistdist.cli`, imported when the job runs.
    result_json : str
        Its JSON, which its scaling forecast joins.
    searched : bool
        Whether it searches: its results then hold ``cv_results.csv`` and the journal too.
    grid : {"presets", "book"} or None
        Its grid-search options: the presets, the book's grid alone, or none.
    add_arguments : callable ``(parser) -> None``, optional
        Options of its own.
    """

    name: str
    help: str
    description: str
    module: str
    result_json: str
    searched: bool = False
    grid: str | None = None
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None

    @property
    def default_out(self) -> str:
        """Its ``--out`` (:data:`DEFAULT_OUTS`: the tour's is the report's folder, to join its
        ``report.html``)."""
        return DEFAULT_OUTS[self.name]

    @property
    def results(self) -> tuple[str, ...]:
        """Its result files, whose presence means a folder holds its results: its JSON, and
        for a search its scores and the journal of its finished neighbour searches."""
        from ..outputs import JOURNAL_FILE

        return (self.result_json, *(("cv_results.csv", JOURNAL_FILE) if self.searched else ()))

    def load(self) -> Callable[..., int]:
        """The job itself, ``(JobRun) -> int`` (the exit code); the first call imports its
        module, and with it Dask and scikit-learn."""
        return importlib.import_module(self.module, __package__).job

    @property
    def figure(self) -> str:
        """The forecast figure's file: jobs that share a folder have names of their own."""
        return "scaling.png" if self.name == "report" else f"{self.name}_scaling.png"


JOBS: tuple[Job, ...] = (
    Job(
        "report",
        "search, refit the best model (and the book's), evaluate on the test set, write the report",
        "``mnistdist report``: the main job.",
        module="._report",
        result_json="metrics.json",
        searched=True,
        grid="presets",
    ),
    Job(
        "search",
        "cross-validated search on the cluster (the book's KNN grid, a preset or --grid FILE), "
        "exhaustive, random (--strategy random) or by successive halving (--strategy halving)",
        "``mnistdist search``: the cross-validated search alone (grid, random or successive "
        "halving).",
        module="._search",
        result_json="search.json",
        searched=True,
        grid="presets",
    ),
    Job(
        "tour",
        "the rest of the chapter: 5-detector, precision/recall, ROC, multiclass, errors, "
        "multilabel, denoising",
        "``mnistdist tour``: the rest of the classification chapter, every fit a task on the "
        "cluster.",
        module="._tour",
        result_json="tour.json",
        add_arguments=_options.add_tour_arguments,
    ),
    Job(
        "augment",
        "build the training set plus its copies (default: the four one-pixel shifts, 5x) "
        "and save it as IDX files",
        "``mnistdist augment``: build an augmented training set on the cluster and save it.",
        module="._augment",
        result_json="augment.json",
        add_arguments=_options.add_augment_arguments,
    ),
    Job(
        "benchmark",
        "time scikit-learn's GridSearchCV against mnistdist's distributed search",
        "``mnistdist benchmark``: the book's GridSearchCV against mnistdist's search, same folds.",
        module="._benchmark",
        result_json="benchmark.json",
        grid="book",
        add_arguments=_options.add_benchmark_arguments,
    ),
)
