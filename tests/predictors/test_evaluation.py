"""fewshot_eval / plain_eval: the exact output keys, determinism, errors, and a real table."""

from __future__ import annotations

import json

import pytest

from cosearch.errors import ConfigError
from cosearch.predictors import fewshot_eval, load_table, plain_eval
from cosearch.predictors.evaluation import seed_list

FEWSHOT_KEYS = {"target", "shots", "spearman_mean", "spearman_per_seed", "kendall_mean", "seconds"}


def _without_time(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "seconds"}


def test_fewshot_eval_keys_and_determinism(tiny_nb201_csv) -> None:
    out = fewshot_eval(tiny_nb201_csv, "nb201", "lat_dev5", shots=10, seeds=3)
    assert set(out) == FEWSHOT_KEYS
    assert out["target"] == "lat_dev5" and out["shots"] == 10
    assert len(out["spearman_per_seed"]) == 3
    assert out["spearman_mean"] == pytest.approx(sum(out["spearman_per_seed"]) / 3)
    assert -1 <= out["kendall_mean"] <= 1 and out["seconds"] >= 0
    json.dumps(out)  # plain JSON types
    # the synthetic devices share their op costs' structure: transfer works
    assert out["spearman_mean"] > 0.9
    again = fewshot_eval(tiny_nb201_csv, "nb201", "lat_dev5", shots=10, seeds=[0, 1, 2])
    assert _without_time(again) == _without_time(out)
    # a loaded Table gives the same; exclude removes meta-training devices
    table = load_table(tiny_nb201_csv, "nb201")
    same = fewshot_eval(table, "nb201", "lat_dev5", shots=10, seeds=3)
    assert _without_time(same) == _without_time(out)
    fewer = fewshot_eval(table, "nb201", "lat_dev5", 10, 3, exclude=["lat_dev0", "lat_dev1"])
    assert set(fewer) == FEWSHOT_KEYS


def test_plain_eval_keys_and_determinism(tiny_nb201_csv) -> None:
    out = plain_eval(tiny_nb201_csv, "nb201", "lat_dev2", train=60, seeds=2)
    assert set(out) == FEWSHOT_KEYS | {"train", "model"}
    assert out["shots"] == out["train"] == 60 and len(out["spearman_per_seed"]) == 2
    assert out["spearman_mean"] > 0.8
    again = plain_eval(tiny_nb201_csv, "nb201", "lat_dev2", train=60, seeds=2)
    assert _without_time(again) == _without_time(out)
    # the default picks by column: trees for a latency, the accuracy ensemble otherwise
    assert out["model"] == "gbrt"
    acc = plain_eval(tiny_nb201_csv, "nb201", "cifar10_test_acc", train=60, seeds=1)
    assert acc["target"] == "cifar10_test_acc" and acc["model"] == "ensemble"
    gp = plain_eval(tiny_nb201_csv, "nb201", "cifar10_test_acc", train=60, seeds=1, model="gp")
    assert gp["model"] == "gp" and gp["spearman_mean"] != acc["spearman_mean"]


def test_errors(tiny_nb201_csv) -> None:
    with pytest.raises(ConfigError, match="no numeric column 'lat_nope'"):
        fewshot_eval(tiny_nb201_csv, "nb201", "lat_nope", 10)
    with pytest.raises(ConfigError, match="no numeric column 'lat_x'"):
        fewshot_eval(tiny_nb201_csv, "nb201", "lat_dev0", 10, exclude=["lat_x"])
    # one row left to score has no rank correlation (it printed Spearman 0.0 as a result)
    for shots in (119, 120):
        with pytest.raises(ConfigError, match=r"'shots' argument must be an int in \[1, 118\]"):
            fewshot_eval(tiny_nb201_csv, "nb201", "lat_dev0", shots)
    with pytest.raises(ConfigError, match=r"'train' argument must be an int in \[2, 118\]"):
        plain_eval(tiny_nb201_csv, "nb201", "lat_dev0", 119)
    with pytest.raises(ConfigError, match="at least 2 other lat_\\* columns"):
        fewshot_eval(
            tiny_nb201_csv, "nb201", "lat_dev0", 5, exclude=[f"lat_dev{j}" for j in range(1, 6)]
        )
    with pytest.raises(ConfigError, match="values <= 0"):
        fewshot_eval(tiny_nb201_csv, "nb201", "idx", 5)  # idx starts at 0
    with pytest.raises(ConfigError, match="'train' argument"):
        plain_eval(tiny_nb201_csv, "nb201", "lat_dev0", 0)
    with pytest.raises(ConfigError, match="unknown plain predictor 'svm'"):
        plain_eval(tiny_nb201_csv, "nb201", "lat_dev0", 10, model="svm")
    with pytest.raises(ConfigError, match="read for space 'nb201', not 'fbnet'"):
        plain_eval(load_table(tiny_nb201_csv, "nb201"), "fbnet", "lat_dev0", 10)
    assert seed_list(3) == [0, 1, 2] and seed_list([4, 9]) == [4, 9]
    for bad in (0, -1, True, "3", [], [1.5]):
        with pytest.raises(ConfigError, match="seeds must be"):
            seed_list(bad)


@pytest.mark.slow
def test_nb201_fewshot_real(nb201_csv) -> None:
    # HELP's setting on one device: 10 shots of an unseen CPU, the other devices meta-train
    out = fewshot_eval(nb201_csv, "nb201", "lat_gold_6240", shots=10, seeds=2)
    assert set(out) == FEWSHOT_KEYS
    assert out["spearman_mean"] > 0.93
    plain = plain_eval(nb201_csv, "nb201", "lat_gold_6240", train=10, seeds=2)
    assert out["spearman_mean"] > plain["spearman_mean"] + 0.1


@pytest.mark.slow
def test_nb201_accuracy_eval_real(nb201_csv) -> None:
    # the bar for an accuracy predictor from 100 NB201 cells: Spearman >= 0.85 on the
    # rest; plain trees on the table encoding stay far below it, so the default must not be them
    out = plain_eval(nb201_csv, "nb201", "cifar10_test_acc", train=100, seeds=2)
    assert out["model"] == "ensemble" and min(out["spearman_per_seed"]) >= 0.85
    trees = plain_eval(nb201_csv, "nb201", "cifar10_test_acc", train=100, seeds=2, model="gbrt")
    assert trees["spearman_mean"] < 0.7
