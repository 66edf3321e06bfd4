"""What a set of test predictions says: accuracy, confusion, per-class precision and recall."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def error_matrix(cm: np.ndarray) -> np.ndarray:
    """The confusion matrix divided by each true class's count, diagonal zeroed: where errors go."""
    cm = np.asarray(cm, dtype=np.float64)
    errors = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    np.fill_diagonal(errors, 0.0)
    return errors


def most_confused_pair(cm: np.ndarray) -> tuple[int, int]:
    """Indices ``(a, b)``, ``a < b``, of the two classes most often mistaken for each other."""
    both = error_matrix(cm)
    both = both + both.T
    a, b = np.unravel_index(np.argmax(both), both.shape)
    return (int(min(a, b)), int(max(a, b)))


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray | None = None) -> dict:
    """Accuracy, confusion matrix, per-class precision/recall and the most confused pair."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = (
        np.unique(np.concatenate([y_true, y_pred])) if classes is None else np.asarray(classes)
    )
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    a, b = most_confused_pair(cm)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "classes": classes.tolist(),
        "confusion_matrix": cm.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "support": support.tolist(),
        "most_confused_pair": [classes[a].item(), classes[b].item()],
    }
