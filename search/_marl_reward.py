"""The shared reward of the ``marl`` / ``rl`` agents (numpy only).

``reward = scalarize(u, w) - penalty * infeasibility``:

- ``u`` (in [0, 1], higher is better) normalizes each objective over the study's COMPLETE
  trials so far (the feasible ones when there are any). ``"log"`` (default): log10 of each
  strictly positive *minimized* objective (latency, energy, area: costs whose ratios matter,
  and which span decades across a design space), then the running ``(v - min) / (max - min)``;
  maximized objectives such as accuracy stay linear. ``"minmax"``: the running min/max of the
  raw values. ``"rank"``: the mid-rank empirical CDF (scale-free, but it squeezes the best few
  designs together, which is where a front's extremes live).
- ``scalarize``: ``"hypervolume"`` (default) is the random hypervolume scalarization
  ``s_w(u) = min_j (u_j / w_j)^d`` with the reference point at ``u = 0`` and ``w`` uniform on
  the positive unit sphere (Golovin & Zhang, "Random Hypervolume Scalarizations for Provable
  Multi-Objective Black Box Optimization", ICML 2020): its expectation over ``w`` of the best
  value found is proportional to the hypervolume, so maximizing it rewards covering the front,
  extremes included. ``"chebyshev"`` is ParEGO's augmented Chebyshev
  ``-(max_j w_j (1 - u_j) + rho * sum_j w_j (1 - u_j))`` with ``w`` on the simplex (Knowles
  2006); it favours balanced designs and measured lower hypervolume on nb201 x systolic.
  Either way ``w`` is the trial's preference vector, the agents' state, so one policy learns
  the whole front instead of one point of it.
- ``infeasibility`` is 0 for a feasible trial (every constraint value <= 0) and
  ``1 + mean_k(max(c_k, 0) / scale_k)`` otherwise, ``scale_k`` being the largest violation of
  constraint ``k`` seen so far: an infeasible trial always loses ``penalty`` and loses more the
  further it is from feasible, which points the agents back to the feasible region.

Why not a Pareto-rank reward: the non-dominated rank of a trial changes whenever a later trial
lands, so the same action would be rewarded differently over time, and rank carries no
preference, so it rewards crowding one end of the front as much as covering it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "utilities",
    "infeasibility",
    "chebyshev",
    "hv_scalarization",
    "preference",
    "shared_rewards",
    "normalized",
    "RewardModel",
    "MODEL_RIDGE",
]

#: ridge penalty (per one-hot coefficient, intercept free) of :class:`RewardModel`'s fits
MODEL_RIDGE = 1.0


def preference(
    rng: np.random.Generator,
    n: int,
    scalarize: str,
    fixed: Sequence[float] | None = None,
) -> np.ndarray:
    """A preference vector over ``n`` objectives: uniform on the positive unit sphere for the
    hypervolume scalarization, uniform on the simplex (``Dirichlet(1)``) for Chebyshev;
    ``fixed`` weights are scaled onto the same set."""
    if fixed:
        w = np.asarray(fixed, dtype=float)
    elif scalarize == "hypervolume":
        w = np.abs(rng.standard_normal(n))
    else:
        return rng.dirichlet(np.ones(n))
    scale = np.linalg.norm(w) if scalarize == "hypervolume" else w.sum()
    return w / scale if scale > 0 else np.full(n, 1.0 / np.sqrt(n))


def utilities(
    values: np.ndarray, directions: Sequence[str], ref: np.ndarray, method: str
) -> np.ndarray:
    """Per-objective utility in [0, 1] (1 = best) of every row of ``values`` (n x d),
    normalized over the rows selected by the boolean mask ``ref``."""
    v = np.asarray(values, dtype=float)
    if method == "log":
        v = v.copy()
        for j, d in enumerate(directions):
            if d == "minimize" and np.all(v[:, j] > 0):
                v[:, j] = np.log10(v[:, j])
    v = v * np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    r = v[ref] if np.any(ref) else v
    u = np.empty_like(v)
    for j in range(v.shape[1]):
        col = np.sort(r[:, j])
        if method == "rank":
            lo = np.searchsorted(col, v[:, j], side="left")
            hi = np.searchsorted(col, v[:, j], side="right")
            u[:, j] = (lo + hi) / (2.0 * len(col))
        else:
            span = col[-1] - col[0]
            u[:, j] = 0.5 if span <= 0 else (v[:, j] - col[0]) / span
    return np.clip(u, 0.0, 1.0)


def infeasibility(constraints: Sequence[Sequence[float]]) -> np.ndarray:
    """0 for feasible rows, ``1 + mean normalized violation`` otherwise (see module doc)."""
    n = len(constraints)
    k = max((len(c) for c in constraints), default=0)
    if k == 0:
        return np.zeros(n)
    c = np.zeros((n, k))
    for i, row in enumerate(constraints):
        c[i, : len(row)] = row
    pos = np.maximum(c, 0.0)
    scale = pos.max(axis=0)
    scale[scale <= 0] = 1.0
    out = 1.0 + (pos / scale).mean(axis=1)
    out[~np.any(c > 0, axis=1)] = 0.0
    return out


def chebyshev(u: np.ndarray, w: np.ndarray, rho: float) -> np.ndarray:
    """Augmented Chebyshev reward (<= 0; 0 at the ideal point) of rows ``u`` under ``w``."""
    gap = np.asarray(w, dtype=float) * (1.0 - np.asarray(u, dtype=float))
    return -(gap.max(axis=1) + rho * gap.sum(axis=1))


def hv_scalarization(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Golovin & Zhang (2020) hypervolume scalarization ``min_j (u_j / w_j)^d`` with the
    reference point at u = 0; ``w`` on the positive unit sphere."""
    u = np.asarray(u, dtype=float)
    w = np.maximum(np.asarray(w, dtype=float), 1e-9)
    return np.min(u / w, axis=1) ** u.shape[1]


