"""The classification chapter, part by part, every fit a task on the cluster.

:func:`._graph.build_tour` builds the whole tour as tasks
(split by fold, class, pair, chunk of trees and block of images, see
:mod:`._fits`) and runs them all at once; each ``part_*`` function here
turns the gathered results into what the book computes on MNIST and returns
``(numbers, figures)``: a JSON-ready dict and the figures by file name, as
:class:`mnistdist.drawing.Request` s (the job's drawing process draws them).
The job's process only builds the graph, places each fold's predictions where
``cross_val_predict`` places them, and computes the metrics from those small
arrays.

The models and their settings are the book's (``random_state=42``
everywhere), on the folds scikit-learn's ``cv=3`` picks; the numbers equal
scikit-learn's unsplit calls (``docs/tour.md``). The parameters of
:class:`TourConfig` scale the heavy parts down.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from ..drawing import Request
from ..report import error_matrix
from ._fits import multilabel_targets
from ._graph import TourConfig, TourGraph, build_tour

log = logging.getLogger(__name__)


def cross_val_predictions(folds: list, parts: list[np.ndarray]) -> np.ndarray:
    """``cross_val_predict``'s array: each fold's outputs placed at its validation rows.

    Parameters
    ----------
    folds : list of (train, test) index arrays
        The folds, in order.
    parts : list of ndarray
        Each fold's outputs on its validation rows, in the same order.

    Returns
    -------
    ndarray
        One output per row, as scikit-learn assembles them.
    """
    test = np.concatenate([t for _, t in folds])
    inverse = np.empty(len(test), dtype=int)
    inverse[test] = np.arange(len(test))
    return np.concatenate(parts)[inverse]


def fold_accuracies(folds: list, y: np.ndarray, predictions: list[np.ndarray]) -> list[float]:
    """``cross_val_score(scoring="accuracy")``'s scores from each fold's predictions."""
    return [
        float(accuracy_score(y[test], pred))
        for (_, test), pred in zip(folds, predictions, strict=True)
    ]


def part_detector(graph: TourGraph, results: dict) -> tuple[dict, dict, np.ndarray]:
    """1. The 5-detector: accuracies, the never-5 baseline, confusion matrix, precision, recall, F1.

    The three fold models serve ``cross_val_score``, ``cross_val_predict``
    (predictions and decision scores) and the book's hand-written loop.
    Also returns the decision scores, which parts 2 and 3 use.
    """
    y5 = graph.data.y == 5
    k = len(graph.data.folds["never5"])
    never5, sgd5 = results["detector"][:k], results["detector"][k:]
    folds = graph.data.folds["detector"]
    y_pred = cross_val_predictions(folds, [out["predict"] for out in sgd5])
    scores = cross_val_predictions(folds, [out["decision_function"] for out in sgd5])
    numbers = {
        "never5_cv_accuracy": fold_accuracies(
            graph.data.folds["never5"], y5, [out["predict"] for out in never5]
        ),
        "sgd5_cv_accuracy": fold_accuracies(folds, y5, [out["predict"] for out in sgd5]),
        # The book's loop: n_correct / len(y_pred) on each StratifiedKFold fold.
        "sgd5_manual_cv_accuracy": [
            np.count_nonzero(out["predict"] == y5[test]) / len(out["predict"])
            for (_, test), out in zip(folds, sgd5, strict=True)
        ],
        "sgd5_confusion_matrix": confusion_matrix(y5, y_pred).tolist(),
        "sgd5_precision": float(precision_score(y5, y_pred)),
        "sgd5_recall": float(recall_score(y5, y_pred)),
        "sgd5_f1": float(f1_score(y5, y_pred)),
    }
    return numbers, {}, scores


def detector(X: np.ndarray, y: np.ndarray) -> tuple[dict, np.ndarray]:
    """Part 1 alone, on the cluster: the 5-detector's numbers and its decision scores."""
    graph = build_tour(X, y, X[:0], TourConfig(), groups=("detector",))
    results, _ = graph.compute()
    numbers, _, scores = part_detector(graph, results)
    return numbers, scores


def threshold_for_precision(
    y_true: np.ndarray, scores: np.ndarray, target: float = 0.90
) -> tuple[float, float, float]:
    """The lowest threshold whose precision reaches ``target``.

    Returns ``(threshold, precision, recall)`` at that threshold.
    """
    precisions, _recalls, thresholds = precision_recall_curve(y_true, scores)
    reaching = np.flatnonzero(precisions[:-1] >= target)
    if not len(reaching):
        raise ValueError(f"no threshold reaches a precision of {target}")
    threshold = float(thresholds[reaching[0]])
    y_pred = scores >= threshold
    return threshold, float(precision_score(y_true, y_pred)), float(recall_score(y_true, y_pred))


