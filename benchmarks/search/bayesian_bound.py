"""How few trials can problem (a) of ``bayesian_compare.py`` take when the surrogate is as
good as the table allows? A bound for issue 9's goal (99 % of the true front's hypervolume in a
third of NSGA-II's trials).

Problem (a): the 15,625 NAS-Bench-201 cells, CIFAR-10 test accuracy (maximize) and measured
Pixel 3 latency (minimize), the normalization and reference point of ``bayesian_compare.py``.

The "oracle-surrogate" sampler below is the predictor-guided sampler's loop with the learned
part replaced by the best predictions the table itself supports: for every cell, accuracy and
log-latency are predicted out of fold by gradient-boosted trees fitted on 80 % of the *whole
table* (5 folds, the sampler's own features: one-hot edges plus the path encoding), and each
prediction carries the distribution of those models' out-of-fold residuals (so the predictive
distribution has the right width and the right skew, which a Gaussian would not). After 20
random cells, each trial measures the unmeasured cell with the largest expected hypervolume
improvement under that distribution (Monte Carlo over 64 residual quantiles per objective,
paired at random, on a 200 x 1000 grid of the normalized objective box). A sampler that learns
from its own few hundred trials has strictly less information than this one, so the trials it
needs are a practical floor for any structure-based surrogate, ours included.

Variants: one objective known exactly (the other predicted as above), to show which
objective's unpredictable part sets the floor.

    .venv/bin/python benchmarks/search/bayesian_bound.py [--quick]

Writes ``benchmarks/results/search_bayesian_bound.md`` (``--quick``: 2 seeds,
``..._quick.md``) and the numbers as ``.json``. About 6 minutes on 2 cores (``--quick``: 3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "search"))
sys.path.insert(0, str(ROOT / "benchmarks" / "hwmodels"))
from _peers import machine_info  # noqa: E402
from bayesian_compare import HV_A, RESULTS, TableObjective, _hv  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
START = 20
MAX_TRIALS = 1000
QUANTILES = 64
GRID_X, GRID_Y = 200, 1000
FOLDS = 5
#: surrogates fitted on only this many random cells (the same models; residuals from 5-fold
#: cross-validation inside those cells): how the floor moves with the surrogate's data
SMALL = (300, 1000, 3000)
#: label -> (accuracy predicted, latency predicted)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "both predicted": (True, True),
    "accuracy exact, latency predicted": (False, True),
    "latency exact, accuracy predicted": (True, False),
}


def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampler features, accuracy and latency of every nb201 cell (in the table's order)."""
    import optuna

    from cosearch.search._bayes_space import JointSpace
    from cosearch.spaces.nb201 import EDGE_NAMES, OPS

    objective = TableObjective()
    space = objective.space
    names = [f"net.{e}" for e in EDGE_NAMES]
    joint = JointSpace({n: optuna.distributions.CategoricalDistribution(OPS) for n in names})
    rows, acc, lat = [], [], []
    for arch, (a, lt) in objective.table.items():
        params = space.from_string(arch)
        row = joint.encode({n: params[n] for n in names})
        assert row is not None
        rows.append(row)
        acc.append(a)
        lat.append(lt)
    return joint.features(np.array(rows)), np.array(acc), np.array(lat)


def _model() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, random_state=0)


