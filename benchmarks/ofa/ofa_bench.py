"""The ``progressive_shrinking`` strategy on digits: inherited vs scratch accuracy, what each
phase preserves, joint-search fronts for three accelerator families, resume at a phase boundary.

    .venv/bin/python benchmarks/ofa/ofa_bench.py            # ~20 min on 2 shared cores
    .venv/bin/python benchmarks/ofa/ofa_bench.py --quick    # ~4 min, results/ofa_quick.md

Writes ``benchmarks/results/ofa.md`` (``--out`` to change; plus ``ofa_front.png`` when
matplotlib is importable). Parts:

1. Training: one ``progressive_shrinking`` campaign (ofa_mbv3 at width 0.25 on 8x8 digits,
   resolution 8 (``--resolutions 6 8``: elastic resolution too), the strategy's default
   schedule) trains the supernet and searches it jointly with a systolic array. The
   per-phase validation and test accuracies of the smallest and largest subnets come from the
   training history in its final checkpoint.
2. Inherited vs scratch: five subnets across the size range (smallest to largest), each scored
   with the supernet's weights after BatchNorm recalibration (the same scorer as the search)
   and trained from scratch (``search/_retrain.py``'s recipe, fresh weights from the same
   initializer, the same training split and as many epochs as the whole progressive-shrinking
   schedule; ``--scratch-seeds`` runs each), both on the test split. The scratch trainings need
   no supernet, so they run in ``--jobs`` worker processes beside the supernet's training.
3. Fronts: two more campaigns search the same trained supernet (``supernet_from``) with
   ``row_stationary`` and ``heterogeneous`` accelerators; the Pareto fronts (accuracy, latency,
   energy; area <= 4 mm^2) of all three.
4. Resume: a tiny campaign is interrupted right after a phase's last epoch (the checkpoint at a
   phase boundary), resumed, and compared with an uninterrupted run (the same check as
   ``tests/search/test_progressive_shrinking.py::test_killed_runs_resume_mid_phase_and_at_a_
   phase_boundary``, which also cuts mid-phase, and the SIGKILL test beside it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import tempfile
import time
import tomllib
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import TrialState

import cosearch
from cosearch.hwmodels import extract_layers
from cosearch.search._ofa_supernet import OFASupernet, fast_convs_
from cosearch.search._ofa_train import SubnetScorer, init_weights, resize
from cosearch.search._retrain import train_from_scratch
from cosearch.search.data import DataSplits, load_dataset

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "hwmodels"))
from _peers import machine_info  # noqa: E402

SPACE = """width_mult = 0.25
in_channels = 1
num_classes = 10
stem_stride = 1
resolutions = {resolutions}"""
FULL: dict[str, Any] = {
    "schedule": "",  # the strategy's defaults
    "population": 16,
    "trials": 96,
}
QUICK: dict[str, Any] = {
    "schedule": "epochs_full = 2\nepochs_kernel = 1\nepochs_depth = 1\nepochs_width = 1",
    "population": 8,
    "trials": 16,
}
HARDWARE = ("systolic", "row_stationary", "heterogeneous")
#: (kernel, expand, depth) of the five compared subnets, small to large
SUBNETS = ((3, 3, 2), (3, 4, 2), (5, 4, 3), (5, 6, 3), (7, 6, 4))


def _subnets(resolutions: list[int]) -> list[tuple[int, int, int, int]]:
    """The compared (kernel, expand, depth, resolution): the largest resolution, except the
    second subnet at the smallest one when there are several."""
    out = [(k, e, d, max(resolutions)) for k, e, d in SUBNETS]
    if len(resolutions) > 1:
        out[1] = (*SUBNETS[1], min(resolutions))
    return out


TOML = """name = "{name}"
seed = 0
trials = {trials}
[space]
network = "ofa_mbv3"
hardware = "{hardware}"
[space.net]
{space}
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
energy_mj = "minimize"
constraints = ["area_mm2 <= 4"]
[evaluate]
cost = "analytical:{hardware}"
[strategy]
name = "progressive_shrinking"
population = {population}
{extra}
"""


def _campaign(
    url: str, name: str, hardware: str, trials: int, population: int, extra: str, space: str
):
    text = TOML.format(
        name=name,
        trials=trials,
        hardware=hardware,
        space=space,
        population=population,
        extra=extra,
    )
    return cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(url))


def _uniform(k: int, e: int, d: int, r: int) -> dict[str, int]:
    p = {f"net.ks_{i}": k for i in range(20)}
    p.update({f"net.e_{i}": e for i in range(20)})
    p.update({f"net.d_{s}": d for s in range(5)})
    p["net.r"] = r
    return p


def _resized(data: DataSplits, r: int) -> DataSplits:
    """The splits with every image resized to r x r (so scratch training sees what the
    supernet's subnet at resolution r sees); the validation split is left out of training."""
    from torch.utils.data import TensorDataset

    def rs(ds: Any) -> Any:
        x, y = ds.tensors
        return TensorDataset(resize(x, r), y)

    train = rs(data.train)
    empty = TensorDataset(train.tensors[0][:0], train.tensors[1][:0])
    return DataSplits(train, empty, rs(data.test), data.num_classes, data.in_channels, r)


def _macs(space: Any, params: dict[str, int]) -> tuple[float, int]:
    arch = space.build(params)
    layers = extract_layers(arch.onnx())
    n_params = sum(int(np.prod(t.dims)) for t in arch.onnx().graph.initializer)
    return sum(layer.macs for layer in layers), n_params


def _short(params: dict[str, Any]) -> str:
    ks = "".join(str(params[f"net.ks_{i}"]) for i in range(20))
    e = "".join(str(params[f"net.e_{i}"]) for i in range(20))
    d = "".join(str(params[f"net.d_{s}"]) for s in range(5))
    return f"d={d} ks={ks} e={e} r={params['net.r']}"


def _hw_short(params: dict[str, Any]) -> str:
    items = [(k[3:], v) for k, v in params.items() if k.startswith("hw.")]
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)


