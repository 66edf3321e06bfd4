"""Measures deformation-aware recipes on two training holdouts: error counts and McNemar p-values.

The holdouts are ``--preset deform``'s: train on training images 0-49,999 and validate
on 50,000-59,999 (A), train on 10,000-59,999 and validate on 0-9,999 (B). The test set
is never read. Every recipe starts from the same candidates: the deskewed validation
image's 100 nearest training images by Euclidean distance, re-ranked by IDM (warp 2,
context 1), 4 neighbours voting by 1/distance, as ``deform`` chose. Each recipe's
errors are compared with deform's on the same images by McNemar's test (exact binomial
on the images one gets right and the other wrong). Distances are cached in ``--cache``
(``<holdout>10000_<recipe>.npy``): a second run only tallies. Prints a table, writes JSON.

    python benchmarks/deformation_holdouts.py --data $MNISTDIST_DATA --cache holdout-cache \\
        --out holdouts.json [--recipes deform,copies-each-10-g0.2,...]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np
import scipy.ndimage
from scipy.stats import binomtest

from mnistdist.data import read_idx
from mnistdist.neighbors import idm_distances, kneighbors, vote
from mnistdist.neighbors._idm_kernel import idm_candidate_distances
from mnistdist.preprocessing import Deskew, Distortion, distort_images

HOLDOUTS = {"A": (0, 50000, 50000, 60000), "B": (10000, 60000, 0, 10000)}
N, M = 10000, 100  # validation images, candidates
ELASTIC = Distortion(alpha=34.0, sigma=4.0, seed=0)
RECIPES = {
    "a20s4": Distortion(alpha=20.0, sigma=4.0, seed=0),
    "a34s6": Distortion(alpha=34.0, sigma=6.0, seed=0),
    "aff": Distortion(alpha=0.0, sigma=0.0, rotate=10.0, scale=0.1, shear=0.2, seed=0),
}


class Holdout:
    """One holdout's images (deskewed, and ``raw`` before deskewing), labels, candidates and
    cached distances."""

    def __init__(self, name: str, images, raw, labels: np.ndarray, cache: pathlib.Path):
        t0, t1, v0, v1 = HOLDOUTS[name]
        self.name, self.images, self.raw, self.labels = name, images, raw, labels
        self.cache = cache
        self.train, self.val = np.arange(t0, t1), np.arange(v0, v1)[:N]
        path = cache / f"cand_{name}.npy"
        if not path.exists():
            _, ids = kneighbors(images[self.val], images[self.train], 200)
            np.save(path, self.train[ids].astype(np.int32))
        self.cand = np.load(path)[:N, :M].astype(np.int64)
        self.y = labels[self.val]

    def cached(self, key: str, compute):
        path = self.cache / f"{self.name}{N}_{key}.npy"
        if not path.exists():
            t = time.perf_counter()
            np.save(path, compute())
            print(f"  {path.name}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        return np.load(path)

    def idm(self, key="w2", refs=None, warp=2, queries=None, **kw):
        q = self.images[self.val] if queries is None else queries
        refs = self.images if refs is None else refs
        return self.cached(
            key, lambda: idm_candidate_distances(q, refs, self.cand, 28, warp, 1, **kw)
        )

    def errors(self, dist, ids=None, k=4, weights="distance") -> np.ndarray:
        ids = self.cand if ids is None else ids
        order = np.argsort(dist, axis=1, kind="stable")
        d, i = np.take_along_axis(dist, order, 1), np.take_along_axis(ids, order, 1)
        return vote(d, i, self.labels, 10, k, weights).argmax(1) != self.y

    def proba(self, dist, ids=None, k=4):
        ids = self.cand if ids is None else ids
        order = np.argsort(dist, axis=1, kind="stable")
        d, i = np.take_along_axis(dist, order, 1), np.take_along_axis(ids, order, 1)
        return vote(d, i, self.labels, 10, k, "distance")

    def copies(self, k: int) -> np.ndarray:
        """IDM of each query to copy ``k`` (elastic, seed 0) of each of its candidates."""

        def run():
            u, at = np.unique(self.cand, return_inverse=True)
            drawn = distort_images(self.images[u], u, k, ELASTIC)
            return idm_candidate_distances(
                self.images[self.val], drawn, at.reshape(self.cand.shape), 28, 2, 1
            )

        return self.cached(f"w2_a34s4_{k}", run)

    def top_copies(self, tag: str, top: int = 20, n_copies: int = 10) -> np.ndarray:
        """IDM to ``n_copies`` copies (recipe ``tag``) of each query's ``top`` nearest by IDM."""
        best = self.ranked()[1][:, :top]

        def run():
            u, at = np.unique(best, return_inverse=True)
            out = np.empty((n_copies, N, top))
            for c in range(n_copies):
                drawn = distort_images(self.images[u], u, c, RECIPES[tag])
                out[c] = idm_candidate_distances(
                    self.images[self.val], drawn, at.reshape(best.shape), 28, 2, 1
                )
            return out

        return self.cached(f"casc{top}_{tag}", run)

    def ranked(self):
        base = self.idm()
        order = np.argsort(base, axis=1, kind="stable")
        return np.take_along_axis(base, order, 1), np.take_along_axis(self.cand, order, 1)


