"""The ``train:<dataset>/<N>ep`` accuracy source: black-box campaigns train their candidates."""

from __future__ import annotations

import optuna
import pytest
import torch

from cosearch import Campaign, load_config
from cosearch.errors import ConfigError
from cosearch.evaluate import Evaluator
from cosearch.spaces import get_hardware_space, get_space

from .conftest import run_cli

SMALL = {"channels": 8, "cells_per_stage": 1}
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" + (
    "nor_conv_3x3~2|"
)
CUT = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # the output never sees the input

TOML = """
name = "{name}"
seed = 0
trials = {trials}

[space]
network = "nb201"
hardware = "systolic"

[space.net]
channels = 8
cells_per_stage = 1

[objectives]
accuracy = "maximize"
latency_ms = "minimize"

[evaluate]
accuracy = "{source}"

[strategy]
name = "random"
{extra}
"""


def _evaluator(source: str = "train:digits/2ep", **kw) -> Evaluator:
    return Evaluator(
        get_space("nb201", **SMALL),
        get_hardware_space("systolic"),
        accuracy=source,
        cost="analytical:systolic",
        **kw,
    )


def test_trained_accuracy_tells_a_learning_cell_from_a_cut_off_one():
    ev = _evaluator()
    net, acc = ev.network, ev.hardware.default()
    good = ev.evaluate(net.build(net.from_string(CONV)), acc).metrics["accuracy"]
    cut = ev.evaluate(net.build(net.from_string(CUT)), acc).metrics["accuracy"]
    assert good.source == "train:digits/2ep" and good.fidelity == 1.0 and good.seconds > 0
    assert good.value > 80  # ten digit classes: chance is 10 %
    assert cut.value < 25
    # the trained network's shapes come from the dataset, the priced one's from the options
    assert ev.trained is not None and ev.trained.data().image_size == 8
    stem = ev.layers(net.build(net.from_string(CONV)))[0]
    assert (stem.c, stem.h, stem.w) == (3, 32, 32)  # CIFAR-sized, as the options say


def test_the_same_candidate_gets_the_same_accuracy_on_any_thread_count(monkeypatch):
    arch = get_space("nb201", **SMALL).build(get_space("nb201").from_string(CONV))
    before = torch.get_num_threads()
    values = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ev = _evaluator()
        values.append(ev.evaluate(arch, ev.hardware.default()).metrics["accuracy"].value)
    torch.set_num_threads(before)
    assert values[0] == values[1]
    assert torch.get_num_threads() == before
    # another campaign seed draws another batch order (and dataset split)
    curves = [
        ev.evaluate(arch, ev.hardware.default()).notes["learning_curve"]
        for ev in (_evaluator(seed=0), _evaluator(seed=1))
    ]
    assert curves[0][-1] == values[0] and curves[0] != curves[1]


