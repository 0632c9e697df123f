"""``latency = "benchmark:nb201/<device>"``: published NB201 device latency as latency_ms."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

import cosearch
from cosearch import load_config
from cosearch.errors import ConfigError
from cosearch.evaluate import NB201_LATENCY_DEVICES, Evaluator

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "nb201" / "nb201_accuracy_latency.csv"
needs_shared = pytest.mark.skipif(
    not SHARED.exists(), reason=f"shared NAS-Bench-201 table not found at {SHARED}"
)

# NAS-Bench-201 index 1 (its row of the shared table: pixel3 17.2381 ms, 1080ti_1 12.90035 ms)
ARCH_1 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def _evaluator(latency: str | None, network: str = "nb201", **net_opts) -> Evaluator:
    return Evaluator(
        cosearch.get_space(network, **net_opts),
        cosearch.get_hardware_space("systolic"),
        accuracy=None,
        cost="analytical:systolic",
        latency=latency,
    )


@pytest.mark.parametrize(("device", "expected"), [("pixel3", 17.2381), ("1080ti_1", 12.90035)])
def test_latency_comes_from_the_device_table(device, expected):
    ev = _evaluator(f"benchmark:nb201/{device}")
    net = ev.network
    arch = net.build(net.from_string(ARCH_1))
    acc = ev.hardware.default()
    m = ev.evaluate(arch, acc).metrics
    assert m["latency_ms"].value == pytest.approx(expected)
    assert m["latency_ms"].source == f"benchmark:nb201/{device}"
    assert m["latency_ms"].fidelity == 1.0
    # the other costs still come from the cost model
    plain = _evaluator(None).evaluate(arch, acc).metrics
    assert m["energy_mj"].value == plain["energy_mj"].value
    assert m["energy_mj"].source == plain["energy_mj"].source
    assert plain["latency_ms"].value != pytest.approx(expected)


def test_measured_device_is_not_timed_when_latency_comes_from_elsewhere(monkeypatch):
    """On the device space latency is all a measured cost gives: with latency from a table
    (or a predictor) the network must not be timed too; each timing costs seconds."""
    hw = cosearch.get_hardware_space("device", device="cpu")
    net = cosearch.get_space("nb201")
    ev = Evaluator(net, hw, accuracy=None, cost="measured:cpu", latency="benchmark:nb201/pixel3")

    def no_timing(*args, **kwargs):
        raise AssertionError("the network was timed although latency came from the table")

    monkeypatch.setattr(ev.cost_model, "measure", no_timing)
    assert ev.metric_names() == ["latency_ms", "macs"]
    arch = net.build(net.from_string(ARCH_1))
    out = ev.evaluate(arch, hw.default())
    assert out.metrics["latency_ms"].value == pytest.approx(17.2381)
    assert out.metrics["latency_ms"].source == "benchmark:nb201/pixel3"
    assert "latency_spread_ms" not in out.metrics and out.metrics["macs"].value > 0
    assert out.cost.latency_ms == pytest.approx(17.2381)
    timed = Evaluator(net, hw, accuracy=None, cost="measured:cpu")
    assert timed.metric_names() == ["latency_ms", "latency_spread_ms", "macs"]


def test_a_named_device_takes_only_its_own_latency_table():
    """hw device pixel3 with the 1080 Ti table recorded 1080 Ti latencies on trials labelled
    pixel3; the default device (trials without a name) still takes any table."""
    net = cosearch.get_space("nb201")
    pixel3 = cosearch.get_hardware_space("device", device="pixel3")
    with pytest.raises(ConfigError, match="table of device '1080ti_1', but the hardware space"):
        Evaluator(net, pixel3, accuracy=None, cost="measured:pixel3",
                  latency="benchmark:nb201/1080ti_1")  # fmt: skip
    ev = Evaluator(net, pixel3, accuracy=None, cost="measured:pixel3",
                   latency="benchmark:nb201/pixel3")  # fmt: skip
    arch = net.build(net.from_string(ARCH_1))
    assert ev.evaluate(arch, pixel3.default()).metrics["latency_ms"].value == pytest.approx(17.2381)


@pytest.mark.parametrize(
    "source",
    ["benchmark:nb201/edgegpu", "benchmark:nb201", "benchmark:pixel3", "benchmark:darts/pixel3"],
)
def test_unknown_tables_give_one_line_error_naming_devices(source):
    with pytest.raises(ConfigError) as err:
        _evaluator(source)
    msg = str(err.value)
    assert "\n" not in msg and source in msg
    assert all(f"benchmark:nb201/{d}" in msg for d in NB201_LATENCY_DEVICES)
    assert err.value.key == "latency"


def test_other_spaces_and_non_default_networks_are_refused():
    with pytest.raises(ConfigError, match="only to network space 'nb201'"):
        _evaluator("benchmark:nb201/pixel3", network="darts")
    with pytest.raises(ConfigError, match="option 'channels' is 32"):
        _evaluator("benchmark:nb201/pixel3", channels=32)
    with pytest.raises(ConfigError, match="option 'batch' is 8"):
        _evaluator("benchmark:nb201/pixel3", batch=8)


def test_config_error_names_the_key(make_config):
    text = make_config().read_text()
    text = text.replace(
        'cost = "analytical:systolic"',
        'cost = "analytical:systolic"\nlatency = "benchmark:nb201/tpu"',
    )
    with pytest.raises(ConfigError) as err:
        load_config(make_config(name="bad", text=text))
    assert err.value.key == "evaluate.latency"
    assert "bad.toml:18:" in str(err.value) and "benchmark:nb201/pixel3" in str(err.value)


@needs_shared
def test_shipped_table_is_the_shared_table_verbatim(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_lat", ROOT / "spaces" / "data" / "make_nb201_latency_table.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "lat.csv.gz"
    assert mod.main(SHARED, out) == 0
    assert out.read_bytes() == (ROOT / "spaces" / "data" / "nb201_latency.csv.gz").read_bytes()
    # and lookups by arch string agree with the shared table's rows
    from cosearch.evaluate import _nb201_latency

    with open(SHARED, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows[::997]:
        assert _nb201_latency(row["arch_str"], "pixel3") == float(row["lat_pixel3"])
