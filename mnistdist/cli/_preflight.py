"""What the options alone rule out, refused before any folder is touched or any cluster started."""

from __future__ import annotations

import argparse
import os

from sklearn.model_selection import ParameterGrid

from ..data import Dataset, load_dataset
from ..errors import OptionError
from ..model_selection import check_metrics, cv_folds, plan_rounds, search_candidates
from ..outputs import check_out
from ..runtime import (
    check_scheduler_address,
    deployer_class,
    read_cluster_spec,
    read_scheduler_file,
    scheduler_address,
)
from ._preset_args import preset_from_args, spec_from_args

#: More workers than this per core would only compete for the cores.
MAX_WORKERS_PER_CORE = 8


def preflight(args: argparse.Namespace) -> Dataset:
    """Refuse, before any folder is touched or any cluster started, what the options alone rule out.

    Where the job runs (an address, a scheduler file that names one, a cluster
    spec whose deployer is installed) and the worker count, the output folder's name, and the data
    (read and checked, not computed on): its files, ``--train-size``, and
    the folds and grid that ``--cv`` and ``--n-neighbors`` ask of it. Returns the dataset,
    as checked (its files' digests included).
    """
    _check_where(args)
    cores = os.cpu_count() or 1
    if args.workers is not None and args.workers > MAX_WORKERS_PER_CORE * cores:
        raise OptionError(
            f"--workers {args.workers}: more than {MAX_WORKERS_PER_CORE} workers "
            f"per core ({cores} cores)"
        )
    check_out(args.out)
    if args.data is not None and not args.data.strip():  # "" would mean: download from OpenML
        raise OptionError("--data is empty: name the folder of the MNIST IDX files")
    dataset = load_dataset(args.dataset, data_dir=args.data, train_size=args.train_size)
    if getattr(args, "cv", None) is None:
        return dataset
    _check_search(args, dataset.X_train.shape[1], dataset.y_train)
    return dataset


def _check_search(args: argparse.Namespace, n_features: int, y) -> None:
    """The grid file or preset, its candidates, the metrics, and the folds the search makes.

    A grid file's mistakes are one line naming the file, the key and what was
    expected. The smallest folds are those of halving's first round (the
    benchmark's "both" has one too).
    """
    preset = preset_from_args(args, n_features)
    if getattr(args, "grid", None) is None and not hasattr(args, "scoring"):  # the benchmark
        candidates, strategy = list(ParameterGrid(preset.param_grid)), preset.strategy
    else:
        spec = spec_from_args(args, preset)
        candidates, strategy = search_candidates(spec), spec.strategy
        check_metrics(spec.scoring, spec.refit, y)
    if strategy in ("halving", "both"):
        _, rows = plan_rounds(y, len(candidates), args.cv)
        y = y[rows[0]]
    folds = cv_folds(args.cv, y)
    smallest_train = min(len(train) for train, _ in folds)
    _check_components(preset, candidates, smallest_train)
    if not preset.plain_knn:  # a pipeline's references grow with its augmentations
        return
    k_max = max(c.get("n_neighbors", preset.estimator.n_neighbors) for c in candidates)
    if k_max > smallest_train:
        raise OptionError(
            f"n_neighbors={k_max} is larger than the smallest training fold ({smallest_train} rows)"
        )


def _check_components(preset, candidates: list[dict], smallest_train: int) -> None:
    """Every step's ``n_components`` (PCA's) must fit in the smallest training fold, where it
    is fitted: with few images, in halving's first round above all."""
    defaults = preset.estimator.get_params()
    for candidate in candidates:
        params = {**defaults, **candidate}
        for name, value in params.items():
            if params.get(name.rpartition("__")[0]) == "passthrough":  # the step is left out
                continue
            if name.endswith("n_components") and type(value) is int and value > smallest_train:
                raise OptionError(
                    f"{name}={value} is larger than the smallest training fold "
                    f"({smallest_train} rows): use more folds or images, or --strategy grid"
                )


def _check_where(args: argparse.Namespace) -> None:
    """The cluster the options name can be used: its address, scheduler file or spec."""
    if getattr(args, "cluster", None) is not None:
        deployer_class(read_cluster_spec(args.cluster))
    elif getattr(args, "scheduler_file", None) is not None:
        read_scheduler_file(args.scheduler_file)
    elif args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    elif address := scheduler_address():
        check_scheduler_address(address)