# -- parts ----------------------------------------------------------------------------------------
def train_and_search(url: str, cfg: dict[str, Any]) -> dict[str, Any]:
    c = _campaign(
        url,
        "ofa_systolic",
        "systolic",
        cfg["trials"],
        cfg["population"],
        cfg["schedule"],
        cfg["space"],
    )
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def mark(end: Any) -> None:
        marks[f"{end.phase}"] = time.perf_counter() - t0
        if end.done:
            marks["_done"] = time.perf_counter() - t0

    c.strategy.on_epoch_end = mark  # type: ignore[attr-defined]
    c.run(progress=True)
    total = time.perf_counter() - t0
    step, meta, tensors = c.store.load_checkpoint(c.campaign_id, "progressive_shrinking")
    return {
        "campaign": c,
        "step": step,
        "meta": meta,
        "tensors": tensors,
        "train_s": marks["_done"],
        "search_s": total - marks["_done"],
        "marks": marks,
        "epochs": int(meta["history"][-1]["epochs"]),
    }


def search_other(url: str, hardware: str, cfg: dict[str, Any]) -> dict[str, Any]:
    c = _campaign(
        url,
        f"ofa_{hardware}",
        hardware,
        cfg["trials"],
        cfg["population"],
        'supernet_from = "ofa_systolic"',
        cfg["space"],
    )
    t0 = time.perf_counter()
    c.run(progress=True)
    return {"campaign": c, "search_s": time.perf_counter() - t0}


def total_epochs(cfg: dict[str, Any]) -> int:
    """Epochs of the whole progressive-shrinking schedule the campaign will run."""
    text = TOML.format(
        name="x",
        trials=1,
        hardware="systolic",
        space=cfg["space"],
        population=2,
        extra=cfg["schedule"],
    )
    strategy = cosearch.get_strategy(
        "progressive_shrinking", **cosearch.parse_config(text).strategy_options
    )
    epochs, _ = strategy.phase_plan()  # type: ignore[attr-defined]
    return int(sum(epochs.values()))


_DATA: dict[int, DataSplits] = {}


def scratch_job(job: tuple[str, int, int, int, int, int, int]) -> tuple[float, float]:
    """Train subnet (k, e, d, r) of the space ``space`` (TOML) from scratch for ``epochs``
    with ``seed`` (in a worker process); returns (test accuracy, seconds)."""
    space, k, e, d, r, epochs, seed = job
    torch.set_num_threads(1)
    if 0 not in _DATA:
        _DATA[0] = load_dataset("digits", seed=0)
    net = OFASupernet(tomllib.loads(space))
    fresh = net.extract_subnet(_uniform(k, e, d, r), preserve_weight=False)
    init_weights(fresh, torch.Generator().manual_seed(100 + seed))
    fast_convs_(fresh)
    t0 = time.perf_counter()
    acc = train_from_scratch(fresh, _resized(_DATA[0], r), epochs, seed=seed)
    return acc, time.perf_counter() - t0


