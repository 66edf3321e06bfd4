"""``mnistdist benchmark``: the book's GridSearchCV against mnistdist's search, same folds.

With ``--strategy halving`` or ``both``, scikit-learn's HalvingGridSearchCV against
mnistdist's halving too; every neighbour phase is printed against its GEMM limit.
"""

from __future__ import annotations

import argparse

from jobs import common, options
from mnistdist.benchmark import BENCHMARK_STRATEGIES, format_table, run_benchmark
from mnistdist.cluster import describe, package_versions
from mnistdist.outputs import write_json

NAME = "benchmark"
HELP = "time scikit-learn's GridSearchCV against mnistdist's distributed search"
DEFAULT_OUT = "bench-results"
GRID = "book"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This job's own options, beside the common and grid ones."""
    parser.add_argument(
        "--no-book", action="store_true", help="skip the (slow) scikit-learn reference runs"
    )
    parser.add_argument(
        "--strategy",
        choices=BENCHMARK_STRATEGIES,
        default="grid",
        help="grid: GridSearchCV against mnistdist's grid search; halving: scikit-learn's "
        "HalvingGridSearchCV (factor 3, resource: training images) against mnistdist's "
        "successive halving, on the same folds; both: the two in one run (default: grid)",
    )


def job(args: argparse.Namespace) -> int:
    out = common.out_dir(args)
    with common.cluster(args) as client:
        dataset = common.load(args, client)
        report = run_benchmark(
            dataset.X_train,
            dataset.y_train,
            options.preset_from_args(args).param_grid,
            args.cv,
            book=not args.no_book,
            strategy=args.strategy,
        )
        report["cluster"] = describe(client)
    report["versions"] = package_versions()
    report["data"] = dataset.summary()
    print(format_table(report))
    write_json(out / "benchmark.json", report)
    print(f"benchmark: {common.result_path(args, 'benchmark.json')}")
    # Only the grid searches must agree: the halving searches' first rounds hold other images,
    # and their last rounds other row orders (docs/benchmark.md).
    return 0 if report.get("scores_agree", True) else 1
