"""``early_stop = "dominated"`` against training every candidate to the end, side by side.

The campaign is ``examples/train_digits.toml`` without its screen: NAS-Bench-201 cells (8
channels, one cell per stage) trained on scikit-learn's digits for 4 epochs
(``accuracy = "train:digits/4ep"``), priced on the analytical systolic model, objectives
accuracy / latency / energy, constraint ``area_mm2 <= 4``. Each seed runs the same campaign
with ``early_stop = "off"`` and ``"dominated"`` in one process, one after the other:

- ``random``: the sampler proposes the same candidates whatever their values, so the two
  runs' fronts compare trial by trial: which fully trained front trials the early-stopping run
  lost, and the hypervolume it keeps;
- ``nsga2``: the sampler reads the stopped trials' lower accuracies, so the runs diverge; their
  fronts compare by hypervolume.

Hypervolume: feasible trials at fidelity 1 (trained to the end), objectives as minimized
(-accuracy, latency_ms, energy_mj), each scaled to [0, 1] by the smallest and largest value
of both runs of the seed, reference point 1.1 in every coordinate. Epochs: the sum of the
trials' learning-curve lengths (a network met again takes its accuracy from the store and
trains 0 epochs). Times are wall seconds of ``Campaign.run`` on this machine, in one run.

Run from the repository root::

    .venv/bin/python benchmarks/search/early_stop.py --quick   # 1 seed, 30 trials: ~3 min
    .venv/bin/python benchmarks/search/early_stop.py           # 3 seeds, 60 trials: ~20 min

Writes benchmarks/results/search_early_stop.md and .json (``_quick`` with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "hwmodels"))
from _peers import machine_info  # noqa: E402

from cosearch import Campaign  # noqa: E402
from cosearch.config import parse_config  # noqa: E402
from cosearch.search._hypervolume import hypervolume  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
EXAMPLE = (ROOT / "examples" / "train_digits.toml").read_text()


def _toml(name: str, seed: int, trials: int, strategy: str, early_stop: str) -> str:
    text = EXAMPLE.split("[screen]")[0] + f'[strategy]\nname = "{strategy}"\n'
    if strategy == "nsga2":
        text += "population_size = 10\n"
    return (
        text.replace('name = "train_digits"', f'name = "{name}"')
        .replace("seed = 0", f"seed = {seed}")
        .replace("trials = 20", f"trials = {trials}")
        .replace('early_stop = "dominated"', f'early_stop = "{early_stop}"')
    )


def _run(store: str, seed: int, trials: int, strategy: str, early_stop: str) -> dict[str, Any]:
    name = f"{strategy}-{early_stop}-{seed}"
    cfg = parse_config(_toml(name, seed, trials, strategy, early_stop))
    c = Campaign.from_config(cfg, storage=store)
    t0 = time.perf_counter()
    c.run()
    seconds = time.perf_counter() - t0
    rows = []
    for t in c.trials():
        m = t.user_attrs["metrics"]
        rows.append(
            {
                "number": t.number,
                "params": t.params,
                "accuracy": m["accuracy"],
                "latency_ms": m["latency_ms"],
                "energy_mj": m["energy_mj"],
                "feasible": m["area_mm2"] <= 4,
                "epochs": len(t.user_attrs.get("learning_curve", [])),
                "stopped": t.user_attrs.get("stopped_at_epoch"),
            }
        )
    front = [t.number for t in c.pareto()]
    c.store.close()
    return {"seconds": seconds, "trials": rows, "front": front}


def _points(run: dict[str, Any]) -> np.ndarray:
    full = [r for r in run["trials"] if r["feasible"] and r["stopped"] is None]
    return np.array([[-r["accuracy"], r["latency_ms"], r["energy_mj"]] for r in full]).reshape(
        -1, 3
    )


def _hv_pair(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    pa, pb = _points(a), _points(b)
    both = np.vstack([pa, pb])
    lo, hi = both.min(axis=0), both.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    ref = np.full(3, 1.1)
    return hypervolume((pa - lo) / span, ref), hypervolume((pb - lo) / span, ref)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, 30 trials")
    ap.add_argument("--out", type=Path, default=None, help="the .md report to write")
    args = ap.parse_args(argv)
    seeds, trials = ([0], 30) if args.quick else ([0, 1, 2], 60)
    out = args.out or RESULTS / f"search_early_stop{'_quick' if args.quick else ''}.md"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'es.db'}"
        for strategy in ("random", "nsga2"):
            for seed in seeds:
                off = _run(store, seed, trials, strategy, "off")
                on = _run(store, seed, trials, strategy, "dominated")
                hv_off, hv_on = _hv_pair(off, on)
                row = {
                    "strategy": strategy,
                    "seed": seed,
                    "epochs_off": sum(r["epochs"] for r in off["trials"]),
                    "epochs_on": sum(r["epochs"] for r in on["trials"]),
                    "stopped": sum(r["stopped"] is not None for r in on["trials"]),
                    "seconds_off": off["seconds"],
                    "seconds_on": on["seconds"],
                    "hv_off": hv_off,
                    "hv_on": hv_on,
                    "front_off": off["front"],
                    "front_on": on["front"],
                    "same_candidates": [r["params"] for r in off["trials"]]
                    == [r["params"] for r in on["trials"]],
                }
                results.append(row)
                print(
                    f"{strategy} seed {seed}: epochs {row['epochs_on']}/{row['epochs_off']}, "
                    f"time {on['seconds']:.0f}/{off['seconds']:.0f} s, "
                    f"HV {hv_on:.4f}/{hv_off:.4f}",
                    flush=True,
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"machine": machine_info(), "trials": trials, "runs": results}, indent=1)
    )
    lines = [
        '# Early stopping of trained candidates (`early_stop = "dominated"`)',
        "",
        f"Machine: {json.dumps(machine_info())}; load average after the runs "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (shared). "
        f"{trials} trials per run, 4 epochs per candidate, "
        "`examples/train_digits.toml` without its screen; see "
        "`benchmarks/search/early_stop.py` for the protocol. Ratios are early stopping / "
        "every candidate trained to the end, measured side by side in one run.",
        "",
        "| strategy | seed | epochs trained | ratio | stopped trials | wall s | ratio "
        "| hypervolume | ratio | front trials kept |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r["same_candidates"]:
            kept = f"{len(set(r['front_off']) & set(r['front_on']))} of {len(r['front_off'])}"
        else:
            kept = "(other candidates)"
        lines.append(
            f"| {r['strategy']} | {r['seed']} | {r['epochs_on']} / {r['epochs_off']} "
            f"| {r['epochs_on'] / r['epochs_off']:.2f} | {r['stopped']} "
            f"| {r['seconds_on']:.0f} / {r['seconds_off']:.0f} "
            f"| {r['seconds_on'] / r['seconds_off']:.2f} "
            f"| {r['hv_on']:.4f} / {r['hv_off']:.4f} | {r['hv_on'] / r['hv_off']:.3f} | {kept} |"
        )
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
