"""The jobs' command-line options: the groups every job shares, and the preset they ask for."""

from __future__ import annotations

import argparse
import dataclasses

from ..data import DATA_ENV, DATASETS
from ..errors import OptionError
from ..model_selection import (
    DEFAULT_GRID,
    N_ITER,
    PRESETS,
    STRATEGIES,
    Preset,
    SearchSpec,
    get_preset,
    grid_file,
    is_distribution,
)
from ..neighbors import WEIGHTS
from ._command import folds, positive_int


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
        help="finish an interrupted run in the same output folder, reusing its finished work; "
        "on a finished search, search a larger grid and score only its new candidates",
    )
    _add_where_arguments(group)
    group.add_argument(
        "--workers",
        metavar="N",
        type=positive_int,
        default=None,
        help="workers of the embedded LocalCluster (default: one per core)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    group.add_argument("-v", "--verbose", action="store_true", help="log the library's steps")


def _add_where_arguments(group) -> None:
    """Where the job runs, one of: a scheduler's address, a scheduler file, a cluster spec."""
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler, e.g. tcp://host:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else an embedded LocalCluster)",
    )
    where.add_argument(
        "--scheduler-file",
        metavar="PATH",
        default=None,
        help="the Dask scheduler named in a scheduler file "
        "(written by dask scheduler --scheduler-file, dask-mpi, dask-jobqueue's runners)",
    )
    where.add_argument(
        "--cluster",
        metavar="SPEC",
        default=None,
        help="start a cluster for the job and close it after: a YAML spec naming a cluster "
        "class (dask-jobqueue, Kubernetes, dask-gateway) and its workers, a dask.config key, "
        "or a shipped spec: slurm, pbs, kubernetes, gateway (see docs/clusters.md)",
    )


def add_grid_arguments(parser: argparse.ArgumentParser, *, presets: bool = True) -> None:
    """The search: ``--preset NAME`` or ``--grid FILE``, ``--strategy``, ``--n-iter``,
    ``--seed``, ``--scoring``, ``--refit``; for the book's grid ``--n-neighbors`` and
    ``--weights``; ``--cv``."""
    group = parser.add_argument_group("grid search")
    if presets:
        _add_grid_choice(group)
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


def _add_grid_choice(group) -> None:
    """What to search and how: a preset or a grid file, the strategy, the metrics."""
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="a grid file shipped with mnistdist: book, the chapter's KNN grid; best, "
        "deskewing x augmentation x PCA x KNN; deform, deskewing, Euclidean candidates "
        "re-ranked by IDM x KNN; elastic, deform's with the best candidates' elastic copies "
        "(default: book; see docs/grids.md)",
    )
    which.add_argument(
        "--grid",
        metavar="FILE",
        default=None,
        help="a grid file (YAML or JSON): the estimator and scikit-learn's param_grid over "
        "its steps, e.g. a copy of a preset's (docs/grids.md)",
    )
    group.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="grid: every candidate on every training image; halving: successive halving "
        "as scikit-learn's HalvingGridSearchCV (docs/halving.md); random: --n-iter "
        "candidates drawn as scikit-learn's RandomizedSearchCV draws them, lists and "
        "distributions alike (default: the grid file's: halving for best, grid otherwise)",
    )
    group.add_argument(
        "--n-iter",
        metavar="N",
        type=positive_int,
        default=None,
        help=f"random search: candidates to draw (default: the grid file's, else {N_ITER})",
    )
    group.add_argument(
        "--seed",
        metavar="S",
        type=int,
        default=0,
        help="seeds the random search's draws and halving's subsets (default: 0)",
    )
    group.add_argument(
        "--scoring",
        metavar="METRICS",
        type=metric_names,
        default=None,
        help="scikit-learn scorer names, comma-separated, e.g. accuracy,balanced_accuracy,"
        "f1_macro: cv_results.csv gets mean_test_<metric> and the rest for each "
        "(default: accuracy, as mean_test_score)",
    )
    group.add_argument(
        "--refit",
        metavar="METRIC",
        default=None,
        help="with several metrics, the one that chooses the best candidate (default: the first)",
    )


def metric_names(text: str) -> str | list[str]:
    """``--scoring``'s value: one name as a string (``*_test_score``), several as a list."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} names an empty metric")
    return names[0] if len(names) == 1 else names


def preset_from_args(args: argparse.Namespace, n_features: int | None = 784) -> Preset:
    """The estimator, grid and strategy the options ask for: ``--grid``'s file or the preset
    (the book's grid with ``--n-neighbors`` and ``--weights``, without duplicates, in order)."""
    path = getattr(args, "grid", None)
    if path is not None:
        preset = grid_file(path, n_features)
    else:
        preset = get_preset(getattr(args, "preset", None) or "book", n_features)
    if getattr(args, "strategy", None) is not None:
        preset = dataclasses.replace(preset, strategy=args.strategy)
    if path is not None or preset.name != "book":
        if args.n_neighbors is not None or args.weights is not None:
            what = f"--grid {path}" if path is not None else f"--preset {preset.name}"
            raise OptionError(
                f"--n-neighbors and --weights set the book's grid; {what} has a grid of its own"
            )
        return preset
    grid = {
        "n_neighbors": list(dict.fromkeys(args.n_neighbors or DEFAULT_GRID["n_neighbors"])),
        "weights": list(dict.fromkeys(args.weights or DEFAULT_GRID["weights"])),
    }
    return dataclasses.replace(preset, param_grid=grid)


def spec_from_args(args: argparse.Namespace, preset: Preset) -> SearchSpec:
    """The search the options ask for, of ``preset``'s estimator and grid.

    Raises
    ------
    OptionError
        If the grid has distributions and the strategy is not random.
    """
    if preset.strategy != "random" and _has_distributions(preset.param_grid):
        raise OptionError(
            f"grid file {preset.source}: its grid has distributions, which --strategy "
            f"{preset.strategy} cannot search: expected --strategy random"
        )
    return SearchSpec(
        estimator=preset.estimator,
        param_grid=preset.param_grid,
        cv=args.cv,
        scoring=getattr(args, "scoring", None),
        refit=getattr(args, "refit", None),
        strategy=preset.strategy,
        n_iter=getattr(args, "n_iter", None) or preset.n_iter or N_ITER,
        random_state=getattr(args, "seed", 0),
    )


def _has_distributions(param_grid) -> bool:
    grids = [param_grid] if isinstance(param_grid, dict) else param_grid
    return any(is_distribution(v) for g in grids for v in g.values())