def test_a_network_met_again_with_another_accelerator_is_not_retrained(monkeypatch):
    from cosearch.search import _retrain

    calls = []
    real = _retrain.train_from_scratch
    monkeypatch.setattr(
        _retrain, "train_from_scratch", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    ev = _evaluator("train:digits/1ep")
    arch = ev.network.build(ev.network.from_string(CONV))
    rng = __import__("numpy").random.default_rng(0)
    values = {
        ev.evaluate(arch, ev.hardware.build(ev.hardware.sample(rng))).metrics["accuracy"].value
        for _ in range(3)
    }
    assert len(calls) == 1 and len(values) == 1


@pytest.mark.parametrize(
    "source, words",
    [
        ("train:digits", "must look like 'train:<dataset>/<N>ep'"),
        ("train:digits/0ep", "N from 1 to 9999"),
        ("train:digits/5epochs", "must look like"),
        ("train:mnist/5ep", "unknown dataset 'mnist'"),
    ],
)
def test_a_malformed_train_source_is_refused(source, words):
    with pytest.raises(ConfigError, match=words) as info:
        _evaluator(source)
    assert info.value.key == "accuracy"


def test_spaces_that_are_not_image_classifiers_are_refused():
    with pytest.raises(ConfigError, match="'flexibert' is not one"):
        Evaluator(
            get_space("flexibert"),
            get_hardware_space("systolic"),
            accuracy="train:digits/1ep",
            cost="analytical:systolic",
        )


def test_a_module_dataset_read_back_from_a_store_is_not_run():
    ev = _evaluator("train:os:getcwd/1ep", trusted=False)
    arch = ev.network.build(ev.network.from_string(CONV))
    with pytest.raises(ConfigError, match="COSEARCH_TRUSTED_DATASETS"):
        ev.evaluate(arch, ev.hardware.default())


def test_ofa_candidates_train_at_their_own_resolution():
    space = get_space(
        "ofa_mbv3",
        width_mult=0.25,
        in_channels=1,
        num_classes=10,
        stem_stride=1,
        resolutions=[12],
    )
    ev = Evaluator(
        space,
        get_hardware_space("systolic"),
        accuracy="train:digits/1ep",
        cost="analytical:systolic",
    )
    params = space.sample(__import__("numpy").random.default_rng(0))
    assert params["net.r"] == 12
    value = ev.evaluate(space.build(params), ev.hardware.default()).metrics["accuracy"].value
    assert 0.0 <= value <= 100.0


def test_a_campaign_records_trained_accuracy_and_screens_with_fewer_epochs(tmp_path):
    path = tmp_path / "c.toml"
    screen = '[screen]\naccuracy = "train:digits/1ep"\ncandidates = 3\npromote = 1\n'
    path.write_text(TOML.format(name="c", trials=2, source="train:digits/2ep", extra=screen))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    c = Campaign.from_config(load_config(path), storage=url)
    c.run_screened()
    main = optuna.load_study(study_name="c", storage=url)
    screened = optuna.load_study(study_name="c:screen", storage=url)
    assert len(main.trials) == 2 and len(screened.trials) >= 3
    assert all(t.user_attrs["sources"]["accuracy"] == "train:digits/2ep" for t in main.trials)
    fid = c.store.query(
        "SELECT DISTINCT source, fidelity FROM measurements WHERE metric = 'accuracy'"
    )
    rows = sorted(fid.itertuples(index=False, name=None))
    assert rows == [("train:digits/1ep", 0.5), ("train:digits/2ep", 1.0)]
    c.store.close()


def test_the_cli_names_a_bad_train_source_in_one_line(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(TOML.format(name="b", trials=1, source="train:digits/five", extra=""))
    out = run_cli("run", str(path), "--storage", f"sqlite:///{tmp_path / 'b.db'}")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "train:<dataset>/<N>ep" in out.stderr


def test_a_resumed_campaign_takes_the_accuracy_its_trials_already_trained(tmp_path, monkeypatch):
    from cosearch.search import _retrain

    path = tmp_path / "r.toml"
    path.write_text(TOML.format(name="r", trials=2, source="train:digits/1ep", extra=""))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first = Campaign.from_config(load_config(path), storage=url)
    first.run()
    trained = {t.number: t.values[0] for t in first.trials()}
    first.store.close()
    # a new process: nothing remembered in memory, only the store knows
    c = Campaign.from_config(load_config(path), storage=url)
    monkeypatch.setattr(_retrain, "train_from_scratch", lambda *a, **k: pytest.fail("retrained"))
    net = c.evaluator.network
    for t in c.trials():
        arch = net.build({k: v for k, v in t.params.items() if k.startswith("net.")})
        value = c.evaluator.evaluate(arch, c.hardware.default()).metrics["accuracy"].value
        assert value == trained[t.number]
    c.store.close()


ES_TOML = TOML.replace(
    '[objectives]\naccuracy = "maximize"\nlatency_ms = "minimize"\n',
    '[objectives]\naccuracy = "maximize"\nlatency_ms = "minimize"\nenergy_mj = "minimize"\n'
    'constraints = ["area_mm2 <= 4"]\n',
).replace('accuracy = "{source}"', 'accuracy = "{source}"\nearly_stop = "{early_stop}"')


def _curves(c: Campaign) -> dict[int, list[float]]:
    # a network already trained in the campaign takes its accuracy: no curve of its own
    return {t.number: t.user_attrs.get("learning_curve", []) for t in c.trials()}


def test_early_stopping_keeps_the_front_and_trains_fewer_epochs(tmp_path):
    runs = {}
    for mode in ("off", "dominated"):
        path = tmp_path / f"{mode}.toml"
        text = ES_TOML.format(
            name=mode, trials=16, source="train:digits/3ep", extra="", early_stop=mode
        )
        path.write_text(text)
        c = Campaign.from_config(load_config(path), storage=f"sqlite:///{tmp_path / 'e.db'}")
        c.run()
        runs[mode] = c
    full, early = runs["off"], runs["dominated"]
    # the random sampler proposes the same candidates whatever the values
    assert [t.params for t in full.trials()] == [t.params for t in early.trials()]
    assert [t.number for t in early.pareto()] == [t.number for t in full.pareto()]
    epochs = {m: sum(len(v) for v in _curves(c).values()) for m, c in runs.items()}
    assert epochs["off"] >= 3 * 14 and epochs["dominated"] < epochs["off"]
    for t in early.trials():
        stopped = t.user_attrs.get("stopped_at_epoch")
        curve = t.user_attrs.get("learning_curve", [])
        if _curves(full)[t.number]:
            assert curve == _curves(full)[t.number][: len(curve)]  # the same training, cut short
        if stopped is not None:
            assert len(curve) == stopped < 3 and t.values[0] == curve[-1]
            if t.user_attrs["metrics"]["area_mm2"] > 4:
                assert stopped == 1  # cannot be feasible: stopped at once
    fids = early.store.query("SELECT fidelity FROM measurements WHERE metric = 'accuracy'")
    assert {round(f, 4) for f in fids["fidelity"]} <= {0.3333, 0.6667, 1.0}
    for c in runs.values():
        c.store.close()


def test_a_candidate_stopped_early_is_trained_in_full_when_it_comes_back(tmp_path):
    path = tmp_path / "s.toml"
    text = ES_TOML.format(
        name="s", trials=1, source="train:digits/2ep", extra="", early_stop="dominated"
    )
    path.write_text(text)
    c = Campaign.from_config(load_config(path), storage=f"sqlite:///{tmp_path / 's.db'}")
    net = c.evaluator.network
    arch = net.build(net.from_string(CONV))
    big = c.hardware.build(
        {
            **c.hardware.sample(__import__("numpy").random.default_rng(0)),
            "hw.pe_rows": 64,
            "hw.pe_cols": 64,
        }
    )
    stopped = c.evaluator.evaluate(arch, big, early_stop=c.early_stop_rule())
    assert stopped.metrics["area_mm2"].value > 4  # infeasible: stopped after the first epoch
    assert stopped.notes["stopped_at_epoch"] == 1 and stopped.metrics["accuracy"].fidelity == 0.5
    again = c.evaluator.evaluate(arch, c.hardware.default(), early_stop=c.early_stop_rule())
    assert "stopped_at_epoch" not in again.notes and len(again.notes["learning_curve"]) == 2
    assert again.metrics["accuracy"].fidelity == 1.0
    c.store.close()


@pytest.mark.parametrize(
    "source, early_stop, objectives, words",
    [
        ("train:digits/2ep", "median", None, 'must be "off" or "dominated"'),
        ("benchmark:nb201/cifar10", "dominated", None, 'needs an accuracy source "train:'),
        ("train:digits/2ep", "dominated", 'latency_ms = "minimize"\n', 'accuracy = "maximize"'),
    ],
)
def test_early_stop_settings_that_cannot_work_are_refused(
    tmp_path, source, early_stop, objectives, words
):
    text = ES_TOML.format(name="x", trials=1, source=source, extra="", early_stop=early_stop)
    if objectives is not None:
        text = text.replace('accuracy = "maximize"\n', "")
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as info:
        load_config(path)
    assert info.value.key == "evaluate.early_stop"


def test_a_campaign_refuses_to_resume_with_another_training_recipe(tmp_path, monkeypatch):
    from cosearch import _trained

    path = tmp_path / "v.toml"
    path.write_text(TOML.format(name="v", trials=1, source="train:digits/1ep", extra=""))
    url = f"sqlite:///{tmp_path / 'v.db'}"
    c = Campaign.from_config(load_config(path), storage=url)
    c.run()
    c.store.close()
    monkeypatch.setattr(_trained, "RECIPE_VERSION", "v2")
    later = Campaign.from_config(load_config(path), storage=url)
    with pytest.raises(ConfigError, match="recipe v1, and this cosearch trains with .* recipe v2"):
        later.run(2)
    later.store.close()


def test_show_prints_the_learning_curve(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(TOML.format(name="w", trials=1, source="train:digits/2ep", extra=""))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    c = Campaign.from_config(load_config(path), storage=url)
    curve = c.run() and c.trials()[0].user_attrs["learning_curve"]
    c.store.close()
    out = run_cli("show", "w", "0", "--storage", url)
    assert out.returncode == 0, out.stderr
    assert f"test accuracy after each epoch: {curve[0]:.4g}, {curve[1]:.4g}" in out.stdout


def _image_folder(root, classes: int = 2, n: int = 12, corrupt: bool = False) -> str:
    from PIL import Image

    rng = __import__("numpy").random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(n):
            a = (rng.random((8, 8)) * 60 + c * 90).clip(0, 255).astype("uint8")
            Image.fromarray(a, "L").save(root / f"c{c}" / f"{i}.png")
    if corrupt:
        (root / "c0" / "0.png").write_text("not an image")
    return f"folder:{root}"


def test_two_datasets_of_one_name_never_share_a_source(tmp_path):
    a = _image_folder(tmp_path / "a" / "images")
    b = _image_folder(tmp_path / "b" / "images")
    sa, sb = (_evaluator(f"train:{x}/1ep").trained.source for x in (a, b))
    assert sa != sb and sa.startswith("train:images@") and sa.endswith("/1ep")
    assert _evaluator("train:digits/1ep").trained.source == "train:digits/1ep"


@pytest.mark.parametrize(
    "what, words",
    [
        ("corrupt", "cannot read image"),
        ("one class", "has 1 class"),
        ("raises", r"load_broken\(\) raised RuntimeError: no data here"),
        ("uint8", "images must be float tensors"),
    ],
)
def test_a_dataset_that_cannot_train_is_refused_before_any_trial(
    tmp_path, monkeypatch, what, words
):
    if what in ("corrupt", "one class"):
        spec = _image_folder(
            tmp_path / "d", classes=1 if what == "one class" else 2, corrupt=what == "corrupt"
        )
    else:
        (tmp_path / "userdata.py").write_text(
            "import torch\nfrom torch.utils.data import TensorDataset\n"
            "def load_broken():\n    raise RuntimeError('no data here')\n"
            "def load_uint8():\n"
            "    x = torch.zeros(20, 1, 8, 8, dtype=torch.uint8)\n"
            "    y = torch.arange(20) % 2\n"
            "    return TensorDataset(x, y), TensorDataset(x, y)\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        spec = "userdata:load_broken" if what == "raises" else "userdata:load_uint8"
    path = tmp_path / "d.toml"
    path.write_text(TOML.format(name="d", trials=3, source=f"train:{spec}/1ep", extra=""))
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with pytest.raises(ConfigError, match=words) as info:
        Campaign.from_config(load_config(path), storage=url).run()
    assert info.value.key == "evaluate.accuracy"
    assert optuna.get_all_study_names(url) == []  # nothing started, nothing left behind


def test_a_screen_with_a_bad_dataset_is_refused_in_one_line(tmp_path):
    path = tmp_path / "s.toml"
    screen = f'[screen]\naccuracy = "train:folder:{tmp_path / "nothing"}/1ep"\n'
    path.write_text(TOML.format(name="s", trials=2, source="train:digits/1ep", extra=screen))
    out = run_cli("run", str(path), "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "does not exist" in errors[0]
    assert errors[0].startswith(f"error: {path}:")  # the file and line of the source


def test_deployment_options_do_not_change_the_trained_accuracy():
    values = []
    for options in ({}, {"batch": 8}, {"input_size": 64}):
        ev = Evaluator(
            get_space("nb201", **SMALL, **options),
            get_hardware_space("systolic"),
            accuracy="train:digits/1ep",
            cost="analytical:systolic",
        )
        arch = ev.network.build(ev.network.from_string(CONV))
        values.append(ev.evaluate(arch, ev.hardware.default()).metrics["accuracy"].value)
    assert values[0] == values[1] == values[2]


@pytest.mark.parametrize("strategy", ["darts", "progressive_shrinking"])
def test_weight_sharing_strategies_refuse_a_train_source(tmp_path, strategy):
    network = "darts" if strategy == "darts" else "ofa_mbv3"
    text = TOML.format(name="w", trials=1, source="train:digits/1ep", extra="")
    text = text.replace('network = "nb201"', f'network = "{network}"')
    text = text.replace("channels = 8\ncells_per_stage = 1\n", "")
    text = text.replace('name = "random"', f'name = "{strategy}"')
    path = tmp_path / "w.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="measures accuracy itself") as info:
        load_config(path)
    assert info.value.key == "evaluate.accuracy"


def test_the_dominance_rule_bounds_what_a_candidate_behind_can_still_gain(tmp_path, monkeypatch):
    from cosearch.campaign import _FullyTrained
    from cosearch.evaluate import Measurement

    path = tmp_path / "u.toml"
    text = ES_TOML.format(
        name="u", trials=1, source="train:digits/4ep", extra="", early_stop="dominated"
    )
    path.write_text(text)
    c = Campaign.from_config(load_config(path), storage=f"sqlite:///{tmp_path / 'u.db'}")
    # five curves; the best closed 80 % of its remaining error after epoch 2; one finished
    # feasible trial at 98 % with latency 1.0 and energy 1.0
    max_gain = [0.9, 0.8, 0.5, 0.0]
    refs = _FullyTrained(5, max_gain, [(98.0, [1.0, 1.0])])
    monkeypatch.setattr(c, "_fully_trained", lambda *a: refs)

    def costs(latency, energy, area=1.0):
        names = ("latency_ms", "energy_mj", "area_mm2")
        return {n: Measurement(v, "x") for n, v in zip(names, (latency, energy, area))}

    rule = c.early_stop_rule()
    # 85 + 0.8 * 15 = 97 < 98, and the finished trial is no worse on latency and energy
    assert rule(costs(2.0, 1.0), 2, 85.0)
    # 91 + 0.8 * 9 = 98.2: it could still reach the finished trial
    assert not rule(costs(2.0, 1.0), 2, 91.0)
    # cheaper on one objective than the finished trial: not dominated, whatever its accuracy
    assert not rule(costs(0.5, 1.0), 2, 20.0)
    # before the middle epoch only constraints stop training
    assert not rule(costs(2.0, 1.0), 1, 20.0)
    assert rule(costs(2.0, 1.0, area=5.0), 1, 99.0)
    # fewer than five fully trained curves: no dominance stop
    monkeypatch.setattr(c, "_fully_trained", lambda *a: refs._replace(curves=4))
    assert not c.early_stop_rule()(costs(2.0, 1.0), 2, 85.0)
    c.store.close()
