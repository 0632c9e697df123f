"""Joint search over subnet and accelerator parameters, after the supernet is trained.

Two algorithms over the campaign's full parameter dict (``net.*`` and ``hw.*``), both
constraint-aware (a feasible candidate beats an infeasible one; of two infeasible ones the
smaller total violation wins; feasible ones compare by Pareto dominance):

- ``nsga2``: NSGA-II (Deb et al., "A fast and elitist multiobjective genetic algorithm:
  NSGA-II", IEEE TEC 2002): binary tournaments on (front rank, crowding distance), uniform
  crossover, per-parameter mutation, elitist survival of the merged parents and offspring.
- ``evolution``: regularized (aging) evolution (Real et al., "Regularized Evolution for Image
  Classifier Architecture Search", AAAI 2019), made multi-objective: each cycle samples
  ``sample_size`` members, picks a parent at random from the sample's first front, mutates it,
  and the child replaces the oldest member.

Both are written here rather than driven through Optuna's NSGAIISampler because the optional
accuracy predictor screens candidates before they are measured: a generation (a cycle) draws
``screen_factor`` times more children than it measures and keeps the best by predicted
accuracy and true costs (:class:`AccuracyPredictor`), which an ask/tell sampler cannot do.

Determinism and resume: every draw comes from one numpy Generator and the search state depends
only on the outcomes it was told, so replaying a run with the outcomes of the trials already
reported (the strategy does this on resume) walks the same path without measuring them again.
Duplicate avoidance looks only at candidates seen earlier in the same walk for that reason.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils.validation import check_is_fitted

from cosearch.spaces._ofa_plan import MAX_DEPTH, N_BLOCKS, N_STAGES
from cosearch.spaces._params import Param

__all__ = [
    "Outcome",
    "JointSearch",
    "AccuracyPredictor",
    "fronts",
    "crowding",
    "ALGORITHMS",
]

ALGORITHMS = ("nsga2", "evolution")
_RETRIES = 20  # new draws of a child that duplicates one seen before accepting it
#: generations (evolution: population-sized batches of children) in a row without one new
#: candidate after which the walk ends: the reachable space is exhausted
_STALE = 10


@dataclass(frozen=True)
class Outcome:
    """Objective values (every one to be minimized) and the total constraint violation
    (0 when feasible; ``inf`` for a candidate whose evaluation failed)."""

    values: tuple[float, ...]
    violation: float = 0.0


def _dominates(a: Outcome, b: Outcome) -> bool:
    if a.violation > 0 or b.violation > 0:
        return a.violation < b.violation
    va, vb = np.asarray(a.values), np.asarray(b.values)
    return bool(np.all(va <= vb) and np.any(va < vb))


def fronts(outcomes: Sequence[Outcome]) -> list[list[int]]:
    """Indices of ``outcomes`` by constraint-dominance front (first front first)."""
    n = len(outcomes)
    beaten_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(outcomes[i], outcomes[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif _dominates(outcomes[j], outcomes[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    out: list[list[int]] = []
    current = [i for i in range(n) if beaten_by[i] == 0]
    while current:
        out.append(current)
        nxt = []
        for i in current:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return out


def crowding(outcomes: Sequence[Outcome], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each member of ``front`` (boundary members: inf)."""
    dist = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    vals = np.array([outcomes[i].values for i in front], dtype=float)
    vals = np.nan_to_num(vals, nan=1e300, posinf=1e300, neginf=-1e300)
    for m in range(vals.shape[1]):
        order = np.argsort(vals[:, m], kind="stable")
        lo, hi = vals[order[0], m], vals[order[-1], m]
        dist[front[order[0]]] = dist[front[order[-1]]] = math.inf
        if hi <= lo:
            continue
        for k in range(1, len(order) - 1):
            i = front[order[k]]
            dist[i] += (vals[order[k + 1], m] - vals[order[k - 1], m]) / (hi - lo)
    return dist


