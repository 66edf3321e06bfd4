"""The tour as one set of Dask tasks: every fit on the workers, all of them in flight together.

:func:`tour_data` sends the tour's inputs to the workers once (the images,
the labels, the cross-validation folds); :func:`build_tour` builds one
:class:`Group` of tasks per computation of the chapter, from the functions of
:mod:`._fits`, each builder returning its tasks and how it split them. Each
task's key names what it is, followed by the run's token:
``sgd-ovr-fold-2-class-7`` (class 7 of the ten-class SGD on fold 2's
training rows), ``ovo-pair-3-8``, ``forest-trees-0-9``,
``multilabel-fold-1-block-4``, ``denoise-block-3``.

:meth:`TourGraph.compute` submits every group at once, so no worker waits
while work remains, and hands back each group's small results. Each group
carries a priority, the groups with the longest tasks highest (the ten-class
SGD fits first, the small KNN and denoising blocks last): graphs submitted
together share one generation on the scheduler, so without priorities their
tasks would interleave, and the run could end with one long SGD fit on one
worker while the others idle.

A fit that two of the book's calls share is one task: the 5-detector's
three fold models serve ``cross_val_score``, both ``cross_val_predict``
calls and the hand-written loop; the standardised SGD's fold models serve
the multiclass accuracy and the error analysis.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import dask
import numpy as np
from dask.base import tokenize
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import check_cv
from sklearn.svm import SVC

from ..runtime import compute_each, current_client
from . import _fits as fits

log = logging.getLogger(__name__)

#: Test images per denoising task (the blocks the tour has always used).
DENOISE_BLOCK = 2000


@dataclasses.dataclass(frozen=True)
class TourConfig:
    """How much of the heavy parts to run (the book's amounts by default), and the tasks' grain."""

    svc_size: int = 2000  #: training images for the SVC-based steps (the book: 2,000)
    forest_trees: int = 100  #: trees in each random forest
    denoise_test_size: int | None = None  #: test images cleaned for the error measure (None: all)
    forest_chunk: int = 10  #: trees per forest task
    #: validation images per KNN prediction task; a multiple of scikit-learn's 256-row
    #: distance chunks, so each image's distances are computed exactly as in one big call
    block_rows: int = 2048


def _on_workers(objs: dict) -> dict:
    """Each object scattered to the cluster once (a Future), or as is without a cluster.

    Tasks take the futures as arguments: the data travels once, never inside
    the graph. ``hash=False``: content-hashed keys would be shared with
    earlier scatters of the same data, whose release can race with this run.
    """
    client = current_client()
    if client is None:
        return objs
    return dict(zip(objs, client.scatter(list(objs.values()), hash=False), strict=True))


def book_folds(X, y, y5, y_multi) -> dict[str, list]:
    """The folds scikit-learn's ``cv=3`` picks for each of the book's calls (``check_cv``)."""
    return {
        "never5": list(check_cv(3, y5, classifier=False).split(X, y5)),  # not a classifier: KFold
        "detector": list(check_cv(3, y5, classifier=True).split(X, y5)),
        "ten": list(check_cv(3, y, classifier=True).split(X, y)),
        "multilabel": list(check_cv(3, y_multi, classifier=True).split(X, y_multi)),
    }


@dataclasses.dataclass(frozen=True)
class TourData:
    """The tour's inputs: labels and folds here, the arrays on the workers (sent once).

    Attributes
    ----------
    y : ndarray
        The training labels.
    X_head : ndarray
        The book's "some digit": the first training image.
    n_test : int
        Test images.
    classes : ndarray
        The training labels' classes.
    folds : dict of str to list
        The folds of each of the book's ``cv=3`` calls (:func:`book_folds`).
    on_workers : dict
        The arrays and folds as futures (as they are, without a cluster).
    token : str
        Ends every task's key: the run's inputs.
    """

    y: np.ndarray
    X_head: np.ndarray
    n_test: int
    classes: np.ndarray
    folds: dict[str, list]
    on_workers: dict
    token: str

    def task(self, name: str, func, *args):
        """A lazy call of ``func`` whose key is ``name`` and the run's token."""
        return dask.delayed(func, pure=True)(*args, dask_key_name=f"{name}-{self.token}")


def tour_data(X: np.ndarray, y: np.ndarray, X_test: np.ndarray) -> TourData:
    """The tour's inputs, its arrays sent to the workers once."""
    y5, y_multi = y == 5, fits.multilabel_targets(y)
    folds = book_folds(X, y, y5, y_multi)
    on_workers = _on_workers(
        {"X": X, "X_test": X_test, "y": y, "y5": y5, "y_multi": y_multi}
        | {f"folds-{name}": f for name, f in folds.items()}
    )
    return TourData(
        y=y,
        X_head=X[:1],
        n_test=len(X_test),
        classes=np.unique(y),
        folds=folds,
        on_workers=on_workers,
        token=tokenize(*on_workers.values()),
    )


@dataclasses.dataclass(frozen=True)
class Group:
    """One group of the tour's tasks, and how its builder split the work.

    Attributes
    ----------
    tasks : tuple
        Lazy tasks, computed together; their results come back in this order.
    split : dict of str to int or list of int
        What a reader of the results must know of the split: ``n_pairs`` (one-vs-one),
        ``n_ovr`` and ``svc_size`` (the SVC), ``blocks`` (multilabel blocks per fold).
    """

    tasks: tuple
    split: dict = dataclasses.field(default_factory=dict)


def _ovr_folds(data: TourData, prefix: str, X) -> tuple:
    """Ten-class SGD on each fold, one task per class; each fold's validation predictions."""
    d, out = data.on_workers, []
    for f, (train, _) in enumerate(data.folds["ten"]):
        class_fits = [
            data.task(
                f"{prefix}-fold-{f}-class-{i}",
                fits.fit_sgd_class,
                fits.sgd(),
                X,
                d["y"],
                d["folds-ten"],
                f,
                i,
            )
            for i in range(len(np.unique(data.y[train])))
        ]
        out.append(
            data.task(
                f"{prefix}-fold-{f}-predict",
                fits.sgd_predict_fold,
                fits.sgd(),
                class_fits,
                X,
                d["folds-ten"],
                f,
            )
        )
    return tuple(out)


def _sgd_scaled(data: TourData, config: TourConfig) -> Group:
    """``standardize``, then the standardised SGD per fold and class (parts 4 and 5 share)."""
    X_scaled = data.task("standardize", fits.standardize, data.on_workers["X"])
    return Group(_ovr_folds(data, "sgd-scaled", X_scaled))


def _sgd_raw(data: TourData, config: TourConfig) -> Group:
    """The ten-class SGD on raw pixels, per fold and class (``cross_val_score``)."""
    return Group(_ovr_folds(data, "sgd-ovr", data.on_workers["X"]))


def _sgd_ten(data: TourData, config: TourConfig) -> Group:
    """The ten-class SGD on all images, one task per class, and its view of some digit."""
    d = data.on_workers
    class_fits = [
        data.task(
            f"sgd-ovr-class-{i}", fits.fit_sgd_class, fits.sgd(), d["X"], d["y"], None, None, i
        )
        for i in range(len(data.classes))
    ]
    some_digit = data.task(
        "sgd-ovr-some-digit", fits.sgd_on_rows, fits.sgd(), class_fits, d["X"], slice(0, 1)
    )
    return Group((some_digit,))


def _ovo(data: TourData, config: TourConfig) -> Group:
    """``OneVsOneClassifier(SGDClassifier)``: one task per pair, and its prediction."""
    d, classes = data.on_workers, data.classes
    models = [
        data.task(f"ovo-pair-{a}-{b}", fits.fit_ovo_pair, fits.sgd(), d["X"], d["y"], a, b)
        for i, a in enumerate(classes)
        for b in classes[i + 1 :]
    ]
    some_digit = data.task(
        "ovo-some-digit", fits.ovo_predict, fits.sgd(), classes, models, data.X_head
    )
    return Group((some_digit,), {"n_pairs": len(models)})


def _forest_chunks(data: TourData, config: TourConfig, prefix: str, y, folds, f, query=None):
    """A forest in chunks of ``config.forest_chunk`` trees, each its trees' probabilities."""
    n, step = config.forest_trees, config.forest_chunk
    forest = RandomForestClassifier(n_estimators=n, random_state=fits.SEED)
    return [
        data.task(
            f"{prefix}-trees-{a}-{min(a + step, n) - 1}",
            fits.forest_chunk_proba,
            forest,
            data.on_workers["X"],
            y,
            folds,
            f,
            a,
            min(a + step, n),
            query,
        )
        for a in range(0, n, step)
    ]


def _forest(data: TourData, config: TourConfig) -> Group:
    """The ten-class forest's probabilities for some digit, from its chunks of trees."""
    y = data.on_workers["y"]
    chunks = _forest_chunks(data, config, "forest", y, None, None, slice(0, 1))
    return Group((data.task("forest-proba", fits.forest_proba, chunks),))


def _forest5(data: TourData, config: TourConfig) -> Group:
    """The forest 5-detector's ``cross_val_predict(method="predict_proba")``, per fold."""
    d = data.on_workers
    return Group(
        tuple(
            data.task(
                f"forest5-fold-{f}-proba",
                fits.forest_proba,
                _forest_chunks(data, config, f"forest5-fold-{f}", d["y5"], d["folds-detector"], f),
            )
            for f in range(len(data.folds["detector"]))
        )
    )


def _detector(data: TourData, config: TourConfig) -> Group:
    """The never-5 baseline and the SGD 5-detector, one task per fold (four calls share it)."""
    d = data.on_workers

    def per_fold(name: str, estimator, folds: str, methods: tuple[str, ...]) -> list:
        return [
            data.task(
                f"{name}-fold-{f}",
                fits.fit_predict_fold,
                estimator,
                d["X"],
                d["y5"],
                d[f"folds-{folds}"],
                f,
                methods,
            )
            for f in range(len(data.folds[folds]))
        ]

    never5 = per_fold("never5", fits.Never5Classifier(), "never5", ("predict",))
    sgd5 = per_fold("sgd5", fits.sgd(), "detector", ("predict", "decision_function"))
    return Group((*never5, *sgd5))  # flat: a group is a tuple of tasks


def _multilabel(data: TourData, config: TourConfig) -> Group:
    """The multilabel KNN's ``cross_val_predict`` in blocks of validation images."""
    d, step = data.on_workers, config.block_rows
    blocks = [
        [
            data.task(
                f"multilabel-fold-{f}-block-{a // step}",
                fits.knn_predict_block,
                d["X"],
                d["y_multi"],
                d["folds-multilabel"],
                f,
                a,
                a + step,
            )
            for a in range(0, len(test), step)
        ]
        for f, (_, test) in enumerate(data.folds["multilabel"])
    ]
    head = data.task(
        "multilabel-some-digit", fits.knn_predict_block, d["X"], d["y_multi"], None, None, 0, 1
    )
    tasks = (*(b for fold in blocks for b in fold), head)
    return Group(tasks, {"blocks": [len(fold) for fold in blocks]})


def _svc(data: TourData, config: TourConfig) -> Group:
    """``SVC`` on the first ``svc_size`` images, and its one-vs-rest, one task per class."""
    d = data.on_workers
    n = min(config.svc_size, len(data.y))
    svc = SVC(random_state=fits.SEED)
    models = [
        data.task(f"ovr-svc-class-{i}", fits.fit_ovr_class, svc, d["X"], d["y"], i, n)
        for i in range(len(np.unique(data.y[:n])))
    ]
    tasks = (
        data.task("svc-some-digit", fits.svc_on_rows, svc, d["X"], d["y"], n, data.X_head),
        data.task("ovr-svc-some-digit", fits.ovr_predict, svc, d["y"], models, data.X_head, n),
    )
    return Group(tasks, {"svc_size": n, "n_ovr": len(models)})


def _denoise(data: TourData, config: TourConfig) -> Group:
    """Noise on the workers, the test images cleaned in blocks, the pixel errors."""
    d, size = data.on_workers, config.denoise_test_size
    n_test = data.n_test if size is None else min(size, data.n_test)
    noisy = data.task("denoise-noise", fits.noisy_images, d["X"], d["X_test"], fits.SEED)
    blocks = [
        data.task(
            f"denoise-block-{a // DENOISE_BLOCK}",
            fits.denoise_block,
            noisy,
            d["X"],
            a,
            min(a + DENOISE_BLOCK, n_test),
        )
        for a in range(0, n_test, DENOISE_BLOCK)
    ]
    score = data.task("denoise-score", fits.denoise_scores, noisy, d["X_test"], blocks, n_test)
    return Group((score,))


#: Each group's builder, the longest tasks first: see the module docstring.
BUILDERS = {
    "sgd-ten": _sgd_ten,
    "sgd-scaled": _sgd_scaled,
    "sgd-raw": _sgd_raw,
    "ovo": _ovo,
    "forest": _forest,
    "forest5": _forest5,
    "detector": _detector,
    "multilabel": _multilabel,
    "svc": _svc,
    "denoise": _denoise,
}


@dataclasses.dataclass(frozen=True)
class TourGraph:
    """The tour's inputs and its groups of tasks (:func:`build_tour`)."""

    data: TourData
    groups: dict[str, Group]

    def compute(self) -> tuple[dict[str, tuple], dict[str, float]]:
        """Every group on the cluster at once.

        Returns
        -------
        results : dict of str to tuple
            Each group's results, by group name.
        done : dict of str to float
            When each group's last result arrived, in seconds since the submission.
        """
        start, done = time.perf_counter(), {}

        def finished(name: str, _result: tuple) -> None:
            # Called as each group's last result arrives: when each part was ready.
            done[name] = round(time.perf_counter() - start, 3)
            log.info("tour: %s done after %.1f s", name, done[name])

        tasks = {name: group.tasks for name, group in self.groups.items()}
        results = compute_each(tasks, label="tour", on_done=finished)
        return results, done


def build_tour(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    config: TourConfig,
    groups: tuple[str, ...] | None = None,
) -> TourGraph:
    """The tour's tasks, group by group, on its data sent to the workers once.

    Parameters
    ----------
    X, y, X_test : ndarray
        The training images (one row each), their labels, the test images.
    config : TourConfig
        How much to run, and how finely to split it.
    groups : tuple of str, optional
        Only these groups of tasks (all by default), for example ``("detector",)``.
    """
    data = tour_data(X, y, X_test)
    built = {}
    for rank, (name, build) in enumerate(BUILDERS.items()):
        if groups is None or name in groups:
            with dask.annotate(priority=len(BUILDERS) - rank):
                built[name] = build(data, config)
    return TourGraph(data, built)
