"""The ``darts`` strategy: memory, the hardware trade-off, digits accuracy, resume after a kill.

    .venv/bin/python benchmarks/darts/darts_bench.py            # ~20 min on 2 shared cores
    .venv/bin/python benchmarks/darts/darts_bench.py --quick    # ~4 min, results/darts_quick.md

Writes ``benchmarks/results/darts.md`` (``--out`` to change). Four parts:

1. Memory and time per epoch of DARTS (K = 1) and PC-DARTS (K = 4, edge normalization) on the
   same supernet and batch. Activation memory is measured as what autograd keeps for the
   backward pass: every tensor saved by a forward of the training loss passes through
   ``torch.autograd.graph.saved_tensors_hooks`` and its storage's bytes are summed, each
   storage once. That is the memory that grows with batch size and network size; weights,
   gradients and optimizer moments are the same for both variants and are reported apart
   (parameter bytes). Time per epoch: wall time of full search epochs (architecture step +
   weight step per batch) on one thread.
2. nb201 with the NAS-Bench-201 table: campaigns on the published NB201 CIFAR network
   (accuracy source ``benchmark:nb201/cifar10``, latency from the systolic model's reference
   design), searched with a small proxy supernet on digits (cell transfer), for several lambda
   and 3 seeds; the final cell's table accuracy and latency.
3. digits: a darts campaign on the digits-sized DARTS network, its final cell retrained from
   scratch and scored on the test split, against random cells of the same space with the
   closest latency (the 3 closest of 300 samples), retrained the same way.
4. Resume: a campaign process is SIGKILLed while it trains an epoch, then resumed; the trials
   table must hold every epoch exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import TrialState

import cosearch
from cosearch.hwmodels import extract_layers, get_cost_model
from cosearch.search._darts_loop import LoopConfig, SearchState, train_epoch
from cosearch.search._darts_supernet import build_supernet
from cosearch.search._retrain import train_from_scratch
from cosearch.search.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]

FULL = {
    "mem_batches": 4,  # measured batches; the epoch time is scaled to the 17 of an epoch
    "nb201_epochs": 8,
    "nb201_lambdas": (0.0, 0.01, 0.03, 0.1),
    "seeds": (0, 1, 2),
    "digits_supernet": "channels = 8\nlayers = 5\npartial_channels = 2",
    "digits_epochs": 3,
    "digits_retrain": 15,
    "digits_seeds": (0, 1),
    "random_samples": 300,
    "random_closest": 2,
}
QUICK = {
    "mem_batches": 2,
    "nb201_epochs": 3,
    "nb201_lambdas": (0.0, 0.1),
    "seeds": (0,),
    "digits_supernet": "channels = 8\nlayers = 3\npartial_channels = 2",
    "digits_epochs": 1,
    "digits_retrain": 2,
    "digits_seeds": (0,),
    "random_samples": 20,
    "random_closest": 1,
}


def _loop_config(order: int, batches: int, lam: float = 0.0, target: float = 1.0) -> LoopConfig:
    return LoopConfig(
        epochs=10, order=order, batch_size=64, batches_per_epoch=batches, w_lr=0.025,
        w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, grad_clip=5.0, arch_lr=3e-3,
        arch_weight_decay=1e-3, warmup_epochs=0, lam=lam, target=target, device="cpu",
    )  # fmt: skip


# -- 1. memory and time ---------------------------------------------------------------------------
def saved_activation_bytes(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves for backward in one training forward."""
    seen: set[int] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return t

    net.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(net(x), y)
    del loss
    return total


