"""``mnistdist report``: the main job.

Grid search by cross-validation on the training set, the best parameters
refit on the plain and on the shift-augmented training set, the test set
predicted on the cluster, and every output a person or a program needs.
With ``--preset best`` the search covers deskewing x augmentation x PCA x
KNN, the chosen pipeline is refit and evaluated, and the book's two models
(its own parameters) are evaluated beside it for comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import time

import joblib
from sklearn.base import clone

from jobs import common
from mnistdist.augment import augment_shifts
from mnistdist.cluster import describe, package_versions
from mnistdist.compute import peak_memory
from mnistdist.evaluate import evaluate
from mnistdist.figures import write_report_figures
from mnistdist.final import fit_predict
from mnistdist.html_report import write_report
from mnistdist.images import image_side
from mnistdist.knn import KNNClassifier
from mnistdist.outputs import JOB_RESULTS, atomic_path, write_json, write_text
from mnistdist.pixels import with_pixel_check
from mnistdist.presets import BOOK_BEST
from mnistdist.search import neighbors_search

NAME = "report"
RESULTS = JOB_RESULTS["report"]  # what this job refuses to overwrite
HELP = "search, refit the best model (and the book's), evaluate on the test set, write the report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_common_arguments(parser, default_out="results")
    common.add_grid_arguments(parser)


def job(args: argparse.Namespace) -> int:
    common.preset_from_args(args)  # conflicting options are refused before any work
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
        image_side(
            dataset.X_train.shape[1]
        )  # shifting needs square images: refuse others before any work
        seconds["load"] = time.perf_counter() - t

        preset = common.preset_from_args(args, dataset.X_train.shape[1])
        print(f"search ({preset.name}): {preset.description}, {args.cv} folds")
        result = neighbors_search(
            dataset.X_train,
            dataset.y_train,
            estimator=preset.estimator,
            param_grid=preset.param_grid,
            cv=args.cv,
            journal=journal,
        )
        result.write_csv(out / "cv_results.csv")
        seconds["search_neighbours"] = result.seconds["neighbours"]
        seconds["search_scoring"] = result.seconds["scoring"]
        print(f"search: best {result.best_params} with mean CV accuracy {result.best_score:.4f}")

        # The book's two models: the searched KNN (book preset), or the book's own choice for comparison.
        book = preset.name == "book"
        book_knn = KNNClassifier(**(result.best_params if book else BOOK_BEST))
        plain = fit_predict(
            book_knn,
            dataset.X_train,
            dataset.y_train,
            dataset.X_test,
            name="plain",
            keep_model=False,
            journal=journal,
        )
        seconds["final_plain"] = plain.seconds
        print(
            f"plain: test accuracy {plain.accuracy(dataset.y_test):.4f} ({plain.n_train} training images)"
        )

        X_aug, y_aug = augment_shifts(dataset.X_train, dataset.y_train)
        augmented = fit_predict(
            book_knn,
            X_aug,
            y_aug,
            dataset.X_test,
            name="augmented",
            keep_model=book,
            journal=journal,
        )
        seconds["final_augmented"] = augmented.seconds
        print(
            f"augmented: test accuracy {augmented.accuracy(dataset.y_test):.4f} ({augmented.n_train} training images)"
        )

        final, final_name = augmented, "augmented"
        if not book:
            estimator = clone(preset.estimator).set_params(**result.best_params)
            final, final_name = (
                fit_predict(
                    estimator,
                    dataset.X_train,
                    dataset.y_train,
                    dataset.X_test,
                    name="chosen",
                    journal=journal,
                ),
                "chosen",
            )
            seconds["final_chosen"] = final.seconds
            print(
                f"chosen: test accuracy {final.accuracy(dataset.y_test):.4f} ({final.n_train} training rows)"
            )

        X_test = dataset.X_test.compute()
        X_sample = dataset.X_train[:40].compute()
        cluster_info = describe(client)
        cluster_info["peak_memory_bytes"] = peak_memory(client)

    t = time.perf_counter()
    evaluation = evaluate(dataset.y_test, final.y_pred)
    figures = write_report_figures(
        out,
        X_train_sample=X_sample,
        y_train_sample=dataset.y_train[:40],
        search_params=result.cv_results["params"],
        search_mean=result.cv_results["mean_test_score"],
        search_std=result.cv_results["std_test_score"],
        X_test=X_test,
        y_test=dataset.y_test,
        y_pred=final.y_pred,
        evaluation=evaluation,
        model=final_name,
        deskew="deskew" in final.model.named_steps if final_name == "chosen" else False,
    )
    with atomic_path(out / "model.joblib") as tmp:
        joblib.dump(with_pixel_check(final.model), tmp)
    header = "index,true,plain,augmented" + (",chosen" if not book else "")
    columns = [dataset.y_test, plain.y_pred, augmented.y_pred] + (
        [final.y_pred] if not book else []
    )
    rows = [header] + [
        ",".join(map(str, (i, *values))) for i, values in enumerate(zip(*columns, strict=False))
    ]
    write_text(out / "predictions.csv", "\n".join(rows) + "\n")
    seconds["outputs"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start

    data = dataset.summary()
    data["n_train_augmented"] = int(augmented.n_train)
    metrics = {
        "preset": preset.name,
        "test_accuracy_plain": plain.accuracy(dataset.y_test),
        "test_accuracy_augmented": augmented.accuracy(dataset.y_test),
        "best_params": result.best_params,
        "search": result.summary(),
        f"evaluation_{final_name}": evaluation,
        "most_confused_pair": evaluation["most_confused_pair"],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "data": data,
        "versions": package_versions(),
        "cluster": cluster_info,
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "figures": {key: dataclasses.asdict(ref) for key, ref in figures.items()},
    }
    if not book:
        metrics["book_params"] = BOOK_BEST
        metrics["test_accuracy_chosen"] = final.accuracy(dataset.y_test)
        metrics["chosen"] = {
            "steps": [f"{name}: {step!r}" for name, step in final.model.steps],
            "n_train": final.n_train,
        }
    write_json(out / "metrics.json", metrics)
    write_report(out)
    print(f"report: {common.result_path(args, 'report.html')} (total {seconds['total']:.0f} s)")
    return 0


def main(argv=None) -> int:
    return common.standalone(NAME, HELP, add_arguments, job, argv)


if __name__ == "__main__":
    raise SystemExit(main())