def _each(h: Holdout, n_copies: int, penalty: float, top: int = M):
    """Each copy of the ``top`` nearest a neighbour of its own, at (1 + penalty) x its distance."""
    base = h.idm()
    rank = np.argsort(np.argsort(base, axis=1, kind="stable"), axis=1)
    parts = [base] + [
        np.where(rank < top, h.copies(c) * (1 + penalty), np.inf) for c in range(n_copies)
    ]
    return h.errors(np.concatenate(parts, 1), np.tile(h.cand, (1, n_copies + 1)))


def _top(h: Holdout, tag: str, n_copies: int, penalty: float):
    d, i = h.ranked()
    c = h.top_copies(tag)
    parts = [d, *list(c[:n_copies] * (1 + penalty))]
    return h.errors(np.concatenate(parts, 1), np.concatenate([i] + [i[:, :20]] * n_copies, 1))


def _vts(h: Holdout, tag: str, weight: float, n_copies: int = 4):
    recipe = ELASTIC if tag == "elastic" else RECIPES["aff"]
    recipe = Distortion(**{**recipe.__dict__, "seed": 1})

    def run():
        out = np.empty((n_copies, N, M))
        for c in range(n_copies):
            q = distort_images(h.images[h.val], h.val, c, recipe)
            out[c] = idm_candidate_distances(q, h.images, h.cand, 28, 2, 1)
        return out

    v = h.cached(f"vts_{'a34s4' if tag == 'elastic' else 'aff'}", run)
    p = weight * h.proba(h.idm()) + sum(h.proba(v[c]) for c in range(n_copies))
    return p.argmax(1) != h.y


def _tangent(h: Holdout, beta: float):
    def run():
        out = np.empty((N, M))
        for s in range(0, N, 200):
            q, r = h.images[h.val[s : s + 200]], h.images[h.cand[s : s + 200].ravel()]
            out[s : s + 200] = tangent_distance(q, r.reshape(len(q), M, -1))
        return out

    td = h.cached("td", run)
    base = h.idm()
    return h.errors(base / np.median(base.min(1)) + beta * td / np.median(td.min(1)))


