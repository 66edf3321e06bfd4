import numpy as np
import pytest

from mnistdist.neighbors import idm_distances


def direct_idm(q: np.ndarray, r: np.ndarray, warp: int, context: int) -> float:
    """IDM distance written out pixel by pixel, straight from the definition."""

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
                    best = min(best, float(((cq - np.array(ctx(gr, y2, x2))) ** 2).sum()))
            total += best
    return total


def images(X):
    return X.reshape(len(X), 8, 8).astype(np.float64) / 255.0


@pytest.mark.parametrize("warp, context", [(0, 0), (1, 1), (2, 1), (1, 2)])
def test_equals_the_direct_implementation(digits_arrays, warp, context):
    X, _, Q, _ = digits_arrays
    q, r = Q[:4], X[[3, 10, 0, 7]]
    got = idm_distances(q, r, warp=warp, context=context, block_pairs=3)
    want = [direct_idm(a, b, warp, context) for a, b in zip(images(q), images(r), strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


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
