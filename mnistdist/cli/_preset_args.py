"""The preset and the search that the parsed options ask for."""

from __future__ import annotations

import argparse
import dataclasses

from ..errors import OptionError
from ..model_selection import (
    DEFAULT_GRID,
    N_ITER,
    Preset,
    SearchSpec,
    get_preset,
    grid_file,
    is_distribution,
)


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
