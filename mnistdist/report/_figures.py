"""The report's figures: what each shows and its file, drawn by :mod:`mnistdist.drawing`.

The numbers each figure needs (shifted and deskewed digits, the error matrix)
are computed here; the drawing is a :class:`mnistdist.drawing.Request`, so a
job's figures are drawn in its drawing process while the job goes on.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from ..drawing import DrawingProcess, Request, draw_here
from ..outputs import write_bytes
from ..preprocessing import FOUR_SHIFTS, Deskew, shift_images
from ._evaluation import error_matrix


@dataclasses.dataclass(frozen=True)
class FigureRef:
    """A figure file in the output folder and what it shows."""

    filename: str
    title: str
    caption: str = ""


def write_figures(
    out_dir: str | os.PathLike, requests: dict[str, Request], drawing: DrawingProcess | None = None
) -> None:
    """Draw ``requests``, keyed by file name, and write each into ``out_dir`` atomically.

    ``drawing`` draws them (a job's drawing process); by default, this process.
    """
    pngs = draw_here(requests) if drawing is None else drawing.draw(requests)
    for filename, png in pngs.items():
        write_bytes(pathlib.Path(out_dir) / filename, png)


def shift_panels(image: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """One digit and its four one-pixel shifts, as the augmentation makes them, and their
    names: ``mnistdist.drawing.versions_figure``'s arguments."""
    image = np.asarray(image).reshape(1, -1)
    names = list(FOUR_SHIFTS)
    shifted = [shift_images(image, dx, dy)[0] for dx, dy in FOUR_SHIFTS.values()]
    return [image[0], *shifted], ["original", *names]


def deskew_request(images: np.ndarray) -> Request:
    """Digits before (top row) and after (bottom row) deskewing."""
    images = np.asarray(images)
    straight = Deskew().fit_transform(images)
    return Request(
        "digits_grid",
        (np.concatenate([images, straight]),),
        {"n_cols": len(images), "row_titles": ["original", "deskewed"]},
    )


def _data_figures(X_sample: np.ndarray, y_sample: np.ndarray) -> dict:
    return {
        "samples": (
            Request("digits_grid", (X_sample[:40], y_sample[:40])),
            FigureRef(
                "digits.png", "Training digits", "The first 40 training images with their labels."
            ),
        ),
        "shifts": (
            Request("versions_figure", shift_panels(X_sample[0])),
            FigureRef(
                "shifts.png",
                "Shift augmentation",
                "A training image and its four one-pixel shifted copies, as added to the "
                "augmented training set.",
            ),
        ),
    }


def _deskew_figure(X_sample: np.ndarray) -> dict:
    return {
        "deskew": (
            deskew_request(X_sample[:12]),
            FigureRef(
                "deskew.png",
                "Deskewing",
                "Training digits (top) and the same digits deskewed (bottom): sheared upright "
                "and centred by their pixel moments.",
            ),
        )
    }


def _confusion_figures(evaluation: dict, model: str) -> dict:
    cm, classes = np.asarray(evaluation["confusion_matrix"]), evaluation["classes"]
    return {
        "confusion": (
            Request("confusion_figure", (cm, classes)),
            FigureRef(
                "confusion_matrix.png",
                "Confusion matrix",
                f"Test predictions of the {model} model: rows are true classes, "
                "columns predicted ones.",
            ),
        ),
        "errors": (
            Request("error_figure", (error_matrix(cm), classes)),
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
            Request("confused_pair_figure", (X_test, y_test, y_pred, a, b)),
            FigureRef(
                "confused_pair.png",
                f"{a}s and {b}s",
                f"The most confused pair: true {a} (top) and true {b} (bottom), "
                f"classified as {a} (left) and as {b} (right).",
            ),
        ),
        "wrong": (
            Request("wrong_digits_figure", (X_test, y_test, y_pred)),
            FigureRef(
                "wrong_digits.png",
                "Still wrong",
                f"The first {min(n_wrong, 40)} of the {n_wrong} test digits the {model} model "
                "gets wrong, titled true→predicted.",
            ),
        ),
        "precision_recall": (
            Request("precision_recall_figure", (precision, recall, evaluation["classes"])),
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
            Request("search_heatmap", (params, mean, std), {"prefix": prefixes.pop()}),
            FigureRef(
                "search_heatmap.png",
                "Grid search",
                "Mean cross-validation accuracy over weights x n_neighbors (the best candidate "
                "of each cell where the grid has more dimensions), with its standard deviation "
                "over the folds.",
            ),
        )
    }


def _written(out_dir, figures: dict, drawing: DrawingProcess | None) -> dict[str, FigureRef]:
    write_figures(out_dir, {ref.filename: request for request, ref in figures.values()}, drawing)
    return {key: ref for key, (_, ref) in figures.items()}


def write_data_figures(
    out_dir: str | os.PathLike,
    X_train_sample: np.ndarray,
    y_train_sample: np.ndarray,
    drawing: DrawingProcess | None = None,
) -> dict[str, FigureRef]:
    """Draw and save the report's figures of the training data alone (sample digits and a
    digit's shifts), which a job draws while its cluster works; return them by key."""
    return _written(out_dir, _data_figures(X_train_sample, y_train_sample), drawing)


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
    drawing: DrawingProcess | None = None,
    data_figures: dict[str, FigureRef] | None = None,
) -> dict[str, FigureRef]:
    """Draw and save every figure of the report; return them by key.

    ``model`` names the model whose test predictions ``y_pred`` are; with
    ``deskew`` the report also shows what deskewing does to sample digits.
    ``drawing`` draws them (a job's drawing process); by default, this process.
    ``data_figures``: those :func:`write_data_figures` has already written (None:
    drawn here with the others).
    """
    figures = {
        **({} if data_figures is not None else _data_figures(X_train_sample, y_train_sample)),
        **(_deskew_figure(X_train_sample) if deskew else {}),
        **_error_figures(X_test, y_test, y_pred, evaluation, model),
        **_search_figures(search_params, search_mean, search_std),
    }
    return {**(data_figures or {}), **_written(out_dir, figures, drawing)}
