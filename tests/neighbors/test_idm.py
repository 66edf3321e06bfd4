import concurrent.futures

import numpy as np
import pytest

from mnistdist.neighbors import idm_distances, idm_rerank


def direct_idm(q: np.ndarray, r: np.ndarray, warp: int, context: int, cost: float = 0.0) -> float:
    """IDM distance written out pixel by pixel, straight from the definition (``cost``: the
    displacement cost, times the squared length of each pixel's move)."""

    def pixel(img, y, x):
        h, w = img.shape
        return float(img[y, x]) if 0 <= y < h and 0 <= x < w else 0.0

    def gradients(img):
        h, w = img.shape
        gx, gy = np.zeros((h, w)), np.zeros((h, w))
        for y in range(h):
            for x in range(w):
                for d, wt in ((-1, 1), (0, 2), (1, 1)):
                    gx[y, x] += wt * (pixel(img, y + d, x + 1) - pixel(img, y + d, x - 1))
                    gy[y, x] += wt * (pixel(img, y + 1, x + d) - pixel(img, y - 1, x + d))
        return gx, gy

    def ctx(grads, y, x):
        return [
            pixel(g, y + dy, x + dx)
            for dy in range(-context, context + 1)
            for dx in range(-context, context + 1)
            for g in grads
        ]

    gq, gr = gradients(q), gradients(r)
    h, w = q.shape
    total = 0.0
    for y in range(h):
        for x in range(w):
            cq = np.array(ctx(gq, y, x))
            best = np.inf
            for y2 in range(max(0, y - warp), min(h, y + warp + 1)):
                for x2 in range(max(0, x - warp), min(w, x + warp + 1)):
                    moved = cost * ((y2 - y) ** 2 + (x2 - x) ** 2)
                    match = float(((cq - np.array(ctx(gr, y2, x2))) ** 2).sum())
                    best = min(best, match + moved)
            total += best
    return total


def images(X):
    return X.reshape(len(X), 8, 8).astype(np.float64) / 255.0


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
@pytest.mark.parametrize("warp, context", [(0, 0), (1, 1), (2, 1), (1, 2), (3, 1)])
def test_equals_the_direct_implementation(digits_arrays, warp, context, kernel):
    X, _, Q, _ = digits_arrays
    q, r = Q[:4], X[[3, 10, 0, 7]]
    got = idm_distances(q, r, warp=warp, context=context, block_pairs=3, kernel=kernel)
    want = [direct_idm(a, b, warp, context) for a, b in zip(images(q), images(r), strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_displacement_cost_equals_the_direct_implementation(digits_arrays):
    X, _, Q, _ = digits_arrays
    q, r = Q[4:7], X[[1, 2, 5]]
    for cost in (0.5, 4.0):
        got = idm_distances(q, r, warp=2, context=1, displacement_cost=cost)
        want = [direct_idm(a, b, 2, 1, cost) for a, b in zip(images(q), images(r), strict=True)]
        np.testing.assert_allclose(got, want, rtol=1e-5)
    # A cost never shortens a distance, and a huge one leaves only the unmoved match (warp 0).
    plain = idm_distances(q, r, warp=2)
    assert (idm_distances(q, r, warp=2, displacement_cost=1.0) >= plain).all()
    np.testing.assert_allclose(
        idm_distances(q, r, warp=2, displacement_cost=1e12), idm_distances(q, r, warp=0)
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_compiled_kernel_equals_the_numpy_one(digits_arrays, dtype):
    """Each pixel's best match is the same float32 number: the sums agree to rounding."""
    X, _, Q, _ = digits_arrays
    rng = np.random.default_rng(1)
    q, r = Q[:300].astype(dtype), X[rng.integers(0, len(X), 300)].astype(dtype)
    for warp, context in ((1, 1), (2, 1), (2, 2)):
        compiled = idm_distances(q, r, warp, context)
        reference = idm_distances(q, r, warp, context, kernel="numpy")
        np.testing.assert_allclose(compiled, reference, rtol=1e-6)


def test_threads_share_the_compiled_kernel(digits_arrays):
    """It holds no GIL, keeps no state between calls: threads get what one thread gets."""
    X, _, Q, _ = digits_arrays
    ids = np.random.default_rng(2).integers(0, len(X), size=(40, 25))
    blocks = [(Q[i : i + 10], ids[i : i + 10]) for i in range(0, 40, 10)]
    alone = [idm_rerank(q, X, c, 2, 1) for q, c in blocks]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda b: idm_rerank(b[0], X, b[1], 2, 1), blocks * 3))
    for got, want in zip(together, alone * 3, strict=True):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_zero_for_an_image_and_itself_and_never_negative(digits_arrays):
    X, _, Q, _ = digits_arrays
    np.testing.assert_array_equal(idm_distances(X[:50], X[:50]), 0.0)
    rng = np.random.default_rng(0)
    d = idm_distances(Q[:200], X[rng.integers(0, len(X), 200)], warp=1)
    assert (d >= 0).all() and (d > 0).mean() > 0.9


def test_tolerates_a_one_pixel_shift_where_euclidean_does_not(digits_arrays):
    X, _, _, _ = digits_arrays
    # A blank 3-pixel frame, as MNIST's digits have, so the shift loses no ink.
    img = np.pad(X[:100].reshape(100, 8, 8).astype(np.float64), ((0, 0), (3, 3), (3, 3)))
    shifted = np.roll(img, 1, axis=2)
    other = np.roll(img, 1, axis=0)  # another digit for each
    img, shifted, other = (a.reshape(100, 196) for a in (img, shifted, other))
    euclid_shift = ((img - shifted) ** 2).sum(axis=1)
    euclid_other = ((img - other) ** 2).sum(axis=1)
    # Euclidean: a shifted copy is often no nearer than another digit; IDM: it is at 0.
    assert (euclid_shift >= 0.5 * euclid_other).mean() > 0.3
    np.testing.assert_allclose(idm_distances(shifted, img, warp=1), 0.0, atol=1e-6)
    assert (idm_distances(other, img, warp=1) > 0).all()


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="warp"):
        idm_distances(np.zeros((1, 64)), np.zeros((1, 64)), warp=-1)
    with pytest.raises(ValueError, match="square"):
        idm_distances(np.zeros((1, 60)), np.zeros((1, 60)))
    with pytest.raises(ValueError, match="shape"):
        idm_distances(np.zeros((2, 64)), np.zeros((1, 64)))
    with pytest.raises(ValueError, match="displacement_cost"):
        idm_distances(np.zeros((1, 64)), np.zeros((1, 64)), displacement_cost=-1.0)
    with pytest.raises(ValueError, match="kernel"):
        idm_distances(np.zeros((1, 64)), np.zeros((1, 64)), kernel="fortran")
