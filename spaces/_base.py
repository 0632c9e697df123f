"""Core types of the search spaces: Architecture, NetworkSpace, HardwareSpace, registries."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from optuna.distributions import BaseDistribution

from cosearch._registry import Registry
from cosearch.errors import ConfigError
from cosearch.hwmodels._base import Accelerator
from cosearch.spaces._params import (
    Param,
    apply_overrides,
    distributions_of,
    sample_params,
    validate_params,
)

if TYPE_CHECKING:
    import networkx as nx
    import onnx
    import torch

__all__ = [
    "Architecture",
    "NetworkSpace",
    "HardwareSpace",
    "register_space",
    "register_hardware_space",
    "get_space",
    "get_hardware_space",
    "list_spaces",
    "list_hardware_spaces",
    "parse_accelerator",
    "genotype_digest",
]


def genotype_digest(space: str, canonical: Mapping[str, Any]) -> str:
    """sha256 over the space name and the canonical genotype as sorted JSON."""
    payload = json.dumps(
        {"space": space, "genotype": dict(canonical)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Architecture:
    """A candidate network.

    ``genotype`` is the dict of ``net.*`` parameters as given; ``digest`` identifies the
    canonical form, so isomorphic candidates share it. The ONNX model is built once, on first
    use, by the space's builder; ``to_torch`` builds a fresh module each call.
    """

    space: str
    genotype: Mapping[str, Any]
    digest: str
    _onnx_builder: Callable[[], onnx.ModelProto] = field(repr=False)
    _torch_builder: Callable[[], torch.nn.Module] | None = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def onnx(self) -> onnx.ModelProto:
        if "onnx" not in self._cache:
            self._cache["onnx"] = self._onnx_builder()
        return self._cache["onnx"]

    def to_torch(self) -> torch.nn.Module:
        if self._torch_builder is None:
            raise TypeError(f"the {self.space!r} space has no torch form")
        return self._torch_builder()

    def graph(self) -> nx.DiGraph:
        from cosearch.spaces.encoding import onnx_to_networkx

        return onnx_to_networkx(self.onnx())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Architecture) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


class _ParamSpace(ABC):
    """What network and hardware spaces share: a dict of Params under a namespace prefix."""

    prefix: ClassVar[str]
    name: ClassVar[str]

    params: dict[str, Param]

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions keyed by ``prefix.name``."""
        return distributions_of(self.params, self.prefix)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random parameter dict; every choice comes from ``rng``."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                "sample() takes a numpy.random.Generator, e.g. numpy.random.default_rng(0)"
            )
        return sample_params(self.params, self.prefix, rng)

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``{name: value}`` without the prefix, each checked against its range."""
        return validate_params(self.params, values, self.prefix, f"{self.prefix}:{self.name}")

    @property
    def size(self) -> float:
        total = 1.0
        for p in self.params.values():
            total *= p.size
        return total


class NetworkSpace(_ParamSpace):
    """A family of networks. Subclasses fill ``self.params`` in ``__init__`` and build ONNX."""

    prefix = "net"

    #: accuracy tables this space can look candidates up in, e.g. {"nb201/cifar10": ...}
    benchmarks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)

    @abstractmethod
    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical form of ``params``: equal for candidates computing the same function."""

    @abstractmethod
    def build(self, params: Mapping[str, Any]) -> Architecture:
        """The Architecture for ``params`` (ONNX is built lazily by ``arch.onnx()``)."""

    def from_string(self, text: str) -> dict[str, Any]:
        raise TypeError(f"the {self.name!r} space has no standard string form")

    def to_string(self, params: Mapping[str, Any]) -> str:
        raise TypeError(f"the {self.name!r} space has no standard string form")

    def check_benchmark(self, table: str) -> None:
        """Raise ConfigError if ``table`` (one of :attr:`benchmarks`) does not apply to this
        space's options (published tables fit one network skeleton)."""
        raise ConfigError(
            f"network space {self.name!r} has no benchmark table {table!r}", key="accuracy"
        )

    def benchmark_accuracy(self, params: Mapping[str, Any], table: str) -> float:
        """Published accuracy (percent) of ``params`` in ``table``."""
        raise ConfigError(
            f"network space {self.name!r} has no benchmark table {table!r}", key="accuracy"
        )

    def __repr__(self) -> str:
        # scikit-learn's convention: only the options that differ from the defaults
        try:
            defaults = type(self)().options
        except Exception:  # noqa: BLE001 - a space whose options have no defaults shows them all
            defaults = {}
        changed = {k: v for k, v in self.options.items() if k not in defaults or defaults[k] != v}
        return f"{type(self).__name__}({_kwargs(changed)})"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "options": self.options,
            "parameters": len(self.params),
            "size": self.size,
        }


