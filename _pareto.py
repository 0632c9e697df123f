"""Non-dominated sorting helpers (plain functions over value arrays)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["to_minimization", "nondominated_mask", "IncrementalFront"]


def to_minimization(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Flip maximized columns so that every column is minimized."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float) * sign


def nondominated_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (n x m) that no other row dominates.

    Duplicate rows are all kept (none dominates the other).
    """
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
