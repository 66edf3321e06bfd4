"""One call for every search strategy: a :class:`SearchSpec` in, a :class:`SearchResult` out."""

from __future__ import annotations

import dataclasses

import dask.array as da

from ..outputs import Journal
from ._halving import halving_search
from ._search import SearchResult, neighbors_search
from ._spec import SearchSpec


def search(
    X: da.Array,
    y,
    spec: SearchSpec,
    *,
    journal: Journal | None = None,
    shared: dict | None = None,
) -> SearchResult:
    """Search as ``spec`` says: every candidate of its grid, ``n_iter`` drawn at random, or by
    successive halving (:func:`neighbors_search`, :func:`halving_search`).

    Parameters
    ----------
    X, y
        The image rows (a Dask array) and their labels (NumPy), as
        :func:`neighbors_search` takes them.
    spec : SearchSpec
        What to search and how.
    journal : Journal, optional
        Keeps finished neighbour searches and scores, to resume or extend the search.
    shared : dict, optional
        Filled with what the search made that a refit of its best pipeline on the
        same ``X`` may take: the images its stateless steps made (deskewed, say),
        kept on the workers while the dict holds them (:func:`final_model`).

    Returns
    -------
    SearchResult
        A :class:`HalvingResult` for successive halving.
    """
    params = {field.name: getattr(spec, field.name) for field in dataclasses.fields(spec)}
    run = halving_search if spec.strategy == "halving" else neighbors_search
    return run(X, y, journal=journal, shared=shared, **params)