class HardwareSpace(_ParamSpace):
    """A family of accelerators (a template plus ranges). ``ranges`` override the defaults."""

    prefix = "hw"

    #: the template's reference design, ``{name: value}``
    reference: ClassVar[dict[str, Any]] = {}

    def __init__(self, **ranges: Any) -> None:
        self.params = apply_overrides(self.default_params(), ranges, f"hw:{self.name}")
        #: the range overrides this space was built with
        self.ranges = dict(ranges)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_kwargs(self.ranges)})"

    @classmethod
    @abstractmethod
    def default_params(cls) -> dict[str, Param]:
        """The template's parameters with their default search ranges and hard limits."""

    def build(self, params: Mapping[str, Any]) -> Accelerator:
        values = self.validate(params)
        return Accelerator(self.name, values)

    def default(self) -> Accelerator:
        """The reference design, checked against the hard limits (not the search range)."""
        full = {k: p.widened() for k, p in self.default_params().items()}
        checked = validate_params(
            full, {f"hw.{k}": v for k, v in self.reference.items()}, "hw", f"hw:{self.name}"
        )
        return Accelerator(self.name, checked)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "parameters": len(self.params), "size": self.size}


def _kwargs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


_spaces: Registry[NetworkSpace] = Registry("network space")
_hardware_spaces: Registry[HardwareSpace] = Registry("hardware space")


def register_space(name: str) -> Callable[[type[NetworkSpace]], type[NetworkSpace]]:
    return _spaces.register(name)


def register_hardware_space(name: str) -> Callable[[type[HardwareSpace]], type[HardwareSpace]]:
    return _hardware_spaces.register(name)


def list_spaces() -> list[str]:
    return _spaces.names()


def list_hardware_spaces() -> list[str]:
    return _hardware_spaces.names()


def get_space(name: str, /, **options: Any) -> NetworkSpace:
    return _spaces.get_class(name, key="space.network")(**options)


def get_hardware_space(name: str, /, **ranges: Any) -> HardwareSpace:
    return _hardware_spaces.get_class(name, key="space.hardware")(**ranges)


def _parse_scalar(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text


def parse_accelerator(spec: str) -> Accelerator:
    """``"systolic:pe_rows=32,pe_cols=32,dataflow=os"`` -> Accelerator.

    Unspecified parameters take the template's reference value; every value is checked against
    the template's hard limits.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"an accelerator spec must be a string; got {type(spec).__name__}")
    template, _, rest = spec.partition(":")
    given: dict[str, Any] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, val = item.partition("=")
            if not eq or not key.strip():
                raise ConfigError(f"accelerator spec {spec!r}: expected key=value, got {item!r}")
            if key.strip() in given:
                raise ConfigError(f"accelerator spec {spec!r} gives {key.strip()!r} twice")
            given[key.strip()] = _parse_scalar(val.strip())
    if template.strip() == "device":  # a named device (what Accelerator.spec() writes)
        extra = sorted(set(given) - {"name"})
        if extra:
            raise ConfigError(
                f"hw:device takes only name=DEVICE (e.g. device:name=pixel3); got {extra[0]!r}"
            )
        return get_hardware_space("device", device=given.get("name")).default()
    space = get_hardware_space(template.strip())
    values = {**space.reference, **given}
    full = {k: p.widened() for k, p in space.default_params().items()}
    checked = validate_params(
        full, {f"hw.{k}": v for k, v in values.items()}, "hw", f"hw:{space.name}"
    )
    canonical = getattr(space, "canonical", None)  # heterogeneous: inactive subs reset
    return Accelerator(space.name, canonical(checked) if canonical else checked)
