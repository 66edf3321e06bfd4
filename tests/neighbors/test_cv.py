import dask
import dask.array as da
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.model_selection import KFold, StratifiedKFold

from mnistdist.model_selection import neighbors_search
from mnistdist.neighbors import (
    CHAIN_MAX_K,
    cv_kneighbors,
    cv_method,
    fold_chain_kneighbors,
    kneighbors,
)


def _per_fold(X, folds, k):
    """Each fold's validation rows' neighbours among its training rows, in NumPy."""
    out = []
    for train, test in folds:
        train = np.sort(train)
        dist, ids = kneighbors(X[np.sort(test)], X[train], k)
        out.append((dist, train[ids]))
    return out


@pytest.mark.parametrize("k", [1, 5, 40])
def test_bounded_chains_equal_the_per_fold_search_on_the_digits(digits_arrays, k):
    X, y, _, _ = digits_arrays  # small integer pixels: many exact ties
    folds = list(StratifiedKFold(5).split(X, y))
    X_d = da.from_array(X, chunks=300)
    with dask.config.set(scheduler="sync", **{"mnistdist.chunk-rows": 150}):
        for chains in (1, 3):  # whatever the chains, the same neighbours, the same names
            lazy = fold_chain_kneighbors(X_d, folds, k, 16, chains=chains)
            assert [d.name for d, _ in lazy] == [
                d.name for d, _ in fold_chain_kneighbors(X_d, folds, k, 16)
            ]
            got = dask.compute(*lazy)
            for (d1, i1), (d2, i2) in zip(_per_fold(X, folds, k), got, strict=True):
                assert_array_equal(i2, i1)
                assert_array_equal(d2, d1)


def test_chains_on_duplicated_rows_and_unequal_folds():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, size=(130, 48)).astype(np.uint8)
    X = np.concatenate([base, base, base[:40]])  # rows at distance 0 in other folds
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    with dask.config.set(scheduler="sync", **{"mnistdist.chunk-rows": 64}):
        got = dask.compute(*fold_chain_kneighbors(da.from_array(X, chunks=100), folds, 6, 8))
    for (d1, i1), (d2, i2) in zip(_per_fold(X, folds, 6), got, strict=True):
        assert_array_equal(i2, i1)
        assert_array_equal(d2, d1)


@pytest.fixture
def any_size(monkeypatch):
    """Chains for searches as small as the digits'."""
    import mnistdist.neighbors._cv as cv

    monkeypatch.setattr(cv, "CHAIN_MIN_PAIRS", 0)


def test_the_search_takes_chains_where_the_bound_applies_tiles_elsewhere(digits_arrays, any_size):
    X, y, _, _ = digits_arrays
    folds = list(StratifiedKFold(3).split(X, y))
    Xd = da.from_array(X, chunks=400)

    def has(k, *prefixes):
        lazy = cv_kneighbors(Xd, folds, k, query_rows=300)
        names = [key[0] if isinstance(key, tuple) else key for key in lazy[0][0].__dask_graph__()]
        return all(any(n.startswith(p) for n in names) for p in prefixes)

    assert has(5, "distances-folds-0-1-")  # 64 features: 64 components would not pay
    assert cv_method(64, 5) == "fold-pair tiles"  # the bound does not apply
    assert cv_method(784, 5) == "bounded chains"
    with dask.config.set({"mnistdist.bound-components": 16}):
        assert has(5, "neighbors-fold-0-bound-", "fold-1-bound-reference-", "neighbors-bound-fit-")
        assert not has(5, "distances-folds-")
        assert has(CHAIN_MAX_K + 1, "distances-folds-0-1-")  # too small to compile
        assert cv_method(64, CHAIN_MAX_K + 1) == "fold-pair tiles"
        assert cv_method(64, 100, n_pairs=10**9, dtype=np.uint8) == "bounded chains"
        assert cv_method(64, 100, n_pairs=10**9, dtype=np.float32) == "fold-pair tiles"


def test_small_searches_take_the_tiles_unless_compiled():
    assert cv_method(784, 5, n_pairs=10**7) == "fold-pair tiles"
    assert cv_method(784, 5, n_pairs=10**9) == "bounded chains"
    assert cv_method(784, 100, n_pairs=4 * 10**7, dtype=np.uint8) == "bounded chains"
    assert cv_method(784, 100, n_pairs=4 * 10**7) == "fold-pair tiles"


def test_the_search_scores_the_same_with_chains(client, digits, any_size):
    X, y = digits.X_train, digits.y_train
    tiles = neighbors_search(X, y, cv=4)
    with dask.config.set({"mnistdist.bound-components": 16}):
        chains = neighbors_search(X, y, cv=4)
    for key in ("mean_test_score", "split0_test_score", "split3_test_score"):
        assert_array_equal(chains.cv_results[key], tiles.cv_results[key])