def start_scratch(pool: Executor, epochs: int, cfg: dict[str, Any]) -> dict[tuple, list[Future]]:
    """Submit every scratch training: they need no supernet, so they run beside its training."""
    return {
        sub: [
            pool.submit(scratch_job, (cfg["space"], *sub, epochs, seed))
            for seed in range(cfg["scratch_seeds"])
        ]
        for sub in cfg["subnets"]
    }


def inherited_vs_scratch(
    trained: dict[str, Any],
    data: DataSplits,
    futures: dict[tuple, list[Future]],
    cfg: dict[str, Any],
) -> list[dict[str, Any]]:
    c = trained["campaign"]
    net = OFASupernet(c.network.options)
    net.load_state_dict({k[4:]: v for k, v in trained["tensors"].items() if k.startswith("net.")})
    scorer = SubnetScorer(data, c.strategy._train_config(c.config.seed, "cpu"))
    rows = []
    for k, e, d, r in cfg["subnets"]:
        params = _uniform(k, e, d, r)
        macs, n_params = _macs(c.network, params)
        sub = scorer.prepare(net, params)
        inherited = scorer.accuracy(sub, r, "test")
        done = [f.result() for f in futures[(k, e, d, r)]]
        rows.append(
            {
                "subnet": f"ks={k} e={e} d={d} r={r}",
                "macs": macs,
                "params": n_params,
                "inherited": inherited,
                "scratch": [a for a, _ in done],
                "scratch_s": sum(s for _, s in done),
            }
        )
        print(f"  {rows[-1]['subnet']}: inherited {inherited:.2f}, scratch {rows[-1]['scratch']}")
    return rows


def resume_check(tmp: Path, space: str) -> dict[str, Any]:
    """A tiny campaign cut after the last epoch of the depth2 phase and resumed, against an
    uninterrupted one: the same epochs once each, the same weights."""
    extra = (
        "epochs_full = 1\nepochs_kernel = 1\nepochs_depth = 1\nepochs_width = 1\n"
        "batches_per_epoch = 3\nbn_batches = 1"
    )
    url = f"sqlite:///{tmp / 'resume.db'}"
    ref = _campaign(url, "ref", "systolic", 2, 2, extra, space)
    ref.run()
    cut = _campaign(url, "cut", "systolic", 2, 2, extra, space)

    def stop(end: Any) -> None:
        if end.phase == "depth2":
            raise KeyboardInterrupt

    cut.strategy.on_epoch_end = stop  # type: ignore[attr-defined]
    try:
        cut.run()
    except KeyboardInterrupt:
        pass
    cut_step = cut.store.load_checkpoint(cut.campaign_id, "progressive_shrinking")
    assert cut_step is not None
    cut = _campaign(url, "cut", "systolic", 2, 2, extra, space)
    cut.run()
    out: dict[str, Any] = {"cut_after": (cut_step[1]["phase"], cut_step[0])}
    ckpts = [c.store.load_checkpoint(c.campaign_id, "progressive_shrinking") for c in (ref, cut)]
    assert ckpts[0] is not None and ckpts[1] is not None
    out["trained_ref"] = ckpts[0][1]["trained"]
    out["trained_cut"] = ckpts[1][1]["trained"]
    out["max_abs_diff"] = max(
        float((ckpts[0][2][k].float() - ckpts[1][2][k].float()).abs().max()) for k in ckpts[0][2]
    )
    out["same_trials"] = [t.params for t in ref.trials((TrialState.COMPLETE,))] == [
        t.params for t in cut.trials((TrialState.COMPLETE,))
    ]
    return out


# -- the report -----------------------------------------------------------------------------------
def _front_rows(c: Any) -> list[dict[str, Any]]:
    rows = []
    for t in sorted(c.pareto(), key=lambda t: -t.values[0]):
        m = t.user_attrs["metrics"]
        rows.append(
            {
                "trial": t.number,
                "accuracy": t.values[0],
                "test": t.user_attrs.get("ofa_test_accuracy", float("nan")),
                "latency_ms": m["latency_ms"],
                "energy_mj": m["energy_mj"],
                "area_mm2": m["area_mm2"],
                "macs": m.get("macs", float("nan")),
                "net": _short(t.params),
                "hw": _hw_short(t.params),
            }
        )
    return rows


