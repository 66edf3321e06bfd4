"""The classification chapter, part by part, with its cross-validations on the cluster.

Each ``part_*`` function computes what the book computes on MNIST and
returns ``(numbers, figures)``: a JSON-ready dict and matplotlib figures by
file name. Cross-validations (``cross_val_score``, ``cross_val_predict``) run
through joblib's Dask backend, so their folds are tasks on the workers; the
hand-written fold loop and the test-set denoising are Dask tasks named for
what they are.

The models and their settings are the book's (``random_state=42``
everywhere); the parameters of :class:`TourConfig` scale the heavy parts down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time

import dask
import joblib
import numpy as np
from dask.base import tokenize
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from . import figures
from .compute import current_client

log = logging.getLogger(__name__)

SEED = 42


@dataclasses.dataclass(frozen=True)
class TourConfig:
    """How much of the heavy parts to run (the book's amounts by default)."""

    svc_size: int = 2000  #: training images for the SVC-based steps (the book: 2,000)
    forest_trees: int = 100  #: trees in each random forest
    denoise_test_size: int | None = None  #: test images cleaned for the error measure (None: all)


class Never5Classifier(BaseEstimator):
    """The book's baseline: says "not 5" for every image.

    Deliberately not a ``ClassifierMixin``: ``cross_val_score(cv=3)`` then
    splits with plain ``KFold``, as in the book, and each fold's accuracy is
    exactly its share of non-5s.
    """

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=bool)


def sgd() -> SGDClassifier:
    return SGDClassifier(random_state=SEED)


@contextlib.contextmanager
def on_cluster():
    """Run joblib-parallel scikit-learn work (``n_jobs=-1``) on the current Dask client, if any."""
    if current_client() is None:
        yield
        return
    with joblib.parallel_config(backend="dask"):
        yield


def _timed(seconds: dict, key: str):
    class _Timer:
        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            seconds[key] = round(time.perf_counter() - self.t, 3)

    return _Timer()


def _on_workers(obj):
    """``obj`` scattered to the cluster once (a Future), or as is without one.

    Tasks then take the future as an argument: the data travels once,
    never inside the task graph. ``hash=False``: a content-hashed key is
    shared with earlier scatters of the same data, and the release of an
    earlier call's futures can race with this one and drop the data
    ("lost dependencies").
    """
    client = current_client()
    return obj if client is None else client.scatter(obj, hash=False)


def _fit_score_fold(estimator, X, y, train, test) -> float:
    model = clone(estimator).fit(X[train], y[train])
    return float(np.mean(model.predict(X[test]) == y[test]))


def manual_cross_validation(
    estimator, X: np.ndarray, y: np.ndarray, n_splits: int = 3, *, name: str = "manual-cv"
) -> list[float]:
    """The book's hand-written ``StratifiedKFold`` + ``clone`` loop, one Dask task per fold."""
    X_task, y_task = _on_workers(X), _on_workers(y)
    tasks = [
        dask.delayed(_fit_score_fold, pure=True)(
            estimator,
            X_task,
            y_task,
            train,
            test,
            dask_key_name=f"{name}-fold-{f}-{tokenize(X_task, y_task)}",
        )
        for f, (train, test) in enumerate(StratifiedKFold(n_splits=n_splits).split(X, y))
    ]
    return list(dask.compute(*tasks))


def part_detector(X: np.ndarray, y: np.ndarray) -> tuple[dict, dict, np.ndarray]:
    """1. The 5-detector: accuracies, the never-5 baseline, confusion matrix, precision, recall, F1.

    Also returns the decision scores of ``cross_val_predict``, which parts 2
    and 3 use.
    """
    y5 = y == 5
    with on_cluster():
        never5 = cross_val_score(Never5Classifier(), X, y5, cv=3, scoring="accuracy", n_jobs=-1)
        accuracy = cross_val_score(sgd(), X, y5, cv=3, scoring="accuracy", n_jobs=-1)
        y_pred = cross_val_predict(sgd(), X, y5, cv=3, n_jobs=-1)
        scores = cross_val_predict(sgd(), X, y5, cv=3, method="decision_function", n_jobs=-1)
    manual = manual_cross_validation(sgd(), X, y5, name="sgd5-manual-cv")
    numbers = {
        "never5_cv_accuracy": never5.tolist(),
        "sgd5_cv_accuracy": accuracy.tolist(),
        "sgd5_manual_cv_accuracy": manual,
        "sgd5_confusion_matrix": confusion_matrix(y5, y_pred).tolist(),
        "sgd5_precision": float(precision_score(y5, y_pred)),
        "sgd5_recall": float(recall_score(y5, y_pred)),
        "sgd5_f1": float(f1_score(y5, y_pred)),
    }
    return numbers, {}, scores


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

    fig1 = figures.threshold_figure(thresholds, precisions, recalls, (threshold, precision, recall))
    fig2 = figures.precision_recall_curve_figure(precisions, recalls, precision, recall)
    return numbers, {"tour_threshold.png": fig1, "tour_precision_recall.png": fig2}


