"""``mnistdist search``: the cross-validated KNN grid search alone."""

from __future__ import annotations

import argparse

from jobs import common
from mnistdist.cluster import describe
from mnistdist.compute import peak_memory
from mnistdist.outputs import JOB_RESULTS, write_json
from mnistdist.search import neighbors_search

NAME = "search"
RESULTS = JOB_RESULTS["search"]  # what this job refuses to overwrite
HELP = "cross-validated grid search on the cluster (the book's KNN grid, or --preset best)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_common_arguments(parser, default_out="search-results")
    common.add_grid_arguments(parser)


def job(args: argparse.Namespace) -> int:
    common.preset_from_args(args)  # conflicting options are refused before any work
    out = common.out_dir(args, RESULTS)
    with common.cluster(args) as client, common.journal(out) as journal:
        dataset = common.load(args, client)
        preset = common.preset_from_args(args, dataset.X_train.shape[1])
        result = neighbors_search(
            dataset.X_train,
            dataset.y_train,
            estimator=preset.estimator,
            param_grid=preset.param_grid,
            cv=args.cv,
            journal=journal,
        )
        info = describe(client)
        info["peak_memory_bytes"] = peak_memory(client)
    result.write_csv(out / "cv_results.csv")
    write_json(
        out / "search.json", {**result.summary(), "data": dataset.summary(), "cluster": info}
    )
    for params, mean, std in zip(
        result.cv_results["params"],
        result.cv_results["mean_test_score"],
        result.cv_results["std_test_score"],
        strict=False,
    ):
        mark = "*" if params == result.best_params else " "
        print(f"{mark} {params}: {mean:.4f} ± {std:.4f}")
    print(
        f"search: best {result.best_params} ({result.best_score:.4f}); "
        f"{common.result_path(args, 'cv_results.csv')}"
    )
    return 0


def main(argv=None) -> int:
    return common.standalone(NAME, HELP, add_arguments, job, argv)


if __name__ == "__main__":
    raise SystemExit(main())