def _out_of_fold(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.model_selection import KFold, cross_val_predict

    cv = KFold(FOLDS, shuffle=True, random_state=0)
    return np.asarray(cross_val_predict(_model(), x, y, cv=cv))


def _fitted_on(
    x: np.ndarray, truth: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Predictions for every cell from models fitted on ``n`` random cells, and the residual
    samples (cross-validated inside those cells) that serve as their distribution."""
    idx = np.random.default_rng(1000 + seed).choice(len(x), n, replace=False)
    mean = np.column_stack([_model().fit(x[idx], truth[idx, j]).predict(x) for j in (0, 1)])
    cv = np.column_stack([_out_of_fold(x[idx], truth[idx, j]) for j in (0, 1)])
    res = truth[idx] - cv
    return mean, (res[:, 0], res[:, 1])


def _normalized(acc: np.ndarray, lat: np.ndarray) -> np.ndarray:
    (a_best, a_worst), (l_best, l_worst) = HV_A["bounds"]
    return np.stack(
        [(a_best - acc) / (a_best - a_worst), (lat - l_best) / (l_worst - l_best)], axis=-1
    )


def _improvement_table(front: np.ndarray) -> np.ndarray:
    """Hypervolume a point at grid cell (x, y) would add to ``front`` (normalized, minimized,
    reference (1, 1)): for each x, the area above y left of the front's staircase."""
    ty = (np.arange(GRID_Y) + 0.5) / GRID_Y
    tx = (np.arange(GRID_X) + 0.5) / GRID_X
    order = np.argsort(front[:, 1])
    best_x = np.minimum.accumulate(front[order, 0])
    pos = np.searchsorted(front[order, 1], ty, side="right")
    stair = np.where(pos > 0, np.minimum(1.0, best_x[np.maximum(pos - 1, 0)]), 1.0)
    strip = np.clip(stair[None, :] - tx[:, None], 0.0, None) / GRID_Y
    area = np.cumsum(strip[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros((GRID_X + 1, GRID_Y + 1))  # the last row / column: outside the box
    out[:GRID_X, :GRID_Y] = area
    return out


def run(
    seed: int,
    truth: np.ndarray,
    mean: np.ndarray,
    residuals: tuple[np.ndarray, np.ndarray],
    true_hv: float,
) -> int | None:
    """Trials the oracle-surrogate sampler needs to reach 99 % of ``true_hv`` (None: not within
    MAX_TRIALS). ``truth`` and ``mean`` are (n, 2) [accuracy, log latency]."""
    rng = np.random.default_rng(seed)
    u = (np.arange(QUANTILES) + 0.5) / QUANTILES
    qa, ql = (np.quantile(r, u) if r.any() else np.zeros(QUANTILES) for r in residuals)
    measured = np.zeros(len(truth), dtype=bool)
    measured[rng.choice(len(truth), START, replace=False)] = True
    true_points = _normalized(truth[:, 0], np.exp(truth[:, 1]))
    for trial in range(START, MAX_TRIALS + 1):
        if _hv_of(true_points[measured]) >= 0.99 * true_hv:
            return trial
        table = _improvement_table(true_points[measured])
        cand = np.flatnonzero(~measured)
        acc = mean[cand, 0][:, None] + qa[None, :]
        lat = np.exp(mean[cand, 1][:, None] + rng.permutation(ql)[None, :])
        pts = _normalized(acc, lat)
        xi = np.clip((pts[..., 0] * GRID_X).astype(int), 0, GRID_X)
        yi = np.clip((pts[..., 1] * GRID_Y).astype(int), 0, GRID_Y)
        measured[cand[np.argmax(table[xi, yi].mean(axis=1))]] = True
    return None


def _hv_of(points: np.ndarray) -> float:
    """2-D hypervolume of normalized points against (1, 1) by one sweep: it runs after every
    trial, where the general ``cosearch.search._hypervolume.hypervolume`` (quadratic
    non-dominated filter) would dominate the run time; ``main`` checks the two agree."""
    inside = points[(points[:, 0] < 1) & (points[:, 1] < 1)]
    order = np.argsort(inside[:, 0], kind="stable")
    area, best = 0.0, 1.0
    for x, y in inside[order]:
        if y < best:
            area += (1.0 - x) * (best - y)
            best = y
    return area


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds instead of 5")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from cosearch.predictors import spearman

    seeds = SEEDS[:2] if args.quick else SEEDS
    suffix = "_quick" if args.quick else ""
    out = args.out or RESULTS / f"search_bayesian_bound{suffix}.md"
    start = time.perf_counter()
    x, acc, lat = _table()
    truth = np.column_stack([acc, np.log(lat)])
    true_hv = _hv(np.column_stack([acc, lat]), HV_A)
    assert abs(_hv_of(_normalized(acc, lat)) - true_hv) < 1e-9, "hypervolume mismatch"
    oof = np.column_stack([_out_of_fold(x, acc), _out_of_fold(x, np.log(lat))])
    fit_s = time.perf_counter() - start
    quality = {
        "accuracy_spearman": spearman(acc, oof[:, 0]),
        "latency_spearman": spearman(lat, oof[:, 1]),
        "accuracy_residual_sd": float(np.std(acc - oof[:, 0])),
        "latency_residual_sd_log": float(np.std(np.log(lat) - oof[:, 1])),
    }
    print(quality, f"{fit_s:.0f} s", flush=True)
    results: dict[str, list[int | None]] = {}
    for label, (acc_pred, lat_pred) in VARIANTS.items():
        mean = np.column_stack(
            [oof[:, 0] if acc_pred else acc, oof[:, 1] if lat_pred else truth[:, 1]]
        )
        residuals = (truth[:, 0] - mean[:, 0], truth[:, 1] - mean[:, 1])
        results[label] = [run(s, truth, mean, residuals, true_hv) for s in seeds]
        print(label, results[label], flush=True)
    for n in SMALL:
        label = f"both predicted, fitted on {n} random cells"
        ns = []
        for seed in seeds:
            mean, residuals = _fitted_on(x, truth, n, seed)
            ns.append(run(seed, truth, mean, residuals, true_hv))
        results[label] = ns
        print(label, ns, flush=True)
    wall = time.perf_counter() - start

    def cell(n: int | None) -> str:
        return str(n) if n is not None else f">{MAX_TRIALS}"

    def median(ns: list[int | None]) -> str:
        vals = sorted(MAX_TRIALS + 1 if n is None else n for n in ns)
        m = float(np.median(vals))
        return f">{MAX_TRIALS}" if m > MAX_TRIALS else f"{m:.0f}"

    compare = _reported()
    flag = " --quick" if args.quick else ""
    lines = [
        "# Bayesian co-design, problem (a): trials needed with the best surrogate the table allows",
        "",
        f"`.venv/bin/python benchmarks/search/bayesian_bound.py{flag}`, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {_machine()}. "
        f"Run time {wall:.0f} s (out-of-fold models {fit_s:.0f} s).",
        "",
        "Problem (a) of [search_bayesian.md](search_bayesian.md): CIFAR-10 accuracy x Pixel 3 "
        "latency over the 15,625 NB201 cells, same normalization and reference point; stop at 99 % "
        "of the true front's hypervolume.",
        "",
        "The oracle-surrogate sampler predicts every cell out of fold with gradient-boosted trees "
        f"fitted on {1 - 1 / FOLDS:.0%} of the whole table ({FOLDS} folds, the predictor sampler's "
        "features), with the models' out-of-fold residuals as each prediction's distribution, "
        f"measures {START} random cells, then each trial the unmeasured cell of largest expected "
        "hypervolume improvement under those distributions. A sampler that learns only from its "
        "own trials knows less than this one.",
        "",
        f"Out-of-fold quality on all {len(acc)} cells: accuracy Spearman "
        f"{quality['accuracy_spearman']:.3f} (residual sd {quality['accuracy_residual_sd']:.2f} "
        f"points), Pixel 3 latency Spearman {quality['latency_spearman']:.3f} (residual sd "
        f"{quality['latency_residual_sd_log']:.2f} in log latency, i.e. about "
        f"{100 * (np.exp(quality['latency_residual_sd_log']) - 1):.0f} %).",
        "",
        f"| surrogate | trials to 99 % per seed ({', '.join(str(s) for s in seeds)}) | median |",
        "|---|---|---:|",
    ]
    for label, ns in results.items():
        lines.append(f"| oracle, {label} | {', '.join(cell(n) for n in ns)} | {median(ns)} |")
    if compare:
        lines += [
            f"| {k} (from search_bayesian.md) | {v[0]} | {v[1]} |" for k, v in compare.items()
        ]
    both = median(results["both predicted"])
    lines += [
        "",
        f"Reading: with both objectives predicted as well as 80 % of the table allows, the "
        f"median is {both} trials; a third of NSGA-II's median (the goal) is "
        f"{_goal_text(compare)}. Knowing accuracy exactly takes the median to "
        f"{median(results['accuracy exact, latency predicted'])}; knowing latency exactly, to "
        f"{median(results['latency exact, accuracy predicted'])}. With the models fitted on "
        + ", ".join(
            f"{n} cells: {median(results[f'both predicted, fitted on {n} random cells'])}"
            for n in SMALL
        )
        + " (a static surrogate, never refitted). So the same acquisition meets the goal when "
        "its surrogate is about as good as one fitted on a few thousand cells. The predictor "
        "sampler refits its surrogate on its own trials only, a few hundred cells when the last "
        "1 % is being searched for, and its median sits near that of a static surrogate of "
        "1,000 random cells: the trials go into learning the surrogate, not into the "
        "acquisition. Surrogate inputs tried so far to close that gap are listed in "
        "[search_bayesian.md](search_bayesian.md)'s variants.",
        "",
    ]
    out.write_text("\n".join(lines))
    out.with_suffix(".json").write_text(
        json.dumps(
            {"seeds": list(seeds), "quality": quality, "trials": results, "wall_s": wall}, indent=1
        )
    )
    print(f"wrote {out}")
    return 0


def _reported() -> dict[str, tuple[str, str]]:
    """Per-seed trials and median of the predictor sampler and NSGA-II in search_bayesian.md."""
    path = RESULTS / "search_bayesian.md"
    found: dict[str, tuple[str, str]] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in ("predictor", "nsga2"):
            found[f"`{cells[0]}` sampler"] = (cells[1], cells[2])
    return found


def _goal_text(compare: dict[str, tuple[str, str]]) -> str:
    nsga = compare.get("`nsga2` sampler")
    try:
        return f"{float(nsga[1]) / 3:.0f}" if nsga else "not available"
    except ValueError:
        return "not available"


def _machine() -> str:
    info: dict[str, Any] = machine_info()
    import sklearn

    return (
        f"{info['cpu_model'] or info['machine']}, {info['usable_cores']} usable cores, Python "
        f"{info['python']}, numpy {np.__version__}, scikit-learn {sklearn.__version__}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