def _plot(fronts: dict[str, list[dict[str, Any]]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (hw, rows), marker in zip(fronts.items(), "os^"):
        lat = [r["latency_ms"] for r in rows]
        en = [r["energy_mj"] for r in rows]
        acc = [r["accuracy"] for r in rows]
        axes[0].scatter(lat, acc, marker=marker, label=hw)
        axes[1].scatter(en, acc, marker=marker, label=hw)
    axes[0].set_xlabel("latency (ms)")
    axes[1].set_xlabel("energy (mJ)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_ylabel("validation accuracy (%), inherited weights")
        ax.legend()
    fig.suptitle("progressive_shrinking on digits: Pareto fronts (area <= 4 mm^2)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _args(argv: list[str]) -> str:
    return "".join(" " + a for a in argv)


def write_report(path: Path, quick: bool, parts: dict[str, Any], seconds: float) -> None:
    trained = parts["trained"]
    meta = trained["meta"]
    c = trained["campaign"]
    opts = c.strategy.params
    res = tomllib.loads(parts["space"])["resolutions"]
    lines = [
        "# progressive_shrinking (Once-for-All) on digits" + (" (quick run)" if quick else ""),
        "",
        f"Command: `.venv/bin/python benchmarks/ofa/ofa_bench.py{_args(parts['argv'])}`"
        f" ({seconds / 60:.1f} min in all).",
        "",
        "Machine: "
        + ", ".join(f"{k}={v}" for k, v in machine_info().items())
        + f"; torch {torch.__version__} on {opts['threads']} thread(s), CPU.",
        "",
        "Network space `ofa_mbv3` with " + parts["space"].replace("\n", ", ") + " (8x8 grey "
        "digits; "
        "scikit-learn's 1,797 images split 60/20/20 with seed 0). Schedule (epochs, peak lr): "
        + ", ".join(f"{name} {e} @ {lr:g}" for name, e, lr in meta["schedule"])
        + f"; {trained['epochs']} epochs in all, batch {opts['batch_size']}, "
        f"{opts['subnets_per_step']} subnets per elastic step, distillation weight "
        f"{opts['kd_weight']:g} at T = {opts['kd_temperature']:g}. "
        f"Training took {trained['train_s'] / 60:.1f} min; the systolic search "
        f"({c.config.trials} trials) {trained['search_s'] / 60:.1f} min.",
        "",
        "## Accuracy of the smallest and largest subnets after each phase",
        "",
        "Inherited weights after BatchNorm recalibration, as the training records them at "
        "the end of each phase: smallest = kernel 3, expand 3, depth 2 everywhere, resolution "
        f"{min(res)}; largest = kernel 7, expand 6, depth 4, resolution {max(res)}. Before the "
        "width phases the "
        "smallest subnet was never trained (its kernel, depth and width were not yet elastic): "
        "its numbers show what the shrinking adds, the largest's what it keeps.",
        "",
        "| phase | epochs so far | minutes so far | smallest val | smallest test | largest val "
        "| largest test |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for h in meta["history"]:
        lines.append(
            f"| {h['phase']} | {h['epochs']} | {trained['marks'][h['phase']] / 60:.1f} | "
            f"{h['smallest']['val']:.1f} | "
            f"{h['smallest']['test']:.1f} | {h['largest']['val']:.1f} | "
            f"{h['largest']['test']:.1f} |"
        )
    rows = parts["scratch"]
    gaps = [r["inherited"] - float(np.mean(r["scratch"])) for r in rows]
    seeds = len(rows[0]["scratch"])
    lines += [
        "",
        "## Inherited weights vs training from scratch",
        "",
        f"Test accuracy (%, 360 images: one image is 0.28 points). Scratch: "
        f"`train_from_scratch` for {trained['epochs']} epochs (the whole schedule's), same "
        f"training split, mean of {seeds} seed(s) (individual runs in brackets). Goal: within "
        f"1 point.",
        "",
        "| subnet | MACs | weights | inherited | scratch | inherited - scratch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r, gap in zip(rows, gaps):
        runs = ", ".join(f"{a:.1f}" for a in r["scratch"])
        lines.append(
            f"| {r['subnet']} | {r['macs']:,.0f} | {r['params']:,} | {r['inherited']:.1f} | "
            f"{np.mean(r['scratch']):.1f} [{runs}] | {gap:+.1f} |"
        )
    within = sum(abs(g) <= 1.0 or g > 0 for g in gaps)
    lines += [
        "",
        f"{within} of {len(rows)} subnets are within 1 point of (or above) scratch; the gap "
        f"ranges from {min(gaps):+.1f} to {max(gaps):+.1f} points (mean {np.mean(gaps):+.1f}).",
        "",
        "## Joint search fronts",
        "",
        "Objectives: accuracy (validation split, inherited weights after BN recalibration; "
        "the test accuracy is shown beside it), latency and energy from cosearch's analytical "
        "models; constraint area <= 4 mm^2. All three searches use the one trained supernet "
        "(`supernet_from`); NSGA-II, population "
        f"{opts['population']}, {c.config.trials} trials each.",
        "",
    ]
    fronts: dict[str, list[dict[str, Any]]] = {}
    for hw in HARDWARE:
        camp = parts["searches"][hw]["campaign"]
        front = _front_rows(camp)
        fronts[hw] = front
        n = camp.count(TrialState.COMPLETE)
        lines += [
            f"### {hw} ({n} trials, {len(front)} on the front, "
            f"{parts['searches'][hw]['search_s']:.0f} s)",
            "",
            "| trial | accuracy | test | latency_ms | energy_mj | area_mm2 | MACs | subnet | "
            "accelerator |",
            "|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for f in front:
            lines.append(
                f"| {f['trial']} | {f['accuracy']:.1f} | {f['test']:.1f} | "
                f"{f['latency_ms']:.4g} | {f['energy_mj']:.4g} | {f['area_mm2']:.3g} | "
                f"{f['macs']:,.0f} | `{f['net']}` | {f['hw']} |"
            )
        lines.append("")
    png = path.with_name(path.stem + "_front.png")
    if _plot(fronts, png):
        lines += [f"![fronts]({png.name})", ""]
    res = parts["resume"]
    same = res["trained_ref"] == res["trained_cut"]
    lines += [
        "## Resume across a phase boundary",
        "",
        f"A tiny campaign (width 0.25, one epoch per phase, 3 batches per epoch) was interrupted "
        f"right after its checkpoint at the end of phase `{res['cut_after'][0]}` (step "
        f"{res['cut_after'][1]}), then resumed by a new Campaign object. Epochs trained, in "
        f"order, identical to the uninterrupted run: **{same}** "
        f"({', '.join(f'{p}/{e}' for p, e in res['trained_cut'])}); largest absolute "
        f"difference of any final weight or statistic: {res['max_abs_diff']:.2g}; the same "
        f"searched trials: **{res['same_trials']}**. The tests cut mid-phase too, and kill a "
        "run with SIGKILL (`tests/search/test_progressive_shrinking.py`).",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes, for a smoke check")
    ap.add_argument("--out", type=Path, default=None, help="report path (.md)")
    ap.add_argument(
        "--jobs", type=int, default=1, help="processes training from scratch beside the main one"
    )
    ap.add_argument(
        "--resolutions", type=int, nargs="+", default=[8], help="the space's resolutions"
    )
    ap.add_argument("--scratch-seeds", type=int, default=2, help="scratch runs per subnet")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    cfg["space"] = SPACE.format(resolutions=sorted(set(args.resolutions)))
    cfg["subnets"] = _subnets(sorted(set(args.resolutions)))
    cfg["scratch_seeds"] = args.scratch_seeds
    out = args.out or ROOT / "benchmarks" / "results" / ("ofa_quick.md" if args.quick else "ofa.md")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    parts: dict[str, Any] = {"jobs": args.jobs, "space": cfg["space"], "argv": sys.argv[1:]}
    ctx = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool,
    ):
        futures = start_scratch(pool, total_epochs(cfg), cfg)
        url = f"sqlite:///{Path(tmp) / 'ofa.db'}"
        print("1. training the supernet and searching with a systolic array", flush=True)
        parts["trained"] = train_and_search(url, cfg)
        print("2. searches with the other accelerator families", flush=True)
        parts["searches"] = {"systolic": {"campaign": parts["trained"]["campaign"]}}
        parts["searches"]["systolic"]["search_s"] = parts["trained"]["search_s"]
        for hw in HARDWARE[1:]:
            parts["searches"][hw] = search_other(url, hw, cfg)
        print("3. resume across a phase boundary", flush=True)
        parts["resume"] = resume_check(Path(tmp), cfg["space"])
        print("4. inherited vs scratch (waiting for the scratch trainings)", flush=True)
        data = load_dataset("digits", seed=0)
        parts["scratch"] = inherited_vs_scratch(parts["trained"], data, futures, cfg)
        write_report(out, args.quick, parts, time.perf_counter() - t0)
    print(f"wrote {out} ({(time.perf_counter() - t0) / 60:.1f} min); {platform.node()}")


if __name__ == "__main__":
    main()