def part_tradeoff(y: np.ndarray, scores: np.ndarray) -> tuple[dict, dict]:
    """2. The precision/recall trade-off of the 5-detector's decision scores."""
    y5 = y == 5
    precisions, recalls, thresholds = precision_recall_curve(y5, scores)
    threshold, precision, recall = threshold_for_precision(y5, scores)
    numbers = {
        "threshold_90_precision": threshold,
        "precision_at_threshold": precision,
        "recall_at_90_precision": recall,
    }

    chosen = (threshold, precision, recall)
    return numbers, {
        "tour_threshold.png": Request(
            "threshold_figure", (thresholds, precisions, recalls, chosen)
        ),
        "tour_precision_recall.png": Request(
            "precision_recall_curve_figure", (precisions, recalls, precision, recall)
        ),
    }


def part_roc(graph: TourGraph, results: dict, scores: np.ndarray) -> tuple[dict, dict]:
    """3. ROC curves and AUC of the SGD and random-forest 5-detectors."""
    y5 = graph.data.y == 5
    proba = cross_val_predictions(graph.data.folds["detector"], list(results["forest5"]))
    forest_scores = proba[:, 1]
    forest_pred = forest_scores >= 0.5
    fpr, tpr, _ = roc_curve(y5, scores)
    fpr_f, tpr_f, _ = roc_curve(y5, forest_scores)
    numbers = {
        "sgd5_roc_auc": float(roc_auc_score(y5, scores)),
        "forest5_roc_auc": float(roc_auc_score(y5, forest_scores)),
        "forest5_precision": float(precision_score(y5, forest_pred)),
        "forest5_recall": float(recall_score(y5, forest_pred)),
    }
    curves = [
        (fpr_f, tpr_f, f"random forest (AUC {numbers['forest5_roc_auc']:.4f})", "b-"),
        (fpr, tpr, f"SGD (AUC {numbers['sgd5_roc_auc']:.4f})", "g--"),
    ]
    return numbers, {"tour_roc.png": Request("roc_figure", (curves,))}


def part_multiclass(graph: TourGraph, results: dict) -> tuple[dict, dict]:
    """4. Multiclass: SVC (OvO inside), OvR of SVCs, OvO of SGDs, SGD and forest on ten classes."""
    y, folds = graph.data.y, graph.data.folds["ten"]
    svc, ovr = results["svc"]
    (ten,) = results["sgd-ten"]
    (ovo,) = results["ovo"]
    (forest,) = results["forest"]
    numbers = {
        "some_digit_label": y[0].item(),
        "svc_train_size": graph.groups["svc"].split["svc_size"],
        "svc_prediction": svc["predict"][0].item(),
        "svc_decision_scores": np.round(svc["decision_function"][0], 2).tolist(),
        "ovr_n_estimators": graph.groups["svc"].split["n_ovr"],
        "ovr_prediction": ovr[0].item(),
        "sgd_prediction": ten["predict"][0].item(),
        "sgd_decision_scores": np.round(ten["decision_function"][0]).tolist(),
        "ovo_n_estimators": graph.groups["ovo"].split["n_pairs"],
        "ovo_prediction": ovo[0].item(),
        "forest_prediction_proba": np.round(forest[0], 3).tolist(),
        "sgd_cv_accuracy": fold_accuracies(folds, y, list(results["sgd-raw"])),
        "sgd_scaled_cv_accuracy": fold_accuracies(folds, y, list(results["sgd-scaled"])),
    }
    return numbers, {}


def part_errors(X: np.ndarray, graph: TourGraph, results: dict) -> tuple[dict, dict]:
    """5. Error analysis of the scaled SGD on ten classes (the same fold models as part 4's)."""
    y = graph.data.y
    y_pred = cross_val_predictions(graph.data.folds["ten"], list(results["sgd-scaled"]))
    classes = np.unique(y)
    cm = confusion_matrix(y, y_pred, labels=classes)
    numbers = {
        "sgd_scaled_confusion_matrix": cm.tolist(),
        "sgd_scaled_cv_predict_accuracy": float(np.mean(y_pred == y)),
    }
    return numbers, {
        "tour_confusion_matrix.png": Request(
            "confusion_figure", (cm, classes), {"title": "Scaled SGD, cross_val_predict (cv=3)"}
        ),
        "tour_error_matrix.png": Request("error_figure", (error_matrix(cm), classes)),
        "tour_3_and_5.png": Request("confused_pair_figure", (X, y, y_pred, 3, 5)),
    }


