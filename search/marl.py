"""``marl``: multi-agent reinforcement learning for network x accelerator co-design; ``rl``: the
same learner with one agent over every parameter (the single-agent baseline).

Why several agents: one policy over the joint action space of a co-design problem (6 cell
edges, a PE array, three buffers, a dataflow, a DRAM link...) must credit and move all of it
at once. Giving each sub-system its own agent, all paid by one shared reward, splits the
credit (a counterfactual baseline per agent) and the trust region (a PPO ratio per agent) by
sub-system; on hardware design spaces this beat single-agent PPO and SAC (Krishnan et al.,
"Multi-Agent Reinforcement Learning for Microprocessor Design Space Exploration",
arXiv:2211.16385, 2022). Whether it does on a given space is an empirical question:
``benchmarks/results/search_marl.md`` measures it against ``rl``, ``random`` and ``nsga2``.

How it works (details in the private modules):

- **Game.** Each trial is one step of a cooperative game. The sampler draws a preference
  vector ``w`` over the objectives (uniform on the positive unit sphere for the default
  hypervolume scalarization, uniform on the simplex for Chebyshev; or the fixed ``weights``
  option), and every agent samples the parameters it owns from its policy given ``w``
  (:mod:`._marl_learner`: a small MLP with one categorical head per parameter; ints and floats
  with more than ``max_choices`` values are discretized into ``bins`` bins, see
  :mod:`._marl_space`). With probability ``explore`` a parameter is drawn uniformly instead.
- **Shared reward** (:mod:`._marl_reward`): a scalarization under ``w`` of the objectives,
  normalized over the study's trials so far (``normalize``: ``log`` = log10 of positive
  minimized metrics, then running min/max; ``minmax``; ``rank``), minus ``penalty`` (and a
  bit more the further from feasible) for violated constraints (``trial.constraints``, values
  <= 0 feasible). ``scalarize = "hypervolume"`` (default) is the random hypervolume
  scalarization of Golovin & Zhang (2020), whose expectation over ``w`` is the hypervolume
  itself; ``"chebyshev"`` is ParEGO's augmented Chebyshev. Not a Pareto-rank reward: a trial's
  rank changes whenever later trials land (the same action would be paid differently over
  time) and carries no preference, so it pays crowding one end of the front like covering it.
- **Learning** every ``batch_size`` finished trials, ``epochs`` gradient steps: PPO's clipped
  surrogate per agent, with per-agent advantages ``r - b_g`` where ``b_g`` is the critic's
  expected reward if agent ``g`` alone re-drew its actions (``baseline = "counterfactual"``,
  COMA-style; ``"value"`` uses ``V(w)``). The critic (``critic = "model"``, default) is a
  reward model: one ridge regression per objective's normalized utility (and one for the
  constraint violation) on the one-hot actions of every finished trial, refitted before each
  update and scalarized under ``w`` exactly like the reward itself; ``"mlp"`` learns
  ``Q(w, a)`` with Adam instead. Agents gain from an accurate critic where a single agent
  cannot: its counterfactual takes out the reward variance the *other* agents cause, whereas
  ``rl``'s one agent only gets ``V(w)``. On the tuning seeds it raised ``marl`` from 0.568 to
  0.580 mean hypervolume at 500 trials (``rl``: 0.576 -> 0.572, within the seed spread);
  ``benchmarks/results/search_marl_sweep.md``. Then self-imitation (Oh et al., 2018) of ``memory``
  earlier trials that beat their baseline, re-scored under fresh preferences (``relabel``:
  a design's outcome is evidence for every preference, as in hindsight experience replay).
- **Proposals** (``proposals = k``, default 1): with ``k > 1`` each trial draws ``k`` joint
  actions from the policy and keeps the one the reward model scores best under the trial's
  ``w``. PPO is given that draw's ordinary log-probabilities, so the update treats the choice
  as a policy sample and pulls the policy toward what the model prefers (a biased but cheap
  policy-improvement step). On ten tuning seeds, ``k = 4`` raised the hypervolume at 500 trials
  by about 0.01 for both strategies (``marl`` 0.580 -> 0.588, ``rl`` 0.572 -> 0.583) with a
  wide seed spread, so the default stays 1 (``benchmarks/search/marl_variants.md``).
- **Agents** (default grouping, :func:`._marl_space.default_groups`): nb201 x systolic gives
  six: ``net.cell[1-2]`` (edges into nodes 1 and 2), ``net.cell[3]``, ``hw.compute``
  (pe_rows, pe_cols, precision_bits), ``hw.memory`` (the three SRAMs), ``hw.dataflow``,
  ``hw.offchip`` (dram_gbps, clock_mhz); ofa_mbv3 gives one per stage plus the resolution.
  The ``groups`` option overrides them, e.g. in the campaign TOML
  ``groups = [["net.edge_1_0", "net.edge_2_*"], ["hw.*_sram_kib"]]`` (exact names or fnmatch
  patterns; parameters no group names keep their default agents). ``rl`` has one agent.
- **Several workers:** before every trial the sampler reads the study's COMPLETE trials and
  learns from those it has not learned from yet, whoever ran them. Each trial carries its
  ``w`` and the proposing policy's per-parameter log-probabilities as the system attributes
  ``marl:w`` and ``marl:logp``, so any worker can form the PPO ratio; trials other samplers
  proposed are taken as uniformly drawn.
- **Checkpoints:** with a store attached (``Campaign`` calls :meth:`MARLStrategy.attach`),
  agents, critic, both Adam optimizers and the torch generator are saved in the
  ``checkpoints`` table after every update (``torch.save`` of tensors; JSON meta: the space,
  the agents, the trials learned from); a new sampler for the same campaign starts from the
  latest one, so a resumed campaign keeps learning.
- **Determinism:** the seed feeds a numpy Generator (preferences, actions, values inside a
  bin, memory draws), a ``torch.Generator`` (initial weights, counterfactual draws) and the
  fallback random sampler; torch runs on one thread inside the sampler.

The first trial of a fresh study has no known search space yet (Optuna samplers learn it from
finished trials), so it is sampled uniformly at random, as is any parameter outside the space.
Option defaults were chosen on seeds 100-104 of the nb201 x systolic benchmark, never on the
seeds it reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cosearch.errors import ConfigError
from cosearch.search._base import Option, SamplerStrategy, register_strategy
from cosearch.search._marl_sampler import LOGP_KEY, W_KEY, MARLSampler

if TYPE_CHECKING:
    from cosearch.store import Store

__all__ = ["MARLStrategy", "RLStrategy", "MARLSampler", "W_KEY", "LOGP_KEY"]

_OPTIONS: dict[str, Option] = {
    "hidden": Option(int, 32, 2, 4096, "hidden units of each agent's MLP and of the MLP critic"),
    "lr": Option(float, 0.01, 1e-6, 1.0, "Adam learning rate of agents and MLP critic"),
    "batch_size": Option(int, 8, 1, 100_000, "finished trials per update"),
    "epochs": Option(int, 4, 1, 1000, "gradient steps per update"),
    "clip": Option(float, 0.2, 0.01, 10.0, "PPO ratio clip epsilon"),
    "entropy": Option(float, 0.01, 0.0, 100.0, "entropy bonus coefficient"),
    "explore": Option(float, 0.05, 0.0, 1.0, "chance of a uniform random action per parameter"),
    "baseline": Option(str, "counterfactual", help='"counterfactual" (per agent) or "value"'),
    "critic": Option(
        str, "model", help='"model" (ridge per objective, scalarized) or "mlp" (learned Q(w, a))'
    ),
    "proposals": Option(
        int, 1, 1, 1024, "policy draws per trial; the reward model keeps the best (1: plain)"
    ),
    "memory": Option(int, 64, 0, 1_000_000, "earlier trials self-imitated per update"),
    "imitation": Option(float, 1.0, 0.0, 1000.0, "self-imitation loss weight (0: PPO only)"),
    "relabel": Option(bool, True, help="self-imitate under fresh preferences (hindsight)"),
    "scalarize": Option(str, "hypervolume", help='"hypervolume" or "chebyshev"'),
    "normalize": Option(str, "log", help='"log", "minmax" or "rank"'),
    "rho": Option(float, 0.05, 0.0, 100.0, "augmented-Chebyshev sum weight"),
    "penalty": Option(float, 1.0, 0.0, 1e6, "reward lost by an infeasible trial"),
    "weights": Option(list, [], help="fixed preference, one number per objective; [] = random"),
    "bins": Option(int, 8, 2, 1024, "bins of an int/float parameter with many values"),
    "max_choices": Option(int, 32, 2, 100_000, "grid size up to which each value is an action"),
    "keep_checkpoints": Option(int, 3, 1, 100_000, "checkpoints kept per campaign"),
}
_CHOICES = {
    "baseline": ("counterfactual", "value"),
    "critic": ("mlp", "model"),
    "scalarize": ("hypervolume", "chebyshev"),
    "normalize": ("log", "minmax", "rank"),
}


@register_strategy("marl")
class MARLStrategy(SamplerStrategy):
    """Multi-agent RL: one PPO agent per sub-system (network stages, accelerator parts).

    The options of ``rl`` plus ``groups``: a list of lists of parameter names or fnmatch
    patterns, one per agent (see the module docstring).
    """

    options: ClassVar[dict[str, Option]] = {
        **_OPTIONS,
        "groups": Option(list, [], help="agents: lists of parameter names or patterns"),
    }
    #: one agent over every parameter (``rl``)
    single: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        p = self.params
        for key, valid in _CHOICES.items():
            if p[key] not in valid:
                raise ConfigError(
                    f"The {key!r} option of strategy {self.name} must be one of "
                    f"{', '.join(valid)}. Got {p[key]!r} instead.",
                    key=key,
                )
        if p["proposals"] > 1 and p["critic"] != "model":
            raise ConfigError(
                f"The 'proposals' option of strategy {self.name} needs critic = \"model\" "
                f"(the reward model chooses among the draws). Got proposals = "
                f"{p['proposals']} with critic = {p['critic']!r}.",
                key="proposals",
            )
        w = p["weights"]
        if w and not (
            all(isinstance(x, int | float) and not isinstance(x, bool) for x in w)
            and all(math.isfinite(x) and x >= 0 for x in w)
            and sum(w) > 0
        ):
            raise ConfigError(
                f"The 'weights' option of strategy {self.name} must be a list of numbers >= 0 "
                f"with a positive sum, one per objective. Got {w!r} instead.",
                key="weights",
            )
        groups = p.get("groups", [])
        if not all(
            isinstance(g, list) and g and all(isinstance(n, str) and n for n in g) for g in groups
        ):
            raise ConfigError(
                f"The 'groups' option of strategy {self.name} must be a list of non-empty "
                f"lists of parameter names or patterns. Got {groups!r} instead.",
                key="groups",
            )
        self._store: Store | None = None
        self._campaign_id: int | None = None

    def check_space(self, parameters: Sequence[str]) -> None:
        """``groups`` entries that match no parameter, or claim one twice, are refused here,
        not at the first learning step (after trials were already stored)."""
        from cosearch.search._marl_space import resolve_groups

        resolve_groups(parameters, self.params.get("groups") or None, single=self.single)

    def attach(self, store: Store, campaign_id: int) -> None:
        """Checkpoint into (and resume from) ``store`` for campaign ``campaign_id``.

        Called by ``Campaign.run`` before :meth:`sampler`; without it the sampler keeps its
        state in memory only.
        """
        self._store = store
        self._campaign_id = campaign_id

    def sampler(self, *, seed: int) -> MARLSampler:
        return MARLSampler(
            seed=seed,
            options=self.params,
            single=self.single,
            strategy=self.name,
            store=self._store,
            campaign_id=self._campaign_id,
        )


@register_strategy("rl")
class RLStrategy(MARLStrategy):
    """Single-agent RL baseline: the ``marl`` learner with one agent over every parameter."""

    options: ClassVar[dict[str, Option]] = dict(_OPTIONS)
    single: ClassVar[bool] = True
