"""The figures of the report and of the tour, drawn with matplotlib.

Each function takes plain arrays and returns a ``Figure``; :func:`save`
writes it as a PNG atomically. Image functions take flat rows of square
images, so 28x28 MNIST and 8x8 digits draw alike.

Figures are made on their own Agg canvas, without pyplot: importing this
module changes no process-wide matplotlib state (the backend of a notebook
that imports mnistdist stays its own), and no figure needs closing.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
from typing import TYPE_CHECKING

import numpy as np

from ..data import image_side
from ..outputs import write_bytes
from ..preprocessing import FOUR_SHIFTS, Deskew, shift_images
from ._evaluation import error_matrix

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclasses.dataclass(frozen=True)
class FigureRef:
    """A figure file in the output folder and what it shows."""

    filename: str
    title: str
    caption: str = ""


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """``pyplot.subplots`` without pyplot: a figure on its own Agg canvas, and its axes."""
    # Imported here, not with the module: matplotlib is a few tenths of a second that
    # only the end of a job needs, and keeping it off the import path lets the job's
    # start (its cluster above all) begin sooner.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG at ``path``, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    write_bytes(path, buf.getvalue())


def _tile(images: np.ndarray, n_cols: int, n_rows: int | None = None, *, band: int = 0):
    """Flat square images laid out in a grid with 1-pixel gutters, blank-padded; ``band``
    blank rows above each image leave room for its label."""
    side = image_side(images.shape[1])
    n_rows = n_rows or max(1, -(-len(images) // n_cols))
    cell_w, cell_h = side + 1, side + 1 + band
    canvas = np.zeros((n_rows * cell_h + 1, n_cols * cell_w + 1))
    for i, img in enumerate(images[: n_rows * n_cols]):
        r, c = divmod(i, n_cols)
        top, left = 1 + r * cell_h + band, 1 + c * cell_w
        canvas[top : top + side, left : left + side] = img.reshape(side, side)
    return canvas


def digits_grid(
    images: np.ndarray,
    labels=None,
    *,
    n_cols: int = 10,
    title: str = "",
    row_titles=None,
) -> Figure:
    """A grid of digits, each under its label when labels are given, on one axes.

    One image and a text per label rather than an axes per digit: drawing 40
    axes took 0.6 s of a 3 s report, this takes 0.05 s. ``row_titles`` names
    rows at their left (``deskew_figure``'s "original" and "deskewed").
    """
    images = np.asarray(images)
    n_rows = max(1, -(-len(images) // n_cols))
    side = image_side(images.shape[1])
    band = -(-side // 2) if labels is not None or row_titles is not None else 0
    fig, ax = new_figure(figsize=(n_cols * 0.9, n_rows * (1.0 if band else 0.85)))
    canvas = _tile(images, n_cols, n_rows, band=band)
    ax.imshow(canvas, cmap="binary", interpolation="nearest", vmin=0, vmax=canvas.max() or 1)
    ax.set_axis_off()
    cell_w, cell_h = side + 1, side + 1 + band
    for i, label in enumerate(labels if labels is not None else []):
        r, c = divmod(i, n_cols)
        ax.text(
            c * cell_w + 0.5 + side / 2,
            r * cell_h + 0.5 + band / 2,
            str(label),
            ha="center",
            va="center",
            fontsize=9,
        )
    for r, name in enumerate(row_titles or []):
        ax.text(0.5, r * cell_h + 0.5 + band / 2, name, ha="left", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def shifts_figure(image: np.ndarray) -> Figure:
    """One digit and its four one-pixel shifts, as the augmentation makes them."""
    image = np.asarray(image).reshape(1, -1)
    panels = [("original", image[0])] + [
        (name, shift_images(image, dx, dy)[0]) for name, (dx, dy) in FOUR_SHIFTS.items()
    ]
    return versions_figure([img for _, img in panels], [name for name, _ in panels])


def versions_figure(images, names: list[str]) -> Figure:
    """Versions of one digit side by side (the original and its augmented copies), titled."""
    images = [np.asarray(img).reshape(-1) for img in images]
    side = image_side(images[0].shape[0])
    fig, axes = new_figure(1, len(images), figsize=(2.2 * len(images), 2.4))
    for ax, name, img in zip(np.atleast_1d(axes), names, images, strict=True):
        ax.imshow(img.reshape(side, side), cmap="binary", interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


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


def error_figure(cm: np.ndarray, classes) -> Figure:
    """The row-normalised error matrix, diagonal zeroed (the book's error-analysis plot)."""
    errors = error_matrix(cm)
    fig, ax = new_figure(figsize=(6.5, 5.5))
    im = ax.imshow(errors, cmap="gray")
    _class_axes(ax, classes)
    ax.set_title("Errors: share of each true class, diagonal zeroed")
    fig.colorbar(im, ax=ax, format=lambda v, _: f"{v:.1%}")
    return fig


def confused_pair_figure(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, a, b, *, per_panel: int = 25
) -> Figure:
    """The book's 2x2 grid: true a / true b (rows) classified as a / as b (columns)."""
    fig, axes = new_figure(2, 2, figsize=(8, 8))
    n_cols = int(np.ceil(np.sqrt(per_panel)))
    for r, true in enumerate((a, b)):
        for c, pred in enumerate((a, b)):
            sel = images[(y_true == true) & (y_pred == pred)][:per_panel]
            ax = axes[r, c]
            ax.set_axis_off()
            if len(sel):
                ax.imshow(
                    _tile(sel, n_cols, n_cols),
                    cmap="binary",
                    interpolation="nearest",
                    vmin=0,
                    vmax=images.max() or 1,
                )
            ax.set_title(
                f"true {true}, predicted {pred} "
                f"({int(np.sum((y_true == true) & (y_pred == pred)))})"
            )
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


def deskew_figure(images: np.ndarray) -> Figure:
    """Digits before (top row) and after (bottom row) deskewing."""
    images = np.asarray(images)
    straight = Deskew().fit_transform(images)
    return digits_grid(
        np.concatenate([images, straight]), n_cols=len(images), row_titles=["original", "deskewed"]
    )


def wrong_digits_figure(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, limit: int = 40
) -> Figure:
    """The first ``limit`` test digits a model gets wrong, each titled ``true→predicted``."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:limit]
    labels = [f"{y_true[i]}→{y_pred[i]}" for i in wrong]
    return digits_grid(
        np.asarray(images)[wrong] if len(wrong) else np.zeros((1, images.shape[1])), labels or None
    )


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


def _data_figures(X_sample: np.ndarray, y_sample: np.ndarray, deskew: bool) -> dict:
    refs = {
        "samples": (
            digits_grid(X_sample[:40], y_sample[:40]),
            FigureRef(
                "digits.png", "Training digits", "The first 40 training images with their labels."
            ),
        ),
        "shifts": (
            shifts_figure(X_sample[0]),
            FigureRef(
                "shifts.png",
                "Shift augmentation",
                "A training image and its four one-pixel shifted copies, as added to the "
                "augmented training set.",
            ),
        ),
    }
    if deskew:
        refs["deskew"] = (
            deskew_figure(X_sample[:12]),
            FigureRef(
                "deskew.png",
                "Deskewing",
                "Training digits (top) and the same digits deskewed (bottom): sheared upright "
                "and centred by their pixel moments.",
            ),
        )
    return refs


def _confusion_figures(evaluation: dict, model: str) -> dict:
    cm, classes = np.asarray(evaluation["confusion_matrix"]), evaluation["classes"]
    return {
        "confusion": (
            confusion_figure(cm, classes),
            FigureRef(
                "confusion_matrix.png",
                "Confusion matrix",
                f"Test predictions of the {model} model: rows are true classes, "
                "columns predicted ones.",
            ),
        ),
        "errors": (
            error_figure(cm, classes),
            FigureRef(
                "error_matrix.png",
                "Where the errors go",
                "Each row divided by the class's size, with the diagonal zeroed: "
                "bright cells are frequent confusions.",
            ),
        ),
    }


def _error_figures(X_test, y_test, y_pred, evaluation: dict, model: str) -> dict:
    a, b = evaluation["most_confused_pair"]
    n_wrong = int(np.sum(np.asarray(y_test) != np.asarray(y_pred)))
    precision, recall = np.asarray(evaluation["precision"]), np.asarray(evaluation["recall"])
    return {
        **_confusion_figures(evaluation, model),
        "pair": (
            confused_pair_figure(X_test, y_test, y_pred, a, b),
            FigureRef(
                "confused_pair.png",
                f"{a}s and {b}s",
                f"The most confused pair: true {a} (top) and true {b} (bottom), "
                f"classified as {a} (left) and as {b} (right).",
            ),
        ),
        "wrong": (
            wrong_digits_figure(X_test, y_test, y_pred),
            FigureRef(
                "wrong_digits.png",
                "Still wrong",
                f"The first {min(n_wrong, 40)} of the {n_wrong} test digits the {model} model "
                "gets wrong, titled true→predicted.",
            ),
        ),
        "precision_recall": (
            precision_recall_figure(precision, recall, evaluation["classes"]),
            FigureRef(
                "precision_recall.png",
                "Precision and recall per class",
                f"On the test set, for the {model} model.",
            ),
        ),
    }


def _search_figures(params: list[dict], mean: np.ndarray, std: np.ndarray) -> dict:
    """The heatmap, when every candidate has one KNN parameter prefix (else nothing)."""
    prefixes = {k[: -len("n_neighbors")] for p in params for k in p if k.endswith("n_neighbors")}
    if len(prefixes) != 1 or not all(len(p) > 0 for p in params):
        return {}
    return {
        "search": (
            search_heatmap(params, mean, std, prefix=prefixes.pop()),
            FigureRef(
                "search_heatmap.png",
                "Grid search",
                "Mean cross-validation accuracy over weights x n_neighbors (the best candidate "
                "of each cell where the grid has more dimensions), with its standard deviation "
                "over the folds.",
            ),
        )
    }


def write_report_figures(
    out_dir: str | os.PathLike,
    *,
    X_train_sample: np.ndarray,
    y_train_sample: np.ndarray,
    search_params: list[dict],
    search_mean: np.ndarray,
    search_std: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    y_pred: np.ndarray,
    evaluation: dict,
    model: str = "augmented",
    deskew: bool = False,
) -> dict[str, FigureRef]:
    """Draw and save every figure of the report; return them by key.

    ``model`` names the model whose test predictions ``y_pred`` are; with
    ``deskew`` the report also shows what deskewing does to sample digits.
    """
    out = pathlib.Path(out_dir)
    refs = {
        **_data_figures(X_train_sample, y_train_sample, deskew),
        **_error_figures(X_test, y_test, y_pred, evaluation, model),
        **_search_figures(search_params, search_mean, search_std),
    }
    for fig, ref in refs.values():
        save(fig, out / ref.filename)
    return {key: ref for key, (_, ref) in refs.items()}
