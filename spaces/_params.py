"""Parameter specifications shared by network and hardware spaces.

A :class:`Param` knows its hard limits (what the template can physically mean) and its search
range (what a campaign explores). Campaign TOML files narrow or move the search range with
:meth:`Param.override`; a range outside the hard limits is refused with a message that names the
parameter, the value and the rule.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from cosearch.errors import ConfigError

__all__ = [
    "Param",
    "check_int_options",
    "sample_params",
    "apply_overrides",
    "distributions_of",
    "validate_params",
]


@dataclass(frozen=True)
class Param:
    """One searchable parameter.

    ``kind`` is ``"int"``, ``"float"`` or ``"categorical"``. For numbers, ``low``/``high`` is the
    search range and ``min_value``/``max_value`` the hard limits; ``log`` samples on a log scale
    and ``step`` (ints only) restricts values to ``low + i * step``. For categoricals, ``choices``
    is the search set and ``allowed`` every value the template understands.
    """

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    log: bool = False
    min_value: float | int | None = None
    max_value: float | int | None = None
    choices: tuple[Any, ...] = ()
    allowed: tuple[Any, ...] = ()
    help: str = ""

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def integer(
        cls,
        name: str,
        low: int,
        high: int,
        *,
        limits: tuple[int, int],
        step: int | None = None,
        log: bool = False,
        help: str = "",
    ) -> Param:
        return cls(name, "int", low, high, step, log, limits[0], limits[1], help=help)

    @classmethod
    def real(
        cls,
        name: str,
        low: float,
        high: float,
        *,
        limits: tuple[float, float],
        log: bool = False,
        help: str = "",
    ) -> Param:
        return cls(name, "float", low, high, None, log, limits[0], limits[1], help=help)

    @classmethod
    def categorical(
        cls,
        name: str,
        choices: Sequence[Any],
        *,
        allowed: Sequence[Any] | None = None,
        help: str = "",
    ) -> Param:
        allowed_t = tuple(allowed) if allowed is not None else tuple(choices)
        return cls(name, "categorical", choices=tuple(choices), allowed=allowed_t, help=help)

    # -- views ----------------------------------------------------------------------------
    @property
    def size(self) -> float:
        """Number of distinct values in the search range (``inf`` for floats)."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "float":
            return 1 if self.low == self.high else math.inf
        assert self.low is not None and self.high is not None
        return (int(self.high) - int(self.low)) // (self.step or 1) + 1

    def range_text(self) -> str:
        """The search range as a campaign file writes it: ``[4, 64], step 4``, ``["ws", "os"]``."""
        if self.kind == "categorical":
            return _literal(self.choices)
        step = f", step {self.step}" if self.step else ""
        return f"[{self.low}, {self.high}]{step}" + (", log" if self.log else "")

    def limits_text(self) -> str:
        """What the template accepts: the hard limits, or every allowed choice."""
        if self.kind == "categorical":
            return _literal(self.allowed)
        return f"[{self.min_value}, {self.max_value}]"

    def distribution(self) -> BaseDistribution:
        if self.kind == "categorical":
            return CategoricalDistribution(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=self.step or 1)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        lo, hi = self.low, self.high
        assert lo is not None and hi is not None
        if self.kind == "int":
            if self.log:
                v = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
                return int(min(max(v, lo), hi))
            step = self.step or 1
            return int(lo) + step * int(rng.integers((int(hi) - int(lo)) // step + 1))
        if self.log:  # exp(log(x)) may round just outside [lo, hi]
            x = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            return min(max(x, float(lo)), float(hi))
        return float(rng.uniform(lo, hi))

    def check(self, value: Any, *, owner: str) -> Any:
        """Return ``value`` (normalized) if it lies in the search range, else raise ConfigError."""
        if self.kind == "categorical":
            for choice in self.choices:  # the choice itself: 128.0 or numpy's 128 give 128
                if choice == value and isinstance(choice, bool) == isinstance(value, bool):
                    return choice
            raise ConfigError(
                f"The {self.name!r} parameter of {owner} must be one of "
                f"{list(self.choices)}. Got {value!r} instead.",
                key=self.name,
            )
        number = int if self.kind == "int" else float
        ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        if ok and self.kind == "int":
            ok = float(value).is_integer()
        if ok:
            v = number(value)
            lo, hi = self.low, self.high
            assert lo is not None and hi is not None
            on_step = self.kind != "int" or self.log or (v - int(lo)) % (self.step or 1) == 0
            if lo <= v <= hi and on_step:
                return v
        rng = f"[{self.low}, {self.high}]" + (f" in steps of {self.step}" if self.step else "")
        raise ConfigError(
            f"The {self.name!r} parameter of {owner} must be {_article(self.kind)} in {rng}. "
            f"Got {value!r} instead.",
            key=self.name,
        )

    def widened(self) -> Param:
        """The same parameter with its search range opened to the hard limits."""
        if self.kind == "categorical":
            return replace(self, choices=self.allowed)
        return replace(self, low=self.min_value, high=self.max_value, step=None, log=False)

    # -- overrides ------------------------------------------------------------------------
    def override(self, spec: Any, *, owner: str) -> Param:
        """A copy with the search range given by a TOML value.

        Accepted forms: a scalar (fixes the parameter), ``[low, high]`` for numbers, a list of
        choices for categoricals, or a table ``{low, high, step, log}`` / ``{choices = [...]}``.
        """
        where = f"{owner}.{self.name}"
        if self.kind == "categorical":
            if isinstance(spec, Mapping):
                if set(spec) != {"choices"}:
                    raise ConfigError(
                        f"{where} takes a list of choices or {{choices = [...]}}; "
                        f"got keys {sorted(spec)}",
                        key=self.name,
                    )
                spec = spec["choices"]
            values = list(spec) if isinstance(spec, (list, tuple)) else [spec]
            if not values:
                raise ConfigError(
                    f"{where} needs at least one choice; got an empty list", key=self.name
                )
            bad = [v for v in values if v not in self.allowed]
            if bad:
                raise ConfigError(
                    f"The {self.name!r} parameter of {owner} must be one of "
                    f"{list(self.allowed)}. Got {bad[0]!r} instead.",
                    key=self.name,
                )
            return replace(self, choices=tuple(dict.fromkeys(values)))

        changes: dict[str, Any] = {}
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"low", "high", "step", "log", "choices"}
            if unknown:
                raise ConfigError(
                    f"{where} has unknown key(s) {sorted(unknown)}; allowed: low, "
                    "high, step, log, choices",
                    key=self.name,
                )
            if "choices" in spec:
                return self._numeric_choices(spec["choices"], owner)
            changes = {k: spec[k] for k in ("low", "high", "step", "log") if k in spec}
            if "log" in spec and not isinstance(spec["log"], bool):
                raise ConfigError(
                    f"{where}: log must be true or false; got {spec['log']!r}", key=self.name
                )
            if spec.get("log") and "step" not in spec:
                changes["step"] = None  # a log range has no grid: the default step is dropped
        elif isinstance(spec, (list, tuple)):
            if len(spec) != 2:
                return self._numeric_choices(spec, owner)
            changes = {"low": spec[0], "high": spec[1]}
        else:
            changes = {"low": spec, "high": spec}

        new = replace(self, **changes)
        for k in ("low", "high"):
            v = getattr(new, k)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or (self.kind == "int" and not float(v).is_integer())
            ):
                raise ConfigError(
                    f"The {self.name!r} parameter of {owner} must be "
                    f"{_article(self.kind)}; got {k} = {v!r}",
                    key=self.name,
                )
            if not (self.min_value <= v <= self.max_value):  # type: ignore[operator]
                raise ConfigError(
                    f"The {self.name!r} parameter of {owner} must be {_article(self.kind)} in "
                    f"[{self.min_value}, {self.max_value}]. Got {k} = {v!r} instead.",
                    key=self.name,
                )
        if new.low > new.high:  # type: ignore[operator]
            raise ConfigError(
                f"{where}: low ({new.low}) must not exceed high ({new.high})", key=self.name
            )
        if new.log and new.low <= 0:  # type: ignore[operator]
            raise ConfigError(f"{where}: a log range needs low > 0; got {new.low}", key=self.name)
        if new.step is not None and (not isinstance(new.step, int) or new.step < 1):
            raise ConfigError(
                f"{where}: step must be a positive int; got {new.step!r}", key=self.name
            )
        if new.log and new.step not in (None, 1):
            raise ConfigError(f"{where}: step and log cannot be combined", key=self.name)
        if self.kind == "int" and not new.log and new.step:
            lo, hi, step = int(new.low), int(new.high), int(new.step)  # type: ignore[arg-type]
            if (hi - lo) % step:  # Optuna would cut it to the last whole step, with a warning
                given = isinstance(spec, Mapping) and "step" in spec
                below = lo + (hi - lo) // step * step
                raise ConfigError(
                    f"{where}: [{lo}, {hi}] is not a whole number of steps of {step}"
                    f"{'' if given else ' (the default step)'}; end it at {below} or "
                    f"{below + step}, or give a step: {{low = {lo}, high = {hi}, step = 1}}",
                    key=self.name,
                )
        if self.kind == "int":
            new = replace(new, low=int(new.low), high=int(new.high))  # type: ignore[arg-type]
        else:
            new = replace(new, low=float(new.low), high=float(new.high))  # type: ignore[arg-type]
        return new

    def _numeric_choices(self, values: Any, owner: str) -> Param:
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(
                f"{owner}.{self.name}: choices must be a non-empty list", key=self.name
            )
        checked = []
        for v in values:
            one = self.override(v, owner=owner)  # validates type and limits
            checked.append(one.low)
        return Param.categorical(self.name, checked, allowed=checked, help=self.help)


