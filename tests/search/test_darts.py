"""The ``darts`` strategy: supernets, hardware term, data, campaigns, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from optuna.trial import TrialState

import cosearch
from cosearch.hwmodels import get_cost_model
from cosearch.search import darts as darts_module
from cosearch.search import get_strategy
from cosearch.search._darts_hw import HardwareTerm
from cosearch.search._darts_loop import LoopConfig, SearchState, train_epoch
from cosearch.search._darts_supernet import build_supernet, derive, skip_count
from cosearch.search._retrain import train_from_scratch
from cosearch.search.data import dataset_name, load_dataset
from cosearch.spaces.darts import DARTS_V2

from ..conftest import run_cli

# A tiny darts campaign: a 3-cell, 4-channel supernet, 2 batches of 16 per epoch.
TOML = """
name = "{name}"
seed = 0
trials = {trials}
[space]
network = "{network}"
hardware = "systolic"
[space.net]
{net}
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
[evaluate]
{evaluate}
[strategy]
name = "darts"
channels = 4
layers = 3
batches_per_epoch = 2
{strategy}
"""
DARTS_NET = "channels = 4\nlayers = 3\ninput_size = 8\nin_channels = 1"
NB201_NET = "channels = 4\ncells_per_stage = 1\ninput_size = 8\nin_channels = 1"
# dashboard artifacts (per-layer plots of the front) are not what is tested here, and take time
NO_ARTIFACTS = 'artifacts = "none"'


def _config(name="d", trials=100, network="darts", net=DARTS_NET, evaluate=NO_ARTIFACTS, **opts):
    opts.setdefault("max_skip", -1)  # a 2-batch search derives arbitrary cells
    opts.setdefault("batch_size", 16)
    strategy = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in opts.items())
    text = TOML.format(
        name=name, trials=trials, network=network, net=net, evaluate=evaluate, strategy=strategy
    )
    return cosearch.parse_config(text.replace("True", "true").replace("False", "false"))


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny tensors: threads only add synchronization, worst on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", 0)


# -- options ----------------------------------------------------------------------------------
def test_options_are_validated():
    s = get_strategy("darts", partial_channels=4, channels=8, **{"lambda": 0.5})
    assert s.params["lambda"] == 0.5 and s.edge_norm
    with pytest.raises(cosearch.ConfigError, match="hw_metric"):
        get_strategy("darts", hw_metric="area")
    with pytest.raises(cosearch.ConfigError, match="multiple of partial_channels"):
        get_strategy("darts", channels=6, partial_channels=4)
    with pytest.raises(cosearch.ConfigError, match="order"):
        get_strategy("darts", order=3)
    with pytest.raises(cosearch.ConfigError, match="trains supernets"):
        cosearch.parse_config(
            TOML.format(name="x", trials=3, network="ofa_mbv3", net="", evaluate="", strategy="")
        )


# -- data -------------------------------------------------------------------------------------
def test_digits_splits_are_deterministic(digits):
    train, val, test, classes, channels, size = digits
    assert (classes, channels, size) == (10, 1, 8)
    assert len(train) + len(val) + len(test) == 1797 and len(train) == 1078
    x, _ = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    again = load_dataset("digits", 0)
    assert torch.equal(again.val.tensors[0], val.tensors[0])
    assert not torch.equal(load_dataset("digits", 1).val.tensors[1], val.tensors[1])
    assert abs(float(train.tensors[0].mean())) < 1e-4  # standardized on the training split


def test_user_dataset_function(tmp_path, monkeypatch):
    (tmp_path / "my_data.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch.utils.data import TensorDataset

            def make(seed=0):
                g = torch.Generator().manual_seed(seed)
                x = torch.randn(40, 3, 12, 12, generator=g)
                y = torch.arange(40) % 3
                return TensorDataset(x[:30], y[:30]), TensorDataset(x[30:], y[30:])

            def bad():
                return 5
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    d = load_dataset("my_data:make", 3)
    assert (d.num_classes, d.in_channels, d.image_size) == (3, 3, 12)
    assert d.test is d.val and len(d.train) == 30
    assert dataset_name("my_data:make") == "make"
    with pytest.raises(cosearch.ConfigError, match="must return"):
        load_dataset("my_data:bad")
    with pytest.raises(cosearch.ConfigError, match="no function"):
        load_dataset("my_data:nope")
    with pytest.raises(cosearch.ConfigError, match="cannot import"):
        load_dataset("no_such_module_xyz:make")
    with pytest.raises(cosearch.ConfigError, match="unknown dataset"):
        load_dataset("mnist")


def test_a_dataset_read_back_from_a_store_runs_no_code(tmp_path, monkeypatch, db_url):
    """Whoever can write a store (a shared server, a database file someone sent) chose the
    code a worker imported and called: `dataset = "module:function"` was read back from the
    store's copy of the config. It runs from the user's own file, or when listed in
    $COSEARCH_TRUSTED_DATASETS, and is refused (exit 2) from the store alone."""
    marker = tmp_path / "imported"
    (tmp_path / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef load(seed=0):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = _config(name="p", dataset="planted:load", epochs=1)
    assert not cfg.stored
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c.study  # noqa: B018 - the campaign as a worker finds it in the store
    c.store.close()
    stored = cosearch.Campaign.from_store("p", storage=db_url)
    assert stored.config.stored
    with pytest.raises(cosearch.ConfigError, match="COSEARCH_TRUSTED_DATASETS"):
        stored.run()
    assert not marker.exists()
    r = run_cli("worker", "p", "--storage", db_url, env={"PYTHONPATH": str(tmp_path)})
    last = r.stderr.strip().splitlines()[-1]  # after the worker's "joining" line
    assert r.returncode == 2 and last.startswith("error: dataset 'planted:load' comes from")
    assert not marker.exists()
    monkeypatch.setenv("COSEARCH_TRUSTED_DATASETS", "other:x, planted:load")
    with pytest.raises(cosearch.ConfigError, match="must return"):  # imported and called
        stored.run()
    assert marker.exists()
    stored.store.close()


def test_image_folder(tmp_path):
    try:
        from PIL import Image
    except ImportError:
        (tmp_path / "a").mkdir()
        with pytest.raises(cosearch.ConfigError, match="Pillow"):
            load_dataset(f"folder:{tmp_path}")
        return
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(10):
            arr = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / c / f"{i}.png")
    d = load_dataset(f"folder:{tmp_path}", 0)
    assert (d.num_classes, d.in_channels, d.image_size) == (2, 3, 10)
    assert len(d.train) + len(d.val) + len(d.test) == 20


def test_missing_folder():
    with pytest.raises(cosearch.ConfigError, match="does not exist"):
        load_dataset("folder:/no/such/folder")


def test_split_folders_without_val(tmp_path):
    # PATH/train + PATH/test was read as two classes "test" and "train" holding no images
    for part in ("train", "test"):
        (tmp_path / part / "cat").mkdir(parents=True)
    with pytest.raises(cosearch.ConfigError, match="has train/ and test/ but no val/"):
        load_dataset(f"folder:{tmp_path}")


# -- supernets --------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["darts", "nb201"])
@pytest.mark.parametrize("k", [1, 2])
def test_supernet_forward_and_derive(space, k):
    net = build_supernet(
        space,
        channels=4,
        depth=3 if space == "darts" else 1,
        in_channels=1,
        input_size=8,
        num_classes=10,
        k=k,
        edge_norm=k > 1,
        seed=0,
    )
    x = torch.randn(4, 1, 8, 8)
    assert net(x).shape == (4, 10)
    params, discrete = derive(net, space)
    full = cosearch.get_space(space, channels=4, input_size=8, in_channels=1)
    full.validate(params)  # a valid parameter dict of the discrete space
    assert net(x, discrete).shape == (4, 10)
    assert len(net.arch_parameters()) == (2 if k > 1 else 1)


def test_darts_derivation_rule():
    net = build_supernet(
        "darts",
        channels=4,
        depth=3,
        in_channels=1,
        input_size=8,
        num_classes=10,
        k=1,
        edge_norm=False,
        seed=0,
    )
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, :, 0] = 10.0  # `none` dominates every edge: derivation ignores it
        net.alphas[0, 0, 4] = 5.0  # node 0 <- input 0: sep_conv_3x3 strongest
        net.alphas[0, 1, 3] = 3.0  # node 0 <- input 1: skip_connect
    params, _ = derive(net, "darts")
    assert params["net.normal_node0_op0"] == "sep_conv_3x3"
    assert params["net.normal_node0_in0"] == 0
    assert params["net.normal_node0_op1"] == "skip_connect"
    assert skip_count(params, "darts") >= 1
    assert all(params[f"net.normal_node{i}_op{j}"] != "none" for i in range(4) for j in (0, 1))


def _saved_bytes(net, x):
    total = 0
    seen = set()

    def pack(t):
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.dtype)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x).sum()
    return total


def test_partial_channels_halve_activation_memory():
    kw = dict(channels=8, depth=3, in_channels=1, input_size=8, num_classes=10, seed=0)
    x = torch.randn(16, 1, 8, 8)
    full = _saved_bytes(build_supernet("darts", k=1, edge_norm=False, **kw), x)
    pc = _saved_bytes(build_supernet("darts", k=4, edge_norm=True, **kw), x)
    assert pc <= 0.5 * full


# -- hardware term ----------------------------------------------------------------------------
def test_hardware_term_matches_the_evaluator_on_discrete_cells():
    acc = cosearch.get_hardware_space("systolic").default()
    cm = get_cost_model("systolic")
    # nb201: one-hot alphas of a cell without `none` give the evaluator's cost exactly
    space = cosearch.get_space("nb201", channels=4, cells_per_stage=1, input_size=8)
    term = HardwareTerm(space, cm, "latency_ms")
    table = term.table(acc)
    net = build_supernet(
        "nb201",
        channels=4,
        depth=1,
        in_channels=1,
        input_size=8,
        num_classes=10,
        k=1,
        edge_norm=False,
        seed=0,
    )
    with torch.no_grad():
        net.alphas.fill_(-50.0)
        for e, o in enumerate([3, 1, 2, 4, 3, 1]):
            net.alphas[0, e, o] = 50.0
    params, _ = derive(net, "nb201")
    expected = float(term.expected(net, table).detach())
    assert expected == pytest.approx(term.discrete(params, acc), rel=1e-6)
    # darts: with betas selecting exactly two inputs per node, the same holds
    space = cosearch.get_space("darts", channels=4, layers=3, input_size=8, in_channels=1)
    term = HardwareTerm(space, cm, "energy_mj")
    table = term.table(acc)
    net = build_supernet(
        "darts",
        channels=4,
        depth=3,
        in_channels=1,
        input_size=8,
        num_classes=10,
        k=1,
        edge_norm=True,
        seed=0,
    )
    params = space.from_string(DARTS_V2)
    edges = [(i, j) for i in range(4) for j in range(i + 2)]
    prims = ["none", *cosearch.spaces.darts.OPS]
    with torch.no_grad():
        net.alphas.fill_(-50.0)
        net.betas.fill_(-50.0)
        for t, kind in enumerate(("normal", "reduce")):
            for i in range(4):
                for s in (0, 1):
                    e = edges.index((i, params[f"net.{kind}_node{i}_in{s}"]))
                    net.alphas[t, e, prims.index(params[f"net.{kind}_node{i}_op{s}"])] = 50.0
                    net.betas[t, e] = 50.0
    expected = float(term.expected(net, table).detach())
    assert expected == pytest.approx(term.discrete(params, acc), rel=1e-6)
    assert term.uniform(table) > 0


def test_hardware_term_pulls_towards_cheaper_ops(digits):
    space = cosearch.get_space("nb201", channels=4, cells_per_stage=1, input_size=8)
    term = HardwareTerm(space, get_cost_model("systolic"), "latency_ms")
    table = term.table(cosearch.get_hardware_space("systolic").default())
    net = build_supernet(
        "nb201",
        channels=4,
        depth=1,
        in_channels=1,
        input_size=8,
        num_classes=10,
        k=1,
        edge_norm=False,
        seed=0,
    )
    cfg = LoopConfig(
        epochs=1,
        order=1,
        batch_size=32,
        batches_per_epoch=4,
        w_lr=0.025,
        w_lr_min=0.001,
        w_momentum=0.9,
        w_weight_decay=3e-4,
        grad_clip=5.0,
        arch_lr=0.05,
        arch_weight_decay=0.0,
        warmup_epochs=0,
        lam=50.0,
        target=term.uniform(table),
        device="cpu",
    )
    state = SearchState(net, cfg, 0)
    before = float(term.expected(net, table).detach())
    train_epoch(state, digits, 0, lambda n: term.expected(n, table))
    assert float(term.expected(net, table).detach()) < before


def test_second_order_step_moves_alphas(digits):
    net = build_supernet(
        "nb201",
        channels=4,
        depth=1,
        in_channels=1,
        input_size=8,
        num_classes=10,
        k=2,
        edge_norm=True,
        seed=0,
    )
    cfg = LoopConfig(
        epochs=1,
        order=2,
        batch_size=16,
        batches_per_epoch=2,
        w_lr=0.025,
        w_lr_min=0.001,
        w_momentum=0.9,
        w_weight_decay=3e-4,
        grad_clip=5.0,
        arch_lr=0.01,
        arch_weight_decay=1e-3,
        warmup_epochs=0,
        lam=0.0,
        target=1.0,
        device="cpu",
    )
    state = SearchState(net, cfg, 0)
    alphas, betas = net.alphas.detach().clone(), net.betas.detach().clone()
    stats = train_epoch(state, digits, 0, None)
    assert np.isfinite(stats["val_loss"])
    assert not torch.equal(alphas, net.alphas) and not torch.equal(betas, net.betas)
    # the checkpoint round trip restores everything, optimizer moments included
    other = SearchState(
        build_supernet(
            "nb201",
            channels=4,
            depth=1,
            in_channels=1,
            input_size=8,
            num_classes=10,
            k=2,
            edge_norm=True,
            seed=1,
        ),
        cfg,
        5,
    )
    other.load(state.tensors())
    assert torch.equal(other.net.alphas, net.alphas)
    assert torch.equal(other.gen.get_state(), state.gen.get_state())
    assert other.a_opt.state_dict()["state"][0]["exp_avg"].equal(
        state.a_opt.state_dict()["state"][0]["exp_avg"]
    )


def test_retrain_from_scratch(digits):
    space = cosearch.get_space("darts", channels=4, layers=3, input_size=8, in_channels=1)
    module = space.build(space.from_string(DARTS_V2)).to_torch()
    acc = train_from_scratch(module, digits, 1, seed=0)
    assert 0.0 <= acc <= 100.0


# -- campaigns --------------------------------------------------------------------------------
def _epochs(campaign):
    out = []
    for t in campaign.trials((TrialState.COMPLETE,)):
        ua = t.user_attrs
        out.append((ua["accelerator_round"], "final" if ua.get("final") else ua["epoch"]))
    return out


def test_campaign_reports_epochs_and_the_retrained_final(db_url):
    cfg = _config(epochs=2, retrain_epochs=1, batch_size=64, **{"lambda": 0.5})
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c.run()
    assert _epochs(c) == [(0, 0), (0, 1), (0, "final")]
    trials = c.trials((TrialState.COMPLETE,))
    t = trials[1]
    assert t.user_attrs["sources"]["accuracy"] == "supernet:darts/epoch-1"
    assert t.user_attrs["sources"]["latency_ms"].startswith("analytical:systolic")
    assert t.user_attrs["expected_cost"] > 0
    assert t.params["net.normal_node0_op0"] in cosearch.spaces.darts.OPS
    assert t.params["hw.pe_rows"] == cosearch.get_hardware_space("systolic").default()["pe_rows"]
    final = trials[2]
    assert final.user_attrs["sources"]["accuracy"] == "train:digits/1ep"
    assert final.values[0] == pytest.approx(final.user_attrs["retrain_accuracy"])
    step, meta, _ = c.store.load_checkpoint(c.campaign_id, "darts")
    assert meta["phase"] == "done" and step == 2
    c.run()  # a finished schedule reports nothing more
    assert len(_epochs(c)) == 3


def test_trials_cap_and_accelerator_rounds(db_url):
    cfg = _config(trials=3, epochs=2, accelerators=2, retrain_epochs=0)
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c.run()
    # no final without retraining or a table: rounds of 2 epochs, capped at 3 trials
    assert _epochs(c) == [(0, 0), (0, 1), (1, 0)]
    trials = c.trials((TrialState.COMPLETE,))
    hw0 = {k: v for k, v in trials[0].params.items() if k.startswith("hw.")}
    hw1 = {k: v for k, v in trials[2].params.items() if k.startswith("hw.")}
    assert hw0 != hw1
    c.run(n_trials=10)  # raising the cap finishes the schedule, nothing twice
    assert _epochs(c) == [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize(
    "warmup, skips, epochs_run",
    [
        (0, [1, 3, 3], 2),  # within the limit, then over it: stops after the second epoch
        # over the limit from the start is the random initial cell, not a collapse: the
        # guard stopped the shipped darts_digits example after 1 of its 10 epochs
        (0, [3, 1, 3, 3], 3),
        (1, [1, 3, 3, 3], 4),  # a warm-up epoch (architecture weights untouched) arms nothing
    ],
)
def test_collapse_guard_stops_a_drift_towards_skips(db_url, monkeypatch, warmup, skips, epochs_run):
    import cosearch.search._darts_supernet as sn

    counts = iter(skips)
    monkeypatch.setattr(sn, "skip_count", lambda params, space: next(counts))
    n = len(skips)
    cfg = _config(epochs=n, retrain_epochs=0, max_skip=2, warmup_epochs=warmup)
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c.run()
    trials = sorted(c.trials((TrialState.COMPLETE,)), key=lambda t: t.number)
    assert _epochs(c) == [(0, e) for e in range(epochs_run)]
    guard = [t.user_attrs["collapse_guard"] for t in trials if "collapse_guard" in t.user_attrs]
    assert guard == [e == epochs_run - 1 and epochs_run < n for e in range(epochs_run)]


def test_nb201_final_from_the_table(db_url):
    text = _config(
        network="nb201",
        net="",
        evaluate='accuracy = "benchmark:nb201/cifar10"',
        epochs=1,
        retrain_epochs=0,
    ).text
    c = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(db_url))
    c.run()
    epoch, final = c.trials((TrialState.COMPLETE,))
    assert epoch.user_attrs["sources"]["accuracy"] == "supernet:darts/epoch-0"
    assert final.user_attrs["sources"]["accuracy"] == "benchmark:nb201/cifar10"
    table = final.user_attrs["benchmark_accuracy"]
    assert final.values[0] == pytest.approx(table["cifar10"])
    assert final.user_attrs["benchmark_transfer"] is False
    # the epoch's supernet accuracy on the digits proxy is not comparable with the table's:
    # it dominated its own final's measurement on the default front
    assert [t.number for t in c.pareto()] == [final.number]


def test_the_run_uses_the_threads_option_not_the_callers_setting(monkeypatch):
    # the trained weights, so the trials, depend on torch's CPU thread count: on two cores
    # the example campaign gave another front with 2 threads than with 1
    seen = []
    monkeypatch.setattr(darts_module._Run, "go", lambda self: seen.append(torch.get_num_threads()))
    c = cosearch.Campaign(_config(epochs=1, threads=2), cosearch.open_store("sqlite://"))
    c.run()
    assert seen == [2]
    assert torch.get_num_threads() == 1  # the caller's setting is back


def test_resume_after_an_interrupt_matches_an_uninterrupted_run(tmp_path):
    cfg = _config(epochs=3, retrain_epochs=0)
    ref = cosearch.Campaign(cfg, cosearch.open_store(f"sqlite:///{tmp_path / 'ref.db'}"))
    ref.run()
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    c = cosearch.Campaign(cfg, cosearch.open_store(url))
    c.strategy._fail_after_epoch = (0, 1)
    with pytest.raises(KeyboardInterrupt):
        c.run()
    assert _epochs(c) == [(0, 0), (0, 1)]
    c2 = cosearch.Campaign(cfg, cosearch.open_store(url))
    c2.run()
    assert _epochs(c2) == [(0, 0), (0, 1), (0, 2)]
    got = [t.params for t in c2.trials((TrialState.COMPLETE,))]
    want = [t.params for t in ref.trials((TrialState.COMPLETE,))]
    assert got == want  # the restored state continues the same search


def test_checkpoint_without_its_report_is_reported_on_resume(db_url, monkeypatch):
    cfg = _config(epochs=2, retrain_epochs=0)
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    from cosearch._context import SearchContext

    calls = {"n": 0}
    real = SearchContext.report

    def dying_report(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # killed after epoch 1's checkpoint, before its report
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SearchContext, "report", dying_report)
    with pytest.raises(KeyboardInterrupt):
        c.run()
    monkeypatch.setattr(SearchContext, "report", real)
    c2 = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c2.run()
    assert _epochs(c2) == [(0, 0), (0, 1)]


@pytest.mark.slow
def test_sigkill_during_an_epoch_then_resume(tmp_path):
    """A real kill: SIGKILL the campaign's process while it trains epoch 2, then resume."""
    toml = tmp_path / "c.toml"
    toml.write_text(_config(name="killed", epochs=4, retrain_epochs=0).text)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    code = (
        "import torch, cosearch; torch.set_num_threads(1); "
        f"cosearch.Campaign.from_toml({str(toml)!r}, storage={url!r}).run(progress=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    killed = False
    for line in proc.stderr:
        if "round 0 epoch 1:" in line:  # epoch 1 is reported: the process is in epoch 2
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=120)
    assert killed, "the child finished or failed before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    c = cosearch.Campaign.from_toml(toml, storage=url)
    assert [e for _, e in _epochs(c)] == [0, 1]
    c.run()
    assert _epochs(c) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    numbers = [t.user_attrs["epoch"] for t in c.trials((TrialState.COMPLETE,))]
    assert len(numbers) == len(set(numbers))


