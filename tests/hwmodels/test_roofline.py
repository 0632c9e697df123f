"""The roofline model: hand-checked bounds, defaults and the additive-cost properties."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosearch.errors import ConfigError
from cosearch.hwmodels import Accelerator, Cost, Layer, get_cost_model
from cosearch.spaces import parse_accelerator

MODEL = get_cost_model("roofline")
REFERENCE = parse_accelerator("roofline")
KINDS = ["conv", "depthwise", "gemm", "matmul", "pool", "eltwise", "softmax", "norm", "data"]


def _acc(**params) -> Accelerator:
    return Accelerator("roofline", params)


@st.composite
def layers(draw) -> Layer:
    kind = draw(st.sampled_from(KINDS))
    p, c, k = draw(st.integers(1, 30)), draw(st.integers(1, 64)), draw(st.integers(1, 64))
    r = draw(st.sampled_from([1, 3]))
    if kind == "depthwise":
        k = c
    groups = c if kind == "depthwise" else 1
    if kind not in ("conv", "depthwise", "gemm", "matmul"):
        k = c
    return Layer(
        kind,
        n=draw(st.integers(1, 3)),
        c=c,
        k=k,
        h=p + r - 1,
        w=p + r - 1,
        p=p,
        q=p,
        r=r,
        s=r,
        groups=groups,
        elem_bytes=draw(st.sampled_from([1, 2, 4])),
    )


accelerators = st.builds(
    lambda peak, bw, vec: _acc(peak_gmacs=peak, mem_gbps=bw, vector_gops=vec),
    st.sampled_from([0.5, 10.0, 512.0]),
    st.sampled_from([0.1, 34.1, 900.0]),
    st.sampled_from([1.0, 64.0]),
)


def test_compute_and_memory_bound_by_hand() -> None:
    layer = Layer("gemm", c=100, k=100, h=100, p=100, elem_bytes=1)  # 1e6 MACs, 3e4 bytes
    compute_bound = MODEL.layer_cost(layer, _acc(peak_gmacs=1.0, mem_gbps=1.0))
    assert compute_bound.latency_cycles == pytest.approx(1e6 / 1e9 * 1e9)  # 1 ms at 1 GHz
    assert compute_bound.utilization == pytest.approx(1.0)
    memory_bound = MODEL.layer_cost(layer, _acc(peak_gmacs=1000.0, mem_gbps=0.001))
    assert memory_bound.latency_cycles == pytest.approx(3e4 / 1e6 * 1e9)
    assert memory_bound.compute_cycles == pytest.approx(1e6 / 1e12 * 1e9)
    assert memory_bound.dram_bytes == 3e4
    assert memory_bound.energy_pj == pytest.approx(1e6 * 1.0 + 3e4 * 162.5)


def test_defaults_and_optional_parameters() -> None:
    bare = _acc(peak_gmacs=100.0, mem_gbps=10.0)
    assert MODEL.area_mm2(bare) == 0.0 and MODEL.clock_mhz(bare) == 1000.0
    pool = Layer("pool", c=8, k=8, h=8, w=8, p=4, q=4, r=2, s=2)
    # vector_gops defaults to peak_gmacs
    assert MODEL.layer_cost(pool, bare) == MODEL.layer_cost(
        pool, _acc(**bare.params, vector_gops=100.0)
    )
    given_ = _acc(peak_gmacs=100.0, mem_gbps=10.0, area_mm2=3.5, clock_mhz=500, pj_per_mac=0.0)
    assert MODEL.area_mm2(given_) == 3.5
    cost = MODEL.evaluate([Layer("gemm", c=8, k=8, h=8, p=8)], given_)
    assert cost.per_layer[0].breakdown["compute"] == 0.0
    assert cost.latency_ms == pytest.approx(cost.latency_cycles / 500e3)
    assert MODEL.area_mm2(REFERENCE) == 0.0


@settings(max_examples=40, deadline=None)
@given(layers(), accelerators)
def test_costs_are_non_negative(layer: Layer, acc: Accelerator) -> None:
    cost = MODEL.evaluate([layer], acc)
    for name in (*Cost.METRICS, "macs"):
        value = getattr(cost, name)
        assert math.isfinite(value) and value >= 0, name
    assert cost.utilization <= 1 + 1e-9


@settings(max_examples=30, deadline=None)
@given(layers(), layers(), accelerators)
def test_costs_add_over_layers(a: Layer, b: Layer, acc: Accelerator) -> None:
    both = MODEL.evaluate([a, b], acc)
    summed = MODEL.evaluate([a], acc) + MODEL.evaluate([b], acc)
    for name in ("compute_cycles", "latency_cycles", "energy_mj", "dram_bytes", "macs"):
        assert math.isclose(getattr(both, name), getattr(summed, name), rel_tol=1e-9), name


@settings(max_examples=30, deadline=None)
@given(layers(), st.integers(0, 20), st.integers(0, 20), accelerators)
def test_work_growth_never_makes_a_layer_cheaper(layer, dk, dp, acc) -> None:
    extra_k = dk * layer.groups if layer.kind in ("conv", "gemm", "matmul") else 0
    bigger = replace(layer, k=layer.k + extra_k, p=layer.p + dp, h=layer.h + dp)
    small, big = MODEL.layer_cost(layer, acc), MODEL.layer_cost(bigger, acc)
    assert big.latency_cycles >= small.latency_cycles
    assert big.energy_pj >= small.energy_pj
    assert big.dram_bytes >= small.dram_bytes


def test_faster_hardware_is_never_slower() -> None:
    layer = Layer("conv", c=32, k=64, h=18, w=18, p=16, q=16, r=3, s=3)
    base = MODEL.layer_cost(layer, REFERENCE).latency_cycles
    assert (
        MODEL.layer_cost(layer, _acc(**{**REFERENCE.params, "peak_gmacs": 1024.0})).latency_cycles
        <= base
    )
    assert (
        MODEL.layer_cost(layer, _acc(**{**REFERENCE.params, "mem_gbps": 100.0})).latency_cycles
        <= base
    )


def test_errors() -> None:
    with pytest.raises(ConfigError, match="needs parameter 'mem_gbps'"):
        MODEL.evaluate([], _acc(peak_gmacs=1.0))
    with pytest.raises(ConfigError, match="'peak_gmacs' parameter of hw:roofline"):
        MODEL.evaluate([Layer("gemm")], _acc(peak_gmacs=0, mem_gbps=1.0))
    with pytest.raises(ConfigError, match="'area_mm2' parameter of hw:roofline"):
        MODEL.area_mm2(_acc(peak_gmacs=1.0, mem_gbps=1.0, area_mm2=-1))
    with pytest.raises(ValueError, match="template"):
        MODEL.evaluate([], parse_accelerator("systolic"))
