"""Core types of the cost models: Layer, Accelerator, LayerCost, Cost, CostModel.

Every MAC-carrying operation is described by the seven-loop convolution nest used by Timeloop
and ZigZag: N (batch), K (output channels), C (input channels), P x Q (output pixels),
R x S (kernel), with ``groups``. A GEMM ``(M x Kd) @ (Kd x Nc)`` is a 1x1 convolution with
``p = M``, ``c = Kd``, ``k = Nc``; a batched MatMul puts the batch in ``n``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, ClassVar

from cosearch._registry import Registry

__all__ = [
    "Layer",
    "Accelerator",
    "LayerCost",
    "Cost",
    "CostModel",
    "register_cost_model",
    "get_cost_model",
    "list_cost_models",
    "LAYER_KINDS",
]

#: conv, depthwise, gemm and matmul carry MACs; the rest are vector work or data movement.
LAYER_KINDS = ("conv", "depthwise", "gemm", "matmul", "pool", "eltwise", "softmax", "norm", "data")


@dataclass(frozen=True)
class Layer:
    """One operation's work, with shapes. ``name`` and ``op_type`` do not take part in equality,
    so identical layers of different networks share cache entries.

    For ``pool``, ``eltwise``, ``softmax``, ``norm`` and ``data``, ``k == c`` and ``r x s`` is the
    window (pool) or 1; ``operands`` is the number of input tensors (2 for a binary Add).
    """

    kind: str
    n: int = 1
    c: int = 1
    k: int = 1
    h: int = 1
    w: int = 1
    p: int = 1
    q: int = 1
    r: int = 1
    s: int = 1
    stride: int = 1
    groups: int = 1
    operands: int = 1
    elem_bytes: int = 4
    name: str = field(default="", compare=False)
    op_type: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; valid: {', '.join(LAYER_KINDS)}")

    @property
    def macs(self) -> int:
        """Multiply-accumulates (0 for layers without MACs)."""
        if self.kind not in ("conv", "depthwise", "gemm", "matmul"):
            return 0
        return self.n * self.k * (self.c // self.groups) * self.p * self.q * self.r * self.s

    @property
    def vector_ops(self) -> int:
        """Element operations of non-MAC layers (window size counts for pooling)."""
        if self.macs:
            return 0
        if self.kind == "data":
            return 0
        return self.n * self.k * self.p * self.q * self.r * self.s * max(self.operands, 1)

    @property
    def ifmap_elems(self) -> int:
        return self.n * self.c * self.h * self.w * max(self.operands if not self.macs else 1, 1)

    @property
    def filter_elems(self) -> int:
        if self.kind in ("conv", "depthwise", "gemm"):
            return self.k * (self.c // self.groups) * self.r * self.s
        if self.kind == "matmul":  # the second operand is an activation, counted per batch
            return self.n * self.k * self.c
        return 0

    @property
    def ofmap_elems(self) -> int:
        return self.n * self.k * self.p * self.q

    def key(self) -> str:
        """A stable string identifying the layer's work (for the persistent cost cache)."""
        vals = {f.name: getattr(self, f.name) for f in fields(self) if f.compare}
        return json.dumps(vals, sort_keys=True, separators=(",", ":"))


class Accelerator:
    """A frozen accelerator design: a template name and ``{parameter: value}``."""

    __slots__ = ("template", "_items", "_digest")
    template: str
    _items: tuple[tuple[str, Any], ...]
    _digest: str | None

    def __init__(self, template: str, params: Mapping[str, Any]) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "_items", tuple(sorted(params.items())))
        object.__setattr__(self, "_digest", None)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Accelerator is immutable")

    def __getitem__(self, key: str) -> Any:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(f"accelerator {self.template!r} has no parameter {key!r}")

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._items)

    @property
    def digest(self) -> str:
        digest = self._digest
        if digest is None:
            payload = json.dumps(
                {"template": self.template, "params": self.params},
                sort_keys=True,
                separators=(",", ":"),
            )
            digest = hashlib.sha256(payload.encode()).hexdigest()
            object.__setattr__(self, "_digest", digest)
        return digest

    def spec(self) -> str:
        """The CLI form ``template:key=value,...`` accepted by ``parse_accelerator``."""
        return self.template + ":" + ",".join(f"{k}={v}" for k, v in self._items)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Accelerator)
            and other.template == self.template
            and other._items == self._items
        )

    def __hash__(self) -> int:
        return hash((self.template, self._items))

    def __repr__(self) -> str:
        return f"Accelerator({self.spec()!r})"


