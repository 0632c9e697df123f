"""Hypervolume vs trials of ``marl``, ``rl``, ``random`` and ``nsga2`` on co-design spaces.

    .venv/bin/python benchmarks/search/marl_compare.py            # both spaces, full size
    .venv/bin/python benchmarks/search/marl_compare.py --quick    # 120 / 60 trials x 2 seeds
    .venv/bin/python benchmarks/search/marl_compare.py --space nb201:systolic

Full size: nb201 x systolic 500 trials x 5 seeds; ofa_mbv3 x heterogeneous (when both spaces
are registered) 300 trials x 3 seeds, because a trial there costs ~10x more.

Each run is an in-memory Optuna study (no SQLite: the store would dominate the time) with
cosearch's own spaces, evaluator and constraints. The objective below is a small copy of what
``Campaign._run_one`` does per trial without the store: suggest every ``net.*``/``hw.*``
parameter, build the architecture and the accelerator, ``Evaluator.evaluate``, return the
objective values, and set the constraint values (the campaign's constraints, then the number
of cost-model violations) where every strategy reads them (``trial.constraints``). Because
the evaluator is pure, evaluations are memoized per parameter set (not per architecture
digest: equivalent nb201 cells share a digest but are separate table rows with their own
accuracies, which is what a campaign reports) and layer extraction is cached per digest,
shared by all runs.

Hypervolume: over the feasible COMPLETE trials so far, objectives mapped to [0, 1] with fixed
bounds (``SETUPS[...]["hv"]``; 0 = best bound, 1 = worst bound), reference point (1, ..., 1).
Writes the Markdown report (``--out``) and, when matplotlib is importable, a PNG plot.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import cosearch
from cosearch.evaluate import Evaluator
from cosearch.search import get_strategy
from cosearch.search._hypervolume import hypervolume, normalize

ROOT = Path(__file__).resolve().parents[2]


def machine_line() -> str:
    """CPU model, cores and the versions the learners' numbers depend on."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks" / "hwmodels"))
    from _peers import machine_info

    info = machine_info()
    return (
        f"{info['cpu_model'] or platform.machine()}, {info['usable_cores']} usable cores shared "
        f"with other jobs, Python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{torch.__version__}, optuna {optuna.__version__}"
    )


#: per space pair: objectives, constraints, sources, and the fixed hypervolume bounds:
#: (best, worst) per objective in its own units, log10-scaled where ``log`` says so
SETUPS: dict[str, dict[str, Any]] = {
    "nb201:systolic": {
        "network": "nb201",
        "hardware": "systolic",
        "accuracy": "benchmark:nb201/cifar10",
        "cost": "analytical:systolic",
        "objectives": [
            ("accuracy", "maximize"),
            ("latency_ms", "minimize"),
            ("energy_mj", "minimize"),
        ],
        "constraints": [("area_mm2", "<=", 4.0)],
        "hv": {"bounds": [(95.0, 80.0), (0.01, 10.0), (0.05, 5.0)], "log": [False, True, True]},
        "trials": 500,
        "seeds": 5,
        "quick": 120,
    },
    # the larger space of issue 8: 6 network agents (5 stages + resolution) and 7 hardware
    # agents (chip compute, 4 sub-accelerators, memory, off-chip). ofa_mbv3 has no accuracy
    # table, so the network's capacity (MACs, maximized) stands in for accuracy. A trial costs
    # ~0.25 s here (ONNX build + layer extraction + the heterogeneous schedule), so the
    # defaults are 300 trials x 3 seeds to stay near 20 minutes on 2 cores.
    "ofa_mbv3:heterogeneous": {
        "network": "ofa_mbv3",
        "hardware": "heterogeneous",
        "accuracy": None,
        "cost": "analytical:heterogeneous",
        "objectives": [("macs", "maximize"), ("latency_ms", "minimize"), ("energy_mj", "minimize")],
        "constraints": [("area_mm2", "<=", 8.0)],
        "hv": {
            "bounds": [(3.5e8, 0.5e8), (0.3, 50.0), (1.0, 30.0)],
            "log": [False, True, True],
        },
        "trials": 300,
        "seeds": 3,
        "quick": 60,
    },
}
STRATEGIES = ("marl", "rl", "random", "nsga2")

