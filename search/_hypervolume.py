"""Exact hypervolume of a set of points (minimization) by slicing (HSO, While et al. 2006).

The dominated volume of ``points`` below the reference point ``ref``: each point ``p`` with
``p < ref`` in every coordinate dominates the box ``[p, ref]``; the result is the volume of the
union of those boxes. Slicing sorts the points by the last coordinate and sums, over the
slabs between consecutive values, the slab depth times the (d-1)-dimensional hypervolume of
the points below the slab; 2-D is a sweep. Exact and dependency-free; O(n^(d-2) n log n),
which is fine for the few hundred points of a campaign front in 2 to 4 objectives.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hypervolume", "normalize"]


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by ``points`` (n x d, minimized) and bounded by ``ref`` (d,).

    Points that do not strictly dominate ``ref`` in every coordinate add nothing. Returns 0.0
    for an empty set. Raises ValueError when shapes disagree.
    """
    p = np.asarray(points, dtype=float)
    r = np.asarray(ref, dtype=float).ravel()
    if p.size == 0:
        return 0.0
    if p.ndim != 2 or p.shape[1] != r.size:
        raise ValueError(f"points must be n x {r.size}; got shape {p.shape}")
    p = p[np.all(p < r, axis=1)]
    if len(p) == 0:
        return 0.0
    return _hv(_nondominated(p), r)


def _nondominated(p: np.ndarray) -> np.ndarray:
    """Rows of ``p`` that no other row weakly dominates (one copy of duplicates kept)."""
    p = np.unique(p, axis=0)
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        dominated_by = np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1)
        if np.any(dominated_by):
            keep[i] = False
    return p[keep]


def _hv(p: np.ndarray, r: np.ndarray) -> float:
    d = p.shape[1]
    if d == 1:
        return float(r[0] - p[:, 0].min())
    if d == 2:
        order = np.argsort(p[:, 0], kind="stable")
        x, y = p[order, 0], p[order, 1]
        best_y = np.minimum.accumulate(y)
        # each x-slab [x_i, x_{i+1}) is covered from the best y seen so far up to r[1]
        widths = np.diff(np.append(x, r[0]))
        return float(np.sum(widths * (r[1] - best_y)))
    order = np.argsort(p[:, -1], kind="stable")
    p = p[order]
    z = np.append(p[:, -1], r[-1])
    total = 0.0
    for i in range(len(p)):
        depth = z[i + 1] - z[i]
        if depth <= 0:
            continue
        # dominated points in a slice do not change the union, so no filtering is needed
        total += depth * _hv(p[: i + 1, :-1], r[:-1])
    return float(total)


def normalize(values: np.ndarray, bounds: list[tuple[float, float]], log: list[bool]) -> np.ndarray:
    """Map objective values to [0, 1] minimization coordinates with fixed bounds.

    Column ``j`` goes linearly (or in log10 when ``log[j]``) from ``bounds[j] = (best, worst)``
    in the objective's own direction to 0 (best) and 1 (worst); values outside are not clipped
    (a point beyond the worst bound lies outside the reference box (1, ..., 1)).
    """
    v = np.asarray(values, dtype=float)
    out = np.empty_like(v)
    for j, ((best, worst), lg) in enumerate(zip(bounds, log)):
        col = v[:, j]
        if lg:
            col, best, worst = np.log10(col), np.log10(best), np.log10(worst)
        out[:, j] = (col - best) / (worst - best)
    return out
