"""Curves of a binary classifier's scores: the precision/recall trade-off and ROC curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._canvas import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def threshold_figure(
    thresholds: np.ndarray,
    precisions: np.ndarray,
    recalls: np.ndarray,
    chosen: tuple[float, float, float],
) -> Figure:
    """Precision and recall against the decision threshold; ``chosen`` is (threshold, p, r)."""
    threshold, precision, recall = chosen
    fig, ax = new_figure(figsize=(8, 4))
    ax.plot(thresholds, precisions[:-1], "b--", label="precision", linewidth=2)
    ax.plot(thresholds, recalls[:-1], "g-", label="recall", linewidth=2)
    ax.axvline(threshold, color="k", linestyle="dotted", label=f"threshold {threshold:.0f}")
    ax.plot([threshold, threshold], [precision, recall], "ko")
    ax.set_xlabel("threshold")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    ax.set_title("SGD 5-detector: precision and recall against the decision threshold")
    return fig


def precision_recall_curve_figure(
    precisions: np.ndarray, recalls: np.ndarray, precision: float, recall: float
) -> Figure:
    """Precision against recall, with the point of the 90%-precision threshold."""
    fig, ax = new_figure(figsize=(6, 5))
    ax.plot(recalls, precisions, linewidth=2, label="precision/recall curve")
    ax.plot([recall], [precision], "ko", label=f"threshold for 90% precision (recall {recall:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def roc_figure(curves: list[tuple[np.ndarray, np.ndarray, str, str]]) -> Figure:
    """ROC curves, each ``(fpr, tpr, label, line style)``, over the random classifier's diagonal."""
    fig, ax = new_figure(figsize=(6, 5))
    for fpr, tpr, label, style in curves:
        ax.plot(fpr, tpr, style, linewidth=2, label=label)
    ax.plot([0, 1], [0, 1], "k:", label="random classifier")
    ax.set_xlabel("false positive rate (fall-out)")
    ax.set_ylabel("true positive rate (recall)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("ROC curves of the 5-detectors")
    return fig