def check_int_options(
    space: str,
    options: Mapping[str, Any],
    defaults: Mapping[str, int],
    limits: Mapping[str, tuple[int, int, int]],
) -> dict[str, int]:
    """Validate a space's integer options against ``limits[name] = (low, high, step)``.

    Returns the defaults updated with ``options``. Raises ConfigError naming an unknown option
    (and listing the valid ones) or the option, its value and the rule it breaks.
    """
    import numbers

    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{space} has no option {unknown[0]!r}; its options are: {', '.join(defaults)}",
            key=unknown[0],
        )
    out = dict(defaults)
    for name, value in options.items():
        low, high, step = limits[name]
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if ok:
            v = int(value)
            ok = low <= v <= high and v % step == 0
        if not ok:
            rule = f"an int in [{low}, {high}]" + (
                f" that is a multiple of {step}" if step > 1 else ""
            )
            raise ConfigError(
                f"The {name!r} option of {space} must be {rule}. Got {value!r} instead.",
                key=name,
            )
        out[name] = int(value)
    return out


def _article(kind: str) -> str:
    return {"int": "an int", "float": "a float"}.get(kind, kind)


def distributions_of(params: Mapping[str, Param], prefix: str) -> dict[str, BaseDistribution]:
    return {f"{prefix}.{name}": p.distribution() for name, p in params.items()}


