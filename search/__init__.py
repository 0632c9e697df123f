"""Search strategies. Black-box strategies are Optuna samplers."""

from cosearch.search import bayesian as _bayesian  # noqa: F401  (registers bayesian)
from cosearch.search import blackbox as _blackbox  # noqa: F401  (registers random, nsga2)
from cosearch.search import darts as _darts  # noqa: F401  (registers darts)
from cosearch.search import evolution as _evolution  # noqa: F401  (registers evolution)
from cosearch.search import marl as _marl  # noqa: F401  (registers marl, rl)
from cosearch.search import progressive_shrinking as _ps  # noqa: F401  (registers it)
from cosearch.search._base import (
    Option,
    SamplerStrategy,
    Strategy,
    WeightSharingStrategy,
    get_strategy,
    list_strategies,
    register_strategy,
)

__all__ = [
    "Option",
    "SamplerStrategy",
    "Strategy",
    "WeightSharingStrategy",
    "get_strategy",
    "list_strategies",
    "register_strategy",
]
