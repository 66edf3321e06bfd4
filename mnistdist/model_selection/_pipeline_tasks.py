"""A pipeline's preprocessing steps, fitted on the cluster and applied block by block.

The search and the final model take any scikit-learn pipeline whose last step
is a k-nearest-neighbours classifier. Everything before that step is
"preprocessing": it is fitted once on the rows it may see (a training fold,
or the whole training set) and then applied to every chunk of the images on
the workers, so the neighbour search runs on the transformed features.

An :class:`~mnistdist.preprocessing.Augment` step splits the preprocessing in two:
the steps *before* it make the images that are augmented, the steps *after*
it are applied to originals and copies alike. Only the reference (training)
rows get copies; rows being predicted go through the same steps without.
"""

from __future__ import annotations

import dataclasses

import dask
import dask.array as da
import numpy as np
import sklearn
from dask.base import tokenize
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from ..errors import OptionError
from ..preprocessing import Augment, augmented_copies, check_augmentation, make_copy
from ..runtime import renamed

KNN_PARAMS = ("n_neighbors", "weights")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """A pipeline's steps before its classifier, split at its :class:`Augment` step (if any)."""

    before: Pipeline | None = None
    augment: Augment | None = None
    after: Pipeline | None = None

    @classmethod
    def from_steps(cls, steps: list[tuple[str, object]]) -> Preprocessing | None:
        """Split a pipeline's steps; None when there is nothing to do ("passthrough" dropped)."""
        steps = [(n, s) for n, s in steps if s is not None and s != "passthrough"]
        at = [i for i, (_, s) in enumerate(steps) if isinstance(s, Augment)]
        if len(at) > 1:
            raise OptionError("a pipeline may have one Augment step, not several")
        if not steps:
            return None
        if not at:
            return cls(before=Pipeline(steps))
        i = at[0]
        return cls(
            before=Pipeline(steps[:i]) if steps[:i] else None,
            augment=steps[i][1],
            after=Pipeline(steps[i + 1 :]) if steps[i + 1 :] else None,
        )

    @property
    def copy_seed(self) -> int:
        """The seed the augmentation's drawn copies (distortions) are drawn under; models
        saved by mnistdist 0.1 have none: 0."""
        return getattr(self.augment, "random_state", 0)

    @property
    def copies_per_image(self) -> int:
        """How many augmented copies each training image adds."""
        return 0 if self.augment is None else len(check_augmentation(self.augment.kind))

    @property
    def steps(self) -> list[tuple[str, object]]:
        """The steps, in order, as a pipeline would hold them."""
        parts = [*(self.before.steps if self.before else [])]
        if self.augment is not None:
            parts.append(("augment", self.augment))
        return [*parts, *(self.after.steps if self.after else [])]


def stateless(pipeline: Pipeline | None) -> bool:
    """Whether every step declares it needs no fit (scikit-learn's ``requires_fit`` tag)."""
    return pipeline is not None and not any(
        get_tags(step).requires_fit for _, step in pipeline.steps
    )


def split_stateless(
    prep: Preprocessing | None, X: da.Array
) -> tuple[Preprocessing | None, Preprocessing | None]:
    """``(ready, rest)``: ``prep``'s steps before augmentation, ready to apply where none of
    them learns from data (else None), and the steps still to fit (None where none is left).
    """
    if prep is None or not stateless(prep.before):
        return None, prep
    before = clone(prep.before).fit(np.zeros((1, X.shape[1]), dtype=X.dtype))
    rest = Preprocessing(None, prep.augment, prep.after)
    return Preprocessing(before=before), (rest if rest.steps else None)


def apply_stateless_before(
    prep: Preprocessing | None,
    X: da.Array,
    rows: np.ndarray | None = None,
    done: tuple[np.ndarray, da.Array] | None = None,
) -> tuple[Preprocessing | None, da.Array]:
    """Apply ``prep``'s steps before augmentation to ``X`` (its sorted ``rows`` alone, when
    given) now, if none of them learns from data.

    Returns the steps still to fit (or None) and the lazily transformed rows:
    then every fold shares the transformed images instead of redoing them.
    ``done``, ``(earlier_rows, transformed)``: the same steps' rows of an earlier
    call (a smaller round of successive halving); where they are among ``rows``,
    only the other rows are transformed, and the two are put in row order.
    Without such steps, ``X``'s ``rows`` are returned as they are.
    """
    ready, rest = split_stateless(prep, X)
    if rows is None:
        return rest, (X if ready is None else _before(ready, X))
    if ready is None:
        return rest, X[rows]
    if done is None or not np.isin(done[0], rows).all():
        return rest, _before(ready, X[rows])
    earlier, transformed = done
    new = np.setdiff1d(rows, earlier, assume_unique=True)
    if not len(new):
        return rest, transformed
    order = np.argsort(np.concatenate([earlier, new]), kind="stable")
    merged = da.concatenate([transformed, _before(ready, X[new])])[order]
    # In X's row chunks: each round's merge would otherwise cut them smaller, and the
    # tasks on them grow in number.
    return rest, merged.rechunk({0: X.chunks[0][0]})


