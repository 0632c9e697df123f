"""Properties and hand-checked numbers of the systolic cost model."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosearch.errors import ConfigError
from cosearch.hwmodels import Accelerator, Cost, Layer, get_cost_model
from cosearch.hwmodels.systolic import SystolicCostModel, gemm_view, scalesim_compute_cycles
from cosearch.spaces import parse_accelerator

REFERENCE = parse_accelerator("systolic")
SCALESIM_CSV = (
    Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "hwmodels_scalesim.csv"
)


def _acc(**changes) -> Accelerator:
    return Accelerator("systolic", {**REFERENCE.params, **changes})


dims = st.integers(1, 24)


@st.composite
def layers(draw) -> Layer:
    kind = draw(
        st.sampled_from(
            ["conv", "depthwise", "gemm", "matmul", "pool", "eltwise", "softmax", "norm", "data"]
        )
    )
    n = draw(st.integers(1, 3))
    p, q = draw(dims), draw(dims)
    if kind in ("conv", "depthwise"):
        groups = draw(st.sampled_from([1, 2, 4]))
        c = groups * draw(st.integers(1, 8))
        k = c if kind == "depthwise" else groups * draw(st.integers(1, 8))
        if kind == "depthwise":
            groups = c
        r = draw(st.sampled_from([1, 3, 5]))
        return Layer(
            kind, n=n, c=c, k=k, h=p + r - 1, w=q + r - 1, p=p, q=q, r=r, s=r, groups=groups
        )
    if kind in ("gemm", "matmul"):
        return Layer(
            kind, n=n if kind == "matmul" else 1, c=draw(dims) * 4, k=draw(dims) * 4, h=p, p=p
        )
    c = draw(dims)
    r = draw(st.sampled_from([1, 2, 3])) if kind == "pool" else 1
    return Layer(
        kind,
        n=n,
        c=c,
        k=c,
        h=p * r,
        w=q * r,
        p=p,
        q=q,
        r=r,
        s=r,
        operands=draw(st.integers(1, 2)) if kind == "eltwise" else 1,
    )


@st.composite
def accelerators(draw) -> Accelerator:
    return Accelerator(
        "systolic",
        {
            "pe_rows": draw(st.sampled_from([1, 2, 4, 8, 16, 32])),
            "pe_cols": draw(st.sampled_from([1, 3, 4, 8, 16, 32])),
            "dataflow": draw(st.sampled_from(["ws", "os", "is"])),
            "ifmap_sram_kib": draw(st.sampled_from([1, 2, 16, 128])),
            "filter_sram_kib": draw(st.sampled_from([1, 2, 16, 128])),
            "ofmap_sram_kib": draw(st.sampled_from([1, 2, 16, 128])),
            "dram_gbps": draw(st.sampled_from([0.5, 4.0, 16.0, 64.0])),
            "clock_mhz": draw(st.sampled_from([100, 500, 1000])),
            "precision_bits": draw(st.sampled_from([4, 8, 16, 32])),
        },
    )


MODEL = get_cost_model("systolic")
ADDITIVE = (
    "compute_cycles",
    "latency_cycles",
    "latency_ms",
    "energy_mj",
    "sram_bytes",
    "dram_bytes",
    "macs",
)


@settings(max_examples=200, deadline=None)
@given(layers(), accelerators())
def test_costs_are_non_negative_and_finite(layer: Layer, acc: Accelerator) -> None:
    cost = MODEL.evaluate([layer], acc)
    for name in (*Cost.METRICS, "macs"):
        value = getattr(cost, name)
        assert math.isfinite(value) and value >= 0, name
    assert cost.utilization <= 1.0 + 1e-9
    assert cost.macs == layer.macs
    lc = cost.per_layer[0]
    assert all(v >= 0 for v in lc.breakdown.values())
    assert math.isclose(sum(lc.breakdown.values()), lc.energy_pj, rel_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(layers(), layers(), accelerators())
def test_costs_add_over_layers(a: Layer, b: Layer, acc: Accelerator) -> None:
    both = MODEL.evaluate([a, b], acc)
    summed = MODEL.evaluate([a], acc) + MODEL.evaluate([b], acc)
    for name in ADDITIVE:
        assert math.isclose(getattr(both, name), getattr(summed, name), rel_tol=1e-9), name
    assert both.area_mm2 == summed.area_mm2


@settings(max_examples=200, deadline=None)
@given(
    layers().filter(lambda lay: lay.kind == "conv" or lay.kind in ("gemm", "matmul")),
    st.integers(0, 40),
    st.integers(0, 20),
    accelerators(),
)
def test_work_growth_never_makes_a_layer_cheaper(
    layer: Layer, dk: int, dp: int, acc: Accelerator
) -> None:
    bigger = replace(
        layer,
        k=layer.k + dk * layer.groups,
        p=layer.p + dp,
        h=layer.h + dp if layer.kind == "conv" else layer.p + dp,
    )
    small, big = MODEL.layer_cost(layer, acc), MODEL.layer_cost(bigger, acc)
    assert big.compute_cycles >= small.compute_cycles
    assert big.latency_cycles >= small.latency_cycles - 1e-9
    assert big.dram_bytes >= small.dram_bytes - 1e-9
    assert big.energy_pj >= small.energy_pj - 1e-9


def test_os_gemm_cycles_by_hand() -> None:
    # (10 x 20) @ (20 x 5) on a 4 x 4 OS array: Sr = 10, Sc = 5, T = 20,
    # folds = ceil(10/4) * ceil(5/4) = 6, each 4 + 4 + 20 - 2 = 26 cycles (OS preloads nothing).
    layer = Layer("gemm", c=20, k=5, h=10, p=10)
    acc = _acc(pe_rows=4, pe_cols=4, dataflow="os")
    assert gemm_view(layer, "os") == (1, 10, 5, 20)
    assert MODEL.layer_cost(layer, acc).compute_cycles == 156
    # WS: Sr = 20, Sc = 5, T = 10 -> 5 * 2 folds of 2*4 + 4 + 10 - 2 = 20 cycles
    assert MODEL.layer_cost(layer, _acc(pe_rows=4, pe_cols=4, dataflow="ws")).compute_cycles == 200
    # IS: Sr = 20, Sc = 10, T = 5 -> 5 * 3 folds of 15 cycles
    assert MODEL.layer_cost(layer, _acc(pe_rows=4, pe_cols=4, dataflow="is")).compute_cycles == 225


def test_depthwise_runs_one_channel_per_gemm() -> None:
    layer = Layer("depthwise", c=8, k=8, h=4, w=4, p=4, q=4, r=3, s=3, groups=8)
    assert gemm_view(layer, "os") == (8, 16, 1, 9)
    cycles = MODEL.layer_cost(layer, _acc(pe_rows=4, pe_cols=4, dataflow="os")).compute_cycles
    assert cycles == 8 * scalesim_compute_cycles(16, 1, 9, 4, 4, "os") == 8 * 4 * 15


def test_scalesim_formula_edge_cases() -> None:
    assert scalesim_compute_cycles(0, 5, 5, 4, 4) == 0
    assert scalesim_compute_cycles(1, 1, 1, 1, 1) == 2
    assert scalesim_compute_cycles(32, 32, 100, 32, 32) == 2 * 32 + 32 + 100 - 2
    assert scalesim_compute_cycles(32, 32, 100, 32, 32, "is") == 2 * 32 + 32 + 100 - 2
    assert scalesim_compute_cycles(32, 32, 100, 32, 32, "os") == 32 + 32 + 100 - 2
    assert scalesim_compute_cycles(1, 1, 1, 1, 1, "os") == 1
    with pytest.raises(ConfigError, match="dataflow"):
        scalesim_compute_cycles(1, 1, 1, 1, 1, "rs")


@pytest.mark.skipif(not SCALESIM_CSV.exists(), reason=f"{SCALESIM_CSV} is absent")
def test_compute_cycles_equal_scalesim_per_layer() -> None:
    # Every job of benchmarks/hwmodels/scalesim_compare.py (regenerate: see
    # benchmarks/README.md): SCALE-Sim 3.0.0's compute cycles, converted as its report explains.
    with SCALESIM_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 100
    shape = ("n", "c", "k", "h", "w", "p", "q", "r", "s", "stride", "groups")
    wrong = []
    for row in rows:
        layer = Layer(row["kind"], **{f: int(row[f]) for f in shape})
        acc = _acc(
            pe_rows=int(row["array_rows"]), pe_cols=int(row["array_cols"]), dataflow=row["dataflow"]
        )
        cycles = MODEL.layer_cost(layer, acc).compute_cycles
        if cycles != int(row["scalesim_compute_cycles"]):
            wrong.append((row["network"], row["layer"], row["dataflow"], cycles))
    assert not wrong


def test_dram_bound_latency_and_utilization() -> None:
    layer = Layer("gemm", c=512, k=512, h=64, p=64)
    fast = MODEL.layer_cost(layer, _acc(dram_gbps=4096.0))
    slow = MODEL.layer_cost(layer, _acc(dram_gbps=0.1))
    assert fast.compute_cycles == slow.compute_cycles
    bytes_per_cycle = 0.1e9 / 500e6
    assert slow.latency_cycles >= slow.dram_bytes / bytes_per_cycle
    assert slow.utilization < fast.utilization <= 1


def test_area_grows_with_pes_sram_and_precision() -> None:
    area = MODEL.area_mm2
    assert area(_acc(pe_rows=64)) > area(REFERENCE) > area(_acc(pe_cols=16))
    assert area(_acc(filter_sram_kib=512)) > area(REFERENCE) > area(_acc(ofmap_sram_kib=16))
    assert area(_acc(precision_bits=16)) > area(REFERENCE) > area(_acc(precision_bits=4))
    assert 1.0 < area(REFERENCE) < 4.0


def test_cache_is_shared_by_identical_layers_with_other_names() -> None:
    class Counting(SystolicCostModel):
        calls = 0

        def layer_cost(self, layer, acc):
            type(self).calls += 1
            return super().layer_cost(layer, acc)

    model = Counting()
    a = Layer("conv", c=8, k=8, h=6, w=6, p=6, q=6, r=3, s=3, name="block1.conv")
    b = replace(a, name="block2.conv")
    cost = model.evaluate([a, b], REFERENCE)
    assert Counting.calls == 1
    assert [lc.name for lc in cost.per_layer] == ["block1.conv", "block2.conv"]
    assert cost.per_layer[0].energy_pj == cost.per_layer[1].energy_pj


def test_violations_when_a_buffer_is_absurdly_small() -> None:
    layer = Layer("conv", c=64, k=64, h=16, w=16, p=16, q=16, r=3, s=3, name="big")
    assert MODEL.evaluate([layer], REFERENCE).violations == ()
    tiny = _acc(pe_rows=64, pe_cols=64, precision_bits=16, dataflow="ws", filter_sram_kib=1)
    (violation,) = MODEL.evaluate([layer], tiny).violations
    assert "'big'" in violation and "filter_sram_kib=1" in violation
    tiny_os = _acc(pe_rows=64, pe_cols=64, ofmap_sram_kib=2)
    assert "ofmap" in MODEL.evaluate([layer], tiny_os).violations[0]
    # vector-only networks place no tile
    assert MODEL.evaluate([Layer("eltwise", c=4, k=4)], tiny).violations == ()


def test_template_and_parameter_errors() -> None:
    with pytest.raises(ValueError, match="template"):
        MODEL.evaluate([], Accelerator("row_stationary", {}))
    with pytest.raises(ConfigError, match="dram_gbps"):
        MODEL.evaluate(
            [],
            Accelerator(
                "systolic", {k: v for k, v in REFERENCE.params.items() if k != "dram_gbps"}
            ),
        )
    with pytest.raises(ConfigError, match="dataflow"):
        MODEL.evaluate([], _acc(dataflow="rs"))


def test_constants_are_overridable_and_versioned() -> None:
    cheap = get_cost_model("systolic", dram_pj_per_64b=130.0)
    layer = Layer("gemm", c=64, k=64, h=64, p=64)
    assert (
        cheap.evaluate([layer], REFERENCE).energy_mj < MODEL.evaluate([layer], REFERENCE).energy_mj
    )
    assert MODEL.source == "analytical:systolic/v1"
    assert cheap.version.startswith("v1+") and cheap.source != MODEL.source
    with pytest.raises(ConfigError, match="no constant 'dram_pj'"):
        get_cost_model("systolic", dram_pj=1.0)
