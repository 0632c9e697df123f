"""Campaigns where no trial meets the constraints: the nearest misses instead of nothing."""

from __future__ import annotations

import json

import pytest

from cosearch import Campaign
from cosearch.cli import main

from .conftest import QUICK_TOML, run_cli


class _Result:
    def __init__(self, returncode: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, out, err


def cli(capsys, *args: str) -> _Result:
    """The command in this process (run_cli starts an interpreter: seconds per call)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return _Result(code, out, err)


@pytest.fixture(scope="module")
def infeasible(tmp_path_factory):
    d = tmp_path_factory.mktemp("infeasible")
    text = QUICK_TOML.format(name="inf", trials=8, seed=2, strategy="random").replace(
        '["area_mm2 <= 4"]', '["area_mm2 <= 0.01", "latency_ms <= 0.001"]'
    )
    cfg = d / "inf.toml"
    cfg.write_text(text)
    url = f"sqlite:///{d / 'inf.db'}"
    c = Campaign.from_toml(cfg, storage=url)
    c.run(8)
    return c, url


def _total(t):
    return sum(max(0.0, v) for v in t.constraints.values())


def test_python_api_empty_front_and_least_violating(infeasible):
    c, _ = infeasible
    assert c.pareto() == []
    pairs = c.least_violating(3)
    expected = sorted(c.trials(), key=lambda t: (_total(t), t.number))[:3]
    assert [t.number for t, _ in pairs] == [t.number for t in expected]
    for t, v in pairs:
        assert len(v) == 3 and v == [
            max(0.0, x) for x in t.system_attrs["constraints"]
        ]  # 2 + hw violations


def test_cli_prints_least_violating_with_exit_0(infeasible):
    c, url = infeasible
    r = run_cli("pareto", "inf", "--storage", url, "--least-violating", "4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("no COMPLETE trial of 'inf' meets area_mm2 <= 0.01, latency_ms")
    assert (
        "violation[area_mm2 <= 0.01]" in lines[1] and "violation[latency_ms <= 0.001]" in lines[1]
    )
    # the message, header, rule, 4 trials, and where the cut specs are printed whole
    assert len(lines) == 3 + 4 + 1
    assert lines[-1].endswith("--format csv or json prints them whole)")


def test_cli_json_flags_infeasible_rows_in_order(infeasible, capsys):
    c, url = infeasible
    r = cli(capsys, "pareto", "inf", "--storage", url, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 8 and all(row["feasible"] is False for row in rows)
    totals = [row["violation"] for row in rows]
    assert totals == sorted(totals) and totals[0] > 0
    by_number = {t.number: _total(t) for t in c.trials()}
    assert [by_number[row["trial"]] for row in rows] == pytest.approx(totals)
    area = [row["violation[area_mm2 <= 0.01]"] for row in rows]
    assert all(a == pytest.approx(row["area_mm2"] - 0.01) for a, row in zip(area, rows))


def test_feasible_json_rows_say_so(tmp_path, capsys):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(QUICK_TOML.format(name="ok", trials=4, seed=0, strategy="random"))
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    Campaign.from_toml(cfg, storage=url).run(4)
    rows = json.loads(cli(capsys, "pareto", "ok", "--storage", url, "--format", "json").stdout)
    assert rows and all(row["feasible"] is True for row in rows)


def test_least_violating_per_fidelity(infeasible, capsys):
    # --least-violating was ignored beside --fidelity: "(no trial meets the constraints)"
    c, url = infeasible
    r = cli(capsys, "pareto", "inf", "--storage", url, "--fidelity", "1", "--least-violating", "3")
    assert r.returncode == 0, r.stderr
    assert "no trial of 8 meets the constraints; the 3 least-violating" in r.stdout
    args = ("pareto", "inf", "--storage", url, "--fidelity", "all", "--format", "json")
    rows = json.loads(cli(capsys, *args, "--least-violating", "2").stdout)
    expected = sorted(c.trials(), key=lambda t: (_total(t), t.number))[:2]
    assert [row["trial"] for row in rows] == [t.number for t in expected]
    assert all(row["feasible"] is False and row["fidelity"] == 1.0 for row in rows)


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_a_nan_constraint_is_violated_not_feasible(tmp_path, where):
    import math

    import optuna
    from optuna.distributions import FloatDistribution

    from cosearch._report import least_violating_trials

    url = None if where == "memory" else f"sqlite:///{tmp_path / 'n.db'}"
    study = optuna.create_study(storage=url, directions=["minimize"])
    for cons in ([math.nan], [2.0], [0.5]):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                values=[1.0],
                system_attrs={"constraints": cons},
            )
        )
    # max(0, nan) is 0: the trial with an unknown constraint came first, as if feasible
    pairs = least_violating_trials(study, 3)
    assert [t.number for t, _ in pairs] == [2, 1, 0]
    assert pairs[-1][1] == [math.inf]