def stateless_rows(prep: Preprocessing | None, X: da.Array, rows, shared: dict):
    """``prep``'s steps still to fit, and ``X``'s ``rows`` (all for None) through its stateless
    steps, persisted and kept in ``shared`` by those steps, so that the groups, rounds and
    refits after transform only the rows they add.

    All the rows are named as though made at once, whatever earlier calls made: what is
    searched on them, journaled by name, is then found again by a rerun that makes them so.
    """
    rest, whole = apply_stateless_before(prep, X)
    if whole is X:  # no stateless steps: the rows as they are
        return rest, X if rows is None else X[rows]
    key = ("stateless", whole.name)
    wanted = np.arange(X.shape[0]) if rows is None else rows
    done = shared.get(key)
    if done is not None and np.array_equal(done[0], wanted):
        return rest, done[1]
    if done is None and rows is None:  # every row, in X's own chunks
        transformed = whole
    else:
        transformed = apply_stateless_before(prep, X, wanted, done)[1]
        if rows is None:
            transformed = renamed(transformed.rechunk(whole.chunks), whole.name)
    shared[key] = (wanted, transformed.persist())
    return rest, shared[key][1]


def split_pipeline(estimator: BaseEstimator) -> tuple[Preprocessing | None, str, BaseEstimator]:
    """Split an estimator into ``(preprocessing or None, knn parameter prefix, knn step)``."""
    if isinstance(estimator, Pipeline):
        name, knn = estimator.steps[-1]
        prep = Preprocessing.from_steps(estimator.steps[:-1])
        prefix = f"{name}__"
    else:
        prep, prefix, knn = None, "", estimator
    params = knn.get_params(deep=False) if hasattr(knn, "get_params") else {}
    if not all(p in params for p in KNN_PARAMS):
        raise OptionError(
            "the last step must be a k-nearest-neighbours classifier with "
            f"{' and '.join(KNN_PARAMS)}, got {type(knn).__name__}"
        )
    if (
        params.get("metric", "minkowski") not in ("minkowski", "euclidean")
        or params.get("p", 2) != 2
    ):
        raise OptionError(
            "the neighbour search is Euclidean: the classifier's metric must be euclidean "
            "(minkowski, p=2)"
        )
    if prep is not None and prep.augment is not None:
        check_augmentation(prep.augment.kind)
    return prep, prefix, knn


def _fit(prep: Preprocessing, X: np.ndarray, y: np.ndarray | None) -> Preprocessing:
    before = augment = after = None
    if prep.before is not None:
        before = clone(prep.before).fit(X, y)
        X = before.transform(X)
    if prep.augment is not None:
        augment = clone(prep.augment).fit(X)
    if prep.after is not None:
        after = _fit_after(prep.after, X, y)
    return Preprocessing(before, augment, after)


def _fit_after(after: Pipeline, X: np.ndarray, y: np.ndarray | None) -> Pipeline:
    # Fitted on the original rows only, to keep it one task of bounded
    # memory: with all its copies, MNIST's training set is 2 GB of float32.
    return clone(after).fit(X, y)


def fit_task(
    prep: Preprocessing | Pipeline,
    X: da.Array,
    y: np.ndarray | None = None,
    *,
    name: str = "fit-preprocessing",
):
    """A lazy fit of ``prep`` on the rows of ``X``: one task on a worker, named ``name``."""
    if isinstance(prep, Pipeline):
        prep = Preprocessing.from_steps(prep.steps)
    return dask.delayed(_fit, pure=True)(prep, X, y, dask_key_name=f"{name}-{tokenize(prep, X, y)}")


def fit_after_augment_task(
    prep: Preprocessing, X: da.Array, y: np.ndarray | None, *, names: tuple[str, str], shared: dict
):
    """A lazy fit of ``prep`` on the rows of ``X`` whose steps after its augmentation are
    fitted once for every preprocessing that differs from it only in the augmentation.

    Those steps see the original rows alone, so an augmentation grid's groups
    fit the same: their fit is a task of its own (named ``names[1]``), keyed
    by those steps and the rows, persisted and kept in ``shared`` for the
    groups after this one. The augmentation, which learns nothing, is fitted
    here on a blank row, as :func:`split_stateless` fits stateless steps.
    Returns the lazy :class:`Preprocessing` (named ``names[0]``), or None
    where ``prep`` has a fitted step before the augmentation or none after it.
    """
    augment = prep.augment
    if prep.before is not None or prep.after is None or augment is None:
        return None
    if get_tags(augment).requires_fit:  # what it learns may differ from one kind to another
        return None
    fit_name, after_name = names
    key = f"{after_name}-{tokenize(prep.after, X, y)}"
    if ("fitted", key) not in shared:
        after = dask.delayed(_fit_after, pure=True)(prep.after, X, y, dask_key_name=key)
        shared[("fitted", key)] = after.persist()
    augment = clone(augment).fit(np.zeros((1, X.shape[1]), dtype=X.dtype))
    return dask.delayed(Preprocessing, pure=True)(
        None, augment, shared[("fitted", key)], dask_key_name=f"{fit_name}-{tokenize(prep, key)}"
    )


