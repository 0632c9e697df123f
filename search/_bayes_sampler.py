"""The predictor-guided Optuna sampler behind ``bayesian`` with ``sampler = "predictor"``
(see :mod:`cosearch.search.bayesian` for the algorithm and its options)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from cosearch.search._bayes_acq import (
    expected_hvi,
    improvement_points,
    log_prob_feasible,
    nondominated,
    parego_lcb,
    prob_feasible,
)
from cosearch.search._bayes_space import JointSpace, sample_distribution
from cosearch.search._bayes_surrogate import TreeEnsemble

__all__ = ["PredictorSampler"]

#: share of the candidate pool made by mutating front members (the rest: uniform samples)
_MUTATION_SHARE = 0.5
#: the reference point, in normalized units (observed worst = 1)
_REF = 1.1


class PredictorSampler(BaseSampler):
    """Surrogate-guided multi-objective sampler (build it through ``bayesian``).

    ``options`` holds ``n_startup``, ``acquisition`` ("ehvi" | "parego"), ``pool_size``,
    ``n_trees``, ``mc_points``, ``beta``, ``transform`` and ``beyond``; see the strategy's
    docstring.
    Every draw of a trial derives from ``(seed, trial.number)``.
    """

    def __init__(self, *, seed: int, options: Mapping[str, Any]) -> None:
        self._seed = int(seed)
        self._opts = dict(options)
        self._space: JointSpace | None = None
        self._rows: dict[int, np.ndarray | None] = {}  # trial number -> encoded row
        #: what the last proposal did: "random", "feasibility" or the acquisition name
        self.last_mode: str = ""

    # -- Optuna interface ---------------------------------------------------------------------
    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._space is None:
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                if t.distributions:
                    self._space = JointSpace(t.distributions)
                    break
        return {} if self._space is None else dict(self._space.distributions)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or self._space is None:
            return {}
        rng = np.random.default_rng([self._seed, trial.number])
        row = self._propose(study, trial, rng)
        params = self._space.decode(row)
        return {k: v for k, v in params.items() if k in search_space}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return sample_distribution(param_distribution, self._seed, trial.number, param_name)

    def reseed_rng(self) -> None:
        # nothing to reseed: every trial's draws derive from (seed, trial number)
        pass

    # -- the proposal -------------------------------------------------------------------------
    def _row(self, t: FrozenTrial) -> np.ndarray | None:
        assert self._space is not None
        # a RUNNING trial may not have all its parameters yet: encode it again until it has
        if self._rows.get(t.number) is None or t.state == TrialState.RUNNING:
            self._rows[t.number] = self._space.encode(t.params)
        return self._rows[t.number]

    def _propose(self, study: optuna.Study, trial: FrozenTrial, rng: np.random.Generator) -> Any:
        space = self._space
        assert space is not None
        directions = study.directions
        n_obj = len(directions)
        done: list[FrozenTrial] = []
        pending: list[np.ndarray] = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            if t.number == trial.number:
                continue
            row = self._row(t)
            if row is None:
                continue
            if t.state == TrialState.RUNNING:
                pending.append(row)
            elif (
                t.values is not None
                and len(t.values) == n_obj
                and all(math.isfinite(v) for v in t.values)
            ):
                done.append(t)
        if len(done) < max(2, self._opts["n_startup"]):
            self.last_mode = "random"
            return space.random(rng, 1)[0]

        X = np.stack([self._rows[t.number] for t in done])  # type: ignore[misc]
        Y = self._objectives(done, directions)
        C = _constraints(done)
        feasible = np.all(C <= 0, axis=1) if C.shape[1] else np.ones(len(done), dtype=bool)

        # surrogate over objectives (normalized, minimized) and constraint values
        lo, hi = Y.min(axis=0), Y.max(axis=0)
        span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
        Yn = (Y - lo) / span
        model = TreeEnsemble(
            n_trees=self._opts["n_trees"], seed=int(rng.integers(0, 2**31 - 1))
        ).fit(space.features(X), np.hstack([Yn, C]))

        # candidate pool: mutations of the front (or of the least-violating trials) + uniform
        if feasible.any():
            idx = np.flatnonzero(feasible)
            parents = X[idx[nondominated(Yn[idx])]]
        else:
            parents = X[np.argsort(np.clip(C, 0, None).sum(axis=1), kind="stable")[:8]]
        size = self._opts["pool_size"]
        n_mut = int(size * _MUTATION_SHARE)
        pool = np.vstack([space.mutate(rng, parents, n_mut), space.random(rng, size - n_mut)])
        seen = set(space.keys(X))
        if pending:
            seen |= set(space.keys(np.array(pending)))
        pool = _unique(pool, space.keys(pool), seen)
        if len(pool) == 0:  # everything nearby was tried: fall back to a uniform draw
            self.last_mode = "random"
            return space.random(rng, 1)[0]

        mu, sd = model.predict(space.features(pool))
        pof = prob_feasible(mu[:, n_obj:], sd[:, n_obj:])
        if not feasible.any():
            self.last_mode = "feasibility"
            logp = log_prob_feasible(mu[:, n_obj:], sd[:, n_obj:])
            near = np.flatnonzero(logp >= logp.max() - 1e-9)
            return pool[near[np.argmax(sd[near, :n_obj].mean(axis=1))]]
        m, s = mu[:, :n_obj], sd[:, :n_obj]
        if self._opts["acquisition"] == "parego":
            w = rng.dirichlet(np.ones(n_obj))
            score = parego_lcb(m, s, w, self._opts["beta"])
            score = score - score.min() + 1e-12  # positive, so that PoF can scale it
            self.last_mode = "parego"
        else:
            front = Yn[feasible][nondominated(Yn[feasible])]
            if pending:
                # kriging believer: a pending trial counts as observed at its predicted mean
                # (when predicted feasible), so parallel workers are sent elsewhere
                pm, ps = model.predict(space.features(np.array(pending)))
                ok = prob_feasible(pm[:, n_obj:], ps[:, n_obj:]) >= 0.5
                front = np.vstack([front, pm[ok, :n_obj]])
                front = front[nondominated(front)]
            lower = np.minimum(front.min(axis=0), 0.0) - self._opts["beyond"]
            ref = np.full(n_obj, _REF)
            points, cell = improvement_points(front, lower, ref, self._opts["mc_points"], rng)
            score = expected_hvi(m, s, points, cell)
            self.last_mode = "ehvi"
        return pool[_argmax(score * pof, pof * s.mean(axis=1))]

    def _objectives(self, done: Sequence[FrozenTrial], directions: Sequence[Any]) -> np.ndarray:
        """Objective values as minimization columns, transformed per ``transform``."""
        from scipy.stats import rankdata  # 0.7 s to import: `cosearch strategies` lists this

        Y = np.array([t.values for t in done], dtype=float)
        for j, d in enumerate(directions):
            if d == StudyDirection.MAXIMIZE:
                Y[:, j] = -Y[:, j]
            if self._opts["transform"] == "rank":
                # empirical CDF: a few extreme trials (a degenerate 10 % cell at 0.003 ms)
                # no longer squeeze every useful trial into a corner of the unit box
                Y[:, j] = (rankdata(Y[:, j]) - 0.5) / len(Y)
            elif self._opts["transform"] == "log" and np.all(Y[:, j] > 0):
                Y[:, j] = np.log10(Y[:, j])
        return Y


def _constraints(done: Sequence[FrozenTrial]) -> np.ndarray:
    """Constraint values (<= 0 feasible) under the keys every trial has; (n, 0) without."""
    keys: set[str] | None = None
    for t in done:
        k = set(t.constraints)
        keys = k if keys is None else keys & k
    names = sorted(keys or ())
    return np.array([[float(t.constraints[k]) for k in names] for t in done]).reshape(
        len(done), len(names)
    )


def _unique(pool: np.ndarray, keys: list[bytes], seen: set[bytes]) -> np.ndarray:
    keep: list[int] = []
    seen = set(seen)
    for i, k in enumerate(keys):
        if k not in seen:
            seen.add(k)
            keep.append(i)
    return pool[keep]


def _argmax(score: np.ndarray, tie: np.ndarray) -> int:
    """Index of the best ``score``; among (near-)ties, or when every score is zero (EHVI
    underflows far from the front), the best ``tie`` (an exploration measure)."""
    best = float(score.max())
    if best <= 0:
        return int(np.argmax(tie))
    near = np.flatnonzero(score >= best * (1 - 1e-9))
    return int(near[np.argmax(tie[near])])
