"""The jobs' command-line options: the groups every job shares, and each job's own.

The parser reads a command line before any job is imported (a refused option is refused at
once), so this module imports the standard library alone: the choices it offers are the
library's, written out here, and tests/cli/test_options.py keeps them equal.
"""

from __future__ import annotations

import argparse

from ._command import folds, positive_int

#: The library's names the options offer (``mnistdist.data``, ``model_selection``,
#: ``neighbors``, ``preprocessing``, ``benchmark``).
DATA_ENV = "MNISTDIST_DATA"
DATASETS = ("mnist", "digits")
PRESETS = ("best", "book", "deform", "elastic")
STRATEGIES = ("grid", "halving", "random")
N_ITER = 10
WEIGHTS = ("uniform", "distance")
AUGMENT_KINDS = (
    "shift4",
    "shift8",
    "shift2",
    "rotate",
    "shift8+rotate",
    "elastic2",
    "elastic4",
    "elastic8",
    "affine4",
)
BENCHMARK_STRATEGIES = ("grid", "halving", "both")
#: The tour's options that scale its heavy parts down: flag, default, help.
TOUR_SCALE_OPTIONS = (
    ("--svc-size", 2000, "training images for the SVC steps (default: 2000, as the book)"),
    ("--forest-trees", 100, "trees per random forest (default: 100)"),
    ("--denoise-test-size", None, "test images cleaned for the error measure (default: all)"),
)


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
        choices=PRESETS,
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


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is not a seed in [0, 2**63)")
    return value


def add_augment_arguments(parser: argparse.ArgumentParser) -> None:
    """``mnistdist augment``'s ``--kind`` and ``--seed``: which copies, and the distorted
    ones' seed."""
    group = parser.add_argument_group("augmentation")
    group.add_argument(
        "--kind",
        choices=AUGMENT_KINDS,
        default="shift4",
        help="the copies of each image: shifts, rotations, or elastic/affine distortions "
        "(elastic4: four elastic copies) (default: shift4, the book's)",
    )
    group.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the distorted copies: copy c of image i is a function of (i, c, seed) "
        "(default: 0)",
    )


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    """``mnistdist benchmark``'s own options, beside the common and grid ones."""
    parser.add_argument(
        "--no-book", action="store_true", help="skip the (slow) scikit-learn reference runs"
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="skip FAISS's flat index (timed where faiss-cpu is installed: mnistdist[faiss])",
    )
    parser.add_argument(
        "--strategy",
        choices=BENCHMARK_STRATEGIES,
        default="grid",
        help="grid: GridSearchCV against mnistdist's grid search; halving: scikit-learn's "
        "HalvingGridSearchCV (factor 3, resource: training images) against mnistdist's "
        "successive halving, on the same folds; both: the two in one run (default: grid)",
    )


def add_tour_arguments(parser: argparse.ArgumentParser) -> None:
    """``mnistdist tour``'s options that scale its heavy parts down."""
    group = parser.add_argument_group("scaling the heavy parts down")
    for flag, default, text in TOUR_SCALE_OPTIONS:
        group.add_argument(flag, metavar="N", type=positive_int, default=default, help=text)
