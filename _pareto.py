"""Non-dominated sorting helpers (plain functions over value arrays)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "to_minimization",
    "nondominated_mask",
    "nondominated_fronts",
    "crowding_distance",
    "promotion_order",
    "IncrementalFront",
]


def to_minimization(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Flip maximized columns so that every column is minimized."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float) * sign


def nondominated_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (n x m) that no other row dominates.

    Duplicate rows are all kept (none dominates the other). Runs the sort-based
    :func:`cosearch.store.queries.pareto_mask` (O(n log n) for two objectives), which
    returns the same mask as the pairwise definition (:func:`_nondominated_mask_quadratic`,
    kept as the reference the tests compare against).
    """
    from cosearch.store.queries import pareto_mask

    return pareto_mask(np.asarray(values, dtype=float), directions)


def _nondominated_mask_quadratic(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """The pairwise O(n^2) definition of :func:`nondominated_mask` (a test oracle)."""
    v = to_minimization(values, directions)
    n = len(v)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        le = np.all(v <= v[i], axis=1)
        lt = np.any(v < v[i], axis=1)
        if np.any(le & lt):
            mask[i] = False
    return mask


def nondominated_fronts(
    values: np.ndarray, directions: Sequence[str], *, enough: int | None = None
) -> list[np.ndarray]:
    """Row indices of the successive non-dominated fronts of ``values`` (rank 0 first).

    Peels fronts until every row is ranked, or until the fronts found hold at least
    ``enough`` rows (callers that need the best k rows stop early).
    """
    v = np.asarray(values, dtype=float)
    left = np.arange(len(v))
    fronts: list[np.ndarray] = []
    taken = 0
    while len(left) and (enough is None or taken < enough):
        mask = nondominated_mask(v[left], directions)
        fronts.append(left[mask])
        taken += int(mask.sum())
        left = left[~mask]
    return fronts


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (Deb et al., 2002, section III-B):
    per objective, the gap between a row's two neighbours in sorted order over the
    objective's range, summed; the extremes of every objective get +inf."""
    v = np.asarray(values, dtype=float)
    n, m = v.shape if v.ndim == 2 else (len(v), 1)
    v = v.reshape(n, m)
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(v[:, k], kind="stable")
        col = v[order, k]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if not np.isfinite(span) or span <= 0:
            continue
        dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def promotion_order(
    values: np.ndarray,
    directions: Sequence[str],
    violation: np.ndarray,
    *,
    limit: int | None = None,
) -> np.ndarray:
    """Row indices, most promising first: feasible rows (``violation`` <= 0) by
    non-dominated rank, within a rank by crowding distance (spread along the front first,
    ties by row order); then infeasible rows by total violation, smallest first.

    With ``limit``, only enough fronts to order the first ``limit`` rows are computed (the
    rest follow unordered by rank, still feasible first).
    """
    v = np.asarray(values, dtype=float)
    viol = np.asarray(violation, dtype=float)
    feas = np.flatnonzero(viol <= 0)
    out: list[np.ndarray] = []
    if len(feas):
        fronts = nondominated_fronts(v[feas], directions, enough=limit)
        ranked = 0
        for front in fronts:
            cd = crowding_distance(to_minimization(v[feas[front]], directions))
            out.append(feas[front[np.lexsort((front, -cd))]])
            ranked += len(front)
        if ranked < len(feas):
            done = np.concatenate(fronts)
            out.append(np.setdiff1d(feas, feas[done]))
    bad = np.flatnonzero(~(viol <= 0))
    out.append(bad[np.argsort(viol[bad], kind="stable")])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class IncrementalFront:
    """A Pareto front updated one point at a time (O(front size) per point)."""

    def __init__(self, directions: Sequence[str]) -> None:
        self.sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
        self.points: list[np.ndarray] = []

    def add(self, values: Sequence[float]) -> bool:
        p = np.asarray(values, dtype=float) * self.sign
        for q in self.points:
            if np.all(q <= p) and np.any(q < p):
                return False
        self.points = [q for q in self.points if not (np.all(p <= q) and np.any(p < q))]
        self.points.append(p)
        return True

    def __len__(self) -> int:
        return len(self.points)

    def best(self) -> np.ndarray | None:
        """Per-objective best value over the front, in the original directions."""
        if not self.points:
            return None
        return np.min(np.stack(self.points), axis=0) * self.sign
