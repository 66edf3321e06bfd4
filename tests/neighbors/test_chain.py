import itertools

import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from numpy.testing import assert_array_equal
from sklearn.neighbors import NearestNeighbors

from mnistdist.neighbors import _chain as _ch
from mnistdist.neighbors import bounded_kneighbors_dask, kneighbors, kneighbors_dask
from mnistdist.neighbors._chain import Found, prepare_reference, search_step
from mnistdist.neighbors._compiled import compiled_below, compiled_take
from mnistdist.neighbors._lower_bound import fit_projection


def _chain(query, ref, k, *, blocks, n_components=0, compiled=False):
    """One chain through ``ref`` cut into ``blocks`` reference blocks, in NumPy."""
    projection = fit_projection(ref, n_components) if n_components else None
    found = None
    for lo, hi in itertools.pairwise(blocks):
        block = prepare_reference(ref[lo:hi], lo, None, projection)
        found = search_step(query, block, k, found, projection, compiled)
    return found


def _ties(seed=0):
    """Rows of small integers, each three times in the reference: many equal distances."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 4, size=(300, 40)).astype(np.uint8)
    return base[:80], np.concatenate([base, base[::-1], base])


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("n_components", [0, 8])
@pytest.mark.parametrize("k", [1, 7, 40])
def test_a_chain_finds_the_exact_neighbours_with_ties_to_the_lower_id(k, n_components, compiled):
    query, ref = _ties()
    found = _chain(
        query, ref, k, blocks=[0, 5, 300, 650, 900], n_components=n_components, compiled=compiled
    )
    want_dist, want_ids = kneighbors(query, ref, k)
    assert_array_equal(found.ids, want_ids)
    assert_array_equal(found.dist, want_dist)
    assert (found.dist[:, :3] == 0).all() if k >= 3 else (found.dist[:, 0] == 0).all()


@pytest.mark.parametrize("n_components", [0, 8])
def test_compiled_and_numpy_steps_give_the_same_numbers_computing_fewer_distances(n_components):
    rng = np.random.default_rng(1)
    rows = (rng.normal(size=(1200, 6)) @ rng.normal(size=(6, 60)) * 20 + 100).clip(0, 255)
    rows = rows.astype(np.uint8)
    query, ref = rows[:100], rows[100:]
    args = dict(blocks=[0, 300, 700, 1100], n_components=n_components)
    numpy_way, compiled = (_chain(query, ref, 5, compiled=c, **args) for c in (False, True))
    assert_array_equal(compiled.ids, numpy_way.ids)
    assert_array_equal(compiled.dist, numpy_way.dist)
    assert 0 < compiled.exact_pairs <= numpy_way.exact_pairs < 100 * 1100


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("n_components", [0, 8])
def test_a_step_over_several_pieces_of_the_product_keeps_the_exact_neighbours(
    n_components, compiled
):
    query, ref = _ties(seed=2)
    big = np.concatenate([ref, ref[::-1]])  # 1800 rows: the second step spans four pieces
    found = _chain(
        query, big, 6, blocks=[0, 40, 1800], n_components=n_components, compiled=compiled
    )
    want_dist, want_ids = kneighbors(query, big, 6)
    assert_array_equal(found.ids, want_ids)
    assert_array_equal(found.dist, want_dist)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("n_components", [0, 8])
def test_a_step_takes_its_queries_in_pieces_with_the_same_neighbours(
    monkeypatch, n_components, compiled
):
    query, ref = _ties(seed=3)
    whole = _chain(query, ref, 5, blocks=[0, 4, 500, 900], n_components=n_components)
    monkeypatch.setattr(_ch, "FULL_SUB_QUERIES", 7)
    monkeypatch.setattr(_ch, "BOUND_SUB_QUERIES", 7)
    pieces = _chain(
        query, ref, 5, blocks=[0, 4, 500, 900], n_components=n_components, compiled=compiled
    )
    assert_array_equal(pieces.ids, whole.ids)
    assert_array_equal(pieces.dist, whole.dist)
    assert pieces.queries is not None and len(pieces.dist) == len(query)
    if not compiled:
        assert pieces.exact_pairs == whole.exact_pairs


def test_the_compiled_kernel_only_takes_bytes():
    u8, f32 = np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.float32)
    assert compiled_take(u8, u8) is not None
    assert compiled_take(u8, f32) is None and compiled_take(f32, f32) is None
    assert compiled_take(np.zeros((2, 40000), np.uint8), np.zeros((2, 40000), np.uint8)) is None


@pytest.mark.parametrize("shape", [(300, 512), (70, 500), (9, 63), (1, 1), (0, 5), (5, 0)])
def test_the_compiled_screen_finds_numpys_pairs_in_numpys_order(shape):
    rng = np.random.default_rng(shape[1])
    block = rng.standard_normal(shape).astype(np.float32)
    if block.size:
        block.flat[rng.integers(0, block.size, 5)] = np.nan
        block.flat[rng.integers(0, block.size, 5)] = -0.0
    assert compiled_below() is not None
    for share in (0.0, 0.001, 0.05, 1.0):  # none, a few a row, many, all but NaN
        limit = (
            np.nanquantile(block, share, axis=1, method="lower")
            if block.shape[1]
            else np.zeros(shape[0])
        )
        limit = limit.astype(np.float32)
        limit[::7] = -np.inf  # rows with no candidate among rows with some
        want = _ch._candidates(block, limit, 7)
        got = _ch._candidates(block, limit, 7, compiled=True)
        for w, g in zip(want, got, strict=True):
            assert g.dtype == w.dtype
            assert_array_equal(g, w)


def test_a_block_smaller_than_k_and_an_empty_block():
    query, ref = _ties(2)
    found = _chain(query, ref, 10, blocks=[0, 3, 3, 900])
    want_dist, want_ids = kneighbors(query, ref, 10)
    assert_array_equal(found.ids, want_ids)
    assert_array_equal(found.dist, want_dist)
    first = search_step(query, prepare_reference(ref[:3], 0), 10, None)
    assert isinstance(first, Found) and first.dist.shape == (80, 3)


@pytest.mark.parametrize("seed", range(3))
def test_float_rows_far_from_the_origin(seed):
    rng = np.random.default_rng(seed)
    scale, offset = 10 ** rng.uniform(-3, 4), rng.uniform(-1e4, 1e4)
    rows = rng.normal(size=(900, 5)) @ rng.normal(size=(5, 30)) + 0.1 * rng.normal(size=(900, 30))
    rows = rows * scale + offset
    for n_components in (0, 6):
        found = _chain(rows[:70], rows[70:], 4, blocks=[0, 200, 830], n_components=n_components)
        want_dist, want_ids = kneighbors(rows[:70], rows[70:], 4)
        assert_array_equal(found.ids, want_ids)
        assert_array_equal(found.dist, want_dist)


def test_dask_searches_rechunk_their_queries_and_give_back_their_chunks(digits_arrays):
    X, _, Q, _ = digits_arrays
    query = da.from_array(Q, chunks=90)
    ref = da.from_array(X, chunks=400)
    dist, ids = kneighbors_dask(query, ref, 5, name="nb")
    b_dist, b_ids, pairs = bounded_kneighbors_dask(query, ref, 5, 16, name="nb", chains=3)
    assert dist.chunks == b_dist.chunks == (query.chunks[0], (5,))
    names = {key_split(key) for key in dict(dist.__dask_graph__())}
    assert {"nb", "nb-reference"} <= names
    with dask.config.set(scheduler="sync"):
        (dist, ids), (b_dist, b_ids, pairs) = dask.compute((dist, ids), (b_dist, b_ids, pairs))
    want_dist, want_ids = kneighbors(Q, X, 5)
    assert_array_equal(ids, want_ids)
    assert_array_equal(b_ids, want_ids)
    assert_array_equal(b_dist, want_dist)
    assert pairs.shape == (3, 1) and 0 < pairs.sum() < len(Q) * len(X)


def test_a_search_carries_its_queries_in_one_chain_a_worker_thread(
    client, digits_arrays, monkeypatch
):
    monkeypatch.setattr(_ch, "MERGED_BLOCK_VALUES", 0)  # a step a chunk
    X, _, Q, _ = digits_arrays
    query, ref = da.from_array(Q, chunks=90), da.from_array(X, chunks=400)
    dist, ids, pairs = bounded_kneighbors_dask(query, ref, 5, 16, name="nb")
    assert pairs.numblocks[0] == sum(client.nthreads().values()) == 2
    steps = [key for key in dict(dist.__dask_graph__()) if key_split(key) == "nb-bound"]
    assert len(steps) == 2 * ref.numblocks[0]
    dist, ids = dask.compute(dist, ids)
    want_dist, want_ids = kneighbors(Q, X, 5)
    assert_array_equal(ids, want_ids)
    assert_array_equal(dist, want_dist)


@pytest.mark.parametrize("n_components", [0, 8])
def test_small_reference_chunks_are_searched_in_few_steps_with_the_same_neighbours(n_components):
    query, ref = _ties()
    q, r = da.from_array(query, chunks=40), da.from_array(ref, chunks=60)
    keep = np.arange(len(ref)) % 5 != 0
    if n_components:
        lazy = bounded_kneighbors_dask(q, r, 7, n_components, name="nb", ref_keep=keep, chains=2)
    else:
        lazy = kneighbors_dask(q, r, 7, name="nb", ref_keep=keep, chains=2)
    step = "nb-bound" if n_components else "nb"
    steps = [key for key in dict(lazy[0].__dask_graph__()) if key_split(key) == step]
    with dask.config.set(scheduler="sync"):
        dist, ids = dask.compute(*lazy[:2])
    assert len(steps) == 2 < 2 * r.numblocks[0]  # 15 chunks, one block
    want_dist, want_ids = kneighbors(query, ref[keep], 7)
    assert_array_equal(ids, np.flatnonzero(keep)[want_ids])
    assert_array_equal(dist, want_dist)


def test_merged_blocks_stay_within_their_bounds_and_chunks_are_never_cut():
    merged = _ch.merged_chunks
    assert merged((1778,) * 11, 51, 222) == (1778 * 11,)
    # Blocks of 10,000 rows with 2,048-query steps, or of MNIST's 785 columns, stay.
    assert merged((10_000,) * 4 + (7_995,), 51, 6_000) == (10_000,) * 4 + (7_995,)
    assert merged((5_000,) * 4, 785, 100) == (10_000, 10_000)
    assert merged((3, 40_000, 2, 2), 51, 2_048) == (3, 40_000, 4)
    rows = (0, 1_000, 0, 2_500, 700) * 30
    for n_cols, share in [(1, 1), (51, 222), (785, 3_000), (10_000, 50)]:
        blocks = merged(rows, n_cols, share)
        assert sum(blocks) == sum(rows)
        step_rows = min(share, _ch.FULL_SUB_QUERIES)
        limit = min(_ch.MERGED_BLOCK_VALUES // n_cols, _ch.MERGED_STEP_VALUES // step_rows)
        assert all(b <= max(limit, 2_500) for b in blocks)


@pytest.mark.parametrize("n_components", [0, 8])
def test_chains_started_from_known_neighbours_find_those_of_all_the_rows(n_components):
    # The known neighbours, among the first rows, are each query's limit from the first
    # step on; ties (rows three times over) still go to the lower id, as one search's do.
    query, ref = _ties()
    m, k = 300, 7
    keep = np.arange(len(ref)) >= m
    known = kneighbors(query, ref[:m], k)
    q, r = da.from_array(query, chunks=30), da.from_array(ref, chunks=200)
    options = {"ref_keep": keep, "known": known, "chains": 3}
    with dask.config.set(scheduler="sync"):
        if n_components:
            dist, ids, _ = dask.compute(*bounded_kneighbors_dask(q, r, k, n_components, **options))
        else:
            dist, ids = dask.compute(*kneighbors_dask(q, r, k, **options))
    want_dist, want_ids = kneighbors(query, ref, k)
    assert_array_equal(ids, want_ids)
    assert_array_equal(dist, want_dist)
    assert (ids < m).any() and (ids >= m).any()


def test_a_search_keeps_its_name_whatever_its_chains(digits_arrays):
    # The journal keeps a finished search under its name: a run resumed on a cluster
    # of another size, which cuts the queries into other chains, must find it.
    X, _, Q, _ = digits_arrays
    query, ref = da.from_array(Q, chunks=100), da.from_array(X, chunks=400)
    searches = [kneighbors_dask(query, ref, 4, chains=n) for n in (1, 2, 3)]
    assert len({dist.name for dist, _ in searches}) == len({ids.name for _, ids in searches}) == 1
    assert len({dist.chunks for dist, _ in searches}) == 1
    with dask.config.set(scheduler="sync"):
        found = [dask.compute(*search) for search in searches]
    for dist, ids in found[1:]:
        assert_array_equal(dist, found[0][0])
        assert_array_equal(ids, found[0][1])


def test_a_search_of_no_queries_finds_none(digits_arrays):
    X, _, Q, _ = digits_arrays
    query, ref = da.from_array(Q[:0], chunks=100), da.from_array(X, chunks=400)
    with dask.config.set(scheduler="sync"):
        for dist, ids in (
            kneighbors_dask(query, ref, 3),
            bounded_kneighbors_dask(query, ref, 3, 8)[:2],
        ):
            dist, ids = dask.compute(dist, ids)
            assert dist.shape == ids.shape == (0, 3)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_block_leaves_out_its_blank_columns_with_the_same_neighbours(compiled):
    """Pixels blank in every row of a reference block (as MNIST's borders are) drop out of its
    product, whatever the queries hold there; a block with none blank keeps every column."""
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 256, size=(600, 64)).astype(np.uint8)
    ref[:300, :10] = 0  # blank in the first block only
    ref[300:, 50:] = 0  # and other columns in the second
    query = rng.integers(0, 256, size=(90, 64)).astype(np.uint8)  # nothing blank
    blocks = [prepare_reference(ref[:300], 0), prepare_reference(ref[300:], 300)]
    assert_array_equal(blocks[0].columns, np.r_[10:65])
    assert_array_equal(blocks[1].columns, np.r_[0:50, 64])
    assert blocks[0].factors.shape == (300, 55)
    assert prepare_reference(query, 0).columns is None
    found = _chain(query, ref, 5, blocks=[0, 300, 600], compiled=compiled)
    want = NearestNeighbors(n_neighbors=5).fit(ref.astype(np.float64))
    want_dist, want_ids = want.kneighbors(query.astype(np.float64))
    assert_array_equal(found.ids, want_ids)
    np.testing.assert_allclose(found.dist, want_dist, rtol=1e-12)
    assert_array_equal(kneighbors(query, ref, 5, ref_rows=300)[1], want_ids)