def memory_and_time(cfg: dict[str, Any], data: Any) -> list[dict[str, Any]]:
    rows = []
    x, y = data.train.tensors[0][:64], data.train.tensors[1][:64]
    cases = [
        ("darts", 16, 5, 1, 1),
        ("darts", 16, 5, 4, 1),
        ("nb201", 16, 1, 1, 1),
        ("nb201", 16, 1, 4, 1),
        ("darts", 16, 5, 1, 2),
    ]
    for space, channels, depth, k, order in cases:
        net = build_supernet(
            space, channels=channels, depth=depth, in_channels=1, input_size=8,
            num_classes=10, k=k, edge_norm=k > 1, seed=0,
        )  # fmt: skip
        act = saved_activation_bytes(net, x, y)
        params = sum(p.numel() * p.element_size() for p in net.parameters())
        state = SearchState(net, _loop_config(order, cfg["mem_batches"]), 0)
        stats = train_epoch(state, data, 0, None)
        n_batches = min(cfg["mem_batches"], -(-len(data.train) // 64))
        per_epoch = stats["seconds"] / n_batches * -(-len(data.train) // 64)
        rows.append(
            dict(space=space, channels=channels, depth=depth, k=k, order=order,
                 act_mib=act / 2**20, param_kib=params / 2**10, epoch_s=per_epoch)
        )  # fmt: skip
        print(f"  memory {rows[-1]}", flush=True)
    return rows


# -- campaigns ------------------------------------------------------------------------------------
def campaign_toml(
    name: str, seed: int, network: str, net: str, evaluate: str, strategy: str
) -> str:
    return f"""
name = "{name}"
seed = {seed}
trials = 1000
[space]
network = "{network}"
hardware = "systolic"
[space.net]
{net}
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
[evaluate]
cost = "analytical:systolic"
artifacts = "none"
{evaluate}
[strategy]
name = "darts"
{strategy}
"""


def run_campaign(text: str, db: Path) -> list[Any]:
    c = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(f"sqlite:///{db}"))
    c.run()
    return c.trials((TrialState.COMPLETE,))


def nb201_tradeoff(cfg: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for lam in cfg["nb201_lambdas"]:
        for seed in cfg["seeds"]:
            strategy = (
                f"epochs = {cfg['nb201_epochs']}\nlambda = {lam}\nchannels = 8\n"
                "cells_per_stage = 1\nretrain_epochs = 0\nmax_skip = -1\narch_lr = 0.01"
            )
            text = campaign_toml(
                f"nb201-{lam}-{seed}", seed, "nb201", "",
                'accuracy = "benchmark:nb201/cifar10"', strategy,
            )  # fmt: skip
            t0 = time.perf_counter()
            trials = run_campaign(text, tmp / f"nb201-{lam}-{seed}.db")
            final = trials[-1]
            assert final.user_attrs.get("final")
            rows.append(
                dict(lam=lam, seed=seed, acc=final.values[0], lat=final.values[1],
                     arch=final.user_attrs["architecture"]["string"],
                     seconds=time.perf_counter() - t0)
            )  # fmt: skip
            print(f"  nb201 {rows[-1]}", flush=True)
    return rows


def digits_vs_random(cfg: dict[str, Any], tmp: Path, data: Any) -> list[dict[str, Any]]:
    net_opts = dict(channels=8, layers=5, input_size=8, in_channels=1)
    space = cosearch.get_space("darts", **net_opts)
    acc = cosearch.get_hardware_space("systolic").default()
    model = get_cost_model("systolic")

    def latency(params: dict[str, Any]) -> float:
        return model.evaluate(extract_layers(space.build(params).onnx()), acc).latency_ms

    rows = []
    for seed in cfg["digits_seeds"]:
        strategy = (
            f"epochs = {cfg['digits_epochs']}\nretrain_epochs = {cfg['digits_retrain']}\n"
            f"lambda = 0.0\n{cfg['digits_supernet']}"
        )
        net = "\n".join(f"{k} = {v}" for k, v in net_opts.items())
        t0 = time.perf_counter()
        trials = run_campaign(
            campaign_toml(f"digits-{seed}", seed, "darts", net, "", strategy),
            tmp / f"digits-{seed}.db",
        )
        search_s = time.perf_counter() - t0
        final = trials[-1]
        found = {k: v for k, v in final.params.items() if k.startswith("net.")}
        found_lat = final.values[1]
        rng = np.random.default_rng(1000 + seed)
        pool = [space.sample(rng) for _ in range(cfg["random_samples"])]
        pool.sort(key=lambda p: abs(latency(p) - found_lat))
        rand_acc, rand_lat = [], []
        for i, params in enumerate(pool[: cfg["random_closest"]]):
            module = space.build(params).to_torch()
            rand_acc.append(train_from_scratch(module, data, cfg["digits_retrain"], seed))
            rand_lat.append(latency(params))
        rows.append(
            dict(seed=seed, found_acc=final.values[0], found_lat=found_lat,
                 found=space.to_string(found), rand_acc=rand_acc, rand_lat=rand_lat,
                 search_s=search_s, epochs=sum(1 for t in trials if not t.user_attrs.get("final")))
        )  # fmt: skip
        print(f"  digits {rows[-1]}", flush=True)
    return rows


def resume_after_kill(tmp: Path) -> dict[str, Any]:
    strategy = (
        "epochs = 4\nretrain_epochs = 0\nchannels = 4\nlayers = 3\nbatch_size = 32\n"
        "batches_per_epoch = 6\nmax_skip = -1"
    )
    net = "channels = 4\nlayers = 3\ninput_size = 8\nin_channels = 1"
    toml = tmp / "killed.toml"
    toml.write_text(campaign_toml("killed", 0, "darts", net, "", strategy))
    url = f"sqlite:///{tmp / 'killed.db'}"
    code = (
        "import torch, cosearch; torch.set_num_threads(1); "
        f"cosearch.Campaign.from_toml({str(toml)!r}, storage={url!r}).run(progress=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "round 0 epoch 1:" in line:  # epoch 1 reported: the process now trains epoch 2
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=300)
    c = cosearch.Campaign.from_toml(toml, storage=url)
    before = [t.user_attrs["epoch"] for t in c.trials((TrialState.COMPLETE,))]
    running = len(c.trials((TrialState.RUNNING,)))
    c.run()
    after = [t.user_attrs["epoch"] for t in c.trials((TrialState.COMPLETE,))]
    return dict(returncode=proc.returncode, before=before, after=after, running=running)


# -- report ---------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe inside a Markdown table cell, even in code


def _ms(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.2f} ± {a.std():.2f}" if len(a) > 1 else f"{a.mean():.2f}"


def report(
    out: Path,
    cfg: dict[str, Any],
    quick: bool,
    parts: dict[str, Any],
    secs: float,
    load: float | None = None,
    note: str = "",
) -> None:
    load_avg = os.getloadavg()[0] if load is None else load
    lines = [
        "# darts: DARTS / PC-DARTS with a hardware term",
        "",
        "Generated by `.venv/bin/python benchmarks/darts/darts_bench.py"
        f"{' --quick' if quick else ''}` in {secs / 60:.1f} min on "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (load average at the end "
        f"{load_avg:.1f}), torch {torch.__version__}, one torch thread. "
        "Timings are wall times on that shared machine: compare rows, not machines."
        + (f" Rendered from saved results ({note})." if note else ""),
        "",
        "## 1. Activation memory and time per epoch, DARTS vs PC-DARTS",
        "",
        "Same supernet, same batch (64 digits images, 8x8x1). *Activations*: bytes of the "
        "distinct storages autograd saves for backward in one forward of the training loss "
        "(`torch.autograd.graph.saved_tensors_hooks`); *parameters*: weights and "
        "architecture parameters (gradients and optimizer moments scale with them). "
        "*Epoch*: one search epoch on the digits training split (17 batches: architecture "
        f"step + weight step each; measured over {cfg['mem_batches']} batches and scaled).",
        "",
        "| space | C | cells | K | order | activations (MiB) | parameters (KiB) | epoch (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    mem = parts["memory"]
    for r in mem:
        lines.append(
            f"| {r['space']} | {r['channels']} | {r['depth']} | {r['k']} | {r['order']} | "
            f"{r['act_mib']:.2f} | {r['param_kib']:.1f} | {r['epoch_s']:.1f} |"
        )
    for space in ("darts", "nb201"):
        a = [r for r in mem if r["space"] == space and r["order"] == 1]
        ratio = a[1]["act_mib"] / a[0]["act_mib"]
        lines.append("")
        lines.append(
            f"{space}: PC-DARTS (K=4) keeps **{ratio:.2f}x** the activation memory of DARTS "
            f"({'at most half: yes' if ratio <= 0.5 else 'NOT at most half'}); time per epoch "
            f"{a[1]['epoch_s'] / a[0]['epoch_s']:.2f}x."
        )
    nb = parts["nb201"]
    lines += [
        "",
        "## 2. nb201: accuracy (NAS-Bench-201 table) and latency of the found cell vs lambda",
        "",
        "Campaign network: the published NB201 CIFAR network (C=16, 5 cells per stage, "
        "32x32x3), so the table applies; latency: `analytical:systolic` on the reference "
        "design (32x32 PEs, OS). Search: a proxy supernet (C=8, 1 cell per stage) on digits, "
        f"{cfg['nb201_epochs']} epochs, first order, `arch_lr = 0.01`, `max_skip = -1`; the "
        "final cell is looked up in the table (a cell transfer, as DARTS papers report "
        "NB201). Loss = CE + lambda x E[latency] / E_uniform[latency].",
        "",
        "| lambda | CIFAR-10 accuracy (%) | latency (ms) | cells (seed: arch) |",
        "|---|---|---|---|",
    ]
    for lam in cfg["nb201_lambdas"]:
        rs = [r for r in nb if r["lam"] == lam]
        archs = "<br>".join(f"{r['seed']}: `{_cell(r['arch'])}`" for r in rs)
        lines.append(
            f"| {lam:g} | {_ms([r['acc'] for r in rs])} | {_ms([r['lat'] for r in rs])} | {archs} |"
        )
    lams = cfg["nb201_lambdas"]
    lat = [np.mean([r["lat"] for r in nb if r["lam"] == lam]) for lam in lams]
    acc = [np.mean([r["acc"] for r in nb if r["lam"] == lam]) for lam in lams]
    monotone = all(b <= a for a, b in zip(lat, lat[1:]))
    degenerate = sum(1 for r in nb if r["acc"] <= 10.0 + 1e-9)
    lines += [
        "",
        f"Mean latency {'decreases' if monotone else 'does NOT decrease monotonically'} as "
        "lambda grows (" + " -> ".join(f"{v:.3f}" for v in lat) + " ms); mean table "
        "accuracy " + " -> ".join(f"{v:.1f}" for v in acc) + " %.",
        "",
        f"{degenerate} of {len(nb)} found cells are disconnected (10 % accuracy: no path from "
        "the cell input to its output through non-`none` edges). The hardware term prices "
        "`none` at zero and the NB201 derivation takes the argmax over all five ops, `none` "
        "included, so a large lambda ends in an all-`none` cell: the network is then the "
        "skeleton (stem, reductions, head) plus one zero-multiply per cell, which costs "
        "slightly more than the skeleton alone (a cell whose only live edge is a skip "
        "connection). Searches this short (a few epochs of a proxy on digits) leave the "
        "architecture weights near uniform, so single seeds vary widely; the trend is in "
        "the means.",
    ]
    dg = parts["digits"]
    lines += [
        "",
        "## 3. digits: the found cell vs random cells of similar latency",
        "",
        "Campaign network: DARTS with C=8, 5 cells, 8x8x1 input; supernet options "
        f"`{cfg['digits_supernet'].replace(chr(10), ', ')}`; {cfg['digits_epochs']} search "
        "epochs (first order, lambda = 0, collapse guard max_skip = 2); the final cell and "
        f"the {cfg['random_closest']} random cell(s) closest in latency among "
        f"{cfg['random_samples']} samples are trained from scratch for "
        f"{cfg['digits_retrain']} epochs on train+val with the same recipe and seed "
        "(`search/_retrain.py`), and scored on the test split (360 images).",
        "",
        "| seed | found: test acc (%) | found: latency (ms) | random: test acc (%) | "
        "random: latency (ms) | epochs run | search (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in dg:
        lines.append(
            f"| {r['seed']} | {r['found_acc']:.2f} | {r['found_lat']:.4f} | "
            f"{_ms(r['rand_acc'])} | {_ms(r['rand_lat'])} | {r['epochs']} | "
            f"{r['search_s']:.0f} |"
        )
    lines += [
        "",
        f"Mean over seeds: found {_ms([r['found_acc'] for r in dg])} %, random "
        f"{_ms([a for r in dg for a in r['rand_acc']])} %.",
        "",
        "Found cells: " + "; ".join(f"seed {r['seed']}: `{r['found']}`" for r in dg),
    ]
    rs = parts["resume"]
    ok = rs["after"] == sorted(set(rs["after"])) == list(range(4))
    lines += [
        "",
        "## 4. Resume after SIGKILL",
        "",
        "A 4-epoch campaign runs in a child process, which is SIGKILLed as soon as it has "
        "reported epoch 1 (so while it trains epoch 2); the campaign is then resumed in this "
        "process. Also a test: `tests/search/test_darts.py::test_sigkill_during_an_epoch_then_"
        "resume`.",
        "",
        f"- child exit status: {rs['returncode']} (-9 = SIGKILL)",
        f"- epochs in the trials table after the kill: {rs['before']}, RUNNING trials: "
        f"{rs['running']}",
        f"- after resuming: {rs['after']} -> {'every epoch exactly once' if ok else 'MISMATCH'}",
        "",
    ]
    out.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small settings (~4 min)")
    ap.add_argument("--out", type=Path, default=None, help="the Markdown report")
    ap.add_argument(
        "--from-json", type=Path, default=None, help="re-render the report from saved results"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = QUICK if args.quick else FULL
    out = args.out or ROOT / "benchmarks" / "results" / (
        "darts_quick.md" if args.quick else "darts.md"
    )
    raw = out.with_suffix(".json")
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        report(
            out, saved["cfg"], saved["quick"], saved["parts"], saved["seconds"],
            saved.get("load_average"), saved.get("note", ""),
        )  # fmt: skip
        print(f"wrote {out}")
        return
    t0 = time.perf_counter()
    data = load_dataset("digits", 0)
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("1. memory and time", flush=True)
        parts["memory"] = memory_and_time(cfg, data)
        print("2. nb201 lambda sweep", flush=True)
        parts["nb201"] = nb201_tradeoff(cfg, tmp)
        print("3. digits vs random", flush=True)
        parts["digits"] = digits_vs_random(cfg, tmp, data)
        print("4. resume after SIGKILL", flush=True)
        parts["resume"] = resume_after_kill(tmp)
    secs = time.perf_counter() - t0
    saved = {
        "cfg": cfg, "quick": args.quick, "parts": parts, "seconds": secs,
        "load_average": os.getloadavg()[0],
    }  # fmt: skip
    raw.write_text(json.dumps(saved, indent=1, default=list))
    report(out, cfg, args.quick, parts, secs, saved["load_average"])
    print(f"wrote {out} and {raw}")


if __name__ == "__main__":
    main()
