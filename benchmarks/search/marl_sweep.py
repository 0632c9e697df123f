"""Learner settings of ``marl`` and ``rl`` on the tuning seeds: can any setting make ``marl``
reach ``rl``'s final hypervolume in half the trials?

    .venv/bin/python benchmarks/search/marl_sweep.py [--jobs 2]

Problem and hypervolume as ``marl_compare.py`` (nb201 x systolic, 500 trials). Seeds 100-104:
the tuning seeds the options' defaults were chosen on, never the seeds ``marl_compare.py``
reports (0-4). Each row changes one learner option (or two) for *both* strategies, which share
the learner, except ``groups``, which only ``marl`` has. Writes
``benchmarks/results/search_marl_sweep.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import optuna  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "search"))
import marl_compare as mc  # noqa: E402

import cosearch  # noqa: E402
from cosearch.search import get_strategy  # noqa: E402

SETUP = "nb201:systolic"
SEEDS = (100, 101, 102, 103, 104)
TRIALS = 500
EVERY = 10
_PER_PARAMETER = [
    [name]
    for space in (
        cosearch.get_space(mc.SETUPS[SETUP]["network"]),
        cosearch.get_hardware_space(mc.SETUPS[SETUP]["hardware"]),
    )
    for name in space.distributions()
]
#: label -> options given to both strategies (``groups`` to marl only)
SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "lr 0.03": {"lr": 0.03},
    "batch_size 4": {"batch_size": 4},
    "lr 0.03, batch_size 4": {"lr": 0.03, "batch_size": 4},
    "epochs 8": {"epochs": 8},
    "explore 0.02": {"explore": 0.02},
    "entropy 0": {"entropy": 0.0},
    "memory 256": {"memory": 256},
    "imitation 3": {"imitation": 3.0},
    "clip 0.5": {"clip": 0.5},
    "baseline value": {"baseline": "value"},
    "critic mlp": {"critic": "mlp"},
    "one agent per parameter (marl)": {"groups": _PER_PARAMETER},
}

_OBJECTIVE: list[mc.Objective] = []


def one(spec: tuple[str, dict[str, Any], int]) -> list[float]:
    """Hypervolume curve of one run (every EVERY trials)."""
    strategy, opts, seed = spec
    if not _OBJECTIVE:
        _OBJECTIVE.append(mc.Objective(mc.SETUPS[SETUP]))
    obj = _OBJECTIVE[0]
    if strategy == "rl":
        opts = {k: v for k, v in opts.items() if k != "groups"}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = get_strategy(strategy, **opts).sampler(seed=seed)
    study = optuna.create_study(directions=obj.directions, sampler=sampler)
    study.optimize(obj, n_trials=TRIALS)
    return mc.hv_curve(study, mc.SETUPS[SETUP], EVERY)


def _reading(finals: dict[str, tuple[float, float, int | None]]) -> list[str]:
    """Plain-language lines from the numbers: which rows meet the half-budget bar and why,
    and how the two strategies compare when each takes its own best setting."""
    base_rl = finals["defaults"][1]
    out = []
    for label, (_, rl_final, reach) in finals.items():
        if reach is not None and reach <= TRIALS // 2:
            out.append(
                f"- `{label}` meets the bar by slowing `rl` down: `rl` ends at {rl_final:.4f} "
                f"with it against {base_rl:.4f} with the defaults."
            )
    best_marl = max(finals, key=lambda k: finals[k][0])
    best_rl = max((k for k in finals if "groups" not in SETTINGS[k]), key=lambda k: finals[k][1])
    out.append(
        f"- Each strategy at its best setting here: `marl` {finals[best_marl][0]:.4f} "
        f"(`{best_marl}`), `rl` {finals[best_rl][1]:.4f} (`{best_rl}`)."
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side (processes)")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 3 settings")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    name = "search_marl_sweep_quick.md" if args.quick else "search_marl_sweep.md"
    out = args.out or ROOT / "benchmarks" / "results" / name
    seeds = SEEDS[:2] if args.quick else SEEDS
    settings = list(SETTINGS)[:3] if args.quick else list(SETTINGS)
    start = time.perf_counter()
    tasks = [
        (label, strategy, seed)
        for label in settings
        for seed in seeds
        for strategy in ("marl", "rl")
    ]
    specs = [(s, SETTINGS[label], seed) for label, s, seed in tasks]
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            curves = pool.map(one, specs, chunksize=1)
    else:
        curves = [one(s) for s in specs]
    half = TRIALS // 2 // EVERY - 1
    rows = []
    finals: dict[str, tuple[float, float, int | None]] = {}
    for label in settings:
        mean = {
            s: np.mean([c for (lb, st, _), c in zip(tasks, curves) if lb == label and st == s], 0)
            for s in ("marl", "rl")
        }
        target = mean["rl"][-1]
        reach = next(
            ((i + 1) * EVERY for i, v in enumerate(mean["marl"]) if v >= target - 1e-12), None
        )
        finals[label] = (float(mean["marl"][-1]), float(target), reach)
        rows.append(
            f"| {label} | {mean['marl'][half]:.4f} | {mean['marl'][-1]:.4f} | "
            f"{mean['rl'][half]:.4f} | {mean['rl'][-1]:.4f} | "
            f"{'never' if reach is None else reach} | "
            f"{'yes' if reach is not None and reach <= TRIALS // 2 else 'no'} |"
        )
        print(rows[-1], flush=True)
    lines = [
        "# `marl` vs `rl`: learner settings on the tuning seeds",
        "",
        f"`.venv/bin/python benchmarks/search/marl_sweep.py --jobs {args.jobs}"
        + (" --quick" if args.quick else "")
        + f"`; wall time "
        f"{(time.perf_counter() - start) / 60:.1f} min on {mc.machine_line()}. Problem, bounds "
        "and reference point as "
        f"[search_marl.md](search_marl.md) ({SETUP}, {TRIALS} trials); seeds "
        f"{', '.join(map(str, seeds))} (the tuning seeds, not the reported 0-4). Each row sets "
        "the options for both strategies (they share the learner); `groups` only exists in "
        "`marl`. Mean hypervolume over the seeds.",
        "",
        "| setting | marl @250 | marl @500 | rl @250 | rl @500 | trials marl needs to reach "
        "rl @500 | within 250 |",
        "|---|---:|---:|---:|---:|---:|:---:|",
        *rows,
        "",
        *_reading(finals),
        "",
        "Options given (the rows that set `groups` are spelled out in the script): "
        + json.dumps({k: v for k, v in SETTINGS.items() if "groups" not in v}),
        "",
    ]
    if not args.quick:  # exploration runs of code changes, kept next to this script
        lines += [(Path(__file__).with_name("marl_variants.md")).read_text().rstrip(), ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