NOTES = """## Notes

- `marl` and `rl` are the same learner (PPO + per-agent counterfactual baseline + hindsight
  self-imitation, see `search/marl.py`); `rl` has one agent over all parameters. Their option
  defaults were chosen on seeds 100-104 of this benchmark (nb201 x systolic, 500 trials), never
  on the seeds reported here; `random` and `nsga2` run with their defaults.
- The first trial of every learner run is uniform random (the search space is learned from the
  first finished trial, as Optuna samplers do).
- Each run is an in-memory Optuna study; the per-trial work is `Evaluator.evaluate` on the
  space's own architecture and accelerator plus the campaign's constraint values, memoized per
  parameter set across runs (the evaluator is pure)."""


class Objective:
    """What Campaign does per trial, minus the store (see the module docstring)."""

    def __init__(self, setup: dict[str, Any]) -> None:
        from cosearch.config import Constraint

        self.network = cosearch.get_space(setup["network"])
        self.hardware = cosearch.get_hardware_space(setup["hardware"])
        self.evaluator = Evaluator(
            self.network,
            self.hardware,
            accuracy=setup["accuracy"],
            cost=setup["cost"],
            layer_cache_layers=100_000_000,
        )
        self.distributions = {**self.network.distributions(), **self.hardware.distributions()}
        self.metrics = [m for m, _ in setup["objectives"]]
        self.directions = [d for _, d in setup["objectives"]]
        # the config's own Constraint, so a violation means what it means in a campaign
        self.constraints = tuple(Constraint(m, op, b) for m, op, b in setup["constraints"])
        self.memo: dict[tuple[tuple[str, str], ...], tuple[list[float], list[float]]] = {}
        self.seconds = 0.0

    def __call__(self, trial: optuna.Trial) -> list[float]:
        params = {n: _suggest(trial, n, d) for n, d in self.distributions.items()}
        t0 = time.perf_counter()
        arch = self.network.build(params)
        acc = self.hardware.build(params)
        # keyed by the parameters as drawn, not by the digests: equivalent nb201 cells share
        # a digest but are separate rows of the benchmark table, each with its own accuracy
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        hit = self.memo.get(key)
        if hit is None:
            ev = self.evaluator.evaluate(arch, acc)
            values = ev.metrics.values_of(self.metrics)
            viol = [c.violation(ev.metrics[c.metric].value) for c in self.constraints]
            viol.append(float(len(ev.cost.violations)))
            hit = self.memo[key] = (values, viol)
        self.seconds += time.perf_counter() - t0
        values, viol = hit
        for i, v in enumerate(viol):
            # the same values and keys ("0", "1", ...) trial.constraints shows for a campaign
            trial.set_constraint(str(i), v)
        return list(values)


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")


