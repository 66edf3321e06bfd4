"""``mnistdist report``: the main job.

Grid search by cross-validation on the training set, the best parameters
refit on the plain and on the shift-augmented training set, the test set
predicted on the cluster, and every output a person or a program needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import time

import joblib

from jobs import common
from mnistdist.journal import FILENAME as JOURNAL
from mnistdist.augment import augment_shifts, image_side
from mnistdist.cluster import describe, package_versions, peak_memory
from mnistdist.evaluate import evaluate
from mnistdist.figures import write_report_figures
from mnistdist.final import fit_predict
from mnistdist.knn import KNNClassifier
from mnistdist.outputs import atomic_path, write_json, write_text
from mnistdist.report import write_report
from mnistdist.search import neighbour_search

NAME = "report"
RESULTS = ("metrics.json", "cv_results.csv", JOURNAL)  # what this job refuses to overwrite
HELP = "search, refit on plain and augmented data, evaluate on the test set, write the report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_common_arguments(parser, default_out="results")
    common.add_grid_arguments(parser)


def job(args: argparse.Namespace) -> int:
    out = common.out_dir(args, RESULTS)
    seconds: dict[str, float] = {}
    t_start = time.perf_counter()
    with (
        common.cluster(args) as client,
        common.journal(out) as journal,
        common.performance_report_file(out / "dask-report.html"),
    ):
        t = time.perf_counter()
        dataset = common.load(args, client)
        image_side(dataset.X_train.shape[1])  # shifting needs square images: refuse others before any work
        seconds["load"] = time.perf_counter() - t

        grid = common.grid_from_args(args)
        print(f"search: {len(grid['n_neighbors']) * len(grid['weights'])} candidates x {args.cv} folds")
        result = neighbour_search(dataset.X_train, dataset.y_train, param_grid=grid, cv=args.cv, journal=journal)
        result.write_csv(out / "cv_results.csv")
        seconds["search_neighbours"] = result.seconds["neighbours"]
        seconds["search_scoring"] = result.seconds["scoring"]
        print(f"search: best {result.best_params} with mean CV accuracy {result.best_score:.4f}")

        best = KNNClassifier(**result.best_params)
        plain = fit_predict(best, dataset.X_train, dataset.y_train, dataset.X_test, name="plain", keep_model=False, journal=journal)
        seconds["final_plain"] = plain.seconds
        print(f"plain: test accuracy {plain.accuracy(dataset.y_test):.4f} ({plain.n_train} training images)")

        X_aug, y_aug = augment_shifts(dataset.X_train, dataset.y_train)
        augmented = fit_predict(best, X_aug, y_aug, dataset.X_test, name="augmented", journal=journal)
        seconds["final_augmented"] = augmented.seconds
        print(f"augmented: test accuracy {augmented.accuracy(dataset.y_test):.4f} ({augmented.n_train} training images)")

        X_test = dataset.X_test.compute()
        X_sample = dataset.X_train[:40].compute()
        cluster_info = describe(client)
        cluster_info["peak_memory_bytes"] = peak_memory(client)

    t = time.perf_counter()
    evaluation = evaluate(dataset.y_test, augmented.y_pred)
    figures = write_report_figures(
        out,
        X_train_sample=X_sample,
        y_train_sample=dataset.y_train[:40],
        search_params=result.cv_results["params"],
        search_mean=result.cv_results["mean_test_score"],
        search_std=result.cv_results["std_test_score"],
        X_test=X_test,
        y_test=dataset.y_test,
        y_pred=augmented.y_pred,
        evaluation=evaluation,
    )
    with atomic_path(out / "model.joblib") as tmp:
        joblib.dump(augmented.model, tmp)
    rows = ["index,true,plain,augmented"] + [f"{i},{t},{p},{a}" for i, (t, p, a) in enumerate(zip(dataset.y_test, plain.y_pred, augmented.y_pred))]
    write_text(out / "predictions.csv", "\n".join(rows) + "\n")
    seconds["outputs"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start

    data = dataset.summary()
    data["n_train_augmented"] = int(augmented.n_train)
    metrics = {
        "test_accuracy_plain": plain.accuracy(dataset.y_test),
        "test_accuracy_augmented": augmented.accuracy(dataset.y_test),
        "best_params": result.best_params,
        "search": result.summary(),
        "evaluation_augmented": evaluation,
        "most_confused_pair": evaluation["most_confused_pair"],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "data": data,
        "versions": package_versions(),
        "cluster": cluster_info,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "figures": {key: dataclasses.asdict(ref) for key, ref in figures.items()},
    }
    write_json(out / "metrics.json", metrics)
    write_report(out)
    print(f"report: {out / 'report.html'} (total {seconds['total']:.0f} s)")
    return 0


def main(argv=None) -> int:
    return common.standalone(NAME, HELP, add_arguments, job, argv)


if __name__ == "__main__":
    raise SystemExit(main())