def shared_rewards(
    values: np.ndarray,
    constraints: Sequence[Sequence[float]],
    directions: Sequence[str],
    batch: np.ndarray,
    weights: np.ndarray,
    *,
    method: str,
    rho: float,
    penalty: float,
    scalarize: str = "chebyshev",
) -> np.ndarray:
    """Rewards of the rows ``batch`` (indices into ``values``) under their ``weights``.

    ``values`` (n x d) and ``constraints`` (n lists) describe every COMPLETE trial known, which
    the normalization and the violation scales use.
    """
    u, infeas = normalized(values, constraints, directions, method)
    return _scalarized(u[batch], infeas[batch], weights, scalarize, rho, penalty)


def normalized(
    values: np.ndarray,
    constraints: Sequence[Sequence[float]],
    directions: Sequence[str],
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(utilities, infeasibility) of every row, as :func:`shared_rewards` scores them."""
    infeas = infeasibility(constraints)
    return utilities(values, directions, infeas == 0, method), infeas


def _scalarized(
    u: np.ndarray, infeas: np.ndarray, w: np.ndarray, scalarize: str, rho: float, penalty: float
) -> np.ndarray:
    s = hv_scalarization(u, w) if scalarize == "hypervolume" else chebyshev(u, w, rho)
    return s - penalty * infeas


class RewardModel:
    """The shared reward of a design predicted from its actions alone (``critic = "model"``).

    One ridge regression on the one-hot actions (plus a free intercept) per objective's
    utility and one for the infeasibility, fitted on every finished trial; the prediction is
    scalarized under any preference ``w`` exactly as :func:`shared_rewards` scores a measured
    design (utilities clipped to [0, 1], infeasibility at least 0). Because the preference
    enters through the known scalarization and not through a learned input, one fit serves
    every ``w``, relabelled self-imitation included. ``sizes`` are the action counts per
    parameter, ``actions`` (n x P) the trials' actions, ``u`` (n x d) and ``infeas`` (n,) their
    :func:`normalized` values.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        actions: np.ndarray,
        u: np.ndarray,
        infeas: np.ndarray,
        *,
        scalarize: str,
        rho: float,
        penalty: float,
        ridge: float = MODEL_RIDGE,
    ) -> None:
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._args = (scalarize, rho, penalty)
        x = self._encode(np.asarray(actions, dtype=np.int64))
        y = np.column_stack([np.asarray(u, dtype=float), np.asarray(infeas, dtype=float)])
        pen = np.full(x.shape[1], float(ridge))
        pen[-1] = 0.0
        self.coef_ = np.linalg.solve(x.T @ x + np.diag(pen), x.T @ y)
        self.n_obj = y.shape[1] - 1

    def _encode(self, actions: np.ndarray) -> np.ndarray:
        x = np.zeros((actions.shape[0], int(self._offsets[-1]) + 1))
        x[:, -1] = 1.0
        x[np.arange(actions.shape[0])[:, None], actions + self._offsets[:-1]] = 1.0
        return x

    def predict(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(utilities (n x d) in [0, 1], infeasibility (n,) >= 0) predicted for ``actions``."""
        pred = self._encode(np.asarray(actions, dtype=np.int64)) @ self.coef_
        return np.clip(pred[:, : self.n_obj], 0.0, 1.0), np.maximum(pred[:, -1], 0.0)

    def __call__(self, w: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Predicted rewards (n,) of ``actions`` (n x P) under preferences ``w`` (n x d)."""
        u, infeas = self.predict(actions)
        return _scalarized(u, infeas, np.asarray(w, dtype=float), *self._args)