def test_a_second_process_cannot_run_the_same_search(db_url):
    # a worker joining a darts campaign ran the whole search again beside the first process
    # and ended the campaign at 9 of 8 trials
    from cosearch.errors import CosearchInputError
    from cosearch.store._locks import try_store_lock

    cfg = _config(name="busy", epochs=1, retrain_epochs=1)
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    with try_store_lock(c.store.engine, c.store.url, "cosearch-ws:busy"):  # the first process
        with pytest.raises(CosearchInputError, match="already running in another process"):
            c.run()
    assert c.count() == 0


def test_a_trial_left_running_by_a_killed_run_is_failed_on_resume(db_url):
    # SIGTERM or SIGKILL during a report left its trial RUNNING for good (Ctrl-C marks it FAIL)
    cfg = _config(name="orphan", epochs=1, retrain_epochs=0)
    c = cosearch.Campaign(cfg, cosearch.open_store(db_url))
    c.study.ask()  # what a killed run leaves: a RUNNING trial that nobody will finish
    summary = c.run()
    assert summary.interrupted_marked == 1
    assert not c.study.get_trials(states=(TrialState.RUNNING,))
    (failed,) = c.study.get_trials(states=(TrialState.FAIL,))
    assert failed.user_attrs["fail_reason"].startswith("interrupted")
    assert not c.study.get_trials(states=(TrialState.WAITING,))  # no retry queued
    assert _epochs(c) == [(0, 0)]


def test_accelerators_do_not_depend_on_earlier_starts(tmp_path):
    # a run cut short before its first checkpoint left a FAIL trial; the resumed run seeded
    # its accelerator draws from the history length and searched other accelerators
    def hw_of_rounds(db, interrupted):
        cfg = _config(name="acc", epochs=1, retrain_epochs=0, accelerators=3)
        c = cosearch.Campaign(cfg, cosearch.open_store(f"sqlite:///{tmp_path / db}"))
        if interrupted:
            c.study.tell(c.study.ask(), state=TrialState.FAIL)
        c.run()
        out = {}
        for t in c.trials((TrialState.COMPLETE,)):
            out[t.user_attrs["accelerator_round"]] = {
                k: v for k, v in t.params.items() if k.startswith("hw.")
            }
        return out

    fresh, resumed = hw_of_rounds("a.db", False), hw_of_rounds("b.db", True)
    assert len(fresh) == 3 and fresh == resumed