def part_multilabel(graph: TourGraph, results: dict) -> tuple[dict, dict]:
    """6. Multilabel KNN: large and odd."""
    y_multi = multilabel_targets(graph.data.y)
    *blocks, head = results["multilabel"]
    per_fold, at = [], 0
    for n in graph.groups["multilabel"].split["blocks"]:  # each fold's blocks, in order
        per_fold.append(np.concatenate(blocks[at : at + n]))
        at += n
    y_pred = cross_val_predictions(graph.data.folds["multilabel"], per_fold)
    numbers = {
        "multilabel_prediction": head[0].tolist(),
        "multilabel_f1_macro": float(f1_score(y_multi, y_pred, average="macro")),
        "multilabel_f1_weighted": float(f1_score(y_multi, y_pred, average="weighted")),
    }
    return numbers, {}


def part_denoise(results: dict) -> tuple[dict, dict]:
    """7. Multioutput KNN that maps noisy images to clean ones, measured on the test set."""
    (scores,) = results["denoise"]
    numbers = {key: value for key, value in scores.items() if key != "shown"}
    return numbers, {"tour_denoise.png": Request("denoise_figure", tuple(scores["shown"]))}


#: The groups of tasks (:class:`TourGraph`) whose results each part needs.
PART_GROUPS = {
    "detector": ("detector",),
    "tradeoff": ("detector",),
    "roc": ("detector", "forest5"),
    "multiclass": ("svc", "sgd-ten", "ovo", "forest", "sgd-raw", "sgd-scaled"),
    "errors": ("sgd-scaled",),
    "multilabel": ("multilabel",),
    "denoise": ("denoise",),
}


#: Title and caption of each figure the tour draws, by file name.
CAPTIONS = {
    "tour_some_digit.png": (
        "Some digit",
        "The first training image, the one the book classifies throughout the chapter.",
    ),
    "tour_threshold.png": (
        "Precision and recall against the threshold",
        "SGD 5-detector, decision scores from cross_val_predict (cv=3); the dotted line is "
        "the lowest threshold with at least 90% precision.",
    ),
    "tour_precision_recall.png": (
        "Precision against recall",
        "The same scores; the dot marks the 90%-precision threshold.",
    ),
    "tour_roc.png": (
        "ROC curves",
        "The SGD and random-forest 5-detectors (forest scores: predict_proba from "
        "cross_val_predict, cv=3).",
    ),
    "tour_confusion_matrix.png": (
        "Confusion matrix, ten classes",
        "Standardised SGD, cross_val_predict (cv=3).",
    ),
    "tour_error_matrix.png": (
        "Where the SGD's errors go",
        "Rows divided by class size, diagonal zeroed.",
    ),
    "tour_3_and_5.png": (
        "3s and 5s",
        "True 3 (top) and true 5 (bottom), classified as 3 (left) and as 5 (right) by the "
        "standardised SGD.",
    ),
    "tour_denoise.png": (
        "Cleaning noisy digits",
        "A multioutput KNN trained to map noisy images to clean ones, on test images.",
    ),
}


def run_tour(
    X: np.ndarray, y: np.ndarray, X_test: np.ndarray, config: TourConfig | None = None
) -> tuple[dict, dict]:
    """Every part of the chapter: all fits at once on the cluster, then each part's numbers.

    Returns all numbers and the figures by file name (``mnistdist.drawing`` requests,
    for :func:`mnistdist.drawing.draw_here` or a drawing process). ``seconds`` holds,
    for each part, when its last task finished (counted from the graph's
    submission: the parts run together, so these overlap), ``graph`` (the
    whole graph's wall time) and ``client`` (the metrics and the figures' data computed
    here afterwards).
    """
    graph = build_tour(X, y, X_test, config or TourConfig())
    results, done = graph.compute()
    t0 = time.perf_counter()
    numbers: dict = {"seconds": {}}
    figs: dict = {"tour_some_digit.png": Request("digits_grid", (X[:1], y[:1]), {"n_cols": 1})}
    part, _, scores = part_detector(graph, results)
    numbers.update(part)
    for run in (
        lambda: part_tradeoff(y, scores),
        lambda: part_roc(graph, results, scores),
        lambda: part_multiclass(graph, results),
        lambda: part_errors(X, graph, results),
        lambda: part_multilabel(graph, results),
        lambda: part_denoise(results),
    ):
        part, part_figs = run()
        numbers.update(part)
        figs.update(part_figs)
    seconds = numbers["seconds"]
    for name, groups in PART_GROUPS.items():
        seconds[name] = max(done.get(g, 0.0) for g in groups)
    seconds["graph"] = max(done.values(), default=0.0)
    seconds["client"] = round(time.perf_counter() - t0, 3)
    log.info("tour: numbers and figures in %.1f s after the graph", seconds["client"])
    return numbers, figs
