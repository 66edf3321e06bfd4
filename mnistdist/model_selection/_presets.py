"""Named searches: the book's KNN grid, and the search that goes beyond the book.

``book`` is the chapter's grid over a plain KNN. ``best`` searches
preprocessing x augmentation x KNN parameters for a pipeline

    Deskew -> GaussianBlur -> Augment -> Normalizer -> PCA -> KNN

where the augmentation is applied to training folds only (see
:class:`~mnistdist.augment.Augment`), the Normalizer makes the Euclidean
search a cosine one, and PCA shrinks every neighbour search's distance
product from 785 columns to 51. Its grid is a list of sub-grids, so that the
costly augmentations are tried at one PCA size while the cheap
no-augmentation setting also tries other sizes and each step left out.
"""

from __future__ import annotations

import dataclasses

from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer

from ..errors import OptionError
from ..neighbors import DeformationKNNClassifier, KNNClassifier
from ..preprocessing import AUGMENTATIONS, Augment, Deskew, GaussianBlur
from ._search import DEFAULT_GRID

#: How a preset's grid is searched: every candidate on every image (grid), or by
#: successive halving (see :mod:`mnistdist.halving`).
STRATEGIES = ("grid", "halving")

#: The book's chosen KNN, refit plain and on the four one-pixel shifts for comparison.
BOOK_BEST = {"n_neighbors": 4, "weights": "distance"}


@dataclasses.dataclass(frozen=True)
class Preset:
    """An estimator, the grid to search it over, and how to search it (``--strategy``'s default).

    ``holds_gil``: its tasks hold the GIL in places, so an embedded cluster's
    workers should be processes (:func:`mnistdist.cluster.embedded_processes`).
    """

    name: str
    estimator: BaseEstimator
    param_grid: dict | list[dict]
    description: str
    strategy: str = "grid"
    holds_gil: bool = False


def best_pipeline(n_features: int = 784) -> Pipeline:
    """The ``best`` preset's pipeline, before the search sets its parameters."""
    return Pipeline(
        [
            ("deskew", Deskew()),
            ("blur", GaussianBlur(sigma=0.0)),
            ("augment", Augment("none")),
            ("normalize", Normalizer()),
            ("pca", PCA(n_components=min(50, n_features - 1), random_state=0)),
            ("knn", KNNClassifier(n_neighbors=4, weights="distance")),
        ]
    )


def _best_grid(n_features: int = 784) -> list[dict]:
    knn = {"knn__n_neighbors": [4, 6, 8], "knn__weights": ["distance"]}
    return [
        # Every augmentation, on deskewed, normalised images at 50 components.
        {"augment__kind": list(AUGMENTATIONS), **knn},
        # Without augmentation (cheap): other PCA sizes, blurring, and each step left out.
        {"pca__n_components": [c for c in (30, 40, 70) if c < n_features], **knn},
        {"blur__sigma": [0.5, 1.0], **knn},
        {"deskew": ["passthrough"], **knn},
        {"normalize": ["passthrough"], **knn},
    ]


def deform_pipeline() -> Pipeline:
    """The ``deform`` preset's pipeline: deskewed images, Euclidean candidates re-ranked by IDM."""
    return Pipeline(
        [
            ("deskew", Deskew()),
            ("knn", DeformationKNNClassifier(n_neighbors=4, weights="distance", n_candidates=100)),
        ]
    )


#: Designed on a holdout (train on training images 0-49,999, validate on 50,000-59,999),
#: never on the test set; docs/beyond-the-book.md gives the holdout's numbers.
DEFORM_GRID = {
    "knn__warp": [1, 2],
    "knn__n_neighbors": [1, 3, 4, 6],
    "knn__weights": ["uniform", "distance"],
}


def elastic_pipeline() -> Pipeline:
    """The ``elastic`` preset's pipeline: ``deform``'s, each query's ten nearest candidates
    also compared with ten elastic copies of themselves (docs/deformation.md)."""
    knn = DeformationKNNClassifier(
        n_neighbors=4,
        weights="distance",
        n_candidates=100,
        warp=2,
        reference_copies=10,
        copy_candidates=10,
        copy_penalty=0.2,
        distortion="elastic",
    )
    return Pipeline([("deskew", Deskew()), ("knn", knn)])


#: Designed on two training holdouts (0-49,999 / 50,000-59,999 and 10,000-59,999 /
#: 0-9,999), never on the test set: ten copies of the ten nearest, each a neighbour at
#: 1.2 times its distance, was the one use of elastic copies fewer errors on both.
#: Cross-validation decides whether the copies are used at all.
ELASTIC_GRID = {
    "knn__reference_copies": [0, 10],
    "knn__n_neighbors": [3, 4, 6, 8],
    "knn__weights": ["uniform", "distance"],
}

PRESETS = {
    "book": lambda n_features: Preset(
        "book",
        KNNClassifier(),
        DEFAULT_GRID,
        "the book's grid: a plain KNN over weights x n_neighbors",
    ),
    "best": lambda n_features: Preset(
        "best",
        best_pipeline(n_features),
        _best_grid(n_features),
        "deskewing x blur x augmentation (shifts, rotations) x cosine x PCA size x KNN, "
        "augmenting training folds only",
        # Measured on full MNIST, 2 workers: halving 169 s, grid 313 s, the same choice
        # and test accuracy (docs/halving.md).
        strategy="halving",
    ),
    "deform": lambda n_features: Preset(
        "deform",
        deform_pipeline(),
        DEFORM_GRID,
        "deskewing, 100 Euclidean candidates re-ranked by the image distortion model "
        "(local gradient context) x warp range x KNN",
        # IDM distances of 20,000 image pairs, twice on each of 2 workers: 6.9 s on
        # threads, 5.1 s on processes (docs/benchmark.md, worker threads).
        holds_gil=True,
    ),
    "elastic": lambda n_features: Preset(
        "elastic",
        elastic_pipeline(),
        ELASTIC_GRID,
        "deform's re-ranking with references' elastic copies: each query's ten nearest "
        "candidates also compared with ten elastically distorted copies of themselves",
        holds_gil=True,
    ),
}


def get_preset(name: str, n_features: int = 784) -> Preset:
    """The preset called ``name`` for images of ``n_features`` pixels.

    An unknown name is an :class:`OptionError`.
    """
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[name](n_features)
