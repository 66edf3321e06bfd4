"""``mnistdist benchmark``: the book's GridSearchCV against mnistdist's search, same folds.

With ``--strategy halving`` or ``both``, scikit-learn's HalvingGridSearchCV against
mnistdist's halving too; every neighbour phase is printed against its GEMM limit; the search's
growth with the images; the final models' kind of search against FAISS's flat index.
"""

from __future__ import annotations

from ..benchmark import format_table, run_benchmark
from ..outputs import write_json
from ..runtime import describe, package_versions
from ._job_run import JobRun
from ._on_cluster import connect_as_asked, load_data
from ._preset_args import preset_from_args


def job(run: JobRun) -> int:
    args = run.args
    out = run.out_dir()
    with connect_as_asked(run) as client:
        dataset = load_data(run, client)
        report = run_benchmark(
            dataset.X_train,
            dataset.y_train,
            preset_from_args(args).param_grid,
            args.cv,
            book=not args.no_book,
            strategy=args.strategy,
            peers=not args.no_peers,
        )
        report["cluster"] = describe(client)
    report["versions"] = package_versions()
    report["data"] = dataset.summary()
    print(format_table(report))
    write_json(out / "benchmark.json", report)
    print(f"benchmark: {run.result_path('benchmark.json')}")
    # Only the grid searches must agree: the halving searches' first rounds hold other images,
    # and their last rounds other row orders (docs/benchmark.md).
    return 0 if report.get("scores_agree", True) else 1
