"""Charts: the search's heatmap, the confusion and error matrices, precision and recall,
the scaling forecast."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._canvas import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def search_heatmap(
    params: list[dict], mean: np.ndarray, std: np.ndarray, *, prefix: str = ""
) -> Figure:
    """Mean (colour, first line) and spread (second line) of CV accuracy, weights x n_neighbors."""
    ks = sorted({p[prefix + "n_neighbors"] for p in params})
    ws = sorted({p[prefix + "weights"] for p in params})
    grid = np.full((len(ws), len(ks)), np.nan)
    spread = np.full_like(grid, np.nan)
    for p, m, s in zip(params, mean, std, strict=False):
        i, j = ws.index(p[prefix + "weights"]), ks.index(p[prefix + "n_neighbors"])
        if np.isnan(grid[i, j]) or m > grid[i, j]:  # other grid dimensions: show the best
            grid[i, j], spread[i, j] = m, s
    fig, ax = new_figure(figsize=(1.6 * len(ks) + 2.5, 1.1 * len(ws) + 1.5))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(ws)):
        for j in range(len(ks)):
            if not np.isnan(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.4f}\n± {spread[i, j]:.4f}",
                    ha="center",
                    va="center",
                    color="white" if grid[i, j] < np.nanmean(grid) else "black",
                    fontsize=9,
                )
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_yticks(range(len(ws)), ws)
    ax.set_xlabel("n_neighbors")
    ax.set_ylabel("weights")
    ax.set_title("Mean CV accuracy ± std over folds")
    fig.colorbar(im, ax=ax)
    return fig


def confusion_figure(cm: np.ndarray, classes, *, title: str = "Confusion matrix") -> Figure:
    """The confusion matrix with its counts (rows: true class, columns: predicted)."""
    fig, ax = new_figure(figsize=(6.5, 5.5))
    im = ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    _class_axes(ax, classes)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return fig


def error_figure(errors: np.ndarray, classes) -> Figure:
    """The book's error-analysis plot: ``errors`` is the confusion matrix divided by each true
    class's count, diagonal zeroed (:func:`mnistdist.report.error_matrix`)."""
    fig, ax = new_figure(figsize=(6.5, 5.5))
    im = ax.imshow(errors, cmap="gray")
    _class_axes(ax, classes)
    ax.set_title("Errors: share of each true class, diagonal zeroed")
    fig.colorbar(im, ax=ax, format=lambda v, _: f"{v:.1%}")
    return fig


def precision_recall_figure(precision: np.ndarray, recall: np.ndarray, classes) -> Figure:
    """Per-class precision and recall as side-by-side bars."""
    x = np.arange(len(classes))
    fig, ax = new_figure(figsize=(8, 3.8))
    ax.bar(x - 0.2, precision, width=0.4, label="precision")
    ax.bar(x + 0.2, recall, width=0.4, label="recall")
    low = min(float(np.min(precision)), float(np.min(recall)))
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_xticks(x, [str(c) for c in classes])
    ax.set_xlabel("class")
    ax.set_title("Per-class precision and recall on the test set")
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _class_axes(ax, classes) -> None:
    ticks = range(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes])
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")


def forecast_figure(scaling: dict) -> Figure:
    """A job's forecast wall time against workers (log-2 axis), its measured run marked.

    ``scaling`` is the dict of :func:`mnistdist.runtime.summarize_forecast`. The span
    plus the overheads is the floor no number of workers goes below.
    """
    workers = [row["workers"] for row in scaling["forecast"]]
    seconds = [row["seconds"] for row in scaling["forecast"]]
    minutes = max(seconds) >= 180  # long runs read better in minutes
    unit = 60.0 if minutes else 1.0
    measured = scaling["measured"]
    fig, ax = new_figure(figsize=(6.5, 4))
    ax.plot(workers, [s / unit for s in seconds], "o-", linewidth=2, label="forecast")
    floor = (scaling["span_s"] + scaling["overhead_s"]) / unit
    ax.axhline(floor, color="gray", linestyle="--", label="span + overheads")
    ax.plot(
        [measured["workers"]],
        [measured["wall_s"] / unit],
        "r*",
        markersize=14,
        label=f"measured: {measured['workers']} worker{'s' if measured['workers'] != 1 else ''}",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(n) for n in workers])
    ax.set_ylim(0, 1.15 * max(*seconds, measured["wall_s"]) / unit)  # room for the star
    ax.set_xlabel("workers")
    ax.set_ylabel("wall time (min)" if minutes else "wall time (s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(f"Forecast wall time; the span is mostly {scaling['span_dominated_by']}")
    return fig
