"""Named searches: the grid files shipped with the package, and grid files of one's own.

A preset is a grid file (:mod:`._grid_file`) in the ``presets`` folder beside
this module, named by its file: ``book`` is the chapter's grid over a plain
KNN, ``best`` searches preprocessing x augmentation x KNN parameters for a
pipeline (deskew -> blur -> augment -> normalise -> PCA -> KNN), and
``deform`` re-ranks Euclidean candidates by the image distortion model.
Adding a preset is adding a file there; ``mnistdist search --grid FILE``
searches any other.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from importlib.resources import files

from sklearn.base import BaseEstimator

from ..errors import OptionError
from ..neighbors import KNNClassifier
from ._grid_file import load_grid, read_grid_file

#: The book's chosen KNN, refit plain and on the four one-pixel shifts for comparison.
BOOK_BEST = {"n_neighbors": 4, "weights": "distance"}

_FOLDER = files(__package__).joinpath("presets")


@dataclasses.dataclass(frozen=True)
class Preset:
    """An estimator, the grid to search it over, and how to search it (``--strategy``'s default).

    ``holds_gil``: its tasks hold the GIL in places, so an embedded cluster's
    workers should be processes (:func:`mnistdist.runtime.embedded_processes`).
    ``n_iter``: how many candidates a random search draws by default.
    ``source``: the grid file it was read from.
    """

    name: str
    estimator: BaseEstimator
    param_grid: dict | list[dict]
    description: str
    strategy: str = "grid"
    holds_gil: bool = False
    n_iter: int | None = None
    source: str = ""

    @property
    def plain_knn(self) -> bool:
        """Whether the estimator is a plain KNN alone, as the book's: nothing but its
        ``n_neighbors`` and ``weights`` to choose."""
        return type(self.estimator) is KNNClassifier


def _names() -> tuple[str, ...]:
    return tuple(
        sorted(p.name[: -len(".yaml")] for p in _FOLDER.iterdir() if p.name.endswith(".yaml"))
    )


#: The presets' names: the grid files in the package's ``presets`` folder.
PRESETS: tuple[str, ...] = _names()


def preset_path(name: str):
    """The grid file of preset ``name`` (a path, or a resource where the package is zipped).

    An unknown name is an :class:`OptionError`.
    """
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return _FOLDER.joinpath(f"{name}.yaml")


def grid_file(
    path: str | os.PathLike, n_features: int | None = 784, *, name: str | None = None
) -> Preset:
    """The search that the grid file at ``path`` describes, for images of ``n_features`` pixels.

    ``n_features`` None skips the checks of sizes against the images.
    ``name`` defaults to the file's name without its suffix.

    Raises
    ------
    OptionError
        One line naming the file, the key and what was expected.
    """
    found = load_grid(read_grid_file(path), where=f"grid file {path}", n_features=n_features)
    return Preset(
        name=name or pathlib.PurePath(os.fspath(path)).stem,
        estimator=found["estimator"],
        param_grid=found["param_grid"],
        description=found["description"] or f"the grid of {os.fspath(path)}",
        strategy=found["strategy"],
        holds_gil=found["holds_gil"],
        n_iter=found["n_iter"],
        source=os.fspath(path),
    )


def get_preset(name: str, n_features: int | None = 784) -> Preset:
    """The preset called ``name`` for images of ``n_features`` pixels.

    An unknown name is an :class:`OptionError`.
    """
    path = preset_path(name)
    return grid_file(str(path), n_features, name=name)
