"""The jobs' command-line options: the groups every job shares, and the preset they ask for."""

from __future__ import annotations

import argparse
import dataclasses

from ..data import DATA_ENV, DATASETS
from ..errors import OptionError
from ..model_selection import DEFAULT_GRID, PRESETS, STRATEGIES, Preset, get_preset
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
        help="workers of the embedded LocalCluster (default: one per core)",
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
            help="book: the chapter's KNN grid; best: deskewing x augmentation x PCA x KNN; "
            "deform: deskewing, Euclidean candidates re-ranked by IDM x KNN; "
            "elastic: deform's, the best candidates' elastic copies compared too "
            "(default: book)",
        )
        group.add_argument(
            "--strategy",
            choices=STRATEGIES,
            default=None,
            help="grid: every candidate on every training image; halving: successive halving "
            "as scikit-learn's HalvingGridSearchCV (all candidates on a small stratified subset, "
            "the best third kept on three times the images each round; see docs/halving.md) "
            "(default: the preset's: halving for best, grid otherwise)",
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
    """The estimator, grid and strategy the options ask for (the book's grid without duplicates,
    in order)."""
    preset = get_preset(getattr(args, "preset", "book"), n_features)
    if getattr(args, "strategy", None) is not None:
        preset = dataclasses.replace(preset, strategy=args.strategy)
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
