"""``mnistdist report``: the main job.

Grid search by cross-validation on the training set, the best parameters
refit on the plain and on the shift-augmented training set, the test set
predicted on the cluster, and every output a person or a program needs.
With ``--preset best`` the search covers deskewing x augmentation x PCA x
KNN, the chosen pipeline is refit and evaluated, and the book's two models
(its own parameters) are evaluated beside it for comparison.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor

import joblib
import numpy as np

from ..data import Dataset, image_side, with_pixel_check
from ..model_selection import (
    BOOK_BEST,
    FinalModel,
    Preset,
    SearchResult,
    fit_report_models,
    report_models,
)
from ..neighbors import format_throughput, search_rerank_throughput
from ..outputs import atomic_path, file_sha256, write_json, write_text
from ..report import (
    evaluate,
    figure_records,
    predictions_csv,
    report_metrics,
    write_data_figures,
    write_report,
    write_report_figures,
)
from ..runtime import Background, package_versions
from ._job_run import JobRun
from ._on_cluster import (
    chosen_preset,
    cluster_summary,
    connect_as_asked,
    load_data,
    open_journal,
    performance_report_file,
    run_search,
    time_line,
)


def job(run: JobRun) -> int:
    out = run.out_dir()
    seconds: dict[str, float] = {}
    t_start = time.perf_counter()
    # The figures are drawn by the run's drawing process (another core): the data's while the
    # cluster works, the results' while this process writes the Dask performance report and
    # a thread the model and predictions. Leaving the pool waits for its threads, even after
    # Ctrl-C: nothing writes into the folder once the job has returned.
    with ThreadPoolExecutor(2, thread_name_prefix="mnistdist-outputs") as pool:
        with (
            connect_as_asked(run) as client,
            open_journal(run) as journal,
            performance_report_file(out / "dask-report.html", seconds),
        ):
            work = _on_cluster(run, client, journal, seconds, pool)
            evaluation = evaluate(work.dataset.y_test, work.models[work.final].y_pred)
            drawing = pool.submit(_write_figures, run, work, evaluation)
            saving = pool.submit(_write_model, out, work)
        model_sha256, seconds["outputs"] = saving.result()
        figures, seconds["figures"] = drawing.result()
    seconds = {**run.phases, **seconds, "total": time.perf_counter() - t_start}
    extra = {"model_sha256": model_sha256, "figures": figure_records(figures)}
    _write_metrics(out, work, evaluation, seconds, extra)
    write_report(out)
    print(time_line(seconds))
    print(f"report: {run.result_path('report.html')} (total {seconds['total']:.0f} s)")
    return 0


def _write_model(out, work: _Work) -> tuple[str, float]:
    """``model.joblib`` and ``predictions.csv``; returns the model's SHA-256 and the seconds.

    The digest (0.6 s for the book's 238 MB model) is taken here, beside the
    performance report, from the file as written.
    """
    t = time.perf_counter()
    with atomic_path(out / "model.joblib") as tmp:
        joblib.dump(with_pixel_check(work.models[work.final].model), tmp)
        digest = file_sha256(tmp)
    write_text(out / "predictions.csv", predictions_csv(work.dataset.y_test, work.models))
    return digest, time.perf_counter() - t


@dataclasses.dataclass
class _Work:
    """What the report's work on the cluster gives the outputs."""

    dataset: Dataset
    preset: Preset
    result: SearchResult
    models: dict[str, FinalModel]
    final: str
    X_test: np.ndarray
    X_sample: np.ndarray
    cluster_info: dict
    data_figures: Future


def _print_accuracy(dataset: Dataset):
    def show(name: str, model: FinalModel) -> None:
        accuracy = model.accuracy(dataset.y_test)
        print(f"{name}: test accuracy {accuracy:.4f} ({model.n_train} training rows)")

    return show


def _on_cluster(run: JobRun, client, journal, seconds, pool) -> _Work:
    """Load, search, fit the models: the report's work on the cluster, its times in ``seconds``.

    The figures of the data alone are drawn meanwhile, by ``pool``'s thread and the drawing
    process.
    """
    t = time.perf_counter()
    dataset = load_data(run, client)
    image_side(dataset.X_train.shape[1])  # shifting needs square images: refuse others now
    seconds["load"] = time.perf_counter() - t
    X_sample = dataset.X_train[:40].compute()
    y_sample = dataset.y_train[:40]
    data_figures = pool.submit(write_data_figures, run.staging, X_sample, y_sample, run.drawing)
    preset = chosen_preset(run, dataset)
    beside, after = report_models(preset)
    fit = functools.partial(
        fit_report_models, dataset, preset, journal=journal, on_done=_print_accuracy(dataset)
    )
    # Models that need nothing from the search are fitted beside it, in the background:
    # their tasks fill the workers it leaves idle (between its rounds and groups).
    # The chosen pipeline's refit takes the images the search's stateless steps made.
    shared: dict = {}
    with Background(fit, BOOK_BEST, beside) as early:
        result = _search(run, dataset, journal, preset, seconds, shared)
        models = {**early.result(), **fit(result.best_params, after, shared=shared)}
    for name, model in models.items():
        seconds[f"final_{name}"] = model.seconds
    return _Work(
        dataset=dataset,
        preset=preset,
        result=result,
        models=models,
        final="chosen" if "chosen" in models else "augmented",
        X_test=dataset.X_test.compute(),
        X_sample=X_sample,
        cluster_info=cluster_summary(client),
        data_figures=data_figures,
    )


def _search(run: JobRun, dataset, journal, preset, seconds, shared: dict) -> SearchResult:
    """The preset's search, its ``cv_results.csv`` written and its times in ``seconds``."""
    result = run_search(run, dataset, journal, preset, shared)
    result.write_csv(run.staging / "cv_results.csv")
    seconds["search_neighbors"] = result.seconds["neighbors"]
    seconds["search_scoring"] = result.seconds["scoring"]
    if "rerank" in result.seconds:
        seconds["search_rerank"] = result.seconds["rerank"]
    return result


def _write_metrics(out, work: _Work, evaluation: dict, seconds: dict, files: dict) -> None:
    """``metrics.json``: the models' scores, the search, the data, the versions, the phases;
    ``files``: the model's ``model_sha256`` and the ``figures``' records."""
    dataset, preset, result, models = work.dataset, work.preset, work.result, work.models
    data = {**dataset.summary(), "n_train_augmented": int(models["augmented"].n_train)}
    extra = {
        # model.joblib is a pickle: load only a file whose digest is this one (docs/reliability.md).
        "model_sha256": files["model_sha256"],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "data": data,
        "versions": package_versions(),
        "cluster": work.cluster_info,
        "figures": files["figures"],
    }
    if not preset.plain_knn:
        extra["book_params"] = BOOK_BEST
    if "rerank" in result.seconds:
        extra["rerank"] = search_rerank_throughput(
            preset.estimator, result, work.cluster_info, seconds
        )
        print(format_throughput(extra["rerank"]))
    metrics = report_metrics(
        preset=preset.name,
        models=models,
        final=work.final,
        y_test=dataset.y_test,
        search=result.summary(),
        evaluation=evaluation,
        extra=extra,
    )
    write_json(out / "metrics.json", metrics)


def _write_figures(run: JobRun, work: _Work, evaluation: dict) -> tuple[dict, float]:
    """The report's figures, drawn by the run's drawing process and written into its folder:
    their references by key, and the seconds."""
    t = time.perf_counter()
    model = work.models[work.final].model
    # Each candidate once: after successive halving, from the last round it reached; the
    # KNN's parameters that the grid leaves at the estimator's values filled in, for the figure.
    params, mean, std = work.result.candidate_scores()
    knn = {
        name: value
        for name, value in work.preset.estimator.get_params().items()
        if name.rpartition("__")[2] in ("n_neighbors", "weights")
    }
    params = [{**knn, **p} for p in params]
    refs = write_report_figures(
        run.staging,
        X_train_sample=work.X_sample,
        y_train_sample=work.dataset.y_train[:40],
        search_params=params,
        search_mean=mean,
        search_std=std,
        X_test=work.X_test,
        y_test=work.dataset.y_test,
        y_pred=work.models[work.final].y_pred,
        evaluation=evaluation,
        model=work.final,
        deskew=work.final == "chosen" and "deskew" in model.named_steps,
        drawing=run.drawing,
        data_figures=work.data_figures.result(),
    )
    return refs, time.perf_counter() - t
