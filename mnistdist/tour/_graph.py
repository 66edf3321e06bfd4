"""The tour as one set of Dask tasks: every fit on the workers, all of them in flight together.

:class:`TourGraph` sends the tour's inputs to the workers once (the images,
the labels, the cross-validation folds) and builds one group of tasks per
computation of the chapter, from the functions of :mod:`.tour_fits`. Each
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


class TourGraph:
    """The tour's tasks, group by group, on the data sent to the workers once.

    Parameters
    ----------
    X, y, X_test : ndarray
        The training images (one row each), their labels, the test images.
    config : TourConfig
        How much to run, and how finely to split it.
    groups : tuple of str, optional
        Only these groups of tasks (all by default), for example ``("detector",)``.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_test: np.ndarray,
        config: TourConfig,
        groups: tuple[str, ...] | None = None,
    ):
        self.config = config
        self.y = y
        self.X_head = X[:1]  # the book's "some digit"
        self.n_test = len(X_test)
        self.classes = np.unique(y)
        y5, y_multi = y == 5, fits.multilabel_targets(y)
        self.folds = book_folds(X, y, y5, y_multi)
        self.data = _on_workers(
            {"X": X, "X_test": X_test, "y": y, "y5": y5, "y_multi": y_multi}
            | {f"folds-{name}": folds for name, folds in self.folds.items()}
        )
        self.token = tokenize(*self.data.values())
        self.groups: dict[str, tuple] = {}
        builders = {
            "sgd-ten": self._sgd_ten,
            "sgd-scaled": self._sgd_scaled,
            "sgd-raw": self._sgd_raw,
            "ovo": self._ovo,
            "forest": self._forest,
            "forest5": self._forest5,
            "detector": self._detector,
            "multilabel": self._multilabel,
            "svc": self._svc,
            "denoise": self._denoise,
        }  # longest tasks first: see the module docstring
        for rank, (name, build) in enumerate(builders.items()):
            if groups is None or name in groups:
                with dask.annotate(priority=len(builders) - rank):
                    build()

    def task(self, name: str, func, *args):
        """A lazy call of ``func`` whose key is ``name`` and the run's token."""
        return dask.delayed(func, pure=True)(*args, dask_key_name=f"{name}-{self.token}")

    def _ovr_folds(self, prefix: str, X) -> tuple:
        """Ten-class SGD on each fold, one task per class; each fold's validation predictions."""
        d, out = self.data, []
        for f, (train, _) in enumerate(self.folds["ten"]):
            class_fits = [
                self.task(
                    f"{prefix}-fold-{f}-class-{i}",
                    fits.fit_sgd_class,
                    fits.sgd(),
                    X,
                    d["y"],
                    d["folds-ten"],
                    f,
                    i,
                )
                for i in range(len(np.unique(self.y[train])))
            ]
            out.append(
                self.task(
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

    def _sgd_scaled(self) -> None:
        """``standardize``, then the standardised SGD per fold and class (parts 4 and 5 share)."""
        X_scaled = self.task("standardize", fits.standardize, self.data["X"])
        self.groups["sgd-scaled"] = self._ovr_folds("sgd-scaled", X_scaled)

    def _sgd_raw(self) -> None:
        """The ten-class SGD on raw pixels, per fold and class (``cross_val_score``)."""
        self.groups["sgd-raw"] = self._ovr_folds("sgd-ovr", self.data["X"])

    def _sgd_ten(self) -> None:
        """The ten-class SGD on all images, one task per class, and its view of some digit."""
        d = self.data
        class_fits = [
            self.task(
                f"sgd-ovr-class-{i}", fits.fit_sgd_class, fits.sgd(), d["X"], d["y"], None, None, i
            )
            for i in range(len(self.classes))
        ]
        self.groups["sgd-ten"] = (
            self.task(
                "sgd-ovr-some-digit", fits.sgd_on_rows, fits.sgd(), class_fits, d["X"], slice(0, 1)
            ),
        )

    def _ovo(self) -> None:
        """``OneVsOneClassifier(SGDClassifier)``: one task per pair, and its prediction."""
        d, classes = self.data, self.classes
        models = [
            self.task(f"ovo-pair-{a}-{b}", fits.fit_ovo_pair, fits.sgd(), d["X"], d["y"], a, b)
            for i, a in enumerate(classes)
            for b in classes[i + 1 :]
        ]
        self.n_pairs = len(models)
        self.groups["ovo"] = (
            self.task("ovo-some-digit", fits.ovo_predict, fits.sgd(), classes, models, self.X_head),
        )

    def _forest_chunks(self, prefix: str, y, folds, f, query=None) -> list:
        """A forest in chunks of ``config.forest_chunk`` trees, each its trees' probabilities."""
        n, step = self.config.forest_trees, self.config.forest_chunk
        forest = RandomForestClassifier(n_estimators=n, random_state=fits.SEED)
        return [
            self.task(
                f"{prefix}-trees-{a}-{min(a + step, n) - 1}",
                fits.forest_chunk_proba,
                forest,
                self.data["X"],
                y,
                folds,
                f,
                a,
                min(a + step, n),
                query,
            )
            for a in range(0, n, step)
        ]

    def _forest(self) -> None:
        """The ten-class forest's probabilities for some digit, from its chunks of trees."""
        chunks = self._forest_chunks("forest", self.data["y"], None, None, slice(0, 1))
        self.groups["forest"] = (self.task("forest-proba", fits.forest_proba, chunks),)

    def _forest5(self) -> None:
        """The forest 5-detector's ``cross_val_predict(method="predict_proba")``, per fold."""
        d = self.data
        self.groups["forest5"] = tuple(
            self.task(
                f"forest5-fold-{f}-proba",
                fits.forest_proba,
                self._forest_chunks(f"forest5-fold-{f}", d["y5"], d["folds-detector"], f),
            )
            for f in range(len(self.folds["detector"]))
        )

    def _detector(self) -> None:
        """The never-5 baseline and the SGD 5-detector, one task per fold (four calls share it)."""
        d = self.data
        never5 = [
            self.task(
                f"never5-fold-{f}",
                fits.fit_predict_fold,
                fits.Never5Classifier(),
                d["X"],
                d["y5"],
                d["folds-never5"],
                f,
                ("predict",),
            )
            for f in range(len(self.folds["never5"]))
        ]
        sgd5 = [
            self.task(
                f"sgd5-fold-{f}",
                fits.fit_predict_fold,
                fits.sgd(),
                d["X"],
                d["y5"],
                d["folds-detector"],
                f,
                ("predict", "decision_function"),
            )
            for f in range(len(self.folds["detector"]))
        ]
        self.groups["detector"] = (*never5, *sgd5)  # flat: a group is a tuple of tasks

    def _multilabel(self) -> None:
        """The multilabel KNN's ``cross_val_predict`` in blocks of validation images."""
        d, step = self.data, self.config.block_rows
        blocks = [
            [
                self.task(
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
            for f, (_, test) in enumerate(self.folds["multilabel"])
        ]
        head = self.task(
            "multilabel-some-digit", fits.knn_predict_block, d["X"], d["y_multi"], None, None, 0, 1
        )
        self.multilabel_blocks = [len(fold) for fold in blocks]
        self.groups["multilabel"] = (*(b for fold in blocks for b in fold), head)

    def _svc(self) -> None:
        """``SVC`` on the first ``svc_size`` images, and its one-vs-rest, one task per class."""
        d = self.data
        n = self.svc_size = min(self.config.svc_size, len(self.y))
        svc = SVC(random_state=fits.SEED)
        models = [
            self.task(f"ovr-svc-class-{i}", fits.fit_ovr_class, svc, d["X"], d["y"], i, n)
            for i in range(len(np.unique(self.y[:n])))
        ]
        self.groups["svc"] = (
            self.task("svc-some-digit", fits.svc_on_rows, svc, d["X"], d["y"], n, self.X_head),
            self.task("ovr-svc-some-digit", fits.ovr_predict, svc, d["y"], models, self.X_head, n),
        )
        self.n_ovr = len(models)

    def _denoise(self) -> None:
        """Noise on the workers, the test images cleaned in blocks, the pixel errors."""
        d, size = self.data, self.config.denoise_test_size
        n_test = self.n_test if size is None else min(size, self.n_test)
        noisy = self.task("denoise-noise", fits.noisy_images, d["X"], d["X_test"], fits.SEED)
        blocks = [
            self.task(
                f"denoise-block-{a // DENOISE_BLOCK}",
                fits.denoise_block,
                noisy,
                d["X"],
                a,
                min(a + DENOISE_BLOCK, n_test),
            )
            for a in range(0, n_test, DENOISE_BLOCK)
        ]
        self.groups["denoise"] = (
            self.task("denoise-score", fits.denoise_scores, noisy, d["X_test"], blocks, n_test),
        )

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

        results = compute_each(self.groups, label="tour", on_done=finished)
        return results, done