@dataclass(frozen=True)
class LayerCost:
    """The cost of one layer on one accelerator. Cycles and energies add over layers."""

    compute_cycles: float
    latency_cycles: float
    energy_pj: float
    sram_bytes: float
    dram_bytes: float
    macs: int
    utilization: float
    name: str = ""
    kind: str = ""
    breakdown: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "macs": self.macs,
            "compute_cycles": self.compute_cycles,
            "latency_cycles": self.latency_cycles,
            "energy_pj": self.energy_pj,
            "sram_bytes": self.sram_bytes,
            "dram_bytes": self.dram_bytes,
            "utilization": self.utilization,
            **{f"energy_pj.{k}": v for k, v in self.breakdown.items()},
        }


@dataclass(frozen=True)
class Cost:
    """A network's cost on an accelerator.

    Units are in the names. ``utilization`` is MACs over (cycles x PEs) for the whole run.
    ``violations`` lists reasons the design cannot run the network (empty when feasible).
    Two Costs add: cycles, energy and traffic sum; area is the larger (same chip).
    """

    compute_cycles: float
    latency_cycles: float
    latency_ms: float
    energy_mj: float
    area_mm2: float
    sram_bytes: float
    dram_bytes: float
    utilization: float
    macs: int
    per_layer: tuple[LayerCost, ...] = ()
    violations: tuple[str, ...] = ()

    #: the scalar fields reported as metrics
    METRICS: ClassVar[tuple[str, ...]] = (
        "latency_ms",
        "energy_mj",
        "area_mm2",
        "latency_cycles",
        "compute_cycles",
        "sram_bytes",
        "dram_bytes",
        "utilization",
    )

    def metrics(self) -> dict[str, float]:
        return {m: float(getattr(self, m)) for m in self.METRICS}

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        cyc = self.latency_cycles + other.latency_cycles
        util = (
            (
                (self.utilization * self.latency_cycles + other.utilization * other.latency_cycles)
                / cyc
            )
            if cyc
            else 0.0
        )
        return Cost(
            compute_cycles=self.compute_cycles + other.compute_cycles,
            latency_cycles=cyc,
            latency_ms=self.latency_ms + other.latency_ms,
            energy_mj=self.energy_mj + other.energy_mj,
            area_mm2=max(self.area_mm2, other.area_mm2),
            sram_bytes=self.sram_bytes + other.sram_bytes,
            dram_bytes=self.dram_bytes + other.dram_bytes,
            utilization=util,
            macs=self.macs + other.macs,
            per_layer=self.per_layer + other.per_layer,
            violations=tuple(dict.fromkeys(self.violations + other.violations)),
        )

    def __repr__(self) -> str:
        # the per-layer tuple runs to tens of kilobytes: count it, `per_layer` prints it whole
        shown = ", ".join(
            f"{m}={getattr(self, m):.4g}"
            for m in ("latency_ms", "energy_mj", "area_mm2", "utilization")
        )
        broken = f", violations={self.violations!r}" if self.violations else ""
        return f"Cost({shown}, macs={self.macs}, layers={len(self.per_layer)}{broken})"

    def as_dict(self, *, layers: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.metrics(),
            "macs": self.macs,
            "violations": list(self.violations),
        }
        if layers:
            out["layers"] = [lc.as_dict() for lc in self.per_layer]
        return out


