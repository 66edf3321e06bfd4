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
import time
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
from sklearn.base import clone

from jobs import common
from mnistdist.augment import augment_shifts
from mnistdist.cluster import package_versions
from mnistdist.compute import Background
from mnistdist.data import Dataset
from mnistdist.evaluate import evaluate
from mnistdist.figures import write_report_figures
from mnistdist.final import FinalModel, fit_predict
from mnistdist.html_report import write_report
from mnistdist.images import image_side
from mnistdist.knn import KNNClassifier
from mnistdist.outputs import atomic_path, write_json, write_text
from mnistdist.pixels import with_pixel_check
from mnistdist.presets import BOOK_BEST, Preset
from mnistdist.rerank_tasks import format_throughput, search_rerank_throughput
from mnistdist.results import figure_records, predictions_csv, report_metrics
from mnistdist.search import SearchResult

NAME = "report"
HELP = "search, refit the best model (and the book's), evaluate on the test set, write the report"
DEFAULT_OUT = "results"
GRID = "presets"


def job(args: argparse.Namespace) -> int:
    out = common.out_dir(args)
    seconds: dict[str, float] = {}
    t_start = time.perf_counter()
    # A thread draws the figures while the cluster closes (mostly waiting on its processes);
    # not during the performance report, which needs the same interpreter as the drawing.
    # Leaving the pool waits for it, even after Ctrl-C: nothing writes into the folder
    # once the job has returned.
    with ThreadPoolExecutor(1, thread_name_prefix="mnistdist-figures") as pool:
        with common.cluster(args) as client, common.journal(out) as journal:
            with common.performance_report_file(out / "dask-report.html", seconds):
                run = _on_cluster(args, client, journal, out, seconds)
            t = time.perf_counter()
            evaluation = evaluate(run.dataset.y_test, run.models[run.final].y_pred)
            drawing = pool.submit(_write_figures, out, run, evaluation)
        with atomic_path(out / "model.joblib") as tmp:
            joblib.dump(with_pixel_check(run.models[run.final].model), tmp)
        write_text(out / "predictions.csv", predictions_csv(run.dataset.y_test, run.models))
        figures, seconds["figures"] = drawing.result()
    seconds["outputs"] = time.perf_counter() - t
    seconds = {**common.job_phases(args), **seconds, "total": time.perf_counter() - t_start}
    _write_metrics(out, run, evaluation, seconds, figure_records(figures))
    write_report(out)
    print(common.time_line(seconds))
    print(f"report: {common.result_path(args, 'report.html')} (total {seconds['total']:.0f} s)")
    return 0


@dataclasses.dataclass
class _Run:
    """What the report's work on the cluster gives the outputs."""

    dataset: Dataset
    preset: Preset
    result: SearchResult
    models: dict[str, FinalModel]
    final: str
    X_test: np.ndarray
    X_sample: np.ndarray
    cluster_info: dict


def _on_cluster(args, client, journal, out, seconds) -> _Run:
    """Load, search, fit the models: the report's work on the cluster, its times in ``seconds``."""
    t = time.perf_counter()
    dataset = common.load(args, client)
    image_side(dataset.X_train.shape[1])  # shifting needs square images: refuse others now
    seconds["load"] = time.perf_counter() - t
    preset = common.preset(args, dataset)
    beside, after = _model_names(preset)
    # Models that need nothing from the search are fitted beside it, in the background:
    # their tasks fill the workers it leaves idle (between its rounds and groups).
    with Background(_fit_models, dataset, preset, BOOK_BEST, journal, beside) as early:
        result = _search(args, dataset, journal, preset, out, seconds)
        models = _fit_models(dataset, preset, result.best_params, journal, after)
        models = {**early.result(), **models}
    for name, model in models.items():
        seconds[f"final_{name}"] = model.seconds
    return _Run(
        dataset=dataset,
        preset=preset,
        result=result,
        models=models,
        final="chosen" if "chosen" in models else "augmented",
        X_test=dataset.X_test.compute(),
        X_sample=dataset.X_train[:40].compute(),
        cluster_info=common.cluster_summary(client),
    )


