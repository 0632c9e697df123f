"""Strategy registry. Black-box strategies build Optuna samplers (DESIGN.md section 4)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from optuna.samplers import BaseSampler

from cosearch._registry import Registry
from cosearch.errors import ConfigError

__all__ = [
    "Option",
    "Strategy",
    "SamplerStrategy",
    "WeightSharingStrategy",
    "register_strategy",
    "get_strategy",
    "list_strategies",
]


@dataclass(frozen=True)
class Option:
    """One strategy option: its type, default and valid range (``low``/``high`` inclusive).

    ``special`` is one value outside the range that is accepted too (e.g. -1 for "automatic").
    """

    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    special: Any = None
    #: checks a value of the right type further (raises ConfigError); e.g. a dataset spec's form
    validate: Callable[[Any], None] | None = None

    def range_text(self) -> str:
        """``" in [low, high]"`` (plus ``" or special"``), or ``""`` without a range."""
        if self.low is None and self.high is None:
            return ""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        extra = "" if self.special is None else f" or {self.special:g}"
        return f" in [{lo}, {hi}]{extra}"

    def check(self, owner: str, name: str, value: Any) -> Any:
        ok = isinstance(value, self.type) and not (
            isinstance(value, bool) and self.type is not bool
        )
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False  # nan passes both comparisons below
        special = ok and self.special is not None and value == self.special
        if ok and not special and self.low is not None and value < self.low:
            ok = False
        if ok and not special and self.high is not None and value > self.high:
            ok = False
        if not ok:
            raise ConfigError(
                f"The {name!r} option of strategy {owner} must be "
                f"{'an' if self.type.__name__[0] in 'aeiou' else 'a'} "
                f"{self.type.__name__}{self.range_text()}. Got {value!r} instead.",
                key=name,
            )
        if self.validate is not None:
            try:
                self.validate(value)
            except ConfigError as exc:
                msg = str(exc.args[0]) if exc.args else str(exc)
                raise ConfigError(f"strategy {owner} option {name!r}: {msg}", key=name) from None
        return value


#: per-parameter mutation probability of the evolutionary strategies; -1: 1 / n_params
MUTATION_PROB = Option(
    float, -1.0, 0.0, 1.0, "per-parameter mutation probability; -1 = 1/n_params", special=-1.0
)


class Strategy:
    """What every strategy shares: ``__init__`` only validates and stores options
    (scikit-learn style) into ``self.params``."""

    name: ClassVar[str]
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "(none)"
            raise ConfigError(
                f"strategy {self.name!r} has no option {unknown[0]!r}; its options: {valid}",
                key=unknown[0],
            )
        self.params = {
            k: opt.check(self.name, k, options.get(k, opt.default))
            for k, opt in self.options.items()
        }

    def check_space(self, parameters: Sequence[str]) -> None:
        """Raise ConfigError when an option does not fit the campaign's search space (the
        names of its parameters, ``net.*`` and ``hw.*``); called when a config is validated,
        before any trial runs. Most strategies take any space."""


class SamplerStrategy(Strategy, ABC):
    """A black-box strategy: validated options in, an Optuna sampler out.

    :meth:`sampler` builds the sampler for one run. Constraint values reach samplers through
    ``trial.constraints`` (Optuna >= 5 reads them there), so no ``constraints_func`` is passed.
    """

    @abstractmethod
    def sampler(self, *, seed: int) -> BaseSampler:
        """A fresh sampler; every random choice derives from ``seed``."""


class WeightSharingStrategy(Strategy, ABC):
    """A strategy that trains a supernet and searches inside it (DARTS, Once-for-All).

    :meth:`run` drives the whole search through a :class:`~cosearch.campaign.SearchContext`:
    it reports every evaluated subnet as a trial with ``ctx.report(params, measured)``, where
    ``measured`` holds the metrics the strategy measures itself (:attr:`provides`, e.g.
    ``accuracy`` from the supernet); the campaign's evaluator adds the hardware costs. State
    is checkpointed with ``ctx.save_checkpoint`` so a killed run resumes where it stopped.
    """

    #: metrics this strategy measures itself and passes to ``ctx.report``
    provides: ClassVar[tuple[str, ...]] = ("accuracy",)
    #: network spaces the strategy can train a supernet for
    spaces: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def run(self, ctx: Any) -> None:
        """Search until ``ctx.target`` trials are reported (or the schedule ends)."""


_strategies: Registry[Strategy] = Registry("strategy")


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    return _strategies.register(name)


def list_strategies() -> list[str]:
    return _strategies.names()


def get_strategy(name: str, /, **options: Any) -> Strategy:
    return _strategies.get_class(name, key="strategy.name")(**options)


def torch_device(choice: str, strategy: str) -> str:
    """The torch device a weight-sharing strategy's ``device`` option names: ``"auto"`` is
    CUDA when torch sees a GPU, else the CPU. Raises ConfigError for ``"cuda"`` without one."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"The 'device' option of strategy {strategy} is 'cuda' but torch sees no CUDA device.",
            key="device",
        )
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def json_scalar(value: Any) -> Any:
    """numpy scalars -> Python scalars (checkpoint metadata and trial params are JSON)."""
    return value.item() if isinstance(value, np.generic) else value
