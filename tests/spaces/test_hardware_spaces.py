"""Every hardware space: samples build valid accelerators; reference designs; the new spaces'
own rules (row_stationary, heterogeneous, device, roofline)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosearch
from cosearch.errors import ConfigError
from cosearch.hwmodels import Accelerator, Layer, get_cost_model
from cosearch.hwmodels.measured import TABLE_DEVICES
from cosearch.spaces import get_hardware_space, parse_accelerator
from cosearch.spaces.hardware import DeviceSpace, HeterogeneousSpace, RowStationarySpace

#: the analytical cost model of each template
MODELS = {
    "systolic": "systolic",
    "row_stationary": "row_stationary",
    "heterogeneous": "heterogeneous",
    "roofline": "roofline",
}
CONV = Layer("conv", c=16, k=16, h=10, w=10, p=8, q=8, r=3, s=3)


def test_every_template_is_registered() -> None:
    names = cosearch.list_hardware_spaces()
    assert {"systolic", "row_stationary", "heterogeneous", "device", "roofline"} <= set(names)
    for name in names:  # what `cosearch spaces` prints
        described = get_hardware_space(name).describe()
        assert described["name"] == name and described["size"] >= 1


@pytest.mark.parametrize(
    "name", ["systolic", "row_stationary", "heterogeneous", "roofline", "device"]
)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_samples_build_valid_accelerators(name: str, seed: int) -> None:
    space = get_hardware_space(name)
    params = space.sample(np.random.default_rng(seed))
    assert set(params) == {f"hw.{k}" for k in space.params}
    acc = space.build(params)
    assert acc.template == name
    assert space.build(params) == acc
    if name in MODELS:
        cost = get_cost_model(MODELS[name]).evaluate([CONV], acc)
        assert cost.latency_ms > 0 and cost.energy_mj > 0 and cost.area_mm2 >= 0
    else:
        assert acc.params == {}  # the default device, cpu, leaves its name out


@pytest.mark.parametrize(
    "name", ["systolic", "row_stationary", "heterogeneous", "roofline", "device"]
)
def test_reference_round_trips_through_the_cli_form(name: str) -> None:
    space = get_hardware_space(name)
    assert parse_accelerator(name) == space.default()
    assert parse_accelerator(space.default().spec()) == space.default()


def test_row_stationary_reference_is_eyeriss_v1() -> None:
    acc = parse_accelerator("row_stationary")
    assert (acc["pe_rows"], acc["pe_cols"], acc["glb_kib"]) == (12, 14, 108)
    assert (acc["clock_mhz"], acc["precision_bits"], acc["rf_bytes"]) == (200, 16, 520)
    assert acc.params == RowStationarySpace.reference
    assert parse_accelerator("row_stationary:pe_rows=256")["pe_rows"] == 256
    with pytest.raises(ConfigError, match=r"'pe_rows' parameter of hw:row_stationary.*\[1, 256\]"):
        parse_accelerator("row_stationary:pe_rows=257")


def test_row_stationary_default_ranges() -> None:
    p = RowStationarySpace.default_params()
    assert (p["pe_rows"].low, p["pe_rows"].high) == (8, 32)
    assert (p["pe_rows"].min_value, p["pe_rows"].max_value) == (1, 256)
    assert (p["glb_kib"].low, p["glb_kib"].high) == (64, 512)
    assert (p["glb_kib"].min_value, p["glb_kib"].max_value) == (1, 65536)
    assert p["precision_bits"].choices == (8, 16)


def test_heterogeneous_canonicalizes_inactive_subs() -> None:
    space = get_hardware_space("heterogeneous")
    params = space.sample(np.random.default_rng(3))
    params["hw.num_subs"] = 2
    other = dict(params, **{"hw.sub3_dataflow": "rs", "hw.sub2_pe_share": 0.9})
    a, b = space.build(params), space.build(other)
    assert a == b and a.digest == b.digest
    assert a["sub3_dataflow"] == HeterogeneousSpace.reference["sub0_dataflow"]
    # active subs are kept as given
    params["hw.num_subs"] = 4
    assert space.build(params)["sub3_dataflow"] == params["hw.sub3_dataflow"]
    assert space.default()["num_subs"] == 2


def test_heterogeneous_ranges() -> None:
    space = get_hardware_space("heterogeneous", num_subs=[3, 4], sub0_dataflow=["rs"])
    rng = np.random.default_rng(0)
    for _ in range(10):
        acc = space.build(space.sample(rng))
        assert acc["num_subs"] in (3, 4) and acc["sub0_dataflow"] == "rs"
    with pytest.raises(ConfigError, match="num_subs"):
        get_hardware_space("heterogeneous", num_subs=[2, 5])
    with pytest.raises(ConfigError, match="sub0_dataflow"):
        get_hardware_space("heterogeneous", sub0_dataflow=["nlr"])


def test_device_space_has_no_knobs() -> None:
    space = get_hardware_space("device")
    assert space.params == {} and DeviceSpace.default_params() == {}
    # cpu, the default, leaves its name out, as parse_accelerator("device") does
    assert space.build({}) == space.default() == Accelerator("device", {})
    assert parse_accelerator("device") == space.default()
    assert space.sample(np.random.default_rng(0)) == {}
    assert space.describe()["device"] == "cpu"
    # network parameters next to the (empty) hardware ones are ignored, hw ones refused
    assert space.build({"net.x": 1}) == space.default()
    with pytest.raises(ConfigError, match="hw:device has no parameter 'pe_rows'"):
        space.build({"hw.pe_rows": 4})
    with pytest.raises(ConfigError, match="hw:device has no parameter 'pe_rows'"):
        get_hardware_space("device", pe_rows=4)


def test_device_names() -> None:
    assert get_hardware_space("device", device="cuda").default()["name"] == "cuda"
    assert DeviceSpace(name="pixel3").default()["name"] == "pixel3"
    for column in ("lat_pixel3", "pixel3"):
        assert get_hardware_space("device", device=column).default()["name"] == "pixel3"
    assert len(TABLE_DEVICES) == 21
    with pytest.raises(ConfigError, match="'device' option of hw:device must be one of"):
        get_hardware_space("device", device="tpu")
    with pytest.raises(ConfigError, match="one device"):
        DeviceSpace(device="cpu", name="cuda")


def test_device_table_columns_match_the_shared_data() -> None:
    from pathlib import Path

    table = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nb201"
    csv = table / "nb201_accuracy_latency.csv"
    if not csv.exists():
        pytest.skip(f"shared data not found at {csv}")
    header = csv.open().readline().strip().split(",")
    assert sorted(c[4:] for c in header if c.startswith("lat_")) == sorted(TABLE_DEVICES)


def test_roofline_space() -> None:
    space = get_hardware_space("roofline")
    acc = space.build(space.sample(np.random.default_rng(0)))
    # energy, area and clock are fixed at the model's defaults unless a campaign opens them
    assert acc["clock_mhz"] == 1000 and acc["area_mm2"] == 0.0 and acc["pj_per_mac"] == 1.0
    assert 10 <= acc["peak_gmacs"] <= 10000
    assert parse_accelerator("roofline:pj_per_mac=2.5,area_mm2=4")["area_mm2"] == 4
    opened = get_hardware_space("roofline", area_mm2=[1.0, 2.0])
    assert 1.0 <= opened.build(opened.sample(np.random.default_rng(1)))["area_mm2"] <= 2.0


def test_numpy_and_float_values_are_normalized() -> None:
    # numpy's int was refused ("must be an int ... Got np.int64(32)"), a float 8.0 of a
    # categorical gave another digest than 8, and numpy's 8 broke the digest (not JSON)
    space = get_hardware_space("systolic")
    base = {f"hw.{k}": v for k, v in space.default().params.items()}
    plain = space.build(base)
    for key in ("hw.pe_rows", "hw.precision_bits"):
        for value in (np.int64(base[key]), float(base[key])):
            acc = space.build({**base, key: value})
            assert acc == plain and acc.digest == plain.digest
            assert type(acc[key.removeprefix("hw.")]) is int


def test_parse_accelerator_gives_what_the_space_builds() -> None:
    # the CLI syntax skipped heterogeneous' canonical form: one design, two digests
    space = get_hardware_space("heterogeneous", num_subs=[1, 4])
    parsed = parse_accelerator("heterogeneous:num_subs=1")
    built = space.build({f"hw.{k}": v for k, v in parsed.params.items()})
    assert parsed == built and parsed.digest == built.digest
    # only an inactive sub differs: the same design
    assert parse_accelerator("heterogeneous:num_subs=2,sub3_dataflow=os") == parse_accelerator(
        "heterogeneous:num_subs=2"
    )
    # a named device's spec() (stored with every trial) parses back
    pixel3 = get_hardware_space("device", device="pixel3").default()
    assert parse_accelerator(pixel3.spec()) == pixel3
    assert parse_accelerator("device:name=cpu") == parse_accelerator("device")
    # a key given twice kept the last value silently
    with pytest.raises(ConfigError, match="gives 'pe_rows' twice"):
        parse_accelerator("systolic:pe_rows=32,pe_rows=8")
    with pytest.raises(ConfigError, match="must be a string"):
        parse_accelerator(None)  # type: ignore[arg-type]