def _search(args, dataset, journal, preset, out, seconds) -> SearchResult:
    """The preset's search, its ``cv_results.csv`` written and its times in ``seconds``."""
    result = common.search(args, dataset, journal, preset)
    result.write_csv(out / "cv_results.csv")
    seconds["search_neighbors"] = result.seconds["neighbors"]
    seconds["search_scoring"] = result.seconds["scoring"]
    if "rerank" in result.seconds:
        seconds["search_rerank"] = result.seconds["rerank"]
    return result


def _write_metrics(out, run: _Run, evaluation: dict, seconds: dict, figures: dict) -> None:
    """``metrics.json``: the models' scores, the search, the data, the versions, the phases."""
    dataset, preset, result, models = run.dataset, run.preset, run.result, run.models
    data = {**dataset.summary(), "n_train_augmented": int(models["augmented"].n_train)}
    extra = {
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "data": data,
        "versions": package_versions(),
        "cluster": run.cluster_info,
        "figures": figures,
    }
    if preset.name != "book":
        extra["book_params"] = BOOK_BEST
    if "rerank" in result.seconds:
        extra["rerank"] = search_rerank_throughput(
            preset.estimator, result, run.cluster_info, seconds
        )
        print(format_throughput(extra["rerank"]))
    metrics = report_metrics(
        preset=preset.name,
        models=models,
        final=run.final,
        y_test=dataset.y_test,
        search=result.summary(),
        evaluation=evaluation,
        extra=extra,
    )
    write_json(out / "metrics.json", metrics)


#: The book's two models: a KNN on the plain and on the shift-augmented training set.
BOOK_MODELS = ("plain", "augmented")


def _model_names(preset: Preset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The models fitted beside the search, and those that need its result.

    With the book preset its two models use the searched KNN. With another they use the
    book's own choice (:data:`BOOK_BEST`), known before the search, and the chosen
    pipeline follows it.
    """
    return ((), BOOK_MODELS) if preset.name == "book" else (BOOK_MODELS, ("chosen",))


def _model_fit(name: str, dataset, preset: Preset, params: dict):
    """``(estimator, X, y, keep_model)`` of the model ``name`` with ``params``."""
    if name == "chosen":
        estimator = clone(preset.estimator).set_params(**params)
        return estimator, dataset.X_train, dataset.y_train, True
    knn = KNNClassifier(**params)
    if name == "plain":
        return knn, dataset.X_train, dataset.y_train, False
    X_aug, y_aug = augment_shifts(dataset.X_train, dataset.y_train)
    return knn, X_aug, y_aug, preset.name == "book"  # the book's final model is saved


def _fit_models(dataset, preset, params, journal, names) -> dict[str, FinalModel]:
    """The models ``names`` with ``params``, each fitted and evaluated on the cluster."""
    models = {}
    for name in names:
        estimator, X, y, keep = _model_fit(name, dataset, preset, params)
        models[name] = fit_predict(
            estimator, X, y, dataset.X_test, name=name, keep_model=keep, journal=journal
        )
        accuracy = models[name].accuracy(dataset.y_test)
        print(f"{name}: test accuracy {accuracy:.4f} ({models[name].n_train} training rows)")
    return models


def _write_figures(out, run: _Run, evaluation: dict) -> tuple[dict, float]:
    """The report's figures, written into ``out``: their references by key, and the seconds."""
    t = time.perf_counter()
    model = run.models[run.final].model
    # Each candidate once: after successive halving, from the last round it reached.
    params, mean, std = run.result.candidate_scores()
    refs = write_report_figures(
        out,
        X_train_sample=run.X_sample,
        y_train_sample=run.dataset.y_train[:40],
        search_params=params,
        search_mean=mean,
        search_std=std,
        X_test=run.X_test,
        y_test=run.dataset.y_test,
        y_pred=run.models[run.final].y_pred,
        evaluation=evaluation,
        model=run.final,
        deskew=run.final == "chosen" and "deskew" in model.named_steps,
    )
    return refs, time.perf_counter() - t