class CostModel(ABC):
    """A pure function ``(layers, accelerator) -> Cost``.

    Subclasses implement :meth:`layer_cost`, :meth:`area_mm2`, :meth:`clock_mhz` and may add
    :meth:`check` for feasibility. ``evaluate`` sums layer costs; layer costs are memoized by
    ``(layer, accelerator, version)`` (names do not count), so repeated layers cost nothing.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "v1"
    #: accelerator templates this model understands
    templates: ClassVar[tuple[str, ...]] = ()
    #: whether campaigns keep this model's layer costs in the store's ``layer_costs`` table by
    #: default. Worth it only for models slower per layer than a database round trip: for the
    #: analytical systolic model a store lookup costs ~3x recomputing (benchmarks/README.md).
    persist_layer_costs: ClassVar[bool] = False

    def __init__(self) -> None:
        self._cached: Callable[[Layer, Accelerator], LayerCost] = lru_cache(maxsize=65536)(
            self.layer_cost
        )

    @property
    def source(self) -> str:
        """Provenance string recorded with every metric, e.g. ``analytical:systolic/v1``."""
        return f"analytical:{self.name}/{self.version}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.source}>"

    @abstractmethod
    def layer_cost(self, layer: Layer, acc: Accelerator) -> LayerCost: ...

    @abstractmethod
    def area_mm2(self, acc: Accelerator) -> float: ...

    @abstractmethod
    def clock_mhz(self, acc: Accelerator) -> float: ...

    def check(self, layers: Sequence[Layer], acc: Accelerator) -> list[str]:
        """Reasons ``acc`` cannot run ``layers``; empty when feasible."""
        return []

    def evaluate(self, layers: Iterable[Layer], acc: Accelerator) -> Cost:
        """The network's cost: memoized layer costs, summed by :meth:`combine`."""
        if not isinstance(layers, Iterable) or isinstance(layers, str | bytes):
            raise TypeError(
                f"evaluate() takes the network's layers (extract_layers(model)); got "
                f"{type(layers).__name__}"
            )
        layers = list(layers)
        bad = next((x for x in layers if not isinstance(x, Layer)), None)
        if bad is not None:
            raise TypeError(
                f"evaluate() takes Layer objects (extract_layers(model)); got a "
                f"{type(bad).__name__}"
            )
        if not isinstance(acc, Accelerator):
            raise TypeError(
                f"evaluate() takes an Accelerator (a hardware space's build(params), or "
                f"Accelerator(template, params)); got {type(acc).__name__}"
            )
        self.check_template(acc)
        return self.combine(layers, [self._cached(layer, acc) for layer in layers], acc)

    def check_template(self, acc: Accelerator) -> None:
        if self.templates and acc.template not in self.templates:
            raise ValueError(
                f"cost model {self.name!r} takes accelerators of template(s) "
                f"{', '.join(self.templates)}; got {acc.template!r}"
            )

    def combine(
        self, layers: Sequence[Layer], costs: Sequence[LayerCost], acc: Accelerator
    ) -> Cost:
        """Sum per-layer costs (computed or read from a cache) into the network's Cost."""
        per_layer = []
        for layer, lc in zip(layers, costs, strict=True):
            if layer.name or layer.op_type:
                lc = replace(lc, name=layer.name, kind=layer.kind)
            per_layer.append(lc)
        cycles = sum(lc.latency_cycles for lc in per_layer)
        busy = sum(lc.utilization * lc.latency_cycles for lc in per_layer)
        clock = self.clock_mhz(acc)
        return Cost(
            compute_cycles=sum(lc.compute_cycles for lc in per_layer),
            latency_cycles=cycles,
            latency_ms=cycles / (clock * 1e3),
            energy_mj=sum(lc.energy_pj for lc in per_layer) * 1e-9,
            area_mm2=self.area_mm2(acc),
            sram_bytes=sum(lc.sram_bytes for lc in per_layer),
            dram_bytes=sum(lc.dram_bytes for lc in per_layer),
            utilization=busy / cycles if cycles else 0.0,
            macs=sum(lc.macs for lc in per_layer),
            per_layer=tuple(per_layer),
            violations=tuple(self.check(layers, acc)),
        )


_cost_models: Registry[CostModel] = Registry("cost model")


def register_cost_model(name: str) -> Callable[[type[CostModel]], type[CostModel]]:
    return _cost_models.register(name)


def list_cost_models() -> list[str]:
    return _cost_models.names()


def get_cost_model(name: str, /, **options: Any) -> CostModel:
    return _cost_models.create(name, **options)
