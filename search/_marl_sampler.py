"""The Optuna sampler behind ``marl`` and ``rl`` (see :mod:`cosearch.search.marl`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from cosearch.errors import ConfigError
from cosearch.search._marl_reward import RewardModel, normalized, preference, shared_rewards
from cosearch.search._marl_space import ParamCoder, resolve_groups

if TYPE_CHECKING:
    import torch

    from cosearch.search._marl_learner import Learner
    from cosearch.store import Store

__all__ = ["MARLSampler", "W_KEY", "LOGP_KEY"]

#: trial system attributes written by the sampler: the preference vector and the proposing
#: (behaviour) policy's log-probability of each parameter's action
W_KEY = "marl:w"
LOGP_KEY = "marl:logp"
_FORMAT = 1


def _trial_id(trial: FrozenTrial) -> int:
    # Optuna exposes no public id of a FrozenTrial, and its own samplers write system
    # attributes through ``trial._trial_id``; this is the one place we read it.
    return int(trial._trial_id)


class MARLSampler(BaseSampler):
    """The Optuna sampler of ``marl`` and ``rl`` (build it through the strategies).

    ``store`` and ``campaign_id`` (both or neither) enable checkpoints: the sampler starts
    from the campaign's latest one and saves a new one after every update.
    """

    def __init__(
        self,
        *,
        seed: int,
        options: Mapping[str, Any],
        single: bool,
        strategy: str,
        store: Store | None = None,
        campaign_id: int | None = None,
    ) -> None:
        self._opts = dict(options)
        self._single = single
        self._strategy = strategy
        self._store = store
        self._campaign_id = campaign_id
        self._seed = int(seed)
        ss = np.random.SeedSequence(self._seed)
        s_np, s_torch, s_rand = ss.spawn(3)
        self._ss = s_np
        self._rng = np.random.default_rng(s_np)
        self._torch_seed = int(s_torch.generate_state(1, np.uint64)[0])
        self._random = optuna.samplers.RandomSampler(seed=int(s_rand.generate_state(1)[0]))
        self._space: dict[str, BaseDistribution] | None = None
        self._coders: list[ParamCoder] = []
        self._agents: list[tuple[str, list[str]]] = []
        self._learner: Learner | None = None
        self._n_obj: int | None = None
        self._learned: set[int] = set()
        #: finished trial number -> its actions (None: not usable); finished trials never change
        self._row_cache: dict[int, np.ndarray | None] = {}
        self._w: dict[int, np.ndarray] = {}
        self.restored_step: int | None = None
        if store is not None and campaign_id is not None:
            self._restore()

    # -- public views -------------------------------------------------------------------------
    @property
    def agents(self) -> list[tuple[str, list[str]]]:
        """``(agent name, its parameters)``; empty until the search space is known."""
        return [(n, list(p)) for n, p in self._agents]

    @property
    def learned(self) -> frozenset[int]:
        """Numbers of the trials this sampler has learned from."""
        return frozenset(self._learned)

    @property
    def updates(self) -> int:
        return 0 if self._learner is None else self._learner.updates

    def policy_state(self) -> dict[str, torch.Tensor] | None:
        """Copies of the agents' parameters; None before the search space is known."""
        return None if self._learner is None else self._learner.policy_tensors()

    def probabilities(self, w: Sequence[float] | None = None) -> dict[str, np.ndarray]:
        """Each parameter's action probabilities given preference ``w`` (default: equal)."""
        if self._learner is None or self._n_obj is None:
            return {}
        ww = np.full(self._n_obj, 1.0 / self._n_obj) if w is None else np.asarray(w, float)
        probs = self._learner.probabilities(ww)
        return {c.name: p for c, p in zip(self._coders, probs)}

    # -- Optuna interface ---------------------------------------------------------------------
    def reseed_rng(self) -> None:
        self._ss = self._ss.spawn(1)[0]
        self._rng = np.random.default_rng(self._ss)
        self._random.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        n_obj = len(study.directions)
        if self._n_obj is not None and self._n_obj != n_obj:
            warnings.warn(
                f"{self._strategy}: the checkpoint was made for {self._n_obj} objectives and "
                f"this study has {n_obj}; starting from a fresh policy",
                stacklevel=2,
            )
            self._reset()
        self._n_obj = n_obj
        self._sync(study)
        self._w[trial.number] = self._draw_w()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._space) if self._learner is not None and self._space else {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or self._learner is None:
            return {}
        w = self._w.pop(trial.number, None)
        if w is None:
            w = self._draw_w()
        actions, logps = self._act(w)
        params = {c.name: c.decode(a, self._rng) for c, a in zip(self._coders, actions)}
        from cosearch.store._optuna_compat import study_storage

        storage = study_storage(study)
        tid = _trial_id(trial)
        storage.set_trial_system_attr(tid, W_KEY, [float(x) for x in w])
        storage.set_trial_system_attr(
            tid, LOGP_KEY, {c.name: lp for c, lp in zip(self._coders, logps)}
        )
        return {k: v for k, v in params.items() if k in search_space}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._w.pop(trial.number, None)

    # -- internals ----------------------------------------------------------------------------
    def _act(self, w: np.ndarray) -> tuple[list[int], list[float]]:
        """The trial's actions and their behaviour log-probabilities: one policy draw, or with
        ``proposals = k > 1`` (and a fitted reward model) the draw of highest predicted reward
        under ``w`` among ``k``; its log-probabilities are those of a single draw, so PPO treats
        the choice as a policy sample and moves the policy toward what the model prefers."""
        assert self._learner is not None
        k = self._opts["proposals"]
        explore = self._opts["explore"]
        model = self._learner.q_model
        if k == 1 or model is None:
            return self._learner.act(w, self._rng, explore)
        draws = [self._learner.act(w, self._rng, explore) for _ in range(k)]
        scores = model(
            np.repeat(np.asarray(w, dtype=float)[None, :], k, axis=0),
            np.array([a for a, _ in draws]),
        )
        return draws[int(np.argmax(scores))]

    def _draw_w(self) -> np.ndarray:
        n = self._n_obj or 1
        fixed = self._opts["weights"]
        if fixed and len(fixed) != n:
            raise ConfigError(
                f"The 'weights' option of strategy {self._strategy} needs one weight per "
                f"objective ({n}). Got {len(fixed)}: {fixed!r}.",
                key="weights",
            )
        return preference(self._rng, n, self._opts["scalarize"], fixed)

    def _reset(self) -> None:
        self._space = None
        self._coders, self._agents = [], []
        self._learner = None
        self._learned = set()
        self._row_cache = {}

    def _arch(self) -> dict[str, Any]:
        """What a checkpoint must share with this sampler to be resumed."""
        o = self._opts
        return {
            "single": self._single,
            "hidden": o["hidden"],
            "baseline": o["baseline"],
            "bins": o["bins"],
            "max_choices": o["max_choices"],
            "groups": o.get("groups", []),
        }

    def _build(self, space: Mapping[str, BaseDistribution], n_obj: int) -> None:
        from cosearch.search._marl_learner import Learner

        self._row_cache = {}  # actions are coded by the coders built here
        names = list(space)
        o = self._opts
        self._coders = [
            ParamCoder.build(n, space[n], bins=o["bins"], max_choices=o["max_choices"])
            for n in names
        ]
        self._agents = resolve_groups(names, o.get("groups"), single=self._single)
        index = {n: i for i, n in enumerate(names)}
        self._learner = Learner(
            [c.n for c in self._coders],
            [[index[n] for n in params] for _, params in self._agents],
            n_obj,
            hidden=o["hidden"],
            lr=o["lr"],
            clip=o["clip"],
            epochs=o["epochs"],
            entropy=o["entropy"],
            baseline=o["baseline"],
            seed=self._torch_seed,
        )
        self._space = dict(space)

    def _sync(self, study: optuna.Study) -> None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if self._learner is None:
            for t in trials:
                if t.distributions:
                    self._build(t.distributions, len(study.directions))
                    break
            if self._learner is None:
                return
        n_obj = len(study.directions)
        fresh: list[FrozenTrial] = []
        for t in trials:
            if t.number in self._learned:
                continue
            if self._usable(t, n_obj):
                fresh.append(t)
            else:
                self._learned.add(t.number)  # never usable: do not look at it again
        bs = self._opts["batch_size"]
        if len(fresh) < bs:
            return
        known = [
            t
            for t in trials
            if t.values is not None and len(t.values) == n_obj and all(map(math.isfinite, t.values))
        ]
        values = np.array([t.values for t in known], dtype=float).reshape(len(known), n_obj)
        row = {t.number: i for i, t in enumerate(known)}
        cons = [list(t.constraints.values()) for t in known]
        directions = [d.name.lower() for d in study.directions]
        # trials learned from before: the self-imitation memory
        past = [
            t for t in known if t.number in self._learned and self._actions_of(t, n_obj) is not None
        ]
        assert self._learner is not None
        if self._opts["critic"] == "model":
            self._learner.q_model = self._reward_model(known, values, cons, directions)
        for chunk in np.array_split(np.arange(len(fresh)), len(fresh) // bs):
            batch = [fresh[i] for i in chunk]
            w = np.stack([self._trial_w(t, n_obj) for t in batch])
            rewards = self._rewards(batch, values, cons, directions, row, w)
            actions, logp_old = self._trial_actions(batch)
            memory = None
            n_mem = min(len(past), self._opts["memory"])
            if n_mem:
                pick = np.sort(self._rng.choice(len(past), size=n_mem, replace=False))
                mem = [past[i] for i in pick]
                if self._opts["relabel"]:
                    # hindsight: an outcome is evidence for every preference, not only the one
                    # it was drawn for
                    mw = np.stack([self._draw_w() for _ in mem])
                else:
                    mw = np.stack([self._trial_w(t, n_obj) for t in mem])
                memory = (
                    mw,
                    self._trial_actions(mem)[0],
                    self._rewards(mem, values, cons, directions, row, mw),
                )
            assert self._learner is not None
            self._learner.update(
                w, actions, logp_old, rewards, memory, imitation=self._opts["imitation"]
            )
            self._learned.update(t.number for t in batch)
            past.extend(batch)
        self._save()

    def _rewards(
        self,
        batch: Sequence[FrozenTrial],
        values: np.ndarray,
        cons: list[list[float]],
        directions: list[str],
        row: dict[int, int],
        weights: np.ndarray,
    ) -> np.ndarray:
        return shared_rewards(
            values,
            cons,
            directions,
            np.array([row[t.number] for t in batch]),
            weights,
            method=self._opts["normalize"],
            rho=self._opts["rho"],
            penalty=self._opts["penalty"],
            scalarize=self._opts["scalarize"],
        )

    def _reward_model(
        self,
        known: Sequence[FrozenTrial],
        values: np.ndarray,
        cons: list[list[float]],
        directions: list[str],
    ) -> RewardModel:
        """The reward model (``critic = "model"``) fitted on every usable trial of ``known``
        (the batch about to be learned from always is)."""
        u, infeas = normalized(values, cons, directions, self._opts["normalize"])
        n_obj = values.shape[1]
        rows, acts = [], []
        for i, t in enumerate(known):
            a = self._actions_of(t, n_obj)
            if a is not None:
                rows.append(i)
                acts.append(a)
        return RewardModel(
            [c.n for c in self._coders],
            np.stack(acts),
            u[rows],
            infeas[rows],
            scalarize=self._opts["scalarize"],
            rho=self._opts["rho"],
            penalty=self._opts["penalty"],
        )

    def _actions_of(self, t: FrozenTrial, n_obj: int) -> np.ndarray | None:
        """The actions of the finished trial ``t``, or None when it is not usable (cached:
        a finished trial's parameters and values never change)."""
        if t.number not in self._row_cache:
            usable = self._usable(t, n_obj)
            self._row_cache[t.number] = self._trial_actions([t])[0][0] if usable else None
        return self._row_cache[t.number]

    def _usable(self, t: FrozenTrial, n_obj: int) -> bool:
        if t.values is None or len(t.values) != n_obj or not all(map(math.isfinite, t.values)):
            return False
        for c in self._coders:
            if c.name not in t.params:
                return False
            if not c.contains(t.params[c.name]):
                return False
        return True

    def _trial_w(self, t: FrozenTrial, n_obj: int) -> np.ndarray:
        w = t.system_attrs.get(W_KEY)
        if isinstance(w, list) and len(w) == n_obj:
            return np.asarray(w, dtype=float)
        # a trial another sampler proposed: a preference of its own, fixed by our seed
        fixed = self._opts["weights"] if len(self._opts["weights"]) == n_obj else None
        rng = np.random.default_rng([self._seed, t.number])
        return preference(rng, n_obj, self._opts["scalarize"], fixed)

    def _trial_actions(self, batch: Sequence[FrozenTrial]) -> tuple[np.ndarray, np.ndarray]:
        actions = np.zeros((len(batch), len(self._coders)), dtype=np.int64)
        logp = np.zeros((len(batch), len(self._coders)))
        for b, t in enumerate(batch):
            stored = t.system_attrs.get(LOGP_KEY)
            stored = stored if isinstance(stored, dict) else {}
            for i, c in enumerate(self._coders):
                actions[b, i] = c.encode(t.params[c.name])
                lp = stored.get(c.name)
                logp[b, i] = float(lp) if isinstance(lp, int | float) else -math.log(c.n)
        return actions, logp

    # -- checkpoints --------------------------------------------------------------------------
    def _save(self) -> None:
        if self._store is None or self._campaign_id is None or self._learner is None:
            return
        assert self._space is not None
        learner_meta, tensors = self._learner.state()
        meta = {
            "format": _FORMAT,
            "arch": self._arch(),
            "n_obj": self._n_obj,
            # a list, not a dict: the parameter order defines the heads' layout and JSON
            # objects may come back sorted
            "space": [[n, distribution_to_json(d)] for n, d in self._space.items()],
            "agents": self._agents,
            "learned": _ranges(self._learned),
            "learner": learner_meta,
        }
        self._store.save_checkpoint(
            self._campaign_id,
            self._strategy,
            len(self._learned),
            meta,
            tensors,
            keep=self._opts["keep_checkpoints"],
        )

    def _restore(self) -> None:
        assert self._store is not None and self._campaign_id is not None
        found = self._store.load_checkpoint(self._campaign_id, self._strategy)
        if found is None:
            return
        step, meta, tensors = found
        if meta.get("format") != _FORMAT or meta.get("arch") != self._arch():
            warnings.warn(
                f"{self._strategy}: checkpoint {step} of campaign {self._campaign_id} was made "
                "with other sampler settings; starting from a fresh policy",
                stacklevel=2,
            )
            return
        space = {n: json_to_distribution(d) for n, d in meta["space"]}
        self._build(space, int(meta["n_obj"]))
        assert self._learner is not None
        self._learner.load_state(meta["learner"], tensors)
        self._n_obj = int(meta["n_obj"])
        self._learned = _unranges(meta["learned"])
        self.restored_step = step


def _ranges(numbers: set[int]) -> list[list[int]]:
    """``{0, 1, 2, 5}`` -> ``[[0, 2], [5, 5]]`` (inclusive), to keep checkpoint meta small."""
    out: list[list[int]] = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def _unranges(ranges: Sequence[Sequence[int]]) -> set[int]:
    return {n for a, b in ranges for n in range(int(a), int(b) + 1)}
