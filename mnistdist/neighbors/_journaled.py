"""Neighbour searches through the journal: read back where finished, saved as they finish."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import dask.array as da
import numpy as np

from ..outputs import Journal, journal_key
from ..runtime import Known, compute_each, compute_each_after

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Neighbors:
    """One finished neighbour search, and whether it came from the journal."""

    dist: np.ndarray
    ids: np.ndarray
    loaded: bool = False


def compute_journaled(
    lazy: list[tuple[da.Array, da.Array]], journal: Journal | None, *, label: str
) -> list[Neighbors]:
    """Compute lazy ``(dist, ids)`` neighbour searches on the cluster, through the journal.

    Those the journal holds are read back; the others are computed
    together and each is saved the moment it finishes.
    """
    keys = [journal_key(dist) for dist, _ in lazy]
    # A stored row must have the shape and type of the search it stands for.
    found = (
        {key: journal.get(key, like=pair) for key, pair in zip(keys, lazy, strict=True)}
        if journal is not None
        else {}
    )
    todo = {key: pair for key, pair in zip(keys, lazy, strict=True) if found.get(key) is None}

    def save(key: str, result: tuple) -> None:
        if journal is not None:
            _save(journal, key, *result)

    computed = compute_each(todo, label=label, on_done=save)
    if journal is not None and len(todo) < len(keys):
        log.info("%s: %d of %d read from the journal", label, len(keys) - len(todo), len(keys))
    return [
        Neighbors(*computed[key]) if key in computed else Neighbors(*found[key], loaded=True)
        for key in keys
    ]


def compute_journaled_after(
    first: list,
    then: Callable[[int, object], tuple[da.Array, da.Array]],
    journal: Journal | None,
    *,
    label: str,
) -> list[Neighbors]:
    """Neighbour searches that each need a value computed first, each started once it is.

    ``first[i]`` (a lazy value: a fold's fitted steps, say) is computed on
    the cluster; the moment it is, ``then(i, value)`` gives search ``i`` as
    lazy ``(dist, ids)``, read back from ``journal`` or submitted at once
    (:func:`mnistdist.runtime.compute_each_after`). Otherwise as
    :func:`compute_journaled`.
    """
    keys: dict[int, str] = {}
    loaded: set[int] = set()

    def search(i: int, value) -> tuple | Known:
        dist, ids = then(i, value)
        keys[i] = journal_key(dist)
        saved = journal.get(keys[i], like=(dist, ids)) if journal is not None else None
        if saved is None:
            return dist, ids
        loaded.add(i)
        return Known(saved)

    def save(i: int, result: tuple) -> None:
        if journal is not None:
            _save(journal, keys[i], *result)

    done = compute_each_after(first, search, label=label, on_done=save)
    return [Neighbors(*result, loaded=i in loaded) for i, result in enumerate(done)]


def _save(journal: Journal, key: str, dist: np.ndarray, ids: np.ndarray) -> None:
    journal.put(key, dist, ids, label=key.split("-distances-")[0])
