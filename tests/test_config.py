"""Campaign TOML validation: every error names the key, the value and the rule, with a line."""

from __future__ import annotations

import pytest

from cosearch.config import load_config, parse_config
from cosearch.errors import ConfigError, UnknownNameError

from .conftest import QUICK_TOML

GOOD = QUICK_TOML.format(name="ok", trials=10, seed=1, strategy="nsga2")


def test_good_config_parses():
    cfg = parse_config(GOOD)
    assert cfg.name == "ok" and cfg.trials == 10 and cfg.seed == 1
    assert cfg.metric_names == ["accuracy", "latency_ms", "energy_mj"]
    assert cfg.directions == ["maximize", "minimize", "minimize"]
    (c,) = cfg.constraints
    assert (c.metric, c.op, c.bound) == ("area_mm2", "<=", 4.0)
    assert c.violation(3.5) < 0 and c.violation(4.5) > 0


def _err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse_config(text, path="c.toml")
    return ei.value


def test_malformed_toml_gives_line():
    e = _err(GOOD.replace("seed = 1", "seed = "))
    assert e.line == 2 and "not valid TOML" in str(e) and str(e).startswith("c.toml:2:")


def test_unknown_top_level_key():
    e = _err("bogus = 3\n" + GOOD)
    assert "bogus" in str(e) and "allowed top-level keys" in str(e)
    assert e.line == 1


def test_wrong_type_names_key_and_value():
    e = _err(GOOD.replace("trials = 10", 'trials = "ten"'))
    assert e.key == "trials" and "'ten'" in str(e) and e.line == 3


def test_unknown_network_space_lists_valid_ones():
    e = _err(GOOD.replace('network = "nb201"', 'network = "nb999"'))
    assert isinstance(e, UnknownNameError)
    assert "nb999" in str(e) and "nb201" in str(e) and e.line == 6


def test_unknown_strategy_lists_valid_ones():
    e = _err(GOOD.replace('name = "nsga2"', 'name = "annealing"'))
    assert "annealing" in str(e) and "random" in str(e) and "nsga2" in str(e)


def test_bad_strategy_option():
    e = _err(GOOD + "population_size = 1\n")
    assert "population_size" in str(e) and "Got 1" in str(e)


def test_unknown_objective_metric():
    e = _err(GOOD.replace('energy_mj = "minimize"', 'joules = "minimize"'))
    assert "joules" in str(e) and "available metrics" in str(e) and "energy_mj" in str(e)
    assert e.line == 12


def test_bad_direction():
    e = _err(GOOD.replace('energy_mj = "minimize"', 'energy_mj = "smaller"'))
    assert "maximize" in str(e) and "smaller" in str(e)


@pytest.mark.parametrize(
    "bad", ['"area_mm2 << 4"', '"4 >= area_mm2"', '"area_mm2 <= four"', '"area_mm2 <= 1e400"']
)
def test_bad_constraint(bad):
    e = _err(GOOD.replace('"area_mm2 <= 4"', bad))
    assert "constraint" in str(e) and e.line == 13


def test_constraint_on_unknown_metric():
    e = _err(GOOD.replace('"area_mm2 <= 4"', '"volume <= 4"'))
    assert "volume" in str(e) and "area_mm2" in str(e)


def test_hardware_range_outside_limits():
    e = _err(GOOD + "\n[space.hw]\npe_rows = [0, 64]\n")
    assert "pe_rows" in str(e) and "Got low = 0" in str(e)
    assert e.key == "space.hw.pe_rows" and e.line == len(GOOD.splitlines()) + 3


def test_hardware_range_inverted():
    e = _err(GOOD + "\n[space.hw]\npe_rows = [64, 8]\n")
    assert "must not exceed" in str(e)


def test_hardware_range_off_its_step():
    # Optuna cut [5, 7] with pe_rows' step of 4 down to [5, 5] with a warning, and every trial
    # used 5
    e = _err(GOOD + "\n[space.hw]\npe_rows = [5, 7]\n")
    assert "not a whole number of steps of 4" in str(e) and "end it at 5 or 9" in str(e)
    assert e.key == "space.hw.pe_rows"
    parse_config(GOOD + "\n[space.hw]\npe_rows = {low = 5, high = 7, step = 1}\n")


def test_unknown_hardware_parameter():
    e = _err(GOOD + "\n[space.hw]\nwarp_drive = 3\n")
    assert "warp_drive" in str(e) and "pe_rows" in str(e)


def test_benchmark_accuracy_needs_default_skeleton():
    e = _err(GOOD.replace("[objectives]", "[space.net]\nchannels = 8\n\n[objectives]"))
    assert "channels" in str(e) or "default" in str(e)


def test_unknown_accuracy_source_kind():
    e = _err(GOOD.replace('"benchmark:nb201/cifar10"', '"oracle:best"'))
    assert "oracle" in str(e) and "benchmark" in str(e)


def test_bad_name():
    e = _err(GOOD.replace('name = "ok"', 'name = "has space"'))
    assert "has space" in str(e) and e.key == "name"


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_load_config_binary_file(tmp_path):
    p = tmp_path / "x.toml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(p)


def test_quickstart_example_is_valid():
    from .conftest import ROOT

    cfg = load_config(ROOT / "examples" / "quickstart.toml")
    assert cfg.trials == 200 and cfg.strategy == "nsga2"


@pytest.mark.parametrize(
    ("hardware", "hw_table", "expected"),
    [
        ("systolic", "", "analytical:systolic"),
        ("heterogeneous", "", "analytical:heterogeneous"),
        ("device", "", "measured:cpu"),
        ("device", '[space.hw]\ndevice = "cpu"\n', "measured:cpu"),
    ],
)
def test_unset_cost_is_the_hardware_space_own_model(hardware, hw_table, expected):
    text = (
        f'name = "c"\n[space]\nnetwork = "nb201"\nhardware = "{hardware}"\n{hw_table}'
        '[objectives]\naccuracy = "maximize"\nlatency_ms = "minimize"\n'
        '[evaluate]\naccuracy = "benchmark:nb201/cifar10"\n'
    )
    cfg = parse_config(text)
    assert cfg.cost_source == expected
    # an empty cost is refused, not replaced by the default
    with pytest.raises(ConfigError, match="source '' must look like"):
        parse_config(text + 'cost = ""\n')


def test_checks_added_later_do_not_lock_out_stored_campaigns(tmp_path):
    """A campaign stored before a check existed (an infinite bound, marl groups matching no
    parameter) could no longer be exported, joined or trained on: its stored TOML is read back
    with parse_config. Read back, it still parses; as a new config it is refused."""
    from cosearch import Campaign, open_store
    from cosearch.cli import main

    text = GOOD.replace('"area_mm2 <= 4"', '"area_mm2 <= 1e400"')
    text = text.replace('name = "nsga2"', 'name = "marl"\ngroups = [["hw.nothing_*"]]')
    assert 'name = "marl"' in text
    for t in (text, GOOD.replace('"area_mm2 <= 4"', '"area_mm2 <= 1e400"')):
        with pytest.raises(ConfigError):
            parse_config(t)
    assert parse_config(text, stored=True).constraints[0].bound == float("inf")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    c = Campaign(parse_config(GOOD), open_store(url))
    c.run(1)
    with c.store.engine.begin() as conn:  # as an older cosearch stored it
        conn.exec_driver_sql("UPDATE campaigns SET config_toml = ?", (text,))
    name = c.name
    assert main(["export", name, "0", "--onnx", str(tmp_path / "o.onnx"), "--storage", url]) == 0
