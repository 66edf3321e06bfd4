"""A search's steps planned before it runs, with their relative costs, for its time left.

Each group of candidates (:class:`~._candidates.Group`) is three steps: its
neighbour search (``neighbors``: query rows x reference rows x features, the
reference grown by augmented copies and the features cut by PCA), its
re-ranking where the classifier re-ranks (``rerank``: rows x candidates x
pixels x warp positions) and its scoring (``scores``: rows x neighbours x
settings scored). The units are only compared within a kind: the time left
prices each kind at the rate its own steps ran (:class:`mnistdist.runtime.Eta`).
"""

from __future__ import annotations

from dask.base import tokenize
from sklearn.base import BaseEstimator, clone

from ..neighbors import candidates_needed, is_reranking
from ..preprocessing import Augment, check_augmentation
from ..runtime import Eta
from ._candidates import Group
from ._pipeline_tasks import split_pipeline


def group_units(
    estimator: BaseEstimator, group: Group, *, n_rows: int, n_folds: int, n_features: int
) -> dict[str, float]:
    """A group's work by kind (``neighbors``, ``rerank``, ``scores``) on ``n_rows`` images."""
    prep, _, knn = split_pipeline(clone(estimator).set_params(**group.rest))
    features, copies = n_features, 0
    for _, step in prep.steps if prep is not None else []:
        if isinstance(step, Augment):
            copies = len(check_augmentation(step.kind))
        components = getattr(step, "n_components", None)
        if isinstance(components, int):
            features = min(features, components)
    k = candidates_needed(knn, group.k)
    train = n_rows * (n_folds - 1) / n_folds
    units = {
        "neighbors": n_rows * train * (1 + copies) * features,
        "scores": n_rows * k * len(group.distinct()),
    }
    if is_reranking(knn):
        units["rerank"] = n_rows * k * n_features * (2 * knn.warp + 1) ** 2
    return units


def _search_key(estimator: BaseEstimator, group: Group) -> str:
    """Groups with equal keys share one neighbour search: they differ only in the classifier."""
    _, prefix, knn = split_pipeline(estimator)
    step = prefix.removesuffix("__")
    rest = {n: v for n, v in group.rest.items() if not (step and n.startswith(prefix))}
    k = candidates_needed(split_pipeline(clone(estimator).set_params(**group.rest))[2], group.k)
    return tokenize(sorted(rest.items()), k, type(knn).__name__ if not step else "")


def plan_groups(
    eta: Eta,
    estimator: BaseEstimator,
    groups: list[Group],
    *,
    prefix: str,
    n_rows: int,
    n_folds: int,
    n_features: int,
) -> None:
    """Plan every group's steps, named ``<prefix><kind><group label>``, replacing any estimate
    planned under ``prefix`` before (halving's later rounds)."""
    eta.drop(prefix)
    searched = set()
    for group in groups:
        units = group_units(estimator, group, n_rows=n_rows, n_folds=n_folds, n_features=n_features)
        key = _search_key(estimator, group)
        if key in searched:  # another group's search serves it
            units["neighbors"] = 0.0
        searched.add(key)
        for kind, amount in units.items():
            eta.plan(f"{prefix}{kind}{group.label}", kind, amount)


def plan_later_rounds(
    eta: Eta,
    estimator: BaseEstimator,
    groups: list[Group],
    rounds: list[tuple[int, int]],
    *,
    n_folds: int,
    n_features: int,
) -> None:
    """Estimates of successive halving's later rounds, ``(candidates, rows)`` each: the first
    round's groups, as many as candidates remain, at each round's size."""
    for r, (n_candidates, n_rows) in enumerate(rounds, start=1):
        share = min(len(groups), n_candidates) / max(len(groups), 1)
        for kind in ("neighbors", "rerank", "scores"):
            amount = sum(
                group_units(
                    estimator, group, n_rows=n_rows, n_folds=n_folds, n_features=n_features
                ).get(kind, 0.0)
                for group in groups
            )
            if amount:
                eta.plan(f"halving-iter-{r}-{kind}-estimate", kind, share * amount)