def hv_curve(study: optuna.Study, setup: dict[str, Any], every: int) -> list[float]:
    """Hypervolume of the feasible trials among the first n, for n = every, 2*every, ..."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    hv = setup["hv"]
    curve: list[float] = []
    pts: list[list[float]] = []
    for i, t in enumerate(trials, start=1):
        if t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values()):
            pts.append(list(t.values))
        if i % every == 0 or i == len(trials):
            if pts:
                norm = normalize(np.array(pts), hv["bounds"], hv["log"])
                curve.append(hypervolume(norm, np.ones(norm.shape[1])))
            else:
                curve.append(0.0)
    return curve


def run_one(
    setup_name: str, strategy: str, seed: int, trials: int, objective: Objective, every: int
) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = get_strategy(strategy).sampler(seed=seed)
    study = optuna.create_study(directions=objective.directions, sampler=sampler)
    t_eval0 = objective.seconds
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    wall = time.perf_counter() - t0
    eval_s = objective.seconds - t_eval0
    curve = hv_curve(study, SETUPS[setup_name], every)
    feasible = sum(
        t.state == TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())
        for t in study.trials
    )
    return {
        "strategy": strategy,
        "seed": seed,
        "curve": curve,
        "wall_s": wall,
        "eval_s": eval_s,
        "feasible": feasible,
        "agents": getattr(sampler, "agents", None),
    }


def trials_to_reach(curve: list[float], target: float, every: int) -> int | None:
    for i, v in enumerate(curve):
        if v >= target - 1e-12:
            return (i + 1) * every
    return None


def section(
    setup_name: str,
    results: list[dict[str, Any]],
    trials: int,
    seeds: list[int],
    every: int,
    total_s: float,
) -> str:
    """The Markdown section of one space pair."""
    setup = SETUPS[setup_name]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault(r["strategy"], []).append(r)
    curves = {s: np.array([r["curve"] for r in rs]) for s, rs in by.items()}
    constraints = ", ".join(f"{m} {op} {b:g}" for m, op, b in setup["constraints"])
    xs = [min((i + 1) * every, trials) for i in range(len(next(iter(curves.values()))[0]))]
    lines = [
        f"## {setup_name}",
        "",
        f"- {trials} trials per run, seeds {seeds}; strategies with default options "
        "(nsga2: population 20).",
        f"- objectives: {', '.join(f'{m} ({d})' for m, d in setup['objectives'])}; "
        f"constraints: {constraints} plus the cost model's own "
        f"violations; accuracy `{setup['accuracy'] or 'none (MACs stand in)'}`, "
        f"cost `{setup['cost']}`.",
        "- hypervolume: feasible COMPLETE trials only; each objective mapped to [0, 1] "
        "minimization coordinates by fixed bounds (best -> 0, worst -> 1): "
        + "; ".join(
            f"{m} {b[0]:g} -> 0, {b[1]:g} -> 1{' (log10)' if lg else ''}"
            for (m, _), b, lg in zip(setup["objectives"], setup["hv"]["bounds"], setup["hv"]["log"])
        )
        + "; reference point (1, 1, 1) (points beyond it add nothing); exact (slicing), "
        "`search/_hypervolume.py`.",
        f"- wall time of this section: {total_s / 60:.1f} min.",
        "",
        "### Hypervolume vs trials (mean ± std over seeds)",
        "",
    ]
    marks = sorted({x for x in xs if x % 50 == 0 or x == xs[-1] or x in (10, 20)})
    header = "| strategy | " + " | ".join(str(m) for m in marks) + " |"
    lines += [header, "|---|" + "---|" * len(marks)]
    for s in by:
        c = curves[s]
        cells = []
        for m in marks:
            j = xs.index(m)
            cells.append(f"{c[:, j].mean():.4f} ± {c[:, j].std():.4f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Goal: `marl` reaches `rl`'s final hypervolume in at most half the trials",
        "",
    ]
    if "marl" in curves and "rl" in curves:
        mean_m, mean_r = curves["marl"].mean(axis=0), curves["rl"].mean(axis=0)
        target = float(mean_r[-1])
        reach = trials_to_reach(list(mean_m), target, every)
        lines.append(
            f"- mean curves: `rl` ends at {target:.4f}; `marl` "
            + (f"reaches it after {reach} trials" if reach is not None else "never reaches it")
            + f" (half the budget: {trials // 2}). "
            + (
                "**Goal met.**"
                if reach is not None and reach <= trials // 2
                else "**Goal not met.**"
            )
        )
        per_seed = []
        for rm, rr in zip(by["marl"], by["rl"]):
            t = trials_to_reach(rm["curve"], rr["curve"][-1], every)
            per_seed.append(f"seed {rm['seed']}: {t if t is not None else 'never'}")
        lines.append(
            "- per seed (trials `marl` needs to reach the same seed's final `rl` hypervolume): "
            + ", ".join(per_seed)
        )
        diff = [rm["curve"][-1] - rr["curve"][-1] for rm, rr in zip(by["marl"], by["rl"])]
        lines.append(
            f"- final hypervolume `marl` - `rl`, paired by seed: {np.mean(diff):+.4f} "
            f"(std {np.std(diff):.4f}; per seed {', '.join(f'{d:+.4f}' for d in diff)})."
        )
    lines += [
        "",
        "### Trials each strategy (row) needs to reach another's (column) final mean hypervolume",
        "",
        "| reaches -> | "
        + " | ".join(f"{s} ({curves[s].mean(axis=0)[-1]:.4f})" for s in by)
        + " |",
        "|---|" + "---|" * len(by),
    ]
    for s in by:
        row = []
        for other in by:
            t = trials_to_reach(list(curves[s].mean(axis=0)), curves[other].mean(axis=0)[-1], every)
            row.append("-" if s == other else (str(t) if t is not None else "never"))
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    lines += ["", "### Cost per run (mean over seeds)", ""]
    lines += ["| strategy | wall s | evaluation s | sampler + Optuna s | feasible trials |"]
    lines += ["|---|---|---|---|---|"]
    for s, rs in by.items():
        w = np.mean([r["wall_s"] for r in rs])
        e = np.mean([r["eval_s"] for r in rs])
        f = np.mean([r["feasible"] for r in rs])
        lines.append(f"| {s} | {w:.1f} | {e:.1f} | {w - e:.1f} | {f:.0f} |")
    agents = next((r["agents"] for r in by.get("marl", []) if r["agents"]), None)
    if agents:
        lines += ["", "### `marl` agents (default grouping)", ""]
        lines += [f"- `{n}`: {', '.join(f'`{p}`' for p in ps)}" for n, ps in agents]
    lines += ["", f"### Hypervolume curves (mean over seeds, every {every} trials)", ""]
    lines.append("| trials | " + " | ".join(by) + " |")
    lines.append("|---|" + "---|" * len(by))
    for j, x in enumerate(xs):
        lines.append(f"| {x} | " + " | ".join(f"{curves[s][:, j].mean():.4f}" for s in by) + " |")
    return "\n".join(lines) + "\n"


def write_plot(path: Path, runs: dict[str, dict[str, Any]], every: int) -> str:
    """One panel per space pair; returns matplotlib's version, or "" (and writes nothing)
    when matplotlib is not importable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ""
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.5), squeeze=False)
    for ax, (name, run) in zip(axes[0], runs.items()):
        by: dict[str, list[list[float]]] = {}
        for r in run["results"]:
            by.setdefault(r["strategy"], []).append(r["curve"])
        for s, cs in by.items():
            c = np.array(cs)
            x = [min((i + 1) * every, run["trials"]) for i in range(c.shape[1])]
            m, sd = c.mean(axis=0), c.std(axis=0)
            ax.plot(x, m, label=s)
            ax.fill_between(x, m - sd, m + sd, alpha=0.2)
        ax.set_xlabel("trials")
        ax.set_ylabel("hypervolume (normalized, ref = 1)")
        ax.set_title(f"{name}: mean ± std over {len(run['seeds'])} seeds")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(matplotlib.__version__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few trials and 2 seeds per space")
    ap.add_argument("--space", default="all", choices=["all", *sorted(SETUPS)])
    ap.add_argument("--trials", type=int, default=None, help="default: each setup's")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds 0, 1, ...")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--every", type=int, default=10, help="hypervolume every N trials")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/search_marl.md")
    ap.add_argument("--plot", type=Path, default=None, help="default: <out>_hv.png")
    args = ap.parse_args(argv)
    # paid here, not by the first learner run: importing torch, and the first optimizer
    # (which imports torch._dynamo, ~5 s)
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    names = list(SETUPS) if args.space == "all" else [args.space]
    strategies = [s for s in args.strategies.split(",") if s]
    runs: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    t_all = time.perf_counter()
    for name in names:
        setup = SETUPS[name]
        if (
            setup["hardware"] not in cosearch.list_hardware_spaces()
            or setup["network"] not in cosearch.list_spaces()
        ):
            skipped.append(
                f"{name}: not run, a space is not registered (networks "
                f"{cosearch.list_spaces()}, hardware {cosearch.list_hardware_spaces()})"
            )
            continue
        trials = args.trials or (setup["quick"] if args.quick else setup["trials"])
        n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else setup["seeds"])
        seeds = list(range(n_seeds))
        objective = Objective(setup)
        results: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        for seed in seeds:
            for s in strategies:
                r = run_one(name, s, seed, trials, objective, args.every)
                results.append(r)
                print(
                    f"{name} {s:7s} seed {seed}: hv {r['curve'][-1]:.4f} wall "
                    f"{r['wall_s']:.1f}s (eval {r['eval_s']:.1f}s) feasible {r['feasible']}",
                    file=sys.stderr,
                    flush=True,
                )
        runs[name] = {
            "results": results,
            "trials": trials,
            "seeds": seeds,
            "seconds": time.perf_counter() - t0,
        }
    if not runs:
        print("\n".join(skipped), file=sys.stderr)
        return 2
    plot = args.plot or args.out.with_name(args.out.stem + "_hv.png")
    plotted = write_plot(plot, runs, args.every)
    cli_args = sys.argv[1:] if argv is None else argv
    lines = [
        "# Search: `marl` vs `rl`, `random`, `nsga2` (hypervolume vs trials)",
        "",
        "Command: `"
        + " ".join([".venv/bin/python benchmarks/search/marl_compare.py", *cli_args])
        + "`",
        "",
        f"Machine: {machine_line()}; total wall time {(time.perf_counter() - t_all) / 60:.1f} min.",
        "",
        f"![hypervolume vs trials]({plot.name}) (matplotlib {plotted})"
        if plotted
        else "(matplotlib was not importable: no plot written.)",
        "",
    ]
    for name, run in runs.items():
        lines.append(
            section(name, run["results"], run["trials"], run["seeds"], args.every, run["seconds"])
        )
    lines += [f"- {s}" for s in skipped]
    lines += ["", NOTES, ""]
    text = "\n".join(lines)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
