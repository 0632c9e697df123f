"""The contract weight-sharing strategies rely on: report fixed subnets, checkpoint, resume."""

from __future__ import annotations

import json

import pytest
import torch
from optuna.trial import TrialState

import cosearch
from cosearch.evaluate import Measurement
from cosearch.search import WeightSharingStrategy, register_strategy


@register_strategy("_toy_supernet")
class ToySupernet(WeightSharingStrategy):
    """Reports one subnet per 'epoch' with a fake supernet accuracy; checkpoints a tensor."""

    spaces = ("nb201",)

    def run(self, ctx):
        ckpt = ctx.load_checkpoint()
        start = 0 if ckpt is None else ckpt[0] + 1
        w = torch.zeros(3) if ckpt is None else ckpt[2]["w"]
        for epoch in range(start, ctx.target):
            w = w + 1
            params = {**ctx.network.sample(ctx.rng), **ctx.hardware.sample(ctx.rng)}
            ctx.report(
                params,
                {"accuracy": Measurement(50.0 + epoch, f"supernet:toy/epoch-{epoch}", 0.1)},
                user_attrs={"epoch": epoch},
            )
            ctx.save_checkpoint(epoch, {"epoch": epoch}, {"w": w})
            if getattr(self, "stop_after", None) == epoch:
                raise KeyboardInterrupt


TOML = """
name = "ws"
trials = 6
[space]
network = "nb201"
hardware = "systolic"
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
constraints = ["area_mm2 <= 4"]
[evaluate]
cost = "analytical:systolic"
[strategy]
name = "_toy_supernet"
"""


def test_reported_subnets_are_ordinary_trials(db_url):
    c = cosearch.Campaign(cosearch.parse_config(TOML), cosearch.open_store(db_url))
    s = c.run()
    assert s.completed == 6
    trials = c.trials((TrialState.COMPLETE,))
    assert [t.user_attrs["epoch"] for t in trials] == list(range(6))
    t = trials[2]
    assert t.user_attrs["sources"]["accuracy"] == "supernet:toy/epoch-2"
    assert t.values[0] == 52.0
    assert t.user_attrs["sources"]["latency_ms"].startswith("analytical:systolic/")
    assert len(t.system_attrs["constraints"]) == 2
    ev = c.store.evaluation(
        c.store.optuna_storage.get_trial_id_from_study_id_trial_number(
            c.store.optuna_storage.get_study_id_from_name("ws"), t.number
        )
    )
    fid = {m["metric"]: m["fidelity"] for m in ev["measurements"]}
    assert fid["accuracy"] == pytest.approx(0.1)


def test_checkpoint_resume_continues(db_url):
    cfg = cosearch.parse_config(TOML)
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c.strategy.stop_after = 2
    with pytest.raises(KeyboardInterrupt):
        c.run()
    c2 = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c2.run()
    epochs = [t.user_attrs["epoch"] for t in c2.trials((TrialState.COMPLETE,))]
    assert epochs == list(range(6))  # no epoch twice, none missing
    step, meta, tensors = c2.store.load_checkpoint(c2.campaign_id, "_toy_supernet")
    assert step == 5 and meta == {"epoch": 5} and torch.equal(tensors["w"], torch.full((3,), 6.0))


def test_weight_sharing_needs_its_space():
    with pytest.raises(cosearch.ConfigError, match="trains supernets"):
        cosearch.parse_config(TOML.replace('network = "nb201"', 'network = "darts"'))


@register_strategy("_toy_proxy_then_final")
class ToyProxyThenFinal(WeightSharingStrategy):
    """One subnet reported twice: a supernet proxy accuracy (0.1), then its final (1.0)."""

    spaces = ("nb201",)

    def run(self, ctx):
        params = {**ctx.network.sample(ctx.rng), **ctx.hardware.sample(ctx.rng)}
        for value, source, fidelity in ((99.0, "supernet:toy", 0.1), (90.0, "train:toy", 1.0)):
            ctx.report(params, {"accuracy": Measurement(value, source, fidelity)})


def test_the_default_front_is_that_of_the_highest_fidelity(db_url, capsys):
    # a DARTS campaign's epoch proxies (fidelity 0.1) shared the front with the retrained
    # finals: a proxy can dominate its own final, which then vanished from the front
    from cosearch.cli import main

    text = TOML.replace("_toy_supernet", "_toy_proxy_then_final").replace(
        "trials = 6", "trials = 2"
    )
    c = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(db_url))
    c.run()
    proxy, final = c.trials((TrialState.COMPLETE,))
    assert [t.number for t in c.pareto()] == [final.number]
    assert main(["pareto", "ws", "--storage", db_url]) == 0
    assert "at fidelity 1 (1 lower-fidelity trial(s) left out)" in capsys.readouterr().out
    main(["status", "ws", "--storage", db_url, "--format", "json"])
    assert json.loads(capsys.readouterr().out)["front_size"] == 1


def test_nearest_misses_come_from_the_highest_fidelity_too(db_url):
    # the final misses accuracy >= 95 while its proxy (99, fidelity 0.1) meets it: the front
    # is empty, and the nearest misses must be the finals, not the proxy reported as feasible
    from cosearch._report import least_violating_trials

    text = (
        TOML.replace("_toy_supernet", "_toy_proxy_then_final")
        .replace("trials = 6", "trials = 2")
        .replace('["area_mm2 <= 4"]', '["area_mm2 <= 1000", "accuracy >= 95"]')
    )
    c = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(db_url))
    c.run()
    proxy, final = c.trials((TrialState.COMPLETE,))
    assert c.pareto() == []
    assert [t.number for t, _ in least_violating_trials(c.study, 5)] == [final.number]
