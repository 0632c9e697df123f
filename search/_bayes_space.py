"""A fixed joint search space as numpy arrays, for the predictor-guided sampler.

Each candidate is a row of *internal* values, one column per parameter: the choice index of a
categorical, the grid index of a stepped int/float, or the position in [0, 1] (log scale where
the distribution is log) of a continuous float. Sampling and mutation work on whole arrays;
:meth:`JointSpace.features` turns rows into the surrogate's input (one-hot for categoricals,
[0, 1] positions for the rest) and :meth:`JointSpace.decode` turns one row back into Optuna
parameter values.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = ["JointSpace", "sample_distribution"]


@dataclass(frozen=True)
class _Column:
    name: str
    dist: BaseDistribution
    kind: str  # "cat" | "grid" | "cont"
    n: int  # choices or grid points; 0 for "cont"


def _grid(dist: IntDistribution | FloatDistribution) -> np.ndarray | None:
    """The values a stepped distribution can take, or None for a continuous float."""
    if isinstance(dist, IntDistribution):
        if dist.log:
            return np.arange(dist.low, dist.high + 1, dtype=float)
        return np.arange(dist.low, dist.high + 1, dist.step, dtype=float)
    if dist.step is None:
        return None
    n = int(math.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1
    return dist.low + dist.step * np.arange(n, dtype=float)


class JointSpace:
    """The parameters of ``distributions`` (an ordered mapping name -> Optuna distribution).

    Raises TypeError for a distribution type Optuna does not define.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        self.distributions = dict(distributions)
        self.columns: list[_Column] = []
        self._grids: list[np.ndarray | None] = []
        self._pos: list[np.ndarray | None] = []  # feature position of each grid value
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                self.columns.append(_Column(name, dist, "cat", len(dist.choices)))
                self._grids.append(None)
                self._pos.append(None)
            elif isinstance(dist, IntDistribution | FloatDistribution):
                grid = _grid(dist)
                if grid is None:
                    self.columns.append(_Column(name, dist, "cont", 0))
                    self._grids.append(None)
                    self._pos.append(None)
                else:
                    self.columns.append(_Column(name, dist, "grid", len(grid)))
                    self._grids.append(grid)
                    self._pos.append(_positions(grid, dist.log))
            else:
                raise TypeError(f"unsupported distribution for {name}: {dist!r}")
        self.n_features = sum(c.n if c.kind == "cat" else 1 for c in self.columns)
        self._cells = _nb201_cell_columns(self.columns)
        self._cell_features: dict[tuple[int, ...], np.ndarray] = {}
        if self._cells is not None:
            self.n_features += len(_path_feature_names())

    def __len__(self) -> int:
        return len(self.columns)

    # -- rows <-> params ----------------------------------------------------------------------
    def encode(self, params: Mapping[str, Any]) -> np.ndarray | None:
        """The internal row of ``params``; None when a parameter is missing or outside."""
        row = np.empty(len(self.columns))
        for j, (col, grid) in enumerate(zip(self.columns, self._grids)):
            if col.name not in params:
                return None
            v = params[col.name]
            if col.kind == "cat":
                assert isinstance(col.dist, CategoricalDistribution)
                try:
                    row[j] = col.dist.choices.index(v)
                except ValueError:
                    return None
            elif col.kind == "grid":
                assert grid is not None
                k = int(np.argmin(np.abs(grid - float(v))))
                if not math.isclose(grid[k], float(v), rel_tol=1e-9, abs_tol=1e-12):
                    return None
                row[j] = k
            else:
                assert isinstance(col.dist, FloatDistribution)
                d = col.dist
                if not d.low <= float(v) <= d.high:
                    return None
                row[j] = _unit(float(v), d.low, d.high, d.log)
        return row

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        """Optuna parameter values of one internal row."""
        out: dict[str, Any] = {}
        for j, (col, grid) in enumerate(zip(self.columns, self._grids)):
            x = row[j]
            if col.kind == "cat":
                assert isinstance(col.dist, CategoricalDistribution)
                out[col.name] = col.dist.choices[int(x)]
            elif col.kind == "grid":
                assert grid is not None
                v = grid[int(x)]
                out[col.name] = int(round(v)) if isinstance(col.dist, IntDistribution) else float(v)
            else:
                assert isinstance(col.dist, FloatDistribution)
                d = col.dist
                if d.log:
                    v = math.exp(math.log(d.low) + x * (math.log(d.high) - math.log(d.low)))
                else:
                    v = d.low + x * (d.high - d.low)
                out[col.name] = float(min(max(v, d.low), d.high))
        return out

    # -- arrays -------------------------------------------------------------------------------
    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` rows drawn uniformly (categoricals and grids by index, floats in [0, 1])."""
        out = np.empty((n, len(self.columns)))
        for j, (col, pos) in enumerate(zip(self.columns, self._pos)):
            if col.kind == "cont":
                out[:, j] = rng.random(n)
            elif col.kind == "grid" and getattr(col.dist, "log", False):
                assert pos is not None  # log-uniform, like Optuna: nearest grid point
                out[:, j] = _nearest(pos, rng.random(n))
            else:
                out[:, j] = rng.integers(0, col.n, n)
        return out

    def mutate(self, rng: np.random.Generator, parents: np.ndarray, n: int) -> np.ndarray:
        """``n`` children of random ``parents`` rows, each with 1 or 2 parameters re-drawn.

        A re-drawn categorical takes another choice; a grid or float moves to a random value
        (half the time a neighbour of the old one, so local steps in ordered parameters are
        common). Returns an empty array without parents.
        """
        if len(parents) == 0 or n <= 0 or not self.columns:
            return np.empty((0, len(self.columns)))
        kids = parents[rng.integers(0, len(parents), n)].copy()
        d = len(self.columns)
        k = np.where(rng.random(n) < 0.5, 1, min(2, d))
        for i in range(n):
            for j in rng.choice(d, size=k[i], replace=False):
                col = self.columns[j]
                old = kids[i, j]
                if col.kind == "cont":
                    if rng.random() < 0.5:
                        kids[i, j] = float(np.clip(old + rng.normal(0.0, 0.1), 0.0, 1.0))
                    else:
                        kids[i, j] = rng.random()
                elif col.n > 1:
                    if col.kind == "grid" and rng.random() < 0.5:
                        step = 1 if rng.random() < 0.5 else -1
                        new = old + step
                        kids[i, j] = new if 0 <= new < col.n else old - step
                    else:
                        new = rng.integers(0, col.n - 1)
                        kids[i, j] = new + (new >= old)  # any value but the old one
        return kids

    def features(self, rows: np.ndarray) -> np.ndarray:
        """The surrogate's inputs: one-hot columns for categoricals, positions in [0, 1]
        (log scale for log distributions) for grids and floats."""
        rows = np.atleast_2d(rows)
        out = np.zeros((len(rows), self.n_features))
        f = 0
        for j, (col, pos) in enumerate(zip(self.columns, self._pos)):
            if col.kind == "cat":
                idx = rows[:, j].astype(int)
                out[np.arange(len(rows)), f + idx] = 1.0
                f += col.n
            elif col.kind == "grid":
                assert pos is not None
                out[:, f] = pos[rows[:, j].astype(int)]
                f += 1
            else:
                out[:, f] = rows[:, j]
                f += 1
        if self._cells is not None:
            out[:, f:] = self._nb201_features(rows)
        return out

    def _nb201_features(self, rows: np.ndarray) -> np.ndarray:
        """Path encoding of the rows' NB201 cells (memoized per cell: 15,625 at most)."""
        from cosearch.predictors._encodings import nb201_path_features

        assert self._cells is not None
        idx, choices = self._cells
        cells = [tuple(int(v) for v in r) for r in rows[:, idx]]
        new = sorted({c for c in cells if c not in self._cell_features})
        if new:
            names = list(_NB201_EDGES)
            feats = nb201_path_features(
                [{n: choices[k][c[k]] for k, n in enumerate(names)} for c in new]
            )
            self._cell_features.update(zip(new, feats))
        return np.array([self._cell_features[c] for c in cells])

    def keys(self, rows: np.ndarray) -> list[bytes]:
        """A hashable key per row (to drop duplicates of evaluated or pending candidates)."""
        r = np.ascontiguousarray(np.round(np.atleast_2d(rows), 9))
        return [r[i].tobytes() for i in range(len(r))]


_NB201_EDGES = tuple(
    f"net.edge_{a}_{b}" for a, b in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
)


def _nb201_cell_columns(columns: list[_Column]) -> tuple[list[int], list[tuple[Any, ...]]] | None:
    """Where the six NB201 edge choices are among ``columns`` (and their choices), when the
    space is an nb201 one. The surrogate then also sees the cell's path encoding (BANANAS'
    idea, :func:`cosearch.predictors._encodings.nb201_path_features`): one-hot edge ops alone
    cannot tell that a ``none`` on one edge cuts every path through it, and the accuracy model
    learned from one-hot inputs ranked cells poorly early on (Spearman ~0.5 at 100 trials)."""
    from cosearch.spaces.nb201 import OPS

    by_name = {c.name: j for j, c in enumerate(columns)}
    if not all(e in by_name for e in _NB201_EDGES):
        return None
    idx = [by_name[e] for e in _NB201_EDGES]
    choices = []
    for j in idx:
        dist = columns[j].dist
        if not isinstance(dist, CategoricalDistribution) or not set(dist.choices) <= set(OPS):
            return None
        choices.append(tuple(dist.choices))
    return idx, choices


def _path_feature_names() -> tuple[str, ...]:
    from cosearch.predictors._encodings import NB201_PATH_FEATURE_NAMES

    return NB201_PATH_FEATURE_NAMES


def _positions(grid: np.ndarray, log: bool) -> np.ndarray:
    if len(grid) == 1:
        return np.zeros(1)
    g = np.log(grid) if log else grid
    return (g - g[0]) / (g[-1] - g[0])


def _nearest(pos: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the grid position nearest to each ``u`` (``pos`` sorted ascending)."""
    hi = np.clip(np.searchsorted(pos, u), 1, len(pos) - 1) if len(pos) > 1 else np.zeros(len(u))
    hi = hi.astype(int)
    if len(pos) == 1:
        return hi
    lo = hi - 1
    return np.where(np.abs(pos[lo] - u) <= np.abs(pos[hi] - u), lo, hi)


def _unit(v: float, low: float, high: float, log: bool) -> float:
    if high == low:
        return 0.0
    if log:
        return (math.log(v) - math.log(low)) / (math.log(high) - math.log(low))
    return (v - low) / (high - low)


def sample_distribution(dist: BaseDistribution, seed: int, trial_number: int, name: str) -> Any:
    """One uniform draw from ``dist``, fixed by ``(seed, trial_number, name)``.

    Used for parameters outside the joint space and for trials before the space is known, so
    that those draws too are deterministic per seed and trial number.
    """
    rng = np.random.default_rng([seed, trial_number, zlib.crc32(name.encode())])
    space = JointSpace({name: dist})
    return space.decode(space.random(rng, 1)[0])[name]
