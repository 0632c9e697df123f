"""progressive_shrinking: the elastic supernet, the schedule, the joint search, resume."""

from __future__ import annotations

import copy
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from optuna.trial import TrialState

import cosearch
from cosearch.search._ofa_search import (
    AccuracyPredictor,
    JointSearch,
    Outcome,
    canonical_key,
    fronts,
)
from cosearch.search._ofa_supernet import OFASupernet, fast_convs_
from cosearch.search._ofa_train import PHASES, init_weights, recalibrate_bn, resize, schedule
from cosearch.search.progressive_shrinking import PHASE_SLOT
from cosearch.spaces.ofa_mbv3 import OFAMBv3Space, ofa_mbv3_onnx_from_torch

ROOT = Path(__file__).resolve().parents[2]
OPTS = {
    "width_mult": 0.1,
    "in_channels": 1,
    "num_classes": 10,
    "stem_stride": 1,
    "resolutions": [6, 8],
    "batch": 2,
}


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _supernet(seed: int = 0) -> OFASupernet:
    """A supernet with non-trivial BN statistics, affine parameters and kernel transforms."""
    net = OFASupernet(OPTS)
    init_weights(net, torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "transform" in name or ".bn." in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return net.eval()


def _structure(model: onnx.ModelProto) -> tuple:
    g = model.graph
    nodes = [
        (n.op_type, n.name, tuple(n.input), tuple(n.output), tuple(str(a) for a in n.attribute))
        for n in g.node
    ]
    inits = [(t.name, tuple(t.dims)) for t in g.initializer]
    io = [str(v) for v in (*g.input, *g.output)]
    return nodes, inits, io, model.opset_import[0].version


# -- the elastic supernet -------------------------------------------------------------------------
def test_extract_subnet_exports_the_space_graph_with_the_supernet_outputs():
    net = _supernet()
    space = OFAMBv3Space(**OPTS)
    rng = np.random.default_rng(0)
    calib = [torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    configs = [net.largest(), net.smallest()] + [net.sample_active(rng) for _ in range(3)]
    for params in configs:
        work = copy.deepcopy(net)
        work.set_active(params)
        r = params["net.r"]
        recalibrate_bn(work, [resize(x, r) for x in calib])
        sub = work.extract_subnet()
        model = ofa_mbv3_onnx_from_torch(sub)
        onnx.checker.check_model(model)
        assert _structure(model) == _structure(space.build(params).onnx())
        x = torch.randn(2, 1, r, r, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            expected = work.eval()(x).numpy()
            assert np.allclose(sub(x).numpy(), expected, atol=1e-5)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0]
        assert np.allclose(got, expected, rtol=1e-3, atol=1e-4), np.abs(got - expected).max()
        # recalibrating the extracted subnet gives the statistics the supernet got
        fresh = net.extract_subnet(params)
        recalibrate_bn(fresh, [resize(x, r) for x in calib])
        for (k, a), b in zip(fresh.state_dict().items(), sub.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=1e-5), k


def test_kernel_transforms_chain_centre_crops():
    net = _supernet()
    block = net.blocks["5"]
    dw = block.dw
    assert dw.kernels == (7, 5, 3)
    w7 = dw.weight
    k5 = dw.kernel_weight(5)
    crop5 = w7[:, :, 1:6, 1:6].reshape(len(w7), 25)
    assert torch.allclose(k5.reshape(len(w7), 25), crop5 @ dw.transform_5.T, atol=1e-6)
    k3 = dw.kernel_weight(3, 4)
    crop3 = k5[:4, :, 1:4, 1:4].reshape(4, 9)
    assert torch.allclose(k3.reshape(4, 9), crop3 @ dw.transform_3.T, atol=1e-6)
    with torch.no_grad():  # identity transforms: a plain centre crop
        dw.transform_5.copy_(torch.eye(25))
        dw.transform_3.copy_(torch.eye(9))
    assert torch.equal(dw.kernel_weight(3), w7[:, :, 2:5, 2:5])
    with pytest.raises(ValueError, match="kernel size 4"):
        dw.kernel_weight(4)


def test_sorting_channels_keeps_the_largest_network_and_orders_importance():
    net = _supernet()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        before = net(x)
        net.sort_channels_()
        after = net(x)
    assert torch.allclose(before, after, atol=1e-5)
    for slot, block in net.blocks.items():
        imp = block.project.conv.weight.abs().sum(dim=(0, 2, 3))
        if block.expand is not None:
            assert torch.all(imp[:-1] >= imp[1:]), slot
    # a narrow subnet now keeps the most important channels of a block
    params = {**net.largest(), "net.e_0": 3}
    sub = net.extract_subnet(params)
    full = net.blocks["1"].project.conv.weight
    mid = sub.blocks["1"].project.conv.weight.shape[1]
    assert torch.equal(sub.blocks["1"].project.conv.weight, full[:, :mid])


def test_active_config_api_is_pure_and_checked():
    net = OFASupernet(OPTS)
    params = net.smallest()
    frozen = dict(params)
    net.set_active(params)
    assert params == frozen and net.active == params and net.active is not params
    a = net.sample_active(np.random.default_rng(3))
    b = OFASupernet(OPTS).sample_active(np.random.default_rng(3))
    assert a == b and all(type(v) is int for v in a.values())
    with pytest.raises(cosearch.ConfigError):
        net.set_active({**params, "net.ks_0": 4})
    with pytest.raises(cosearch.ConfigError):
        net.set_active({k: v for k, v in params.items() if k != "net.r"})
    narrow = OFASupernet(OPTS, kernels=(3, 5))
    with pytest.raises(ValueError, match="not one of"):
        narrow.set_active({**narrow.largest(), "net.ks_3": 7})
    again = OFASupernet.from_config(net.config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in net.state_dict().items()
    }


def test_fast_convolutions_compute_the_same_function():
    net = _supernet()
    for params in (net.largest(), net.smallest()):
        sub = net.extract_subnet(params)
        x = torch.randn(3, 1, params["net.r"], params["net.r"])
        with torch.no_grad():
            ref = sub(x)
            fast_convs_(sub)
            assert torch.allclose(sub(x), ref, atol=1e-5)
        assert ofa_mbv3_onnx_from_torch(sub).graph.node  # still exports


def test_schedule_widens_choices_phase_by_phase():
    net = OFASupernet(OPTS)
    epochs = dict.fromkeys(PHASES, 1)
    phases = schedule(net.choices, epochs, dict.fromkeys(PHASES, 0.1))
    got = {p.name: (p.choices.ks, p.choices.e, p.choices.d, p.distill) for p in phases}
    assert [p.name for p in phases] == list(PHASES)
    assert got["full"] == ((7,), (6,), (4,), False)
    assert got["kernel"] == ((3, 5, 7), (6,), (4,), True)
    assert got["depth1"][2] == (3, 4) and got["depth2"][2] == (2, 3, 4)
    assert got["width1"][1] == (4, 6) and got["width2"][1] == (3, 4, 6)
    assert [p.sort_channels for p in phases] == [False] * 4 + [True] * 2
    assert all(p.choices.r == (6, 8) for p in phases)


# -- the joint search -----------------------------------------------------------------------------
def _toy_search(algorithm: str, budget: int, told: dict | None = None, **kw):
    space = cosearch.get_space("ofa_mbv3", **OPTS)
    hw = cosearch.get_hardware_space("systolic")
    params = {f"net.{k}": p for k, p in space.params.items()}
    params.update({f"hw.{k}": p for k, p in hw.params.items()})
    log: list[tuple[str, int]] = []

    def evaluate(p, generation, predicted):
        if len(log) >= budget:
            return None
        k = canonical_key(space, p)
        log.append((k, generation))
        if told is not None:
            return told[k]
        size = sum(p[f"net.e_{i}"] * p[f"net.ks_{i}"] for i in range(20))
        out = Outcome((-float(size % 97), float(size), float(p["hw.pe_rows"])))
        return out

    s = JointSearch(
        params,
        evaluate,
        lambda p: canonical_key(space, p),
        algorithm=algorithm,
        population=6,
        seed=5,
        **kw,
    )
    s.run()
    return log, s


@pytest.mark.parametrize("algorithm", ["nsga2", "evolution"])
def test_joint_search_spends_its_budget_and_replays_exactly(algorithm):
    log, s = _toy_search(algorithm, 20)
    assert len(log) == 20 and len({k for k, _ in log}) == 20 and s.stopped
    assert max(g for _, g in log) >= 2
    told = {k: s.seen[k] for k, _ in log}
    log2, _ = _toy_search(algorithm, 20, told=told)
    assert log2 == log


def test_joint_search_generations_cap_and_screening():
    log, _ = _toy_search("nsga2", 10_000, generations=2)
    assert len(log) == 18

    calls = []

    def screen(cands):
        calls.append(len(cands))
        return [(0.0, Outcome((float(i),))) for i in range(len(cands))]

    space = cosearch.get_space("ofa_mbv3", **OPTS)
    params = {f"net.{k}": p for k, p in space.params.items()}
    seen = []
    JointSearch(
        params,
        lambda p, g, pred: seen.append(pred) or Outcome((1.0,)),
        lambda p: canonical_key(space, p),
        population=4,
        generations=1,
        screen=screen,
        screen_factor=3,
    ).run()
    assert calls == [12] and seen[:4] == [None] * 4 and seen[4:] == [0.0] * 4


@pytest.mark.parametrize("algorithm", ["nsga2", "evolution"])
def test_joint_search_ends_when_the_space_is_exhausted(algorithm):
    from cosearch.spaces._params import Param

    params = {f"hw.{n}": Param.categorical(n, (1, 2)) for n in ("a", "b")}
    seen: list[dict] = []

    def evaluate(p, generation, predicted):
        seen.append(p)
        return Outcome((float(p["hw.a"]), float(p["hw.b"])))

    JointSearch(params, evaluate, lambda p: str(sorted(p.items())), algorithm=algorithm).run()
    assert sorted(str(sorted(p.items())) for p in seen) == sorted(
        str(sorted({"hw.a": a, "hw.b": b}.items())) for a in (1, 2) for b in (1, 2)
    )


def test_fronts_respect_constraints():
    outs = [
        Outcome((1.0, 1.0)),
        Outcome((0.0, 0.0), 2.0),
        Outcome((2.0, 0.5)),
        Outcome((0.5, 3.0), 1.0),
    ]
    assert fronts(outs) == [[0, 2], [3], [1]]


def test_accuracy_predictor_fits_one_hot_ofa_params():
    from sklearn.exceptions import NotFittedError

    space = cosearch.get_space("ofa_mbv3", **OPTS)
    rng = np.random.default_rng(0)
    X = [space.sample(rng) for _ in range(30)]
    y = [sum(p[f"net.d_{s}"] for s in range(5)) + 0.1 * p["net.r"] for p in X]
    pred = AccuracyPredictor((3, 5, 7), (3, 4, 6), (2, 3, 4), (6, 8), seed=0)
    with pytest.raises(NotFittedError):
        pred.predict(X[:2])
    assert pred.encode(X[0]).shape == (20 * 6 + 5 * 3 + 2,)
    out = pred.fit(X, y).predict(X)
    assert out.shape == (30,) and np.corrcoef(out, y)[0, 1] > 0.8


# -- campaigns ------------------------------------------------------------------------------------
TOML = """
name = "{name}"
seed = 0
trials = {trials}
[space]
network = "ofa_mbv3"
hardware = "{hardware}"
[space.net]
width_mult = 0.1
in_channels = 1
num_classes = 10
stem_stride = 1
resolutions = [6, 8]
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
energy_mj = "minimize"
[evaluate]
cost = "analytical:{hardware}"
[strategy]
name = "progressive_shrinking"
epochs_full = 1
epochs_kernel = 2
epochs_depth = 1
epochs_width = 1
batches_per_epoch = 2
batch_size = 32
bn_batches = 1
subnets_per_step = 2
population = 2
{extra}
"""
SCHEDULE = [
    ["full", 0],
    ["kernel", 0],
    ["kernel", 1],
    ["depth1", 0],
    ["depth2", 0],
    ["width1", 0],
    ["width2", 0],
]


def _campaign(db_url, name="ref", trials=3, hardware="systolic", extra=""):
    text = TOML.format(name=name, trials=trials, hardware=hardware, extra=extra)
    return cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(db_url))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One uninterrupted tiny campaign: (db url, campaign, final checkpoint)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ofa') / 'ofa.db'}"
    torch.set_num_threads(1)
    c = _campaign(url)
    c.run()
    return url, c, c.store.load_checkpoint(c.campaign_id, "progressive_shrinking")


def test_campaign_reports_subnets_with_inherited_accuracy(trained):
    url, c, (step, meta, tensors) = trained
    trials = c.trials((TrialState.COMPLETE,))
    assert len(trials) == 3
    assert step == 6 and meta["done"] and meta["trained"] == SCHEDULE
    assert [h["phase"] for h in meta["history"]] == list(PHASES)
    for t in trials:
        assert t.user_attrs["sources"]["accuracy"] == "supernet:ofa/ref@6"
        assert t.user_attrs["sources"]["latency_ms"].startswith("analytical:systolic/")
        assert 0.0 <= t.values[0] <= 100.0 and t.values[1] > 0
        assert "ofa_test_accuracy" in t.user_attrs
    params0 = {k: v for k, v in trials[0].params.items() if k.startswith("net.")}
    assert params0 == OFASupernet(c.network.options).largest()  # the first seed
    phases = [c.store.load_checkpoint(c.campaign_id, PHASE_SLOT, i) for i in range(6)]
    assert [p[1]["phase"] for p in phases] == list(PHASES)
    assert all(k.startswith("net.") for k in phases[-1][2])
    for k, v in phases[-1][2].items():  # the last phase's weights are the final ones
        assert torch.equal(v, tensors[k])


def _stop_at(phase: str, epoch: int):
    def hook(end):
        if (end.phase, end.epoch) == (phase, epoch):
            raise KeyboardInterrupt

    return hook


def test_killed_runs_resume_mid_phase_and_at_a_phase_boundary(trained):
    url, ref, (_, ref_meta, ref_tensors) = trained
    cuts = [("kernel", 0), ("depth1", 0)]  # mid phase (kernel has 2 epochs), then a boundary
    for phase, epoch in cuts:
        c = _campaign(url, name="cut")
        c.strategy.on_epoch_end = _stop_at(phase, epoch)
        with pytest.raises(KeyboardInterrupt):
            c.run()
        step, meta, _ = c.store.load_checkpoint(c.campaign_id, "progressive_shrinking")
        assert meta["trained"][-1] == [phase, epoch] and not meta["done"]
        assert c.count() == 0
    c = _campaign(url, name="cut")
    c.run()
    step, meta, tensors = c.store.load_checkpoint(c.campaign_id, "progressive_shrinking")
    assert meta["trained"] == SCHEDULE  # every epoch once, in order: same total epochs
    assert meta["history"] == ref_meta["history"]
    assert tensors.keys() == ref_tensors.keys()
    for k, v in tensors.items():  # the same weights as the uninterrupted run
        assert torch.allclose(v.float(), ref_tensors[k].float(), atol=1e-6), k
    got = [t.params for t in c.trials((TrialState.COMPLETE,))]
    assert got == [t.params for t in ref.trials((TrialState.COMPLETE,))]


def test_search_resumes_without_measuring_again(trained):
    url, ref, _ = trained
    more = _campaign(url, name="ref", trials=5)
    more.run()
    trials = more.trials((TrialState.COMPLETE,))
    assert len(trials) == 5
    keys = [canonical_key(more.network, t.params) for t in trials]
    assert len(set(keys)) == 5  # the replayed three were not reported again


def test_supernet_from_searches_another_campaigns_supernet(trained):
    url, ref, _ = trained
    rs = _campaign(
        url, name="rs", trials=2, hardware="row_stationary", extra='supernet_from = "ref"'
    )
    rs.run()
    trials = rs.trials((TrialState.COMPLETE,))
    assert len(trials) == 2
    assert all(t.user_attrs["sources"]["accuracy"] == "supernet:ofa/ref@6" for t in trials)
    assert rs.store.load_checkpoint(rs.campaign_id, "progressive_shrinking") is None
    pred = _campaign(
        url,
        name="pred",
        trials=5,
        extra='supernet_from = "ref"\nsearch = "evolution"\npredictor = true\nscreen_factor = 3',
    )
    pred.run()
    trials = pred.trials((TrialState.COMPLETE,))
    assert len(trials) == 5
    screened = [t for t in trials if "ofa_predicted_accuracy" in t.user_attrs]
    assert len(screened) == 3  # every child after the first population of 2
    assert all(t.user_attrs["ofa_generation"] >= 1 for t in screened)
    bad = _campaign(url, name="bad", extra='supernet_from = "nope"')
    with pytest.raises(cosearch.ConfigError, match="no finished"):
        bad.run()


def test_export_writes_the_weights_a_trial_was_scored_with(trained, tmp_path):
    """export wrote untrained weights for OFA trials, a network at chance accuracy, though
    the supernet checkpoint they were scored with is in the store."""
    import onnx
    import onnxruntime as ort

    from cosearch.cli import main
    from cosearch.search._ofa_train import SubnetScorer, resize
    from cosearch.search.data import load_dataset

    url, c, _ = trained
    t = max(c.trials((TrialState.COMPLETE,)), key=lambda t: t.values[0])
    strategy = c.strategy
    sub = strategy.trained_subnet(c.store, c.config, t)
    cfg = strategy._train_config(0, "cpu")
    scorer = SubnetScorer(load_dataset(strategy.params["dataset"], seed=0), cfg)
    r = int(t.params["net.r"])
    assert scorer.accuracy(sub, r, "test") == t.user_attrs["ofa_test_accuracy"]
    out = tmp_path / "best.onnx"
    assert main(["export", "ref", str(t.number), "--onnx", str(out), "--storage", url]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    correct = total = 0
    for x, y in scorer.splits["test"]:  # the exported graph scores what the trial reported
        for i in range(len(x)):
            logits = session.run(None, {feed: resize(x[i : i + 1], r).numpy()})[0]
            correct += int(logits.argmax() == int(y[i]))
            total += 1
    assert 100.0 * correct / total == pytest.approx(t.user_attrs["ofa_test_accuracy"], abs=0.5)
    onnx.checker.check_model(str(out))


def test_supernet_from_scores_on_the_training_campaigns_splits(trained, monkeypatch):
    # split by this campaign's own seed, about 60 % of its validation images were ones the
    # supernet had trained on; another dataset with the same shapes was accepted too
    import cosearch.search.data as data

    url, _, _ = trained
    seeds = []
    real = data.load_dataset
    monkeypatch.setattr(
        data,
        "load_dataset",
        lambda spec, seed=0, **kw: seeds.append(seed) or real(spec, seed, **kw),
    )
    text = TOML.format(name="seed7", trials=1, hardware="systolic", extra='supernet_from = "ref"')
    cfg = cosearch.parse_config(text.replace("seed = 0", "seed = 7"))
    cosearch.Campaign(cfg, cosearch.open_store(url)).run()
    assert seeds == [0]  # ref's seed, not 7
    wrong = _campaign(
        url, name="wrong", trials=1, extra='supernet_from = "ref"\ndataset = "folder:/nowhere"'
    )
    with pytest.raises(cosearch.ConfigError, match="trained on dataset 'digits'"):
        wrong.run()


def test_options_are_validated():
    with pytest.raises(cosearch.ConfigError, match="'search' option"):
        cosearch.get_strategy("progressive_shrinking", search="bayes")
    with pytest.raises(cosearch.ConfigError, match="epochs_full"):
        cosearch.get_strategy("progressive_shrinking", epochs_full=0)
    nb201 = (
        'name = "x"\n[space]\nnetwork = "nb201"\nhardware = "systolic"\n'
        '[objectives]\naccuracy = "maximize"\n[evaluate]\ncost = "analytical:systolic"\n'
        '[strategy]\nname = "progressive_shrinking"\n'
    )
    with pytest.raises(cosearch.ConfigError, match="trains supernets"):
        cosearch.parse_config(nb201)


def test_dataset_must_fit_the_space(db_url):
    text = TOML.format(name="x", trials=2, hardware="systolic", extra="")
    c = cosearch.Campaign(
        cosearch.parse_config(text.replace("num_classes = 10", "num_classes = 7")),
        cosearch.open_store(db_url),
    )
    with pytest.raises(cosearch.ConfigError, match="num_classes"):
        c.run()


def test_a_last_batch_of_one_image_is_skipped(db_url):
    # digits' training split has 1078 images: batch_size 359 leaves a last batch of one, on
    # which BatchNorm raised ValueError (exit 1) and the campaign was left behind
    text = TOML.format(name="one", trials=2, hardware="systolic", extra="")
    for key, value in (("epochs_kernel", 0), ("epochs_depth", 0), ("epochs_width", 0),
                       ("batches_per_epoch", 0), ("batch_size", 359)):  # fmt: skip
        text = re.sub(rf"(?m)^{key} = \d+$", f"{key} = {value}", text)
    c = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(db_url))
    assert c.run().completed == 2


def test_example_config_parses():
    cfg = cosearch.load_config(ROOT / "examples" / "ofa_digits.toml")
    assert cfg.strategy == "progressive_shrinking" and cfg.network == "ofa_mbv3"


def _latest_checkpoint(path: Path) -> int:
    """The child's latest checkpoint step, read with plain sqlite (read-only), so the test
    never races the child's schema creation; -1 while there is none."""
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT max(step) FROM checkpoints WHERE strategy = 'progressive_shrinking'"
            ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet, or locked
        return -1
    return -1 if row is None or row[0] is None else int(row[0])


@pytest.mark.slow
def test_sigkill_mid_training_then_resume(tmp_path, trained):
    """A real kill (SIGKILL, no cleanup) during training; the resumed run finishes the
    schedule with every epoch once and the uninterrupted run's weights."""
    _, _, (_, ref_meta, ref_tensors) = trained
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    script = (
        "import sys, time, torch, cosearch\n"
        "torch.set_num_threads(1)\n"
        f"c = cosearch.Campaign(cosearch.parse_config({TOML.format(name='ref', trials=3, hardware='systolic', extra='')!r}), cosearch.open_store({url!r}))\n"  # noqa: E501
        "def slow(end):\n"
        # time for the parent to kill during epoch 3 (after checkpoint 2); on a loaded
        # machine it may miss that window, so the run waits after checkpoint 3 until killed
        "    time.sleep(0.5 if end.step < 3 else 600)\n"
        "c.strategy.on_epoch_end = slow\n"
        "c.run()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if _latest_checkpoint(tmp_path / "kill.db") >= 2:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    c = _campaign(url)
    step, meta, _ = c.store.load_checkpoint(c.campaign_id, "progressive_shrinking")
    assert 2 <= step < 6 and not meta["done"]
    c.run()
    step, meta, tensors = c.store.load_checkpoint(c.campaign_id, "progressive_shrinking")
    assert meta["trained"] == SCHEDULE and meta["history"] == ref_meta["history"]
    for k, v in tensors.items():
        assert torch.allclose(v.float(), ref_tensors[k].float(), atol=1e-6), k
    assert c.count() == 3
