import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from numpy.testing import assert_array_equal

from mnistdist.data import load_dataset
from mnistdist.neighbors import bound_components, bounded_kneighbors_dask, kneighbors_dask
from mnistdist.neighbors._chain import merge_found
from mnistdist.neighbors._lower_bound import fit_projection, project
from mnistdist.preprocessing import augment_shifts


def _both(query, ref, k, n_components, *, ref_keep=None, ref_chunks=200, scheduler="sync"):
    """The full search's (dist, ids), the bounded search's, and its exact pairs, on Dask."""
    Q = da.asarray(query).rechunk((100, -1))
    R = da.asarray(ref).rechunk((ref_chunks, -1))
    full = dask.compute(*kneighbors_dask(Q, R, k, ref_keep=ref_keep), scheduler=scheduler)
    lazy = bounded_kneighbors_dask(Q, R, k, n_components, ref_keep=ref_keep)
    dist, ids, pairs = dask.compute(*lazy, scheduler=scheduler)
    return full, (dist, ids), int(pairs.sum())


def _assert_same(full, bounded):
    assert_array_equal(bounded[1], full[1])
    assert_array_equal(bounded[0], full[0])


@pytest.mark.parametrize("k", [1, 5, 40])
def test_digits_neighbours_equal_the_full_search(digits_arrays, k):
    X, _, Q, _ = digits_arrays
    full, bounded, pairs = _both(Q, X, k, 16)
    _assert_same(full, bounded)
    # Of 8 reference chunks, the first is searched in full; the bound skips most of the rest.
    assert pairs < 0.4 * len(Q) * len(X)


def test_ties_and_duplicates_go_to_the_lower_id():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, size=(150, 32)).astype(np.float32)  # many equal distances
    ref = np.concatenate([base, base[::-1], base])  # every row three times, in other chunks
    full, bounded, _ = _both(base[:60], ref, 7, 4, ref_chunks=64)
    _assert_same(full, bounded)
    assert (bounded[0][:, :3] == 0).all()


@pytest.mark.parametrize("seed", range(3))
def test_signed_float64_far_from_the_origin(seed):
    rng = np.random.default_rng(seed)
    scale, offset = 10 ** rng.uniform(-3, 4), rng.uniform(-1e4, 1e4)
    low_rank = rng.normal(size=(1300, 6)) @ rng.normal(size=(6, 40))
    rows = (low_rank + 0.1 * rng.normal(size=(1300, 40))) * scale + offset
    full, bounded, pairs = _both(rows[:100], rows[100:], 5, 6)
    _assert_same(full, bounded)
    assert pairs < 0.5 * 100 * 1200


def test_rows_left_out_and_a_first_chunk_smaller_than_k(digits_arrays):
    X, _, Q, _ = digits_arrays
    keep = np.arange(len(X)) % 3 != 0
    keep[200:400] = False  # a whole chunk left out
    _assert_same(*_both(Q, X, 5, 16, ref_keep=keep)[:2])
    R = da.from_array(X, chunks=((3, *[200] * 7, len(X) - 1403), -1))
    Qd = da.from_array(Q, chunks=(100, -1))
    full = dask.compute(*kneighbors_dask(Qd, R, 5), scheduler="sync")
    dist, ids, _ = dask.compute(*bounded_kneighbors_dask(Qd, R, 5, 16), scheduler="sync")
    _assert_same(full, (dist, ids))


def test_on_worker_processes(client, digits_arrays):
    X, _, Q, _ = digits_arrays
    full, bounded, _ = _both(Q, X, 4, 16, scheduler=None)
    _assert_same(full, bounded)


def test_tasks_say_what_they_are(digits_arrays):
    X, _, Q, _ = digits_arrays
    dist, _, _ = bounded_kneighbors_dask(
        da.from_array(Q, chunks=(100, -1)), da.from_array(X, chunks=(200, -1)), 3, 8, name="nb"
    )
    names = {key_split(key) for key in dict(dist.__dask_graph__())}
    assert {"nb-bound-fit", "nb-bound-reference", "nb-bound"} <= names


def test_projection_never_lengthens_a_distance():
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(600, 8)) @ rng.normal(size=(8, 50))) * 100 + 3e3
    projection = fit_projection(X, 10)
    assert projection.components.shape == (50, 10) and projection.slack < 1e-5
    a, b = project(X[:100], projection), project(X[100:], projection)
    lower = ((a.ext[:, None, :-1].astype(float) - b.ext[None, :, :-1]) ** 2).sum(-1)
    true = ((X[:100, None] - X[None, 100:]) ** 2).sum(-1)
    # Less the rounding that the search allows for, a lower bound; and a tight one here.
    both = a.error[:, None] + b.error[None, :]
    norms = np.sqrt(a.sq_norms)[:, None] + np.sqrt(b.sq_norms)[None, :]
    assert (lower - both * (2 * norms + both) <= true * (1 + projection.slack)).all()
    assert np.median(lower / np.maximum(true, 1e-9)) > 0.9
    assert fit_projection(X, 80).components.shape == (50, 50)


def test_merge_candidates_keeps_the_nearest_lower_ids_first():
    dist = np.array([[1.0, 2.0], [0.5, 3.0]])
    ids = np.array([[10, 20], [5, 7]])
    rows = np.array([0, 0, 1])
    merged = merge_found(dist, ids, rows, np.array([2.0, 0.2, 3.0]), np.array([15, 30, 6]), 2)
    assert_array_equal(merged[0], [[0.2, 1.0], [0.5, 3.0]])
    assert_array_equal(merged[1], [[30, 10], [5, 6]])


@pytest.mark.parametrize(
    ("setting", "n_features", "expected"),
    [(128, 784, 128), (128, 64, 0), (16, 64, 16), (0, 784, 0), (None, 784, 0)],
)
def test_bound_components_only_where_they_pay(setting, n_features, expected):
    with dask.config.set({"mnistdist.bound-components": setting}):
        assert bound_components(n_features) == expected


@pytest.mark.slow
def test_real_mnist_shifted_references(client, mnist_dir):
    """Training images only (never the test set): 2,000 against 20,000 others and their shifts."""
    X = load_dataset("mnist", data_dir=mnist_dir).X_train
    X_aug, _ = augment_shifts(X[:20000], np.zeros(20000, dtype=np.int64))
    full, bounded, pairs = _both(X[58000:], X_aug, 4, 128, ref_chunks=10000, scheduler=None)
    _assert_same(full, bounded)
    # The first of 10 chunks in full (10% of the pairs), a few of the rest's.
    assert pairs < 0.11 * 2000 * 100000