def fit_preprocessing(
    prep: Preprocessing | Pipeline,
    X: da.Array,
    y: np.ndarray | None = None,
    *,
    name: str = "fit-preprocessing",
) -> Preprocessing:
    """Fit ``prep`` on the rows of ``X`` in one task on a worker; return it fitted."""
    return fit_task(prep, X, y, name=name).compute()


#: Rows a pipeline's steps transform at once. Their copies of a 10,000-row chunk of MNIST
#: (31 MB of float32, a Normalizer's, say) are pages the kernel maps and zeroes afresh
#: on every chunk; those of 2,048 rows are memory malloc keeps and reuses, in cache.
TRANSFORM_ROWS = 2048


def _transform(block: np.ndarray, prep: Pipeline) -> np.ndarray:
    """``prep``'s transform of ``block``, :data:`TRANSFORM_ROWS` rows at a time, whose values
    must all come out finite.

    Each step checks that its input is finite, a pass over the block as long
    as a Normalizer's work. One check of what comes out, which a NaN or an
    infinity in the block or made by a step reaches, takes their place: a
    quarter off a Normalizer and PCA's transform of MNIST images. The steps
    transform each row alone, as Dask's chunks already need.
    """
    with sklearn.config_context(assume_finite=True):
        parts = [
            np.asarray(prep.transform(block[lo : lo + TRANSFORM_ROWS]))
            for lo in range(0, max(len(block), 1), TRANSFORM_ROWS)
        ]
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if np.issubdtype(out.dtype, np.floating) and not np.isfinite(out).all():
        steps = ", ".join(name for name, _ in prep.steps)
        raise ValueError(f"the pipeline's steps ({steps}) gave values that are NaN or infinite")
    return out


def _map(prep: Pipeline, X: da.Array, name: str, token: str | None = None) -> da.Array:
    probe = _transform(np.zeros((1, X.shape[1]), dtype=X.dtype), prep)
    return X.map_blocks(
        _transform,
        prep,
        chunks=(X.chunks[0], (probe.shape[1],)),
        dtype=probe.dtype,
        name=f"{name}-{tokenize(prep, X) if token is None else tokenize(token, name, X)}",
    )


def _before(fitted: Preprocessing, X: da.Array, token: str | None = None) -> da.Array:
    # Named by the steps alone (e.g. "deskew"), not by the fold: stateless
    # steps fitted on different folds are the same tasks, computed once.
    if fitted.before is None:
        return X
    return _map(fitted.before, X, "-".join(n for n, _ in fitted.before.steps), token)


def transform_blocks(
    fitted: Preprocessing, X: da.Array, *, name: str = "preprocess", token: str | None = None
) -> da.Array:
    """Apply fitted preprocessing to every row chunk of ``X`` on the workers, without augmenting.

    ``token`` names the result as :func:`reference_blocks`'s does.
    """
    X = _before(fitted, X, token)
    return X if fitted.after is None else _map(fitted.after, X, name, token)


def reference_blocks(
    fitted: Preprocessing, X: da.Array, *, name: str = "preprocess", token: str | None = None
) -> da.Array:
    """The reference rows for a neighbor search: ``X`` preprocessed, then its augmented copies.

    ``X``'s ``n`` rows come first, then ``n`` rows per copy, each copy in
    ``X``'s row order: row ``j`` of the result is a version of image ``j % n``.
    ``token`` (the fit task's key, say) names the result in place of the fitted
    steps' own values: a fit repeated in another run may differ in its last
    bits (BLAS on other memory), and the journal keys its results by name.
    """
    X = _before(fitted, X, token)
    if fitted.augment is not None:
        copies = augmented_copies(X, fitted.augment.kind, random_state=fitted.copy_seed)
        X = da.concatenate([X, *copies], axis=0)
    return X if fitted.after is None else _map(fitted.after, X, name, token)


def transform_rows(fitted: Preprocessing, X: np.ndarray) -> np.ndarray:
    """:func:`transform_blocks` of rows held here: the same values (the steps transform each
    row alone)."""
    for steps in (fitted.before, fitted.after):
        X = X if steps is None else _transform(X, steps)
    return X


def reference_rows(fitted: Preprocessing, X: np.ndarray) -> np.ndarray:
    """:func:`reference_blocks` of rows held here: the same rows in the same order, each copy
    transformed as it is made."""
    X = X if fitted.before is None else _transform(X, fitted.before)

    def after(rows: np.ndarray) -> np.ndarray:
        return rows if fitted.after is None else _transform(rows, fitted.after)

    parts = [after(X)]
    if fitted.augment is not None:
        copies = check_augmentation(fitted.augment.kind)
        parts += [after(make_copy(X, how, 0, fitted.copy_seed)) for _, how in copies]
    return np.concatenate(parts)
