"""Heterogeneous multi-dataflow accelerator (``heterogeneous``), in the spirit of NASAIC.

Reference: L. Yang, Z. Yan, M. Li, H. Kwon, L. Lai, T. Krishna, V. Chandra, W. Jiang, Y. Shi,
"Co-Exploration of Neural Architectures and Heterogeneous ASIC Accelerator Designs Targeting
Multiple Tasks", DAC 2020: one chip holds several sub-accelerators of different dataflows that
share a PE budget, a DRAM link and an area budget; networks (tasks) are mapped onto them.

Accelerator parameters: ``num_subs`` (1..4 active sub-accelerators), ``total_pes`` (the PE
budget), per sub ``sub{i}_dataflow`` (``ws``, ``os``, ``is``: a systolic array priced by
:mod:`cosearch.hwmodels.systolic`; ``rs``: a row-stationary array priced by
:mod:`cosearch.hwmodels.row_stationary`) and ``sub{i}_pe_share`` (normalized over the active
subs), ``sram_kib`` per sub, and the shared ``dram_gbps``, ``clock_mhz``, ``precision_bits``.
Subs ``i >= num_subs`` are ignored. See :meth:`HeterogeneousCostModel.sub_accelerators` for
how each sub is built.

One network (:meth:`HeterogeneousCostModel.evaluate`). Layers run in their listed order, one at
a time (the sub-accelerators could overlap independent branches; this model does not, to stay
simple and conservative). Each layer goes to one sub; the assignment minimizes, in order, the
number of layers placed where they violate a sub's constraints, the total latency, and the
energy, by dynamic programming over the chain, which is exact for this objective. Moving from
one sub to another costs the producer's output written back before the consumer may start:
``ofmap bytes / DRAM bytes per cycle`` of exposed latency (inside one sub that write-back
overlaps the next layer; the sub models already pay every layer's DRAM traffic and energy, so
the switch adds no energy). ``latency_cycles`` is the end-to-end latency of this sequential
schedule, switches included, in cycles of the shared clock; ``per_layer`` holds each layer's
cost on its sub, its switch wait added to its latency.

Several networks sharing the chip (:meth:`HeterogeneousCostModel.evaluate_many`): each whole
network goes to one sub; subs run in parallel. The assignment minimizes violations, then the
makespan, then energy: exhaustively for up to 4 networks, else by longest-processing-time
list scheduling. The makespan is the busiest sub's time, but no less than the whole DRAM
traffic over the shared link.

Area is the sum of the subs' areas plus a fixed interconnect port per sub.

Invariants: latency is not additive over layers (the schedule is chosen for the whole chain):
``L(a) + L(b) <= L(a + b) <= L(a) + L(b) + switch(a -> b)``; a chip is never slower on a
network than its best feasible sub-accelerator alone.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from cosearch.errors import ConfigError
from cosearch.hwmodels._base import (
    Accelerator,
    Cost,
    CostModel,
    Layer,
    LayerCost,
    register_cost_model,
)
from cosearch.hwmodels.row_stationary import RowStationaryCostModel
from cosearch.hwmodels.systolic import SystolicCostModel

__all__ = ["HeterogeneousCostModel", "MultiTaskCost", "MAX_SUBS", "SUB_DATAFLOWS", "sub_params"]

MAX_SUBS = 4
SUB_DATAFLOWS = ("ws", "os", "is", "rs")
_SHARED = ("num_subs", "total_pes", "sram_kib", "dram_gbps", "clock_mhz", "precision_bits")
#: exhaustive assignment of networks to subs up to this many networks (4**4 = 256 cases)
_EXHAUSTIVE_NETWORKS = 4


def sub_params(i: int) -> tuple[str, str]:
    """The parameter names of sub-accelerator ``i``: ``(sub{i}_dataflow, sub{i}_pe_share)``."""
    return f"sub{i}_dataflow", f"sub{i}_pe_share"


@dataclass(frozen=True)
class MultiTaskCost:
    """Several networks on one heterogeneous chip.

    ``cost.latency_cycles`` (and ``latency_ms``) is the makespan; energy, traffic and MACs
    sum over networks; ``cost.per_layer`` lists every network's layers in order.
    ``assignment[j]`` is the sub that runs network ``j``; ``busy_cycles[i]`` the time sub
    ``i`` works; ``network_costs[j]`` network ``j``'s cost on its sub.
    """

    cost: Cost
    assignment: tuple[int, ...]
    busy_cycles: tuple[float, ...]
    network_costs: tuple[Cost, ...]


class _Chip(NamedTuple):
    subs: tuple[Accelerator, ...]
    pes: int  # PEs of all subs (after rounding each sub to a rectangle)
    elem_bytes: float
    dram_bpc: float
    clock_mhz: float
    area_mm2: float


class _Key(NamedTuple):
    """What a schedule minimizes, in order."""

    violations: int
    latency: float
    energy: float

    def plus(self, other: _Key) -> _Key:
        return _Key(
            self.violations + other.violations,
            self.latency + other.latency,
            self.energy + other.energy,
        )


@register_cost_model("heterogeneous")
class HeterogeneousCostModel(CostModel):
    """Several systolic / row-stationary sub-accelerators on one chip (NASAIC-style).

    Layers (one network) or whole networks (:meth:`evaluate_many`) are assigned to the subs
    to minimize latency.

    Options: ``rs_rf_bytes`` (scratch pad per PE of ``rs`` subs, default 512 B, [E16]'s
    baseline) and ``interconnect_mm2_per_sub`` (a port on the shared DRAM/NoC fabric per sub,
    default 0.05 mm2; assumption). Non-default options change :attr:`version`.

    Raises:
        ConfigError: an option is not a positive number, or an accelerator lacks a parameter
            or holds an impossible value.
    """

    version = "v2"  # v2: row_stationary v2
    templates = ("heterogeneous",)

    def __init__(self, rs_rf_bytes: float = 512.0, interconnect_mm2_per_sub: float = 0.05) -> None:
        super().__init__()
        for key, value in (
            ("rs_rf_bytes", rs_rf_bytes),
            ("interconnect_mm2_per_sub", interconnect_mm2_per_sub),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(
                    f"The {key!r} option of the heterogeneous cost model must be a "
                    f"non-negative number. Got {value!r} instead.",
                    key=key,
                )
        self.rs_rf_bytes = float(rs_rf_bytes)
        self.interconnect_mm2_per_sub = float(interconnect_mm2_per_sub)
        if (self.rs_rf_bytes, self.interconnect_mm2_per_sub) != (512.0, 0.05):
            blob = json.dumps([self.rs_rf_bytes, self.interconnect_mm2_per_sub]).encode()
            self.version = (
                f"{HeterogeneousCostModel.version}+{hashlib.sha256(blob).hexdigest()[:10]}"
            )
        self.systolic = SystolicCostModel()
        self.row_stationary = RowStationaryCostModel()
        self._chip = lru_cache(maxsize=4096)(self._chip_uncached)
        self._sub_costs = lru_cache(maxsize=65536)(self._sub_costs_uncached)

    # -- the chip -----------------------------------------------------------------------------
    def _chip_uncached(self, acc: Accelerator) -> _Chip:
        p = acc.params
        for k in _SHARED:
            if k not in p:
                raise ConfigError(
                    f"a heterogeneous accelerator needs parameter {k!r}; got {acc.spec()}", key=k
                )
            v = p[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(
                    f"The {k!r} parameter of hw:heterogeneous must be a positive number. "
                    f"Got {v!r} instead.",
                    key=k,
                )
        n = p["num_subs"]
        if not float(n).is_integer() or not 1 <= n <= MAX_SUBS:
            raise ConfigError(
                f"The 'num_subs' parameter of hw:heterogeneous must be an int in "
                f"[1, {MAX_SUBS}]. Got {n!r} instead.",
                key="num_subs",
            )
        n = int(n)
        total = int(p["total_pes"])
        if total < n:
            raise ConfigError(
                f"The 'total_pes' parameter of hw:heterogeneous must be at least num_subs "
                f"({n}). Got {p['total_pes']!r} instead.",
                key="total_pes",
            )
        dataflows, shares = [], []
        for i in range(n):
            kd, ks = sub_params(i)
            if kd not in p or ks not in p:
                missing = kd if kd not in p else ks
                raise ConfigError(
                    f"a heterogeneous accelerator with num_subs={n} needs parameter "
                    f"{missing!r}; got {acc.spec()}",
                    key=missing,
                )
            if p[kd] not in SUB_DATAFLOWS:
                raise ConfigError(
                    f"The {kd!r} parameter of hw:heterogeneous must be one of "
                    f"{list(SUB_DATAFLOWS)}. Got {p[kd]!r} instead.",
                    key=kd,
                )
            s = p[ks]
            if isinstance(s, bool) or not isinstance(s, (int, float)) or s <= 0:
                raise ConfigError(
                    f"The {ks!r} parameter of hw:heterogeneous must be a positive number. "
                    f"Got {s!r} instead.",
                    key=ks,
                )
            dataflows.append(p[kd])
            shares.append(float(s))
        bits = p["precision_bits"]
        clock = float(p["clock_mhz"])
        subs, pes, area = [], 0, 0.0
        for df, share in zip(dataflows, shares):
            # Floor keeps the chip within its budget; every sub keeps at least one PE.
            budget = max(1, int(total * share / sum(shares)))
            rows = max(1, math.isqrt(budget))
            cols = max(1, budget // rows)
            pes += rows * cols
            sub = self._sub_accelerator(df, rows, cols, p["sram_kib"], p, bits, clock)
            subs.append(sub)
            area += self._model(sub).area_mm2(sub) + self.interconnect_mm2_per_sub
        return _Chip(
            subs=tuple(subs),
            pes=pes,
            elem_bytes=bits / 8,
            dram_bpc=p["dram_gbps"] * 1e9 / (clock * 1e6),
            clock_mhz=clock,
            area_mm2=area,
        )

    def _sub_accelerator(
        self,
        dataflow: str,
        rows: int,
        cols: int,
        sram_kib: float,
        p: dict[str, Any],
        bits: float,
        clock: float,
    ) -> Accelerator:
        shared = {"dram_gbps": p["dram_gbps"], "clock_mhz": p["clock_mhz"], "precision_bits": bits}
        if dataflow == "rs":
            # The buffer port is as wide as the array's edge (rows + cols words per cycle):
            # Eyeriss-like multicast buses grow with the array (assumption).
            noc_gbps = (rows + cols) * bits / 8 * clock * 1e-3
            return Accelerator(
                "row_stationary",
                {
                    "pe_rows": rows,
                    "pe_cols": cols,
                    "glb_kib": sram_kib,
                    "rf_bytes": self.rs_rf_bytes,
                    "noc_gbps": noc_gbps,
                    **shared,
                },
            )
        third = sram_kib / 3  # the same SRAM area as an rs sub's global buffer
        return Accelerator(
            "systolic",
            {
                "pe_rows": rows,
                "pe_cols": cols,
                "dataflow": dataflow,
                "ifmap_sram_kib": third,
                "filter_sram_kib": third,
                "ofmap_sram_kib": third,
                **shared,
            },
        )

    def _model(self, sub: Accelerator) -> CostModel:
        return self.row_stationary if sub.template == "row_stationary" else self.systolic

    def sub_accelerators(self, acc: Accelerator) -> tuple[Accelerator, ...]:
        """The active sub-accelerators, each a ``systolic`` or ``row_stationary`` Accelerator.

        Sub ``i`` gets ``floor(total_pes * share_i / sum(active shares))`` PEs (at least 1),
        shaped as the most square rectangle that fits (``isqrt`` rows; leftover PEs are
        dropped), ``sram_kib`` of SRAM (a systolic sub splits it evenly over its ifmap, filter
        and ofmap SRAMs), and the chip's DRAM link, clock and precision.
        """
        return self._chip(acc).subs

    def area_mm2(self, acc: Accelerator) -> float:
        """Sum of the sub-accelerators' areas plus one interconnect port per sub, mm2."""
        return self._chip(acc).area_mm2

    def clock_mhz(self, acc: Accelerator) -> float:
        return self._chip(acc).clock_mhz

    # -- per-layer ----------------------------------------------------------------------------
    def _sub_costs_uncached(
        self, layer: Layer, acc: Accelerator
    ) -> tuple[tuple[LayerCost, tuple[str, ...]], ...]:
        out = []
        for sub in self._chip(acc).subs:
            model = self._model(sub)
            out.append((model.layer_cost(layer, sub), tuple(model.check([layer], sub))))
        return tuple(out)

    def _key(self, lc: LayerCost, violations: Sequence[str]) -> _Key:
        return _Key(1 if violations else 0, lc.latency_cycles, lc.energy_pj)

    def layer_cost(self, layer: Layer, acc: Accelerator) -> LayerCost:
        """The layer on the sub that runs it best in isolation (fewest violations, then
        latency, then energy); utilization is over the whole chip's PEs."""
        options = self._sub_costs(layer, acc)
        best = min(range(len(options)), key=lambda i: self._key(*options[i]))
        return self._on_chip(options[best][0], 0.0, self._chip(acc).pes)

    @staticmethod
    def _on_chip(lc: LayerCost, wait: float, pes: int) -> LayerCost:
        latency = lc.latency_cycles + wait
        return LayerCost(
            compute_cycles=lc.compute_cycles,
            latency_cycles=latency,
            energy_pj=lc.energy_pj,
            sram_bytes=lc.sram_bytes,
            dram_bytes=lc.dram_bytes,
            macs=lc.macs,
            utilization=lc.macs / (latency * pes) if latency else 0.0,
            name=lc.name,
            kind=lc.kind,
            breakdown=lc.breakdown,
        )

    def _switch_cycles(self, producer: Layer, chip: _Chip) -> float:
        return producer.ofmap_elems * chip.elem_bytes / chip.dram_bpc

    # -- one network --------------------------------------------------------------------------
    def schedule(self, layers: Sequence[Layer], acc: Accelerator) -> tuple[int, ...]:
        """The sub index that runs each layer (see the module docstring for the objective).

        Ties go to the lower sub index, so the schedule is deterministic.
        """
        return self._schedule(list(layers), acc)[0]

    def _schedule(
        self, layers: list[Layer], acc: Accelerator
    ) -> tuple[tuple[int, ...], list[float]]:
        if not layers:
            return (), []
        chip = self._chip(acc)
        nsub = len(chip.subs)
        costs = [self._sub_costs(layer, acc) for layer in layers]
        best = [self._key(*costs[0][s]) for s in range(nsub)]
        back: list[list[int]] = []
        for i in range(1, len(layers)):
            switch = _Key(0, self._switch_cycles(layers[i - 1], chip), 0.0)
            step, ptr = [], []
            for s in range(nsub):
                own = self._key(*costs[i][s])
                cands = [
                    (best[t] if t == s else best[t].plus(switch), t) for t in range(nsub)
                ]  # (key, t): ties resolve to the lower previous sub
                key, t = min(cands)
                step.append(key.plus(own))
                ptr.append(t)
            best = step
            back.append(ptr)
        s = min(range(nsub), key=lambda j: (best[j], j))
        path = [s]
        for ptr in reversed(back):
            s = ptr[s]
            path.append(s)
        path.reverse()
        waits = [0.0] + [
            self._switch_cycles(layers[i - 1], chip) if path[i] != path[i - 1] else 0.0
            for i in range(1, len(layers))
        ]
        return tuple(path), waits

    def evaluate(self, layers: Iterable[Layer], acc: Accelerator) -> Cost:
        """The network run layer by layer on the chip, each layer on the sub the schedule
        picks. ``latency_cycles`` is the sequential schedule's end-to-end latency, switches
        included; ``utilization`` is MACs over (cycles x all PEs of the chip)."""
        layers = list(layers)
        self._check_template(acc)
        chip = self._chip(acc)
        path, waits = self._schedule(layers, acc)
        per_layer: list[LayerCost] = []
        violations: list[str] = []
        for layer, s, wait in zip(layers, path, waits):
            lc, viol = self._sub_costs(layer, acc)[s]
            lc = self._on_chip(lc, wait, chip.pes)
            if layer.name or layer.op_type:
                lc = LayerCost(**{**lc.__dict__, "name": layer.name, "kind": layer.kind})
            per_layer.append(lc)
            violations.extend(f"sub{s}: {v}" for v in viol)
        return self._cost(per_layer, chip, violations)

    def _cost(
        self,
        per_layer: Sequence[LayerCost],
        chip: _Chip,
        violations: Sequence[str],
        makespan: float | None = None,
    ) -> Cost:
        cycles = sum(lc.latency_cycles for lc in per_layer) if makespan is None else makespan
        macs = sum(lc.macs for lc in per_layer)
        return Cost(
            compute_cycles=sum(lc.compute_cycles for lc in per_layer),
            latency_cycles=cycles,
            latency_ms=cycles / (chip.clock_mhz * 1e3),
            energy_mj=sum(lc.energy_pj for lc in per_layer) * 1e-9,
            area_mm2=chip.area_mm2,
            sram_bytes=sum(lc.sram_bytes for lc in per_layer),
            dram_bytes=sum(lc.dram_bytes for lc in per_layer),
            utilization=macs / (cycles * chip.pes) if cycles else 0.0,
            macs=macs,
            per_layer=tuple(per_layer),
            violations=tuple(dict.fromkeys(violations)),
        )

    def _check_template(self, acc: Accelerator) -> None:
        if acc.template not in self.templates:
            raise ValueError(
                f"cost model {self.name!r} takes accelerators of template(s) "
                f"{', '.join(self.templates)}; got {acc.template!r}"
            )

    # -- several networks ---------------------------------------------------------------------
    def evaluate_many(self, networks: Sequence[Sequence[Layer]], acc: Accelerator) -> MultiTaskCost:
        """Several networks sharing the chip, each whole network on one sub, subs in parallel.

        Raises:
            ValueError: ``acc`` is not a heterogeneous accelerator.
        """
        self._check_template(acc)
        chip = self._chip(acc)
        nsub, nets = len(chip.subs), [list(n) for n in networks]
        # table[j][s]: network j alone on sub s
        table: list[list[tuple[_Key, list[LayerCost], list[str]]]] = []
        for layers in nets:
            row = []
            for s in range(nsub):
                lcs: list[LayerCost] = []
                viols: list[str] = []
                key = _Key(0, 0.0, 0.0)
                for layer in layers:
                    lc, v = self._sub_costs(layer, acc)[s]
                    if layer.name or layer.op_type:
                        lc = LayerCost(**{**lc.__dict__, "name": layer.name, "kind": layer.kind})
                    lcs.append(lc)
                    viols.extend(f"sub{s}: {x}" for x in v)
                    key = key.plus(self._key(lc, v))
                row.append((key, lcs, viols))
            table.append(row)
        # DRAM cycles of network j on sub s: all subs share one link
        link = [[sum(lc.dram_bytes for lc in cell[1]) / chip.dram_bpc for cell in r] for r in table]

        def score(assign: Iterable[int]) -> tuple[int, float, float]:
            busy = [0.0] * nsub
            viol, energy, traffic = 0, 0.0, 0.0
            for j, s in enumerate(assign):
                key = table[j][s][0]
                busy[s] += key.latency
                viol += key.violations
                energy += key.energy
                traffic += link[j][s]
            return viol, max(max(busy, default=0.0), traffic), energy

        if len(nets) <= _EXHAUSTIVE_NETWORKS:
            # product() enumerates in lexicographic order and min() keeps the first minimum.
            assignment = tuple(min(itertools.product(range(nsub), repeat=len(nets)), key=score))
        else:
            assignment = tuple(self._lpt(table, nsub))
        busy = [0.0] * nsub
        per_layer: list[LayerCost] = []
        violations: list[str] = []
        network_costs = []
        for j, s in enumerate(assignment):
            key, lcs, viols = table[j][s]
            busy[s] += key.latency
            on_chip = [self._on_chip(lc, 0.0, chip.pes) for lc in lcs]
            per_layer.extend(on_chip)
            violations.extend(viols)
            network_costs.append(self._cost(on_chip, chip, viols))
        makespan = max(max(busy, default=0.0), sum(link[j][s] for j, s in enumerate(assignment)))
        return MultiTaskCost(
            cost=self._cost(per_layer, chip, violations, makespan=makespan),
            assignment=tuple(assignment),
            busy_cycles=tuple(busy),
            network_costs=tuple(network_costs),
        )

    @staticmethod
    def _lpt(table: list[list[tuple[_Key, list[LayerCost], list[str]]]], nsub: int) -> list[int]:
        """Longest processing time first: each network, longest first, to the sub where it
        finishes earliest (fewest violations first; ties to lower energy, then lower index)."""
        order = sorted(range(len(table)), key=lambda j: (-min(k[0].latency for k in table[j]), j))
        busy = [0.0] * nsub
        assign = [0] * len(table)
        for j in order:
            s = min(
                range(nsub),
                key=lambda t: (
                    table[j][t][0].violations,
                    busy[t] + table[j][t][0].latency,
                    table[j][t][0].energy,
                    t,
                ),
            )
            assign[j] = s
            busy[s] += table[j][s][0].latency
        return assign