def sample_params(
    params: Mapping[str, Param], prefix: str, rng: np.random.Generator
) -> dict[str, Any]:
    return {f"{prefix}.{name}": p.sample(rng) for name, p in params.items()}


def apply_overrides(
    params: Mapping[str, Param], overrides: Mapping[str, Any], owner: str
) -> dict[str, Param]:
    out = dict(params)
    for key, spec in overrides.items():
        if key not in out:
            raise ConfigError(
                f"{owner} has no parameter {key!r}; its parameters are: {', '.join(out)}", key=key
            )
        out[key] = out[key].override(spec, owner=owner)
    return out


def validate_params(
    params: Mapping[str, Param], values: Mapping[str, Any], prefix: str, owner: str
) -> dict[str, Any]:
    """Strip ``prefix.`` from keys, check every value, and return ``{name: value}``.

    Missing and unknown keys are errors; extra keys of another namespace are ignored.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{owner} parameters must be a mapping of names to values (as sample() returns); "
            f"got {type(values).__name__}"
        )
    mine = {k[len(prefix) + 1 :]: v for k, v in values.items() if k.startswith(prefix + ".")}
    unknown = sorted(set(mine) - set(params))
    if unknown:
        raise ConfigError(
            f"{owner} has no parameter {unknown[0]!r}; its parameters are: {', '.join(params)}",
            key=f"{prefix}.{unknown[0]}",
        )
    missing = [k for k in params if k not in mine]
    if missing:
        raise ConfigError(f"{owner} needs {prefix}.{missing[0]}", key=f"{prefix}.{missing[0]}")
    return {k: params[k].check(mine[k], owner=owner) for k in params}


def _literal(value: Any) -> str:
    """``value`` written as in a campaign TOML file (strings quoted, booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
