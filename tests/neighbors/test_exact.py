import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from sklearn.neighbors import NearestNeighbors

from mnistdist.neighbors import block_kneighbors, kneighbors, kneighbors_dask, merge_kneighbors
from mnistdist.neighbors._exact import _at_least, order_by_row_then_value


def _sklearn(query, ref, k):
    return (
        NearestNeighbors(n_neighbors=k, algorithm="brute")
        .fit(ref.astype(np.float64))
        .kneighbors(query.astype(np.float64))
    )


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_on_signed_floats(seed):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(2000, 30)) * 10 ** rng.uniform(-2, 3)
    query = rng.normal(size=(150, 30)) * ref.std()
    ref[7] = query[3]  # an exact duplicate: distance 0
    dist, ids = kneighbors(query, ref, 6, ref_rows=300)
    dist_sk, ids_sk = _sklearn(query, ref, 6)
    np.testing.assert_array_equal(ids, ids_sk)
    np.testing.assert_allclose(dist, dist_sk, rtol=1e-6, atol=1e-6 * ref.std())
    assert dist[3, 0] == 0 and ids[3, 0] == 7


def test_exact_on_uint8_pixels(digits_arrays):
    X, _, Q, _ = digits_arrays
    dist, ids = kneighbors(Q, X, 5, ref_rows=400)
    diffs = Q[:, None, :].astype(np.float64) - X[ids].astype(np.float64)
    # Distances are exact, not float32 approximations.
    np.testing.assert_array_equal(dist, np.sqrt((diffs**2).sum(-1)))
    dist_sk, ids_sk = _sklearn(Q, X, 5)
    np.testing.assert_allclose(dist, dist_sk, atol=1e-6)
    # Small integer pixels tie often; ids may differ only among equal distances.
    rows, cols = np.nonzero(ids != ids_sk)
    assert all(
        np.sum(dist[r] == dist[r, c]) > 1 or c == 4 for r, c in zip(rows, cols, strict=False)
    )


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.float32])
def test_any_numeric_dtype(dtype):
    rng = np.random.default_rng(1)
    ref, query = (
        rng.integers(0, 300, size=(500, 16)).astype(dtype),
        rng.integers(0, 300, size=(40, 16)).astype(dtype),
    )
    dist, _ids = kneighbors(query, ref, 3)
    dist_sk, _ids_sk = _sklearn(query, ref, 3)
    np.testing.assert_allclose(dist, dist_sk, atol=1e-6)


def test_ties_go_to_the_lower_index():
    ref = np.array([[1.0, 0], [0, 1.0], [-1.0, 0], [5.0, 5.0]])
    dist, ids = block_kneighbors(np.zeros((1, 2)), ref, 3)
    np.testing.assert_array_equal(ids, [[0, 1, 2]])
    np.testing.assert_array_equal(dist, [[1, 1, 1]])


def test_k_larger_than_reference():
    with pytest.raises(ValueError, match="larger than the 3 reference rows"):
        kneighbors(np.zeros((2, 2)), np.zeros((3, 2)), 4)
    dist, ids = block_kneighbors(np.zeros((2, 2)), np.ones((3, 2)), 5)
    assert dist.shape == ids.shape == (2, 3)


def test_merge_keeps_global_order():
    a = (np.array([[1.0, 3.0]]), np.array([[10, 11]]))
    b = (np.array([[2.0, 3.0]]), np.array([[5, 6]]))
    dist, ids = merge_kneighbors([a, b], 3)
    np.testing.assert_array_equal(dist, [[1, 2, 3]])
    np.testing.assert_array_equal(ids, [[10, 5, 6]])  # tie at 3: lower id first


def test_dask_version_with_excluded_rows(client, digits_arrays):
    X, _, Q, _ = digits_arrays
    keep = np.ones(len(X), dtype=bool)
    keep[::3] = False
    dist, ids = kneighbors_dask(
        da.from_array(Q, chunks=100),
        da.from_array(X, chunks=250),
        4,
        name="neighbors-test",
        ref_keep=keep,
    )
    assert dist.chunks == ((100, 100, 100, 60), (4,))
    names = {key[0] for key in dict(ids.__dask_graph__())}
    assert {key_split(n) for n in names} >= {"neighbors-test", "neighbors-test-reference"}
    with dask.config.set(scheduler=client):
        dist, ids = dask.compute(dist, ids)
    kept = np.flatnonzero(keep)
    dist_np, ids_np = kneighbors(Q, X[kept], 4)
    np.testing.assert_array_equal(ids, kept[ids_np])
    np.testing.assert_array_equal(dist, dist_np)
    assert keep[ids].all()


def test_dask_version_refuses_too_few_rows():
    X = da.zeros((10, 3), chunks=5)
    with pytest.raises(ValueError, match="larger than the 2 reference rows"):
        kneighbors_dask(X, X, 3, ref_keep=np.arange(10) < 2)


def test_order_by_row_then_value_is_lexsorts():
    rng = np.random.default_rng(0)
    rows = np.sort(rng.integers(0, 50, 5000))
    # Negative and positive values, many ties, huge and tiny magnitudes.
    values = rng.choice([-3e30, -2.5, -1e-30, 1e-30, 0.5, 2.5, 7e30], 5000).astype(np.float32)
    values[::7] = rng.standard_normal(len(values[::7]))
    for r in (rows, rng.permutation(rows)):  # sorted as the screen gives them, or not
        np.testing.assert_array_equal(order_by_row_then_value(r, values), np.lexsort((values, r)))
    wide = values.astype(np.float64)  # any other dtype: lexsort itself
    np.testing.assert_array_equal(order_by_row_then_value(rows, wide), np.lexsort((wide, rows)))


def test_a_float32_limit_keeps_exactly_what_the_float64_one_keeps():
    rng = np.random.default_rng(1)
    limit = rng.standard_normal(1000) * 10.0 ** rng.integers(-30, 30, 1000)
    limit[:3] = [0.0, 1.0, -2.0]  # exactly representable: unchanged
    rounded = _at_least(limit, np.float32)
    assert rounded.dtype == np.float32 and (rounded >= limit).all()
    below = np.nextafter(rounded, -np.inf)  # the float32 just under: over the limit
    assert (below < limit).all()
    np.testing.assert_array_equal(rounded[:3], [0.0, 1.0, -2.0])
