import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold

from mnistdist.model_selection import neighbors_search
from mnistdist.neighbors import (
    fold_pair_kneighbors,
    fold_pairs_on,
    folds_partition,
    kneighbors,
    kneighbors_dask,
)
from mnistdist.neighbors._fold_pairs import merge_tile_candidates, tile_candidates, tile_side


def _per_fold(X, folds, k):
    """Today's search: each fold's validation rows among its training rows."""
    out = []
    for train, test in folds:
        keep = np.zeros(len(X), dtype=bool)
        keep[train] = True
        query = X[np.sort(test)].rechunk({0: 100})
        out.append(kneighbors_dask(query, X, k, ref_keep=keep))
    return out


@pytest.mark.parametrize("k", [1, 5, 40])
def test_equals_the_per_fold_search_on_the_digits(digits_arrays, k):
    X, y, _, _ = digits_arrays  # small integer pixels: many exact ties
    Xd = da.from_array(X, chunks=300)
    folds = list(StratifiedKFold(5).split(X, y))
    with dask.config.set(scheduler="sync"):
        want = dask.compute(*_per_fold(Xd, folds, k))
        got = dask.compute(*fold_pair_kneighbors(Xd, folds, k, query_rows=128))
    for (d1, i1), (d2, i2) in zip(want, got, strict=True):
        np.testing.assert_array_equal(i2, i1)
        np.testing.assert_array_equal(d2, d1)


def test_tiles_give_both_directions_exactly():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(70, 12)) * 50, rng.normal(size=(90, 12)) * 50
    b[4] = a[9]  # distance 0, both ways
    b[30:33] = b[20]  # equal rows: ties, which go to the lower row
    ids_b, ids_a = np.arange(90), np.arange(70) + 90  # whole set: b's rows, then a's
    of_a, of_b = tile_candidates(tile_side(a, ids_a), tile_side(b, ids_b), 6)
    chunks, starts = [b[:50], b[50:], a], [0, 50, 90]
    d_ab, i_ab = merge_tile_candidates(a, ids_a, [of_a], chunks, starts, 6)
    d_ba, i_ba = merge_tile_candidates(b, ids_b, [of_b], chunks, starts, 6)
    want_ab = kneighbors(a, b, 6)
    want_ba = kneighbors(b, a, 6)
    np.testing.assert_array_equal(i_ab, want_ab[1])
    np.testing.assert_array_equal(i_ba, ids_a[want_ba[1]])
    np.testing.assert_array_equal(d_ab, want_ab[0])
    np.testing.assert_array_equal(d_ba, want_ba[0])
    assert d_ab[9, 0] == 0 and i_ab[9, 0] == 4 and d_ba[4, 0] == 0 and i_ba[4, 0] == 99


def test_task_names_say_which_folds(digits_arrays):
    X, _y, _, _ = digits_arrays
    folds = list(KFold(3).split(X))
    lazy = fold_pair_kneighbors(da.from_array(X, chunks=600), folds, 3, query_rows=1000)
    names = {
        key[0].rsplit("-", 1)[0]
        for key in dict(lazy[0][0].__dask_graph__())
        if isinstance(key, tuple)
    }
    assert {"distances-folds-0-1", "distances-folds-0-2", "distances-folds-1-2"} <= names
    assert "merge-neighbors-fold-0" in names


def test_which_folds_partition_the_rows():
    n = 50
    assert folds_partition(list(KFold(5).split(np.zeros(n))), n)
    assert not folds_partition(list(ShuffleSplit(3, random_state=0).split(np.zeros(n))), n)
    train, test = next(KFold(5).split(np.zeros(n)))
    assert not folds_partition([(train[:-1], test), *list(KFold(5).split(np.zeros(n)))[1:]], n)


def test_the_search_scores_the_same_with_fold_pairs(digits, digits_arrays):
    _, y, _, _ = digits_arrays
    with dask.config.set({"scheduler": "sync", "mnistdist.fold-pairs": False}):
        per_fold = neighbors_search(digits.X_train, y)
    with dask.config.set({"scheduler": "sync", "mnistdist.fold-pairs": True}):
        assert fold_pairs_on()
        paired = neighbors_search(digits.X_train, y)
    assert paired.cv_results["params"] == per_fold.cv_results["params"]
    for f in range(5):
        key = f"split{f}_test_score"
        np.testing.assert_array_equal(paired.cv_results[key], per_fold.cv_results[key])