def tangent_distance(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Two-sided tangent distance (7 tangents a side, Simard et al.) of each query to its refs."""

    def tangents(x):
        s = scipy.ndimage.gaussian_filter(x.reshape(-1, 28, 28) / 255.0, (0, 1.0, 1.0))
        fy, fx = np.gradient(s, axis=(1, 2))
        yy, xx = np.mgrid[:28, :28].astype(np.float32) - 13.5
        t = [fx, fy, yy * fx - xx * fy, xx * fx + yy * fy, xx * fx - yy * fy, yy * fx + xx * fy]
        return np.stack([*t, fx * fx + fy * fy], 1).reshape(len(s), 7, -1).astype(np.float32)

    n, m, _ = r.shape
    tq, tr = tangents(q), tangents(r.reshape(n * m, -1)).reshape(n, m, 7, -1)
    a = np.concatenate([np.broadcast_to(tq[:, None], tr.shape), -tr], 2)
    d = (r - q[:, None]).astype(np.float32) / 255.0
    g = a @ a.transpose(0, 1, 3, 2) + 1e-6 * np.eye(14, dtype=np.float32)
    b = (a @ d[..., None])[..., 0]
    sol = np.linalg.solve(g.astype(np.float64), b[..., None].astype(np.float64))[..., 0]
    return (d.astype(np.float64) ** 2).sum(-1) - (b * sol).sum(-1)


def _reverse_distances(h: Holdout) -> np.ndarray:
    """IDM d(r, q) of each query q and candidate r: the candidate's pixels moved."""

    def run():
        out = np.empty((N, M))
        for s in range(0, N, 500):  # 500 queries' pairs at a time: 150 MB
            q = np.repeat(h.images[h.val[s : s + 500]], M, axis=0)
            r = h.images[h.cand[s : s + 500].ravel()]
            out[s : s + 500] = idm_distances(r, q, 2, 1).reshape(-1, M)
        return out

    return h.cached("w2_rev", run)


def _reverse(h: Holdout, weight: float):
    return h.errors(h.idm() + weight * _reverse_distances(h))


def _reverse_max(h: Holdout):
    """Each pair's larger distance of the two directions."""
    return h.errors(np.maximum(h.idm(), _reverse_distances(h)))


def _soft_votes(h: Holdout, tau: float):
    """Every candidate votes exp(-(d / d1 - 1) / tau), d1 the query's nearest by IDM."""
    d, i = h.ranked()
    weights = np.exp(-(d / d[:, :1] - 1) / tau)
    scores = np.zeros((N, 10))
    np.add.at(scores, (np.repeat(np.arange(N), M), h.labels[i].ravel()), weights.ravel())
    return scores.argmax(1) != h.y


def _class_sums(h: Holdout, k: int):
    """The class whose k nearest candidates have the smallest summed IDM distance."""
    d, i = h.ranked()
    labels = h.labels[i]
    sums = np.stack(
        [np.sort(np.where(labels == c, d, np.inf), axis=1)[:, :k].sum(1) for c in range(10)], 1
    )
    return sums.argmin(1) != h.y


def _with_raw(h: Holdout, weight: float):
    """IDM on the deskewed images plus ``weight`` x IDM on the images before deskewing (each
    in units of its median)."""
    base = h.idm()
    raw = h.idm("w2_raw", refs=h.raw, queries=h.raw[h.val])
    return h.errors(base / np.median(base) + weight * raw / np.median(raw))


def _upsampled(h: Holdout):
    _d, i = h.ranked()

    def run():
        def up(x):
            return scipy.ndimage.zoom(x.reshape(-1, 28, 28), (1, 2, 2), order=1).reshape(len(x), -1)

        u, at = np.unique(i[:, :20], return_inverse=True)
        return idm_candidate_distances(
            up(h.images[h.val]), up(h.images[u]), at.reshape(N, 20), 56, 4, 2
        )

    return h.errors(h.cached("up2_w4c2_top20", run), i[:, :20])


def _edited(h: Holdout):
    """Wilson editing: drop training images that their own 4 nearest (leave-one-out) outvote."""
    _d, i = h.ranked()
    lab = h.labels[i[:, :10]]
    suspects = np.unique(i[(lab != lab[:, :1]).any(1), :10])  # only these can change a vote

    def run():
        _, nb = kneighbors(h.images[suspects], h.images[h.train], M + 1)
        nb = h.train[nb]
        ids = np.stack([row[row != s][:M] for row, s in zip(nb, suspects, strict=True)])
        dist = idm_candidate_distances(h.images[suspects], h.images, ids, 28, 2, 1)
        return np.stack([dist, ids.astype(np.float64)])

    loo = h.cached("loo_R", run)
    o = np.argsort(loo[0], 1, kind="stable")
    ld, li = np.take_along_axis(loo[0], o, 1), np.take_along_axis(loo[1].astype(np.int64), o, 1)
    bad = suspects[vote(ld, li, h.labels, 10, 4, "distance").argmax(1) != h.labels[suspects]]
    return h.errors(np.where(np.isin(h.cand, bad), np.inf, h.idm()))


def _selected_with_copies(h: Holdout, n_copies: int = 4, n: int = 3000, penalty: float = 0.0):
    """The Euclidean pre-selection among the training images and their elastic copies (each
    copy a reference), IDM to the very reference found; the first ``n`` validation images."""
    q = h.val[:n]

    def run():
        copies = [distort_images(h.images[h.train], h.train, c, ELASTIC) for c in range(n_copies)]
        _, nb = kneighbors(h.images[q], np.concatenate([h.images[h.train], *copies]), M)
        return nb

    nb = h.cached(f"eucl_copies{n_copies}_n{n}", run)
    copy, image = nb // len(h.train), h.train[nb % len(h.train)]

    def idm():
        out = np.empty((n, M))
        for c in range(n_copies + 1):
            refs = (
                h.images if c == 0 else distort_images(h.images, np.arange(60000), c - 1, ELASTIC)
            )
            d = idm_candidate_distances(h.images[q], refs, np.where(copy == c, image, 0), 28, 2, 1)
            out[copy == c] = d[copy == c]
        return out

    dist = h.cached(f"eucl_copies{n_copies}_n{n}_idm", idm) * np.where(copy > 0, 1 + penalty, 1)
    order = np.argsort(dist, axis=1, kind="stable")
    d, i = np.take_along_axis(dist, order, 1), np.take_along_axis(image, order, 1)
    return vote(d, i, h.labels, 10, 4, "distance").argmax(1) != h.y[:n]


def _power(h: Holdout, k: int, p: float):
    d, i = h.ranked()
    w = (d[:, :1] / d[:, :k]) ** p
    votes = np.zeros((N, 10))
    np.add.at(votes, (np.repeat(np.arange(N), k), h.labels[i[:, :k]].ravel()), w.ravel())
    return votes.argmax(1) != h.y


def recipes() -> dict:
    """Recipe name -> (what it is, function of a holdout giving its error vector)."""
    r = {"deform": ("IDM warp 2, 100 candidates, 4-NN by 1/distance", lambda h: h.errors(h.idm()))}
    for warp in (2, 3):
        for lam in (1e4, 3e4, 1e5, 3e5):
            r[f"w{warp}-cost{lam:g}"] = (
                f"warp {warp}, displacement cost {lam:g} x (dx^2 + dy^2)",
                lambda h, w=warp, c=lam: h.errors(
                    h.idm(f"w{w}_lam{c:g}", warp=w, displacement_cost=c)
                ),
            )
    for k in (1, 2, 5, 10):
        r[f"copies-min-{k}"] = (
            f"each candidate's distance the least over it and {k} elastic copies",
            lambda h, k=k: h.errors(np.minimum.reduce([h.idm()] + [h.copies(c) for c in range(k)])),
        )
        r[f"copies-each-{k}"] = (
            f"{k} elastic copies of every candidate, each a neighbour",
            lambda h, k=k: _each(h, k, 0.0),
        )
    for k, g, top in ((10, 0.1, M), (10, 0.2, M), (5, 0.2, M), (10, 0.2, 10), (10, 0.2, 20)):
        r[f"copies-each-{k}-g{g}-top{top}"] = (
            f"{k} elastic copies of the {top} nearest, each a neighbour at {1 + g:g} x distance",
            lambda h, k=k, g=g, t=top: _each(h, k, g, t),
        )
    for tag in RECIPES:
        for k, g in ((4, 0.2), (10, 0.0), (10, 0.2)):
            r[f"{tag}-{k}-g{g}-top20"] = (
                f"{k} copies ({tag}) of the 20 nearest, each a neighbour at {1 + g:g} x distance",
                lambda h, t=tag, k=k, g=g: _top(h, t, k, g),
            )
    for tag in ("elastic", "affine"):
        for wt in (1.0, 4.0):
            r[f"vts-{tag}-w{wt:g}"] = (
                f"votes of the query and 4 {tag} copies of it summed (the query's x{wt:g})",
                lambda h, t=tag, w=wt: _vts(h, t, w),
            )
    r["tangent-0.1"] = (
        "IDM + 0.1 x two-sided tangent distance (medians as units)",
        lambda h: _tangent(h, 0.1),
    )
    r["symmetric"] = ("IDM d(q, r) + d(r, q)", lambda h: _reverse(h, 1.0))
    r["symmetric-0.25"] = ("IDM d(q, r) + 0.25 d(r, q)", lambda h: _reverse(h, 0.25))
    r["reverse-max"] = ("the larger of IDM d(q, r) and d(r, q)", _reverse_max)
    for tau in (0.02, 0.05, 0.1):
        r[f"soft-votes-{tau:g}"] = (
            f"all 100 candidates vote exp(-(d / d1 - 1) / {tau:g})",
            lambda h, t=tau: _soft_votes(h, t),
        )
    for k in (1, 2, 3):
        r[f"class-sums-{k}"] = (
            f"the class whose {k} nearest have the least summed distance",
            lambda h, k=k: _class_sums(h, k),
        )
    for wt in (0.25, 1.0):
        r[f"with-raw-{wt:g}"] = (
            f"IDM + {wt:g} x IDM on the images before deskewing (medians as units)",
            lambda h, w=wt: _with_raw(h, w),
        )
    r["upsampled"] = ("IDM on 2x images (warp 4, context 2) of the 20 nearest", _upsampled)
    r["edited"] = ("training images outvoted by their own neighbours removed", _edited)
    r["votes-1/d^5-k6"] = ("6 neighbours voting by (d1 / d)^5", lambda h: _power(h, 6, 5.0))
    for g in (0.0, 0.2):
        r[f"selected-with-copies-g{g}"] = (
            "100 Euclidean candidates among the training images and 4 elastic copies of each, "
            f"a copy at {1 + g:g} x distance (first 3,000 validation images)",
            lambda h, g=g: _selected_with_copies(h, penalty=g),
        )
    return r


def mcnemar(ours: np.ndarray, theirs: np.ndarray) -> dict:
    b, c = int((ours & ~theirs).sum()), int((~ours & theirs).sum())
    return {"only_deform": b, "only_recipe": c, "p": binomtest(b, b + c).pvalue if b + c else 1.0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("MNISTDIST_DATA"))
    parser.add_argument("--cache", default="holdout-cache")
    parser.add_argument("--out", default="holdouts.json")
    parser.add_argument("--recipes", default=None, help="comma-separated (default: all)")
    parser.add_argument("--holdouts", default="A,B")
    args = parser.parse_args(argv)
    cache = pathlib.Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    paths = {name: cache / f"train_{name}.npy" for name in ("raw", "dsk", "y")}
    if not all(path.exists() for path in paths.values()):
        if not args.data:
            print("deformation_holdouts: give --data DIR or set MNISTDIST_DATA", file=sys.stderr)
            return 2
        raw = read_idx(pathlib.Path(args.data) / "train-images-idx3-ubyte.gz").reshape(60000, -1)
        np.save(paths["raw"], raw)
        np.save(paths["dsk"], Deskew().fit_transform(raw).astype(np.float32))
        np.save(paths["y"], read_idx(pathlib.Path(args.data) / "train-labels-idx1-ubyte.gz"))
    images, raw, labels = (np.load(paths[name]) for name in ("dsk", "raw", "y"))
    table = recipes()
    names = args.recipes.split(",") if args.recipes else list(table)
    holdouts = [Holdout(h, images, raw, labels, cache) for h in args.holdouts.split(",")]
    rows = []
    print("| recipe | " + " | ".join(f"{h.name} errors | {h.name} p" for h in holdouts) + " |")
    print("|---|" + "---|---|" * len(holdouts))
    for name in names:
        what, fn = table[name]
        row = {"recipe": name, "what": what}
        for h in holdouts:
            errors = fn(h)  # of the first len(errors) validation images
            deform = h.errors(h.idm())[: len(errors)]
            row[h.name] = {
                "images": len(errors),
                "errors": int(errors.sum()),
                "deform_errors": int(deform.sum()),
                **mcnemar(deform, errors),
            }
        rows.append(row)
        cells = " | ".join(
            f"{row[h.name]['errors']} (deform {row[h.name]['deform_errors']}) | "
            f"{row[h.name]['p']:.2f}"
            for h in holdouts
        )
        print(f"| {name} | {cells} |", flush=True)
    pathlib.Path(args.out).write_text(json.dumps({"validation_images": N, "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
