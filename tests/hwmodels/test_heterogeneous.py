"""The heterogeneous (NASAIC-style) model: schedules, bounds, area, multi-network assignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosearch.errors import ConfigError
from cosearch.hwmodels import Accelerator, Layer, get_cost_model
from cosearch.hwmodels.heterogeneous import HeterogeneousCostModel
from cosearch.spaces import get_hardware_space, parse_accelerator

MODEL = get_cost_model("heterogeneous")
SPACE = get_hardware_space("heterogeneous")
REFERENCE = SPACE.default()


def _acc(**changes) -> Accelerator:
    return Accelerator("heterogeneous", {**REFERENCE.params, **changes})


@st.composite
def layers(draw) -> Layer:
    kind = draw(st.sampled_from(["conv", "conv", "depthwise", "gemm", "pool", "eltwise"]))
    p = draw(st.integers(1, 20))
    if kind in ("conv", "depthwise"):
        c = draw(st.integers(1, 48))
        k = c if kind == "depthwise" else draw(st.integers(1, 96))
        r = draw(st.sampled_from([1, 3, 5]))
        return Layer(
            kind,
            c=c,
            k=k,
            h=p + r - 1,
            w=p + r - 1,
            p=p,
            q=p,
            r=r,
            s=r,
            groups=c if kind == "depthwise" else 1,
        )
    if kind == "gemm":
        return Layer("gemm", c=draw(st.integers(1, 256)), k=draw(st.integers(1, 256)), h=p, p=p)
    c = draw(st.integers(1, 32))
    r = 2 if kind == "pool" else 1
    return Layer(kind, c=c, k=c, h=p * r, w=p * r, p=p, q=p, r=r, s=r)


networks = st.lists(layers(), min_size=1, max_size=6)


@st.composite
def chips(draw) -> Accelerator:
    """Random designs of the space, with SRAM large enough that no sub has violations."""
    params = SPACE.sample(np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    params["hw.sram_kib"] = 512
    return SPACE.build(params)


def _alone(sub: Accelerator, layers: list[Layer]):
    return get_cost_model(sub.template).evaluate(layers, sub)


@settings(max_examples=25, deadline=None)
@given(networks, chips())
def test_never_slower_than_its_best_single_sub(net: list[Layer], acc: Accelerator) -> None:
    cost = MODEL.evaluate(net, acc)
    feasible = [
        c for c in (_alone(s, net) for s in MODEL.sub_accelerators(acc)) if not c.violations
    ]
    assert feasible  # 512 KiB per sub holds every tile of these layers
    best = min(c.latency_cycles for c in feasible)
    assert cost.latency_cycles <= best * (1 + 1e-9)
    assert cost.violations == ()
    assert 0 <= cost.utilization <= 1
    assert cost.energy_mj > 0 and cost.area_mm2 > 0


@settings(max_examples=25, deadline=None)
@given(networks, networks, chips())
def test_latency_bounds_over_concatenation(a: list[Layer], b: list[Layer], acc: Accelerator):
    # Not additive: the schedule is chosen for the whole chain. What holds:
    # L(a) + L(b) <= L(a + b) <= L(a) + L(b) + the switch wait after a's last layer.
    la, lb = MODEL.evaluate(a, acc).latency_cycles, MODEL.evaluate(b, acc).latency_cycles
    lab = MODEL.evaluate(a + b, acc).latency_cycles
    elem_bytes = acc["precision_bits"] / 8
    switch = a[-1].ofmap_elems * elem_bytes / (acc["dram_gbps"] * 1e9 / (acc["clock_mhz"] * 1e6))
    assert la + lb <= lab * (1 + 1e-9)
    assert lab <= (la + lb + switch) * (1 + 1e-9)


@settings(max_examples=15, deadline=None)
@given(networks, chips())
def test_per_layer_costs_sum_to_the_total(net: list[Layer], acc: Accelerator) -> None:
    cost = MODEL.evaluate(net, acc)
    assert len(cost.per_layer) == len(net)
    assert math.isclose(
        sum(lc.latency_cycles for lc in cost.per_layer), cost.latency_cycles, rel_tol=1e-9
    )
    assert math.isclose(
        sum(lc.energy_pj for lc in cost.per_layer) * 1e-9, cost.energy_mj, rel_tol=1e-9
    )
    # each layer's cost is its cost on the chosen sub (plus any switch wait)
    subs = MODEL.sub_accelerators(acc)
    for layer, s, lc in zip(net, MODEL.schedule(net, acc), cost.per_layer):
        alone = get_cost_model(subs[s].template).layer_cost(layer, subs[s])
        assert lc.energy_pj == alone.energy_pj
        assert lc.latency_cycles >= alone.latency_cycles


def test_area_adds_up() -> None:
    for acc in (REFERENCE, _acc(num_subs=4, sub2_dataflow="rs", sub3_dataflow="is")):
        subs = MODEL.sub_accelerators(acc)
        assert len(subs) == acc["num_subs"]
        parts = sum(get_cost_model(s.template).area_mm2(s) for s in subs)
        assert math.isclose(MODEL.area_mm2(acc), parts + 0.05 * len(subs))
    assert MODEL.area_mm2(_acc(total_pes=8192)) > MODEL.area_mm2(REFERENCE)
    assert MODEL.area_mm2(_acc(sram_kib=512)) > MODEL.area_mm2(REFERENCE)


def test_sub_accelerators_share_the_budget() -> None:
    acc = _acc(num_subs=3, total_pes=1000, sub0_pe_share=0.5, sub1_pe_share=0.25)
    acc = _acc(**{**acc.params, "sub2_pe_share": 0.25, "sub2_dataflow": "rs"})
    a, b, c = MODEL.sub_accelerators(acc)
    assert (a.template, b.template, c.template) == ("systolic", "systolic", "row_stationary")
    assert (a["pe_rows"], a["pe_cols"]) == (22, 22)  # 500 PEs -> 22 x 22 = 484
    assert (b["pe_rows"], b["pe_cols"]) == (15, 16)  # 250 PEs -> 15 x 16 = 240
    assert (c["pe_rows"], c["pe_cols"], c["glb_kib"]) == (15, 16, 256)
    assert a["ifmap_sram_kib"] + a["filter_sram_kib"] + a["ofmap_sram_kib"] == pytest.approx(256)
    assert a["dataflow"] == "ws" and b["dataflow"] == "os"


def test_one_sub_is_that_sub() -> None:
    net = [Layer("conv", c=16, k=32, h=10, w=10, p=8, q=8, r=3, s=3), Layer("pool", c=32, k=32)]
    acc = _acc(num_subs=1, sub0_dataflow="rs")
    (sub,) = MODEL.sub_accelerators(acc)
    alone = _alone(sub, net)
    cost = MODEL.evaluate(net, acc)
    assert cost.latency_cycles == alone.latency_cycles
    assert cost.energy_mj == alone.energy_mj
    assert MODEL.schedule(net, acc) == (0, 0)


def test_assignment_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    net = [
        Layer("conv", c=int(c), k=int(k), h=12, w=12, p=10, q=10, r=3, s=3)
        for c, k in rng.integers(1, 64, size=(12, 2))
    ]
    acc = _acc(num_subs=4, sub2_dataflow="rs", sub3_dataflow="is", total_pes=1024)
    first = MODEL.schedule(net, acc)
    assert MODEL.schedule(net, acc) == first == HeterogeneousCostModel().schedule(net, acc)
    assert MODEL.evaluate(net, acc) == HeterogeneousCostModel().evaluate(net, acc)
    many = [net, net[:4], net[3:9]]
    assert MODEL.evaluate_many(many, acc) == HeterogeneousCostModel().evaluate_many(many, acc)


def test_switching_subs_costs_a_write_back() -> None:
    # A WS sub and an OS sub of equal size: a schedule that alternates pays the switch wait,
    # so with a slow DRAM link the whole chain stays on one sub.
    net = [
        Layer("conv", c=64, k=64, h=18, w=18, p=16, q=16, r=3, s=3),
        Layer("gemm", c=1024, k=16, h=4, p=4),
        Layer("conv", c=64, k=64, h=18, w=18, p=16, q=16, r=3, s=3),
    ]
    slow = _acc(dram_gbps=0.1)
    path = MODEL.schedule(net, slow)
    assert len(set(path)) == 1


@settings(max_examples=15, deadline=None)
@given(st.lists(networks, min_size=1, max_size=6), chips())
def test_many_networks_makespan_bounds(nets: list[list[Layer]], acc: Accelerator) -> None:
    out = MODEL.evaluate_many(nets, acc)
    subs = MODEL.sub_accelerators(acc)
    alone = [[_alone(s, net) for s in subs] for net in nets]
    best = [min(c.latency_cycles for c in row) for row in alone]
    makespan = out.cost.latency_cycles
    assert makespan >= max(best) * (1 - 1e-9)
    if len(nets) <= 4:  # exhaustive: no worse than every network on its own best sub
        assert makespan <= sum(best) * (1 + 1e-9) or makespan == pytest.approx(
            out.cost.dram_bytes / (acc["dram_gbps"] * 1e9 / (acc["clock_mhz"] * 1e6))
        )
    assert len(out.assignment) == len(nets) and all(0 <= s < len(subs) for s in out.assignment)
    assert max(out.busy_cycles) <= makespan * (1 + 1e-9)
    assert math.isclose(
        out.cost.energy_mj,
        sum(alone[j][s].energy_mj for j, s in enumerate(out.assignment)),
        rel_tol=1e-9,
    )
    assert out.cost.area_mm2 == MODEL.area_mm2(acc)
    assert len(out.cost.per_layer) == sum(len(n) for n in nets)


def test_many_networks_spread_over_subs() -> None:
    net = [Layer("conv", c=32, k=32, h=18, w=18, p=16, q=16, r=3, s=3)] * 3
    acc = _acc(sub1_dataflow="ws")  # two identical subs
    one = MODEL.evaluate_many([net], acc)
    two = MODEL.evaluate_many([net, net], acc)
    assert two.assignment == (0, 1)  # in parallel, not one after the other
    assert two.cost.latency_cycles == pytest.approx(one.cost.latency_cycles)
    assert two.cost.energy_mj == pytest.approx(2 * one.cost.energy_mj)
    # more networks than the exhaustive limit: list scheduling balances them
    six = MODEL.evaluate_many([net] * 6, acc)
    assert sorted(six.assignment) == [0, 0, 0, 1, 1, 1]


def test_errors() -> None:
    with pytest.raises(ValueError, match="template"):
        MODEL.evaluate([], parse_accelerator("systolic"))
    with pytest.raises(ValueError, match="template"):
        MODEL.evaluate_many([[]], parse_accelerator("systolic"))
    with pytest.raises(ConfigError, match="'num_subs' parameter of hw:heterogeneous"):
        MODEL.evaluate([], _acc(num_subs=5))
    with pytest.raises(ConfigError, match="'sub1_dataflow' parameter"):
        MODEL.evaluate([], _acc(sub1_dataflow="nlr"))
    with pytest.raises(ConfigError, match="needs parameter 'total_pes'"):
        MODEL.evaluate([], Accelerator("heterogeneous", {"num_subs": 2}))
    with pytest.raises(ConfigError, match="rs_rf_bytes"):
        HeterogeneousCostModel(rs_rf_bytes=-1)
    assert HeterogeneousCostModel(rs_rf_bytes=256).version.startswith("v2+")
    assert MODEL.source == "analytical:heterogeneous/v2"
