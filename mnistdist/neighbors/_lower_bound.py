"""A lower bound on distances from a few principal components, for exact screening.

Projecting two rows onto orthonormal directions never lengthens the distance
between them: ``||V^T (q - r)|| <= ||q - r||``. Given a query's k-th nearest
so far, a pair whose projected distance, less a rigorous bound on its
rounding, is beyond it cannot be among the query's neighbours, and its full
distance need never be computed (:mod:`mnistdist.neighbors._chain` screens
with it). The product that gives every pair's projected distance has p + 1
columns against the full distance's d + 1.

It pays where a query's k-th nearest is small against most distances and p is
a small share of d: on MNIST's 784 pixels with 64 components (docs/benchmark.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import config
from ._exact import _U32, _approx_error_bound, squared_norms

#: Rows the projection is fitted on, taken evenly from the reference's first chunk.
FIT_ROWS = 2000

#: Directions the range finder carries beyond those asked for, and its power iterations.
OVERSAMPLE = 16
POWER_ITERATIONS = 2


@dataclass(frozen=True)
class Projection:
    """Directions to project rows onto (float32 columns), and bounds on the rounding.

    ``slack`` bounds ``||V^T V - I||`` for ``V`` as stored, so that
    ``||V^T x||^2 <= (1 + slack) ||x||^2``; ``error_scale`` bounds a computed
    projection's error against the exact ``V^T x``, relative to ``||x||``.
    """

    centre: np.ndarray
    components: np.ndarray
    slack: float
    error_scale: float


@dataclass(frozen=True)
class Projected:
    """Rows projected: float32 ``(n, p + 1)`` with each squared norm last, and error bounds."""

    ext: np.ndarray
    error: np.ndarray  # per row, a bound on ||computed - exact projection||

    @property
    def sq_norms(self) -> np.ndarray:
        return self.ext[:, -1].astype(np.float64)


def fit_projection(rows: np.ndarray, n_components: int) -> Projection:
    """The top ``n_components`` principal directions of (at most :data:`FIT_ROWS` of) ``rows``."""
    rows = np.asarray(rows)
    sample = rows[:: max(1, len(rows) // FIT_ROWS)].astype(np.float64)
    centred = sample - sample.mean(axis=0)
    d = rows.shape[1]
    p = max(1, min(int(n_components), d))
    components = np.ascontiguousarray(_top_directions(centred, p), dtype=np.float32)
    v = components.astype(np.float64)
    # The largest row sum of |V^T V - I| bounds its spectral norm.
    slack = float(np.abs(v.T @ v - np.eye(p)).sum(axis=1).max())
    # Per coordinate, the centring errs by u ||x|| and the float32 dot product of
    # length d by gamma_d ||x|| (Cauchy-Schwarz), each times ||v_j|| <= sqrt(1 + slack).
    gamma = d * _U32 / (1 - d * _U32)
    error_scale = math.sqrt(p) * (gamma + 2 * _U32) * (1 + slack) * (1 + 1e-6)
    centre = sample.mean(axis=0).astype(np.float32)
    return Projection(centre, components, slack, error_scale)


def _top_directions(centred: np.ndarray, p: int) -> np.ndarray:
    """The top ``p`` principal directions of ``centred``'s rows, as columns.

    By a randomized range finder with power iterations (Halko, Martinsson and
    Tropp, 2011), seeded: on 2,000 MNIST images, the 96 directions it finds
    keep 0.9180 of the variance against 0.9188 for the exact eigenvectors, in
    half the time (0.046 against 0.10 s), and the fit is the one serial step of
    a bounded search. Any orthonormal directions keep the bound rigorous (the
    slack measures how far from orthonormal); the variance they keep makes it tight.
    """
    cov = centred.T @ centred
    d = len(cov)
    if p + OVERSAMPLE >= d:
        return np.linalg.eigh(cov)[1][:, ::-1][:, :p]
    basis = np.random.default_rng(0).standard_normal((d, p + OVERSAMPLE))
    for _ in range(1 + POWER_ITERATIONS):
        basis = np.linalg.qr(cov @ basis)[0]
    _, vectors = np.linalg.eigh(basis.T @ cov @ basis)
    return (basis @ vectors)[:, ::-1][:, :p]


def project(rows: np.ndarray, projection: Projection) -> Projected:
    """``rows`` projected in float32, with bounds on each projection's rounding."""
    # Centred in the rows' own precision, then rounded once: the error is relative to ||x||.
    centred = np.asarray(np.asarray(rows) - projection.centre, dtype=np.float32)
    p = projection.components.shape[1]
    ext = np.empty((len(centred), p + 1), dtype=np.float32)
    np.matmul(centred, projection.components, out=ext[:, :p])
    ext[:, p] = squared_norms(ext[:, :p])
    return Projected(ext, projection.error_scale * np.sqrt(squared_norms(centred)))


def bound_terms(queries: Projected, ref: Projected, slack: float) -> tuple[float, np.ndarray]:
    """``(scale, base)``: a pair may be among a query's k nearest only if its value
    ``||r'||^2 - 2 q'.r'`` is at most ``kth**2 * scale + base``, for ``kth`` the
    query's k-th nearest distance so far.

    A pair is skipped only if its projected squared distance, less its rounding
    error, exceeds the query's k-th squared distance so far: it is then strictly
    further than that neighbour, so not even a tie can be lost. The error covers
    the float32 product (as :func:`~mnistdist.neighbors._approx_error_bound`) and
    the projections' own: ``| ||a + e||^2 - ||a||^2 | <= 2 ||e|| ||a|| + ||e||^2``.
    """
    p = queries.ext.shape[1] - 1
    q_sq = queries.sq_norms
    q_norm = np.sqrt(q_sq)
    r_sq_max = float(ref.sq_norms.max())
    r_norm_max = math.sqrt(r_sq_max)
    error = _approx_error_bound(q_norm, r_norm_max, r_sq_max, p)
    both = queries.error + float(ref.error.max())
    error += both * (2 * (q_norm + r_norm_max) + both)
    return 1.0 + slack + 1e-9, error - q_sq


def bound_components(n_features: int) -> int:
    """Components the final test-set search screens by: ``bound-components``, where it pays.

    0 (search in full) where they would be over a quarter of the features:
    the projection's product would then cost too much of what it saves.
    """
    p = int(config.get("bound-components") or 0)
    return p if p > 0 and 4 * p <= n_features else 0