def _rank(outcomes: Sequence[Outcome]) -> list[tuple[int, float]]:
    """(front index, -crowding) per outcome: smaller is better."""
    key: list[tuple[int, float]] = [(0, 0.0)] * len(outcomes)
    for r, front in enumerate(fronts(outcomes)):
        for i, d in crowding(outcomes, front).items():
            key[i] = (r, -d)
    return key


def _best(outcomes: Sequence[Outcome], n: int) -> list[int]:
    """Indices of the ``n`` best outcomes by front, then crowding (NSGA-II survival)."""
    key = _rank(outcomes)
    return sorted(range(len(outcomes)), key=lambda i: (key[i], i))[:n]


# -- variation -------------------------------------------------------------------------------------
def _discrete_values(p: Param) -> list[Any] | None:
    if p.kind == "categorical":
        return list(p.choices)
    if p.kind == "int" and not p.log:
        assert p.low is not None and p.high is not None
        return list(range(int(p.low), int(p.high) + 1, p.step or 1))
    return None  # floats and log-scaled ints: resample


class _Variation:
    """Sampling, mutation and crossover over ``{prefix.name: Param}``."""

    def __init__(self, params: Mapping[str, Param], mutation_prob: float) -> None:
        self.params = dict(params)
        self.names = list(self.params)
        self.pm = mutation_prob if mutation_prob >= 0 else 1.0 / max(len(self.names), 1)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {k: _plain(p.sample(rng)) for k, p in self.params.items()}

    def mutate(self, parent: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        child = dict(parent)
        hit = [k for k in self.names if rng.random() < self.pm]
        if not hit:
            hit = [self.names[int(rng.integers(len(self.names)))]]
        for k in hit:
            p = self.params[k]
            values = _discrete_values(p)
            if values is None:
                child[k] = _plain(p.sample(rng))
                continue
            others = [v for v in values if v != child[k]] or values
            child[k] = _plain(others[int(rng.integers(len(others)))])
        return child

    def crossover(
        self, a: Mapping[str, Any], b: Mapping[str, Any], rng: np.random.Generator
    ) -> dict[str, Any]:
        take_b = rng.random(len(self.names)) < 0.5
        return {k: (b[k] if tb else a[k]) for k, tb in zip(self.names, take_b)}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- the search ------------------------------------------------------------------------------------
#: evaluate(params, generation, predicted_accuracy) -> Outcome, or None once the budget is spent
EvaluateFn = Callable[[dict[str, Any], int, "float | None"], "Outcome | None"]
#: screen(candidates) -> (predicted accuracy, predicted outcome) per candidate, or None when
#: the predictor has too little data yet
ScreenFn = Callable[[list[dict[str, Any]]], "list[tuple[float, Outcome]] | None"]


class JointSearch:
    """NSGA-II or regularized evolution over ``params`` (every ``net.*`` and ``hw.*``
    :class:`Param` of the campaign), calling ``evaluate`` for each new candidate.

    ``key(params)`` identifies candidates that compute the same thing (canonical network plus
    accelerator); a candidate whose key was seen before in this walk reuses that outcome.
    ``seeds`` are evaluated first (e.g. the largest and smallest subnets), then random ones
    up to ``population``. The walk ends when ``evaluate`` returns None, after ``generations``
    generations (0: no limit; for ``evolution`` a generation is ``population`` children), or
    after 10 generations in a row that found nothing new (a space too small for the budget).
    """

    def __init__(
        self,
        params: Mapping[str, Param],
        evaluate: EvaluateFn,
        key: Callable[[Mapping[str, Any]], str],
        *,
        algorithm: str = "nsga2",
        population: int = 16,
        generations: int = 0,
        sample_size: int = 4,
        mutation_prob: float = -1.0,
        crossover_prob: float = 0.9,
        screen: ScreenFn | None = None,
        screen_factor: int = 4,
        seed: int = 0,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}")
        self.var = _Variation(params, mutation_prob)
        self.evaluate_fn = evaluate
        self.key = key
        self.algorithm = algorithm
        self.population = population
        self.generations = generations
        self.sample_size = sample_size
        self.crossover_prob = crossover_prob
        self.screen_fn = screen
        self.screen_factor = screen_factor
        self.rng = np.random.default_rng(seed)
        self.seen: dict[str, Outcome] = {}
        self.evaluated = 0  # distinct candidates measured (or replayed) in this walk
        self.stopped = False

    # -- evaluation -----------------------------------------------------------------------------
    def _evaluate(
        self, params: dict[str, Any], generation: int, predicted: float | None = None
    ) -> Outcome | None:
        k = self.key(params)
        if k in self.seen:
            return self.seen[k]
        out = self.evaluate_fn(params, generation, predicted)
        if out is None:
            self.stopped = True
            return None
        self.seen[k] = out
        self.evaluated += 1
        return out

    def _fresh(self, make: Callable[[], dict[str, Any]], taken: set[str]) -> dict[str, Any]:
        """A candidate from ``make`` whose key is new, if one comes within a few draws."""
        child = make()
        for _ in range(_RETRIES):
            k = self.key(child)
            if k not in self.seen and k not in taken:
                break
            child = make()
        taken.add(self.key(child))
        return child

    def _screen(
        self, children: list[dict[str, Any]], n: int
    ) -> list[tuple[dict[str, Any], float | None]]:
        """The ``n`` children to measure, with their predicted accuracy (None unscreened)."""
        if self.screen_fn is None or len(children) <= n:
            return [(c, None) for c in children[:n]]
        predicted = self.screen_fn(children)
        if predicted is None:
            return [(c, None) for c in children[:n]]
        keep = _best([o for _, o in predicted], n)
        return [(children[i], predicted[i][0]) for i in keep]

    def _draws(self, n: int) -> int:
        return n * (self.screen_factor if self.screen_fn is not None else 1)

    # -- the walk -------------------------------------------------------------------------------
    def run(self, seeds: Sequence[Mapping[str, Any]] = ()) -> list[tuple[dict[str, Any], Outcome]]:
        """Walk until the budget or the generations end; returns the final population."""
        members: list[tuple[dict[str, Any], Outcome]] = []
        initial = [dict(s) for s in seeds][: self.population]
        taken = {self.key(c) for c in initial}
        while len(initial) < self.population:
            initial.append(self._fresh(lambda: self.var.sample(self.rng), taken))
        for cand in initial:
            out = self._evaluate(cand, 0)
            if out is None:
                return members
            members.append((cand, out))
        if self.algorithm == "nsga2":
            return self._nsga2(members)
        return self._evolution(members)

    def _tournament(self, members: list[tuple[dict[str, Any], Outcome]], rank: list[Any]) -> int:
        i, j = (int(v) for v in self.rng.integers(len(members), size=2))
        return i if rank[i] <= rank[j] else j

    def _nsga2(
        self, members: list[tuple[dict[str, Any], Outcome]]
    ) -> list[tuple[dict[str, Any], Outcome]]:
        g = stale = 0
        while (not self.generations or g < self.generations) and stale < _STALE:
            g += 1
            before = self.evaluated
            rank = _rank([o for _, o in members])
            taken: set[str] = set()

            def child() -> dict[str, Any]:
                a = members[self._tournament(members, rank)][0]
                b = members[self._tournament(members, rank)][0]
                if self.rng.random() < self.crossover_prob:
                    return self.var.mutate(self.var.crossover(a, b, self.rng), self.rng)
                return self.var.mutate(a, self.rng)

            children = [self._fresh(child, taken) for _ in range(self._draws(self.population))]
            offspring = []
            for cand, predicted in self._screen(children, self.population):
                out = self._evaluate(cand, g, predicted)
                if out is None:
                    return members
                offspring.append((cand, out))
            merged = members + offspring
            members = [merged[i] for i in _best([o for _, o in merged], self.population)]
            stale = stale + 1 if self.evaluated == before else 0
        return members

    def _evolution(
        self, members: list[tuple[dict[str, Any], Outcome]]
    ) -> list[tuple[dict[str, Any], Outcome]]:
        queue = deque(members)
        born = stale = 0
        while (not self.generations or born < self.generations * self.population) and (
            stale < _STALE * self.population
        ):
            g = born // self.population + 1
            pool = list(queue)
            k = min(self.sample_size, len(pool))
            picked = [int(i) for i in self.rng.choice(len(pool), size=k, replace=False)]
            first = fronts([pool[i][1] for i in picked])[0]
            parent = pool[picked[first[int(self.rng.integers(len(first)))]]][0]
            taken: set[str] = set()
            children = [
                self._fresh(lambda: self.var.mutate(parent, self.rng), taken)
                for _ in range(self._draws(1))
            ]
            ((cand, predicted),) = self._screen(children, 1)
            before = self.evaluated
            out = self._evaluate(cand, g, predicted)
            if out is None:
                break
            stale = stale + 1 if self.evaluated == before else 0
            queue.append((cand, out))
            if len(queue) > self.population:
                queue.popleft()
            born += 1
        return list(queue)


def canonical_key(network: Any, params: Mapping[str, Any]) -> str:
    """JSON of the canonical ``net.*`` params (``network.canonical``) and the ``hw.*`` ones."""
    net = network.canonical({k: v for k, v in params.items() if k.startswith("net.")})
    hw = {k: v for k, v in params.items() if k.startswith("hw.")}
    return json.dumps({**net, **hw}, sort_keys=True, default=str)


# -- the accuracy predictor ---------------------------------------------------------------------
class AccuracyPredictor(BaseEstimator, RegressorMixin):
    """Accuracy (percent) of an ``ofa_mbv3`` subnet from its parameters, for screening.

    Features: one-hot kernel size and expand ratio of each of the 20 blocks (all zero for a
    block beyond its stage's depth), one-hot depth of each stage and one-hot resolution; a
    scikit-learn ``RandomForestRegressor`` (64 trees, seeded) maps them to the accuracy.
    Forests need no feature scaling, cope with the interactions of depth and per-block choices,
    and fit a few hundred samples in well under a second. ``X`` is a list of parameter dicts
    (not an array, so sklearn's array-input estimator checks do not apply); ``fit`` returns
    self; ``predict`` raises sklearn's NotFittedError before ``fit``.
    """

    def __init__(
        self,
        ks: Sequence[int],
        e: Sequence[int],
        d: Sequence[int],
        r: Sequence[int],
        *,
        seed: int = 0,
    ) -> None:
        self.ks = ks
        self.e = e
        self.d = d
        self.r = r
        self.seed = seed

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The feature vector of one parameter dict (``net.*`` keys)."""
        depth = [int(params[f"net.d_{s}"]) for s in range(N_STAGES)]
        out: list[float] = []
        for i in range(N_BLOCKS):
            live = i % MAX_DEPTH < depth[i // MAX_DEPTH]
            ks, e = int(params[f"net.ks_{i}"]), int(params[f"net.e_{i}"])
            out += [float(live and ks == v) for v in self.ks]
            out += [float(live and e == v) for v in self.e]
        for s in range(N_STAGES):
            out += [float(depth[s] == v) for v in self.d]
        out += [float(int(params["net.r"]) == v) for v in self.r]
        return np.asarray(out)

    def fit(self, X: Sequence[Mapping[str, Any]], y: Sequence[float]) -> AccuracyPredictor:
        self.model_ = RandomForestRegressor(n_estimators=64, random_state=self.seed, n_jobs=1)
        self.model_.fit(np.stack([self.encode(p) for p in X]), np.asarray(y, dtype=float))
        return self

    def predict(self, X: Sequence[Mapping[str, Any]]) -> np.ndarray:
        check_is_fitted(self, "model_")
        return np.asarray(self.model_.predict(np.stack([self.encode(p) for p in X])))