def part_roc(
    X: np.ndarray, y: np.ndarray, scores: np.ndarray, config: TourConfig
) -> tuple[dict, dict]:
    """3. ROC curves and AUC of the SGD and random-forest 5-detectors."""
    y5 = y == 5
    forest = RandomForestClassifier(n_estimators=config.forest_trees, random_state=SEED)
    with on_cluster():
        proba = cross_val_predict(forest, X, y5, cv=3, method="predict_proba", n_jobs=-1)
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
    fig = figures.roc_figure(
        [
            (fpr_f, tpr_f, f"random forest (AUC {numbers['forest5_roc_auc']:.4f})", "b-"),
            (fpr, tpr, f"SGD (AUC {numbers['sgd5_roc_auc']:.4f})", "g--"),
        ]
    )
    return numbers, {"tour_roc.png": fig}


def part_multiclass(
    X: np.ndarray, y: np.ndarray, config: TourConfig
) -> tuple[dict, dict, np.ndarray]:
    """4. Multiclass: SVC (OvO inside), OvR of SVCs, OvO of SGDs, SGD and a forest on ten classes.

    Also returns the standardised images, which part 5 uses.
    """
    some_digit = X[:1]
    n = min(config.svc_size, len(X))
    svc = SVC(random_state=SEED).fit(X[:n], y[:n])
    ovr = OneVsRestClassifier(SVC(random_state=SEED)).fit(X[:n], y[:n])
    ten = sgd().fit(X, y)
    ovo = OneVsOneClassifier(sgd()).fit(X, y)
    forest = RandomForestClassifier(n_estimators=config.forest_trees, random_state=SEED).fit(X, y)
    X_scaled = StandardScaler().fit_transform(X.astype(np.float64))
    with on_cluster():
        raw = cross_val_score(sgd(), X, y, cv=3, scoring="accuracy", n_jobs=-1)
        scaled = cross_val_score(sgd(), X_scaled, y, cv=3, scoring="accuracy", n_jobs=-1)
    numbers = {
        "some_digit_label": y[0].item(),
        "svc_train_size": n,
        "svc_prediction": svc.predict(some_digit)[0].item(),
        "svc_decision_scores": np.round(svc.decision_function(some_digit)[0], 2).tolist(),
        "ovr_n_estimators": len(ovr.estimators_),
        "ovr_prediction": ovr.predict(some_digit)[0].item(),
        "sgd_prediction": ten.predict(some_digit)[0].item(),
        "sgd_decision_scores": np.round(ten.decision_function(some_digit)[0]).tolist(),
        "ovo_n_estimators": len(ovo.estimators_),
        "ovo_prediction": ovo.predict(some_digit)[0].item(),
        "forest_prediction_proba": np.round(forest.predict_proba(some_digit)[0], 3).tolist(),
        "sgd_cv_accuracy": raw.tolist(),
        "sgd_scaled_cv_accuracy": scaled.tolist(),
    }
    return numbers, {}, X_scaled


def part_errors(X: np.ndarray, X_scaled: np.ndarray, y: np.ndarray) -> tuple[dict, dict]:
    """5. Error analysis of the scaled SGD on ten classes."""
    with on_cluster():
        y_pred = cross_val_predict(sgd(), X_scaled, y, cv=3, n_jobs=-1)
    classes = np.unique(y)
    cm = confusion_matrix(y, y_pred, labels=classes)
    numbers = {
        "sgd_scaled_confusion_matrix": cm.tolist(),
        "sgd_scaled_cv_predict_accuracy": float(np.mean(y_pred == y)),
    }
    return numbers, {
        "tour_confusion_matrix.png": figures.confusion_figure(
            cm, classes, title="Scaled SGD, cross_val_predict (cv=3)"
        ),
        "tour_error_matrix.png": figures.error_figure(cm, classes),
        "tour_3_and_5.png": figures.confused_pair_figure(X, y, y_pred, 3, 5),
    }


def multilabel_targets(y: np.ndarray) -> np.ndarray:
    """The book's two labels per digit: large (7, 8, 9) and odd."""
    return np.c_[y >= 7, y % 2 == 1]


