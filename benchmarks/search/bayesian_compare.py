"""Hypervolume vs trials of ``bayesian`` (predictor-guided, the default), Optuna TPE, NSGA-II
and random search; sampler overhead per proposal at 1,000 trials.

    nice -n 10 .venv/bin/python benchmarks/search/bayesian_compare.py          # full
    nice -n 10 .venv/bin/python benchmarks/search/bayesian_compare.py --quick  # minutes
    ... --jobs 2   # runs side by side in 2 processes (each run stays single-threaded)

Problems:

(a) ``nb201 x pixel3``: the 15,625 NAS-Bench-201 cells, CIFAR-10 test accuracy (maximize) and
    the measured Pixel 3 latency (minimize), both looked up in ``../shared/data/nb201``. The
    true front comes from the full table. Hypervolume: accuracy mapped linearly from 94.3733
    (the best cell, 0) to 85 % (1), latency from 0 ms (0) to 25 ms (1, above the slowest front
    cell, 23.58 ms), reference point (1, 1). Reported: trials to reach 99 % of the true
    front's hypervolume.
(b) ``nb201 x systolic``: accuracy (table), latency_ms and energy_mj of cosearch's analytical
    systolic model, constraint ``area_mm2 <= 4``; no true front, so hypervolumes are relative
    to that of the union front of every run (feasible trials of all samplers and seeds).
    Bounds: accuracy 95..80, log10 latency 0.01..10 ms, log10 energy 0.05..5 mJ (as
    ``marl_compare.py``).

For speed every run is an in-memory Optuna study and the objective calls cosearch's table
lookups (a) or ``Evaluator`` (b, memoized per parameter set; the objective of
``marl_compare.py``) directly. One real ``cosearch.Campaign`` on SQLite (problem (b), 30
trials) is replayed in memory with the seed the campaign gave its sampler, to show the
strategy proposes the same trials there. Sampler overhead: wall time per trial minus the
objective's own evaluation time (so: ask, the sampler's proposal, tell), median and 95th
percentile over trials 901-1000 of problem (a).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

import cosearch  # noqa: E402
from cosearch.search import get_strategy  # noqa: E402
from cosearch.search._hypervolume import hypervolume, normalize  # noqa: E402
from cosearch.spaces.nb201 import EDGE_NAMES, OPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "search"))
sys.path.insert(0, str(ROOT / "benchmarks" / "hwmodels"))
from _peers import machine_info  # noqa: E402
from marl_compare import SETUPS, Objective  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "nb201" / "nb201_accuracy_latency.csv"
RESULTS = ROOT / "benchmarks" / "results"
#: label -> (strategy, options)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "predictor": ("bayesian", {}),
    "tpe": ("bayesian", {"sampler": "tpe"}),
    "nsga2": ("nsga2", {}),
    "random": ("random", {}),
}
HV_A = {"bounds": [(94.37333, 85.0), (0.0, 25.0)], "log": [False, False]}
EVERY = 10


# -- problem (a) --------------------------------------------------------------------------------
class TableObjective:
    """CIFAR-10 accuracy and Pixel 3 latency of an nb201 cell, by arch string."""

    def __init__(self, device: str = "pixel3") -> None:
        self.table: dict[str, tuple[float, float]] = {}
        with open(SHARED, newline="") as fh:
            for row in csv.DictReader(fh):
                self.table[row["arch_str"]] = (
                    float(row["cifar10_test_acc"]),
                    float(row[f"lat_{device}"]),
                )
        self.space = cosearch.get_space("nb201")
        self.directions = ["maximize", "minimize"]
        self.seconds = 0.0

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        params = {f"net.{e}": trial.suggest_categorical(f"net.{e}", OPS) for e in EDGE_NAMES}
        t0 = time.perf_counter()
        out = self.table[self.space.to_string(params)]
        self.seconds += time.perf_counter() - t0
        return out

    def true_hv(self) -> float:
        return _hv(np.array(list(self.table.values())), HV_A)


def _hv(values: np.ndarray, hv: dict[str, Any]) -> float:
    if len(values) == 0:
        return 0.0
    norm = normalize(values, hv["bounds"], hv["log"])
    return hypervolume(norm, np.ones(norm.shape[1]))


def _feasible_values(study: optuna.Study, upto: int) -> np.ndarray:
    rows = [
        t.values
        for t in study.get_trials(deepcopy=False)
        if t.number < upto
        and t.state == TrialState.COMPLETE
        and all(v <= 0 for v in t.constraints.values())
    ]
    return np.array(rows, dtype=float)


def run(label: str, seed: int, trials: int, objective: Any) -> dict[str, Any]:
    """One in-memory study: per-trial overhead and the study itself."""
    strategy, opts = SAMPLERS[label]
    sampler = get_strategy(strategy, **opts).sampler(seed=seed)
    study = optuna.create_study(directions=objective.directions, sampler=sampler)
    overhead = []
    t_start = time.perf_counter()
    for _ in range(trials):
        e0 = objective.seconds
        t0 = time.perf_counter()
        trial = study.ask()
        values = objective(trial)
        study.tell(trial, values)
        overhead.append(time.perf_counter() - t0 - (objective.seconds - e0))
    return {
        "label": label,
        "seed": seed,
        "study": study,
        "overhead": overhead,
        "wall_s": time.perf_counter() - t_start,
    }


def curve(study: optuna.Study, hv: dict[str, Any], trials: int) -> list[float]:
    vals = np.array(
        [
            t.values if all(v <= 0 for v in t.constraints.values()) else [np.nan] * len(t.values)
            for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        ],
        dtype=float,
    )
    out = []
    for n in range(EVERY, trials + 1, EVERY):
        v = vals[:n]
        out.append(_hv(v[~np.isnan(v).any(axis=1)], hv))
    return out


def reach(c: list[float], target: float) -> int | None:
    for i, v in enumerate(c):
        if v >= target:
            return (i + 1) * EVERY
    return None


_OBJECTIVES: dict[str, Any] = {}


def task(spec: tuple[str, str, int, int]) -> dict[str, Any]:
    """One run of ``label`` with ``seed`` for ``n`` trials on problem ``"a"`` or ``"b"``: its
    hypervolume curve (absolute), per-trial overhead, wall time and feasible values."""
    problem, label, seed, n = spec
    if problem not in _OBJECTIVES:  # one objective (and its memo) per process and problem
        _OBJECTIVES[problem] = (
            TableObjective() if problem == "a" else Objective(SETUPS["nb201:systolic"])
        )
    obj = _OBJECTIVES[problem]
    hv = HV_A if problem == "a" else SETUPS["nb201:systolic"]["hv"]
    r = run(label, seed, n, obj)
    study = r.pop("study")
    r["curve"] = curve(study, hv, n)
    r["feasible"] = _feasible_values(study, n)
    print(f"({problem}) {label} seed {seed}: {r['wall_s']:.0f}s", flush=True)
    return r


# -- the real campaign ------------------------------------------------------------------------
def campaign_replay(trials: int) -> dict[str, Any]:
    """Run a Campaign (problem (b), predictor sampler) on SQLite and the same strategy in
    memory with the seed the campaign used; compare the proposed parameters."""
    from cosearch import Campaign, load_config

    text = (ROOT / "examples" / "bayesian_nb201.toml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text)
        cfg = load_config(path)
        campaign = Campaign.from_config(cfg, storage=f"sqlite:///{tmp}/c.db")
        t0 = time.perf_counter()
        campaign.run(n_trials=trials)
        wall = time.perf_counter() - t0
        real = [t.params for t in sorted(campaign.trials(), key=lambda t: t.number)]
    seed = int(np.random.SeedSequence([cfg.seed, 0]).generate_state(1)[0])  # as Campaign.run
    setup = SETUPS["nb201:systolic"]
    obj = Objective(setup)
    sampler = get_strategy("bayesian", **cfg.strategy_options).sampler(seed=seed)
    study = optuna.create_study(directions=obj.directions, sampler=sampler)
    study.optimize(obj, n_trials=trials)
    mem = [t.params for t in study.trials]
    same = sum(a == b for a, b in zip(real, mem))
    return {"trials": trials, "identical": same, "campaign_wall_s": wall}


# -- report -------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per problem (default 5)")
    ap.add_argument("--trials-b", type=int, default=None, help="trials of problem (b)")
    ap.add_argument(
        "--extend",
        type=int,
        default=None,
        help="trials the baselines run on (a) to find when they reach 99%% (default 3000)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (processes)")
    args = ap.parse_args()
    if not SHARED.exists():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_all = time.perf_counter()
    # the predictor sampler runs 1,000 trials per seed; the cheap baselines run on (to
    # --extend trials) on (a) so that "trials to reach 99 %" is known even past 1,000
    ta, sa = (200, 2) if args.quick else (1000, args.seeds or 5)
    tb, sb = (60, 1) if args.quick else (args.trials_b or 1000, args.seeds or 5)
    ext = args.extend or (400 if args.quick else 3000)
    labels = list(SAMPLERS)

    # every (problem, sampler, seed) run is independent: --jobs processes run them side by side
    obj_a = _OBJECTIVES["a"] = TableObjective()  # forked workers inherit it
    true_hv = obj_a.true_hv()
    tasks = [
        ("a", label, seed, ta if label == "predictor" else max(ta, ext))
        for seed in range(sa)
        for label in labels
    ]
    tasks += [("b", label, seed, tb) for seed in range(sb) for label in labels]
    res_a: dict[str, list[dict[str, Any]]] = {k: [] for k in labels}
    res_b: dict[str, list[dict[str, Any]]] = {k: [] for k in labels}
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            done = pool.map(task, tasks, chunksize=1)
    else:
        done = [task(t) for t in tasks]
    for (problem, label, seed, _), r in zip(tasks, done):
        (res_a if problem == "a" else res_b)[label].append(r)
    union = np.vstack([r.pop("feasible") for rs in res_b.values() for r in rs])
    best_hv_b = _hv(union, SETUPS["nb201:systolic"]["hv"])
    for label in labels:
        for r in res_b[label]:
            r["curve"] = [v / best_hv_b for v in r["curve"]]
        for r in res_a[label]:
            r.pop("feasible")
            r["overhead"] = r["overhead"][:ta]  # trials 901-1000 are the overhead's tail
    replay = campaign_replay(12 if args.quick else 30)
    wall = time.perf_counter() - t_all
    write(args, labels, res_a, res_b, true_hv, replay, wall, (ta, sa, tb, sb, ext))
    return 0


def _fmt(n: int | None) -> str:
    return "not reached" if n is None else str(n)


def write(args, labels, res_a, res_b, true_hv, replay, wall, sizes) -> None:  # noqa: ANN001
    ta, sa, tb, sb, ext = sizes
    suffix = "_quick" if args.quick else ""
    md_path = RESULTS / f"search_bayesian{suffix}.md"
    png_path = RESULTS / f"search_bayesian_hv{suffix}.png"
    json_path = RESULTS / f"search_bayesian{suffix}.json"
    cmd = "nice -n 10 .venv/bin/python benchmarks/search/bayesian_compare.py" + (
        " --quick" if args.quick else ""
    )
    if args.jobs > 1:
        cmd += f" --jobs {args.jobs}"
    checkpoints = [n for n in (50, 100, 200, 300, 500, 1000) if n <= ta]
    lines = [
        "# bayesian (predictor-guided) vs Optuna TPE, NSGA-II and random",
        "",
        f"Command: `{cmd}` (from the repository root). Wall time: {wall / 60:.1f} min.",
        f"Machine: {json.dumps(machine_info())}.",
        f"Versions: optuna {optuna.__version__}, numpy {np.__version__}, "
        f"scikit-learn {__import__('sklearn').__version__}, cosearch {cosearch.__version__}.",
        f"Seeds 0..{sa - 1} for (a) ({ta} trials), 0..{sb - 1} for (b) ({tb} trials). "
        "Samplers: `bayesian` with default options (predictor, EHVI, rank transform, "
        "10 startup trials, pool 512, 24 trees), "
        '`bayesian` `sampler = "tpe"` (multivariate TPE, 10 startup), '
        "`nsga2` (population 20), `random`.",
        "",
        "Runs are in-memory Optuna studies whose objective calls cosearch's table lookups (a) "
        "or `Evaluator` (b) directly (see the script's docstring).",
        "",
        "## (a) nb201 cells: CIFAR-10 accuracy (max) x Pixel 3 latency (min), true front known",
        "",
        f"True-front hypervolume (accuracy 94.37..85 %, latency 0..25 ms, ref (1, 1)): "
        f"{true_hv:.5f}.",
        "",
        "Mean hypervolume / true hypervolume (over seeds):",
        "",
        "| sampler | " + " | ".join(f"{n} trials" for n in checkpoints) + " |",
        "|---|" + "---|" * len(checkpoints),
    ]
    reach_med: dict[str, float | None] = {}
    for label in labels:
        cs = np.array([r["curve"][: ta // EVERY] for r in res_a[label]]) / true_hv
        cells = [f"{cs[:, n // EVERY - 1].mean():.4f}" for n in checkpoints]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Trials to reach 99 % of the true-front hypervolume, per seed (median; a seed that "
        f"never reaches it counts as beyond its run). The predictor sampler ran {ta} trials "
        f"per seed; TPE, NSGA-II and random ran on to {max(ta, ext)} trials here (only for "
        "this table):",
        "",
        "| sampler | per seed | median |",
        "|---|---|---|",
    ]
    limit: dict[str, int] = {}
    for label in labels:
        limit[label] = lim = len(res_a[label][0]["curve"]) * EVERY
        per = [reach(r["curve"], 0.99 * true_hv) for r in res_a[label]]
        vals = sorted(float(lim + EVERY) if p is None else float(p) for p in per)
        med = float(np.median(vals))
        reach_med[label] = None if med > lim else med
        lines.append(
            f"| {label} | {', '.join(_fmt(p) for p in per)} | "
            f"{_fmt(None if med > lim else int(med))} |"
        )
    p, n2 = reach_med["predictor"], reach_med["nsga2"]
    if p is not None and n2 is not None:
        verdict = (
            f"predictor median {p:.0f} vs NSGA-II {n2:.0f} trials: ratio {p / n2:.2f} "
            f"({'meets' if p <= n2 / 3 else 'misses'} the goal of at most a third)"
        )
    elif p is not None:
        verdict = (
            f"predictor median {p:.0f} trials; NSGA-II does not reach it within "
            f"{limit['nsga2']} trials "
            f"in the median seed, so the goal (at most a third of NSGA-II's trials) is "
            + (
                "met"
                if p <= limit["nsga2"] / 3
                else f"undecided: it holds only if NSGA-II needs >= {3 * p:.0f}"
            )
        )
    else:
        verdict = f"predictor does not reach it within {ta} trials in the median seed"
    lines += ["", f"Goal check: {verdict}.", ""]
    lines += [
        "Sampler overhead per trial at "
        f"{ta - 99}-{ta} trials (ask + proposal + tell, evaluation excluded; problem (a)):",
        "",
        "| sampler | median s | p95 s | wall per run s (mean) |",
        "|---|---|---|---|",
    ]
    for label in labels:
        tail = np.concatenate([np.array(r["overhead"][-100:]) for r in res_a[label]])
        wall_mean = np.mean([r["wall_s"] for r in res_a[label]])
        lines.append(
            f"| {label} | {np.median(tail):.4f} | {np.quantile(tail, 0.95):.4f} | {wall_mean:.1f} |"
        )
    cb = [n for n in (50, 100, 200, 300, 500, 1000) if n <= tb]
    lines += [
        "",
        "## (b) nb201 x systolic: accuracy, latency_ms, energy_mj, area_mm2 <= 4",
        "",
        "Mean hypervolume relative to the union front of all runs (no true front):",
        "",
        "| sampler | " + " | ".join(f"{n} trials" for n in cb) + " |",
        "|---|" + "---|" * len(cb),
    ]
    for label in labels:
        cs = np.array([r["curve"] for r in res_b[label]])
        lines.append(
            f"| {label} | " + " | ".join(f"{cs[:, n // EVERY - 1].mean():.4f}" for n in cb) + " |"
        )
    lines += [
        "",
        "## The same strategy in a real Campaign",
        "",
        f"`examples/bayesian_nb201.toml` run as a `cosearch.Campaign` on SQLite for "
        f"{replay['trials']} trials ({replay['campaign_wall_s']:.1f} s), and the same "
        "strategy driven in memory with the seed the campaign derived: "
        f"{replay['identical']} of {replay['trials']} trials have identical parameters.",
        "",
    ]
    if not args.quick:  # exploration runs of earlier sessions, kept next to this script
        lines += [(Path(__file__).with_name("bayesian_variants.md")).read_text().rstrip(), ""]
    md_path.write_text("\n".join(lines))
    json_path.write_text(
        json.dumps(
            {
                "true_hv_a": true_hv,
                "a": {k: [_slim(r) for r in v] for k, v in res_a.items()},
                "b": {k: [_slim(r) for r in v] for k, v in res_b.items()},
                "replay": replay,
                "wall_s": wall,
            }
        )
    )
    plot(png_path, labels, res_a, res_b, true_hv, ta, tb)
    print(f"wrote {md_path}")


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    ov = np.array(r["overhead"][-100:])
    return {
        "seed": r["seed"],
        "curve": r["curve"],
        "wall_s": r["wall_s"],
        "overhead_median_s": float(np.median(ov)),
        "overhead_p95_s": float(np.quantile(ov, 0.95)),
    }


def plot(path: Path, labels, res_a, res_b, true_hv, ta, tb) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, res, n, scale, title in (
        (axes[0], res_a, ta, true_hv, "(a) nb201 x Pixel 3: HV / true HV"),
        (axes[1], res_b, tb, 1.0, "(b) nb201 x systolic: HV / best found"),
    ):
        x = np.arange(EVERY, n + 1, EVERY)
        for label in labels:
            cs = np.array([r["curve"][: n // EVERY] for r in res[label]]) / scale
            ax.plot(x, cs.mean(axis=0), label=label)
            ax.fill_between(x, cs.min(axis=0), cs.max(axis=0), alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("trials")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].axhline(0.99, color="k", lw=0.7, ls="--")
    axes[0].set_ylim(0.8, 1.0)
    axes[1].set_ylim(0.5, 1.0)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
