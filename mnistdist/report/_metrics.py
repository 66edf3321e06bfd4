"""The report job's result records: the predictions table and ``metrics.json``'s contents.

Plain functions of finished results, so a notebook or another job can write
the same files as ``mnistdist report``.
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np

from ..model_selection import FinalModel


def predictions_csv(y_true: np.ndarray, models: dict[str, FinalModel]) -> str:
    """The test set's predictions as CSV: index, true label, then one column per model.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        The test labels.
    models : dict of str to FinalModel
        The fitted models, in column order, each with ``y_pred`` of shape (n,).

    Returns
    -------
    str
        The CSV text, header first, one line per test image.
    """
    header = ",".join(["index", "true", *models])
    columns = [y_true, *(model.y_pred for model in models.values())]
    rows = (",".join(map(str, (i, *values))) for i, values in enumerate(zip(*columns, strict=True)))
    return "\n".join([header, *rows]) + "\n"


def report_metrics(
    *,
    preset: str,
    models: dict[str, FinalModel],
    final: str,
    y_test: np.ndarray,
    search: dict,
    evaluation: dict,
    extra: dict,
) -> dict:
    """``metrics.json`` of a report run.

    Parameters
    ----------
    preset : str
        The search preset's name (``book`` or ``best``).
    models : dict of str to FinalModel
        The evaluated models by name: ``plain``, ``augmented`` and, with a
        preset other than the book's, ``chosen``.
    final : str
        The name of the model that was saved and analysed.
    y_test : ndarray of shape (n,)
        The test labels.
    search : dict
        ``SearchResult.summary()`` of the search.
    evaluation : dict
        :func:`mnistdist.report.evaluate` of the final model.
    extra : dict
        Further keys as they are (seconds, data, versions, cluster, figures).

    Returns
    -------
    dict
        The metrics, JSON-ready apart from NumPy scalars.
    """
    metrics = {
        "preset": preset,
        **{f"test_accuracy_{name}": model.accuracy(y_test) for name, model in models.items()},
        "best_params": search["best_params"],
        "search": search,
        f"evaluation_{final}": evaluation,
        "most_confused_pair": evaluation["most_confused_pair"],
        **extra,
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if "chosen" in models:
        chosen = models["chosen"]
        metrics["chosen"] = {
            "steps": [f"{name}: {step!r}" for name, step in chosen.model.steps],
            "n_train": chosen.n_train,
        }
    return metrics


def figure_records(figures: dict) -> dict:
    """The figures' references (file, title, caption) as plain dicts, by key."""
    return {key: dataclasses.asdict(ref) for key, ref in figures.items()}