def part_multilabel(X: np.ndarray, y: np.ndarray) -> tuple[dict, dict]:
    """6. Multilabel KNN: large and odd."""
    y_multi = multilabel_targets(y)
    X32 = X.astype(np.float32)
    knn = KNeighborsClassifier().fit(X32, y_multi)
    with on_cluster():
        y_pred = cross_val_predict(KNeighborsClassifier(), X32, y_multi, cv=3, n_jobs=-1)
    numbers = {
        "multilabel_prediction": knn.predict(X32[:1])[0].tolist(),
        "multilabel_f1_macro": float(f1_score(y_multi, y_pred, average="macro")),
        "multilabel_f1_weighted": float(f1_score(y_multi, y_pred, average="weighted")),
    }
    return numbers, {}


def add_noise(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The book's noise, randint(0, 100) on 0-255 pixels, scaled to the images' own range."""
    top = max(1, round(100 * int(X.max()) / 255))
    return X.astype(np.int64) + rng.integers(0, top, size=X.shape)


def _denoise_block(X_noisy: np.ndarray, X_clean: np.ndarray, block: np.ndarray) -> np.ndarray:
    # Fitting a KNN only stores its data: cheaper to repeat on each worker
    # than to ship a fitted multioutput model around.
    return KNeighborsClassifier().fit(X_noisy, X_clean).predict(block)


def part_denoise(X: np.ndarray, X_test: np.ndarray, config: TourConfig) -> tuple[dict, dict]:
    """7. Multioutput KNN that maps noisy images to clean ones, measured on the test set."""
    rng = np.random.default_rng(SEED)
    X_noisy, X_test_noisy = add_noise(X, rng), add_noise(X_test, rng)
    n_test = (
        len(X_test)
        if config.denoise_test_size is None
        else min(config.denoise_test_size, len(X_test))
    )
    noisy_task, clean_task = _on_workers(X_noisy.astype(np.float32)), _on_workers(X)
    step = 2000
    blocks = []
    for a in range(0, n_test, step):
        query = _on_workers(X_test_noisy[a : min(a + step, n_test)].astype(np.float32))
        key = f"denoise-block-{a // step}-{tokenize(noisy_task, clean_task, query)}"
        blocks.append(
            dask.delayed(_denoise_block, pure=True)(
                noisy_task, clean_task, query, dask_key_name=key
            )
        )
    cleaned = np.concatenate(dask.compute(*blocks)) if blocks else np.empty((0, X.shape[1]))
    truth = X_test[:n_test].astype(np.float64)
    numbers = {
        "denoise_test_size": n_test,
        "denoise_mae_noisy": float(np.mean(np.abs(X_test_noisy[:n_test] - truth))),
        "denoise_mae_cleaned": float(np.mean(np.abs(cleaned - truth))),
        "denoise_rmse_cleaned": float(np.sqrt(np.mean((cleaned - truth) ** 2))),
    }
    return numbers, {
        "tour_denoise.png": figures.denoise_figure(X_test_noisy[:5], cleaned[:5], X_test[:5])
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
    X: np.ndarray, y: np.ndarray, X_test: np.ndarray, config: TourConfig = TourConfig()
) -> tuple[dict, dict]:
    """Every part of the chapter in order.

    Returns all numbers (with ``seconds`` per part) and the figures by file name.
    """
    numbers: dict = {"seconds": {}}
    figs: dict = {"tour_some_digit.png": figures.digits_grid(X[:1], y[:1], n_cols=1)}
    seconds = numbers["seconds"]
    with _timed(seconds, "detector"):
        part, _, scores = part_detector(X, y)
        numbers.update(part)
    for key, run in (
        ("tradeoff", lambda: part_tradeoff(y, scores)),
        ("roc", lambda: part_roc(X, y, scores, config)),
    ):
        with _timed(seconds, key):
            part, part_figs = run()
            numbers.update(part)
            figs.update(part_figs)
    with _timed(seconds, "multiclass"):
        part, _, X_scaled = part_multiclass(X, y, config)
        numbers.update(part)
    for key, run in (
        ("errors", lambda: part_errors(X, X_scaled, y)),
        ("multilabel", lambda: part_multilabel(X, y)),
        ("denoise", lambda: part_denoise(X, X_test, config)),
    ):
        with _timed(seconds, key):
            log.info("tour: %s", key)
            part, part_figs = run()
            numbers.update(part)
            figs.update(part_figs)
    return numbers, figs
