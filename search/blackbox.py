"""Baselines taken from Optuna: uniform random search and NSGA-II."""

from __future__ import annotations

import optuna
from optuna.samplers import BaseSampler

from cosearch.search._base import MUTATION_PROB, Option, SamplerStrategy, register_strategy


@register_strategy("random")
class RandomStrategy(SamplerStrategy):
    """Independent uniform sampling of every parameter (Optuna's RandomSampler)."""

    def sampler(self, *, seed: int) -> BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)


@register_strategy("nsga2")
class NSGA2Strategy(SamplerStrategy):
    """NSGA-II (Deb et al., 2002) through Optuna's NSGAIISampler, constraint-dominance aware."""

    options = {
        "population_size": Option(int, 20, 2, 100_000, "individuals per generation"),
        "mutation_prob": MUTATION_PROB,
        "crossover_prob": Option(float, 0.9, 0.0, 1.0, "probability of crossover"),
        "swapping_prob": Option(float, 0.5, 0.0, 1.0, "uniform-crossover swap probability"),
    }

    def sampler(self, *, seed: int) -> BaseSampler:
        p = self.params
        return optuna.samplers.NSGAIISampler(
            population_size=p["population_size"],
            mutation_prob=None if p["mutation_prob"] < 0 else p["mutation_prob"],
            crossover_prob=p["crossover_prob"],
            swapping_prob=p["swapping_prob"],
            seed=seed,
        )
