"""``mnistdist tour``: the rest of the classification chapter, every fit a task on the cluster.

A 5-detector, the precision/recall trade-off, ROC curves, multiclass
strategies, error analysis, multilabel and multioutput classification. Writes
``tour.json`` (with the CPU seconds of the job's process and of the workers)
and the figures, adds a section to the folder's ``report.html`` (beside the
main job's, when both run into one folder), and prints a ``cpu:`` line.
"""

from __future__ import annotations

import dataclasses
import datetime
import time

from ..outputs import write_json
from ..report import FigureRef, write_figures, write_report
from ..runtime import describe, measure_cpu, package_versions
from ..tour import CAPTIONS, TourConfig, run_tour
from ._job_run import JobRun
from ._on_cluster import connect_as_asked, load_data, rounded_phases

PRINTED = (
    "never5_cv_accuracy",
    "sgd5_cv_accuracy",
    "sgd5_precision",
    "sgd5_recall",
    "sgd5_roc_auc",
    "forest5_roc_auc",
    "multilabel_f1_macro",
    "sgd_scaled_cv_accuracy",
)


def job(run: JobRun) -> int:
    args = run.args
    out = run.out_dir()
    config = TourConfig(
        svc_size=args.svc_size,
        forest_trees=args.forest_trees,
        denoise_test_size=args.denoise_test_size,
    )
    t0 = time.perf_counter()
    # Worker processes: scikit-learn's fits hold the GIL in places, and
    # cpu_time measures the workers' processes.
    with connect_as_asked(run, holds_gil=True) as client, measure_cpu(client) as cpu:
        dataset = load_data(run, client)
        X, X_test = dataset.X_train.compute(), dataset.X_test.compute()
        numbers, figures = run_tour(X, dataset.y_train, X_test, config)
        cluster_info = describe(client)
        # Inside the timed block; the drawing's CPU is the drawing process's, not the client's.
        write_figures(out, figures, run.drawing)
    refs = {name: dataclasses.asdict(FigureRef(name, *CAPTIONS[name])) for name in figures}
    phases = rounded_phases(run)
    numbers["seconds"] = {**phases, **numbers["seconds"]}
    numbers["seconds"]["total"] = round(time.perf_counter() - t0, 3)
    numbers["cpu"] = cpu.summary()
    numbers.update(
        data=dataset.summary(),
        config=dataclasses.asdict(config),
        versions=package_versions(),
        cluster=cluster_info,
        figures=refs,
        generated=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    write_json(out / "tour.json", numbers)
    report = write_report(out)
    for key in PRINTED:
        print(f"{key}: {numbers[key]}")
    print(cpu.line())
    print(
        f"tour: {run.result_path('tour.json')}, {run.result_path(report.name)}"
        f" (total {numbers['seconds']['total']:.0f} s)"
    )
    return 0
