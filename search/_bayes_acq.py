"""Acquisition functions of the predictor-guided sampler, over normalized minimized objectives.

- :func:`expected_hvi`: expected hypervolume improvement (EHVI; Emmerich et al., 2006) of
  each candidate over the current front, for independent Gaussian predictions.
- :func:`parego_lcb`: a random augmented-Chebyshev scalarization (ParEGO, Knowles 2006) of the
  lower confidence bound, as in Paria et al., "A Flexible Framework for Multi-Objective
  Bayesian Optimization using Random Scalarizations", UAI 2019.
- :func:`prob_feasible`: probability that every constraint value is <= 0.

All work on arrays: ``mu``/``sd`` are (candidates x objectives), smaller is better.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, ndtr

__all__ = [
    "expected_hvi",
    "parego_lcb",
    "prob_feasible",
    "log_prob_feasible",
    "nondominated",
    "improvement_points",
]


def nondominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (minimization; duplicates all kept)."""
    p = np.asarray(points, dtype=float)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    # sort by the first coordinate so that a dominator always comes earlier, then sweep
    order = np.lexsort(p.T[::-1])
    keep = np.ones(len(p), dtype=bool)
    kept: list[int] = []
    for i in order:
        q = p[kept] if kept else np.empty((0, p.shape[1]))
        if len(q) and np.any(np.all(q <= p[i], axis=1) & np.any(q < p[i], axis=1)):
            keep[i] = False
        else:
            kept.append(int(i))
    return keep


def improvement_points(
    front: np.ndarray, lower: np.ndarray, ref: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Points spread uniformly over the region of the box ``[lower, ref]`` that ``front``
    does not dominate, and the volume each stands for.

    The hypervolume improvement of a point ``y`` is the volume of that region which ``y``
    dominates; counting the returned points ``y`` dominates, times the volume per point, is
    its Monte-Carlo estimate.
    """
    z = lower + rng.random((n, len(ref))) * (ref - lower)
    if len(front):
        dominated = np.zeros(n, dtype=bool)
        for f in front:
            dominated |= np.all(f <= z, axis=1)
        z = z[~dominated]
    return z, float(np.prod(ref - lower)) / n


def expected_hvi(
    mu: np.ndarray, sd: np.ndarray, points: np.ndarray, cell: float, chunk: int = 256
) -> np.ndarray:
    """E[hypervolume improvement] of each candidate given independent Gaussians N(mu, sd^2).

    ``points`` and ``cell`` come from :func:`improvement_points`. For a candidate ``Y``, the
    expected improvement is ``cell * sum_k P(Y <= z_k)`` and, with independent objectives,
    ``P(Y <= z) = prod_j Phi((z_j - mu_j) / sd_j)``: Monte Carlo over the non-dominated
    region, exact over the predictive distribution (lower variance than sampling ``Y``).
    """
    out = np.zeros(len(mu))
    if len(points) == 0:
        return out
    for s in range(0, len(mu), chunk):
        m = mu[s : s + chunk, None, :]
        v = sd[s : s + chunk, None, :]
        prob = ndtr((points[None, :, :] - m) / v).prod(axis=2)
        out[s : s + chunk] = cell * prob.sum(axis=1)
    return out


def parego_lcb(
    mu: np.ndarray, sd: np.ndarray, weights: np.ndarray, beta: float, rho: float = 0.05
) -> np.ndarray:
    """Acquisition (larger is better): minus the augmented Chebyshev scalarization of the
    lower confidence bound ``mu - beta * sd`` under ``weights`` (on the simplex)."""
    lcb = mu - beta * sd
    w = np.asarray(weights, dtype=float)
    return -(np.max(w * lcb, axis=1) + rho * np.sum(w * lcb, axis=1))


def prob_feasible(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(every constraint value <= 0) under independent Gaussians; 1 without constraints."""
    if mu.shape[1] == 0:
        return np.ones(len(mu))
    return ndtr(-mu / sd).prod(axis=1)


def log_prob_feasible(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """log P(every constraint value <= 0): ranks candidates where the probability itself
    underflows to zero (far from any feasible region)."""
    if mu.shape[1] == 0:
        return np.zeros(len(mu))
    return log_ndtr(-mu / sd).sum(axis=1)
