"""``cosearch predictor fewshot-eval | eval | train | list`` through ``predictors._cli``."""

from __future__ import annotations

import argparse
import json

import pytest

from cosearch.errors import ConfigError, StoreInputError
from cosearch.predictors._cli import add_parsers, run
from cosearch.predictors.persist import load_predictor
from cosearch.store import open_store

KEYS = {"target", "shots", "spearman_mean", "spearman_per_seed", "kendall_mean", "seconds"}


def _cli(capsys, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cosearch")
    add_parsers(parser.add_subparsers(dest="command"))
    capsys.readouterr()
    code = run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


def test_fewshot_eval_and_eval_print_json(capsys, tiny_nb201_csv) -> None:
    table = ["--table", str(tiny_nb201_csv), "--space", "nb201"]
    code, out = _cli(
        capsys,
        "predictor", "fewshot-eval", *table, "--target", "lat_dev5", "--shots", "10",
        "--seeds", "2", "--exclude", "lat_dev0", "--exclude", "lat_dev1", "--format", "json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and set(result) == KEYS and len(result["spearman_per_seed"]) == 2
    code, out = _cli(
        capsys,
        "predictor", "eval", *table, "--target", "cifar10_test_acc", "--train", "60",
        "--seeds", "2", "--format", "json",
    )  # fmt: skip
    result = json.loads(out)  # the same keys as fewshot-eval: it printed model and train too
    assert code == 0 and set(result) == KEYS and result["shots"] == 60
    code, out = _cli(capsys, "predictor", "eval", *table, "--target", "lat_dev2", "--train", "50",
                     "--seeds", "1", "--format", "table")  # fmt: skip
    assert code == 0 and "spearman_mean" in out and "gbrt" in out


def test_train_list_and_load(capsys, tiny_nb201_csv, db_url) -> None:
    table = ["--table", str(tiny_nb201_csv), "--space", "nb201"]
    code, out = _cli(
        capsys,
        "predictor", "train", "--id", "acc", "--kind", "gp", *table,
        "--target", "cifar10_test_acc", "--train", "80", "--seed", "1", "--storage", db_url,
    )  # fmt: skip
    info = json.loads(out)
    assert code == 0 and info["predictor_id"] == "acc" and info["encoding"] == "paths"
    assert info["scores"]["rows"] == 40 and info["scores"]["spearman"] > 0.5
    assert 0 <= info["scores"]["coverage90"] <= 1
    assert info["training_ref"]["rows"] == 80 and len(info["training_ref"]["sha256"]) == 64
    assert info["training_ref"]["network_options"]["channels"] == 16  # the table's network
    code, out = _cli(
        capsys,
        "predictor", "train", "--id", "lat5", "--kind", "fewshot", *table,
        "--target", "lat_dev5", "--storage", db_url, "--format", "table",
    )  # fmt: skip
    assert code == 0 and "lat5" in out and "spearman" in out
    with pytest.raises(StoreInputError, match="already exists"):
        _cli(
            capsys,
            "predictor", "train", "--id", "acc", "--kind", "gbrt", *table,
            "--target", "lat_dev2", "--storage", db_url,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="'seed' argument must be an int in"):
        _cli(
            capsys,
            "predictor", "train", "--id", "neg", "--kind", "gbrt", *table,
            "--target", "lat_dev2", "--seed", "-1", "--storage", db_url,
        )  # fmt: skip
    code, _ = _cli(
        capsys,
        "predictor", "train", "--id", "acc", "--kind", "gbrt", *table,
        "--target", "lat_dev2", "--train", "60", "--score-rows", "0", "--replace",
        "--storage", db_url,
    )  # fmt: skip
    assert code == 0
    code, out = _cli(capsys, "predictor", "list", "--storage", db_url, "--format", "json")
    rows = {r["predictor_id"]: r for r in json.loads(out)}
    assert set(rows) == {"acc", "lat5"} and rows["acc"]["kind"] == "gbrt"
    assert rows["acc"]["scores"]["rows"] == 60  # --score-rows 0: every held-out row
    code, out = _cli(capsys, "predictor", "list", "--storage", db_url)
    assert code == 0 and "lat5" in out and "fewshot" in out
    with open_store(db_url) as store:
        assert load_predictor(store, "lat5").kind == "fewshot"


def test_a_replaced_predictor_does_not_score_more_trials_of_a_campaign(
    capsys, tiny_nb201_csv, db_url, make_config
) -> None:
    """`predictor train --replace` under the id a campaign scores with: resuming it would put
    the new predictor's values (of another target, even) beside the old ones in one front."""
    from cosearch.campaign import Campaign
    from cosearch.config import load_config

    table = ["--table", str(tiny_nb201_csv), "--space", "nb201", "--storage", db_url]
    train = ["predictor", "train", "--id", "acc", "--kind", "gbrt", *table, "--train", "60"]
    assert _cli(capsys, *train, "--target", "cifar10_test_acc")[0] == 0
    path = make_config(name="p", trials=4)
    path.write_text(path.read_text().replace('"benchmark:nb201/cifar10"', '"predictor:acc"'))
    c = Campaign.from_config(load_config(path), storage=db_url)
    assert c.run(2).completed == 2
    assert c.run(3).completed == 3  # the same predictor: resumes
    again = [*train, "--target", "cifar10_test_acc", "--seed", "3", "--replace"]
    assert _cli(capsys, *again)[0] == 0  # retrained on other rows: other values
    resumed = Campaign.from_config(load_config(path), storage=db_url)
    with pytest.raises(ConfigError, match="predictor 'acc' was replaced"):
        resumed.run(4)
    assert resumed.count() == 3 and len(resumed.pareto()) >= 1  # still readable
    # a campaign made before cosearch recorded the predictors' times (2026-12-07): the
    # predictor newer than the campaign is the replaced one (it resumed and mixed the two)
    from cosearch.campaign import MODELS_KEY

    storage = resumed.study._storage
    storage.set_study_user_attr(resumed.study._study_id, MODELS_KEY, None)
    legacy = Campaign.from_config(load_config(path), storage=db_url)
    assert legacy.study.user_attrs[MODELS_KEY] is None
    with pytest.raises(ConfigError, match="predictor 'acc' was replaced .* made before "):
        legacy.run(4)


def test_accuracy_std_of_a_predictor_can_be_constrained(
    capsys, tiny_nb201_csv, db_url, make_config
) -> None:
    """`accuracy_std <= X` (trust only confident predictions) with a gp predictor; a kind
    without a std is refused when the campaign opens, not at every trial."""
    from cosearch.campaign import Campaign
    from cosearch.config import load_config

    table = ["--table", str(tiny_nb201_csv), "--space", "nb201", "--storage", db_url]
    base = ["predictor", "train", *table, "--target", "cifar10_test_acc", "--train", "60"]
    assert _cli(capsys, *base, "--id", "gp", "--kind", "gp")[0] == 0
    assert _cli(capsys, *base, "--id", "gbrt", "--kind", "gbrt")[0] == 0
    path = make_config(name="s", trials=3)
    text = path.read_text().replace('"benchmark:nb201/cifar10"', '"predictor:gp"')
    path.write_text(text.replace('["area_mm2 <= 4"]', '["area_mm2 <= 4", "accuracy_std <= 1e9"]'))
    c = Campaign.from_config(load_config(path), storage=db_url)
    assert c.run(3).completed == 3
    trial = c.study.trials[0]
    std = trial.user_attrs["metrics"]["accuracy_std"]
    assert std > 0 and trial.system_attrs["constraints"][1] == pytest.approx(std - 1e9)
    path.write_text(path.read_text().replace('"predictor:gp"', '"predictor:gbrt"'))
    with pytest.raises(ConfigError, match="accuracy_std needs an accuracy predictor that gives"):
        Campaign.from_config(load_config(path), storage=db_url)


def test_train_errors(capsys, tiny_nb201_csv, db_url, tmp_path) -> None:
    base = ["predictor", "train", "--id", "x", "--kind", "gp", "--target", "t"]
    with pytest.raises(ConfigError, match="exactly one of --table"):
        _cli(capsys, *base, "--storage", db_url)
    with pytest.raises(ConfigError, match="exactly one of --table"):
        _cli(capsys, *base, "--table", str(tiny_nb201_csv), "--campaign", "c")
    with pytest.raises(ConfigError, match="needs --space"):
        _cli(capsys, *base, "--table", str(tiny_nb201_csv), "--storage", db_url)
    table = ["--table", str(tiny_nb201_csv), "--space", "nb201", "--storage", db_url]
    with pytest.raises(ConfigError, match="no numeric column 't'"):
        _cli(capsys, *base, *table)
    with pytest.raises(ConfigError, match=r"'train' argument must be an int in \[2, 120\]"):
        _cli(capsys, *base[:-1], "cifar10_test_acc", "--train", "500", *table)
    with pytest.raises(ConfigError, match="takes the encoding"):
        _cli(capsys, *base[:-1], "lat_dev0", "--encoding", "graph", *table)
    with pytest.raises(StoreInputError, match="no database"):
        _cli(capsys, "predictor", "list", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert _cli(capsys, "predictor")[0] == 2


@pytest.mark.slow
def test_train_from_a_campaign(capsys, make_config, db_url) -> None:
    from cosearch.campaign import Campaign

    Campaign.from_toml(make_config(name="c", trials=12), storage=db_url).run(12, progress=False)
    code, out = _cli(
        capsys,
        "predictor", "train", "--id", "from-c", "--kind", "ensemble", "--campaign", "c",
        "--target", "accuracy", "--train", "8", "--storage", db_url,
    )  # fmt: skip
    info = json.loads(out)
    assert code == 0 and info["encoding"] == "onnx" and info["target"] == "accuracy"
    ref = info["training_ref"]
    assert ref["source"] == "campaign" and ref["campaign"] == "c"
    assert ref["measurement_source"] == "benchmark:nb201/cifar10" and ref["rows"] == 8
    # latency of a campaign over many accelerators is not a property of the architecture,
    # for any kind (gp and ensemble were let through and learned per-architecture averages)
    for kind, target in (("gbrt", "latency_ms"), ("gp", "latency_ms"), ("ensemble", "energy_mj")):
        with pytest.raises(ConfigError, match="accelerators"):
            _cli(
                capsys,
                "predictor", "train", "--id", "l", "--kind", kind, "--campaign", "c",
                "--target", target, "--storage", db_url,
            )  # fmt: skip
    with pytest.raises(ConfigError, match="no measurement of metric 'nope'"):
        _cli(
            capsys,
            "predictor", "train", "--id", "l", "--kind", "gp", "--campaign", "c",
            "--target", "nope", "--storage", db_url,
        )  # fmt: skip
    with pytest.raises(StoreInputError, match="no campaign 'zz'"):
        _cli(
            capsys,
            "predictor", "train", "--id", "l", "--kind", "gp", "--campaign", "zz",
            "--target", "accuracy", "--storage", db_url,
        )  # fmt: skip


def test_train_from_a_table_of_a_space_without_a_network(capsys, fbnet_csv, db_url) -> None:
    # fbnet has a latency table but no network builder: its training reference has no
    # network options (looking them up failed the training)
    code, out = _cli(
        capsys,
        "predictor", "train", "--id", "fb", "--kind", "gbrt", "--table", str(fbnet_csv),
        "--space", "fbnet", "--target", "lat_pixel3", "--train", "100", "--score-rows", "200",
        "--storage", db_url,
    )  # fmt: skip
    info = json.loads(out)
    assert code == 0 and info["training_ref"]["network_options"] is None
    assert info["scores"]["spearman"] > 0.8
