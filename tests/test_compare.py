"""`cosearch compare` on campaigns whose hypervolumes are known by hand."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import FloatDistribution

import cosearch

from .conftest import run_cli

TOML = """
name = "{name}"
trials = 2
[space]
network = "nb201"
hardware = "systolic"
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
[evaluate]
accuracy = "benchmark:nb201/cifar10"
"""


def _campaign(url, name, points):
    c = cosearch.Campaign(cosearch.parse_config(TOML.format(name=name)), cosearch.open_store(url))
    for acc, lat in points:
        c.study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                values=[acc, lat],
                system_attrs={"constraints": [-1.0]},
            )
        )
    c.store.close()


@pytest.fixture
def two_dbs(tmp_path):
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    _campaign(a, "A", [(90, 1.0), (80, 0.5)])
    _campaign(a, "B", [(95, 2.0), (70, 0.25)])
    _campaign(b, "B", [(95, 2.0), (70, 0.25)])
    return a, b


def test_known_hypervolumes(two_dbs):
    from cosearch._compare import compare_campaigns

    a, _ = two_dbs
    cmp = compare_campaigns([("A", a), ("B", a)])
    hv = {c.label: c.hv_final for c in cmp.campaigns}
    # normalized: A = (0.2, 3/7), (0.6, 1/7); B = (0, 1), (1, 0); reference point 1.1
    assert hv["A"] == pytest.approx(0.9 * (1.1 - 3 / 7) + 0.5 * (3 / 7 - 1 / 7))
    assert hv["B"] == pytest.approx(0.11 + 0.1)
    assert cmp.bounds == [(95.0, 70.0), (0.25, 2.0)]
    a_curve = dict(cmp.campaigns[0].curve)
    assert a_curve[1] == pytest.approx(0.9 * (1.1 - 3 / 7))
    assert cmp.campaigns[0].trials_to_fraction == 2 and cmp.campaigns[1].trials_to_fraction is None


def test_cli_across_two_databases(two_dbs, tmp_path):
    a, b = two_dbs
    png = tmp_path / "hv.png"
    r = run_cli("compare", "A", f"B@{b}", "--storage", a, "--format", "json", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    hv = {c["label"]: c["hv_final"] for c in out["campaigns"]}
    assert hv["A"] == pytest.approx(0.747142857) and hv["B"] == pytest.approx(0.21)
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    r = run_cli("compare", "A", "B", "--storage", a, "--fraction", "0.29")
    assert r.returncode == 0 and "reference point 1.1" in r.stdout
    assert "trials_to_29%" in r.stdout  # int(0.29 * 100) is 28
    r = run_cli("compare", "A", "--storage", a, "--plot", str(tmp_path / "hv"))
    assert r.returncode == 0 and (tmp_path / "hv.png").exists()
    assert r.stderr.strip() == f"wrote {tmp_path / 'hv.png'}"
    for plot, needle in (
        (tmp_path / "nodir" / "p.png", "does not exist"),
        (tmp_path / "p.txt", "unknown format '.txt'"),
        (tmp_path, "it is a folder"),
    ):
        r = run_cli("compare", "A", "--storage", a, "--plot", str(plot))
        assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1


def test_different_objectives_refused(tmp_path, two_dbs):
    a, _ = two_dbs
    c = cosearch.Campaign(
        cosearch.parse_config(
            TOML.format(name="C").replace('latency_ms = "minimize"', 'energy_mj = "minimize"')
        ),
        cosearch.open_store(a),
    )
    c.study  # noqa: B018
    c.store.close()
    r = run_cli("compare", "A", "C", "--storage", a)
    assert r.returncode == 2 and "same objectives" in r.stderr


def test_trials_to_fraction_counts_every_trial_and_infinities_stay_out(tmp_path):
    from cosearch._compare import compare_campaigns

    url = f"sqlite:///{tmp_path / 'c.db'}"
    # 120 trials: the hypervolume reaches its final value at trial 3; the curve has 50 points
    # (2, 5, 7, ...) and trials_to_fraction was read from them, so it said 5
    points = [(80, 1.0), (85, 1.0), (90, 0.5)] + [(70, 2.0)] * 117
    _campaign(url, "long", points)
    # one infinite latency beside finite ones: the bounds went infinite and every campaign's
    # hypervolume NaN-based; it is now normalized over finite values and adds nothing
    _campaign(url, "inf", [(95, float("inf")), (90, 0.5), (70, 2.0)])
    cmp = compare_campaigns([("long", url)], fraction=1.0)
    assert cmp.campaigns[0].trials_to_fraction == 3
    cmp = compare_campaigns([("long", url), ("inf", url)])
    assert all(abs(x) != float("inf") for b in cmp.bounds for x in b)
    hv = {c.label: c.hv_final for c in cmp.campaigns}
    assert hv["long"] == pytest.approx(hv["inf"]) and hv["long"] > 0
    assert {c.label: c.front_size for c in cmp.campaigns} == {"long": 1, "inf": 2}


def test_only_the_top_fidelity_is_scored_and_screened_trials_stay_out(tmp_path):
    """compare scored a DARTS campaign's supernet-accuracy proxies (fidelity 0.1) beside its
    finals, so its front and hypervolume disagreed with `pareto` and `status`; and its table
    of measurements counted the screened trials, which the README says never enter compare."""
    from cosearch._compare import compare_campaigns

    from .conftest import QUICK_TOML

    url = f"sqlite:///{tmp_path / 'f.db'}"
    screen = '\n[screen]\ncost = "analytical:systolic"\ncandidates = 40\npromote = 2\n'
    text = QUICK_TOML.format(name="fid", trials=8, seed=3, strategy="random") + screen
    c = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(url))
    assert c.run_screened(8).completed == 8
    best = max(c.pareto(), key=lambda t: t.values[0])
    with c.store.engine.begin() as conn:  # the most accurate front trial becomes a proxy
        conn.exec_driver_sql(
            "UPDATE measurements SET fidelity = 0.1 WHERE trial_id = ?", (best._trial_id,)
        )
    front = {t.number for t in c.pareto()}
    assert best.number not in front
    (curve,) = compare_campaigns([("fid", url)]).campaigns
    assert curve.trials == 8 and curve.front_size == len(front)
    assert curve.scored_fidelity == 1.0 and curve.lower_fidelity == 1
    assert {r["n"] for r in curve.fidelity if r["fidelity"] == 1.0} == {7}  # not 7 + 40
    r = run_cli("compare", "fid", "--storage", url)
    assert "fid: scored at fidelity 1, as in `pareto`; its 1 lower-fidelity trial(s)" in r.stdout
