"""Accuracy predictors with uncertainty on NB201, and the hybrid latency predictor on this CPU.

Writes ``benchmarks/results/predictors_accuracy_hybrid.md`` (``--quick``:
``predictors_accuracy_hybrid_quick.md``) and caches the CPU measurements in
``benchmarks/results/predictors_cpu_latency.csv``.

Part 1 (issue 5): accuracy on NAS-Bench-201 CIFAR-10 (``cifar10_test_acc`` of
``../shared/data/nb201/nb201_accuracy_latency.csv``) from 100 architectures drawn with seeds
0-4, scored on every other cell: Spearman (bar: >= 0.85) and the fraction of true accuracies
inside the predicted 90% interval (calibrated: about 0.9), for the Gaussian process and the
bootstrap ensemble, on the table encoding plus path features. Ablations: without path
features, without the log-error target, and the plain GBRT.

Part 2 (issue 5): a real device end to end. NB201 networks (default skeleton: 16 channels,
5 cells per stage, 32x32 input, batch 1) are timed with hwmodels' ``measured`` model
(onnxruntime, CPU, 1 thread) in several passes in different orders; the latency of a network is
the minimum over all its timed runs (on a shared machine other jobs only ever add time; the
minimum is the most repeatable statistic, see the report's spread section). The hybrid predictor
is fitted on 20 of them (seeds 0-9) and scored on the rest (bar: Spearman >= 0.95, MAPE <= 10%),
against the analytical model alone (its Spearman; its MAPE after one scale factor fitted on the
same 20) and the GBRT on the same 20.

Usage::

    .venv/bin/python benchmarks/predictors/accuracy_hybrid_bench.py              # ~10 min
    .venv/bin/python benchmarks/predictors/accuracy_hybrid_bench.py --quick      # ~2 min
    .venv/bin/python benchmarks/predictors/accuracy_hybrid_bench.py --remeasure  # time again

``--quick`` uses 2 seeds and 3,000 scored cells in part 1, and the cached measurements in part 2
(or, without a cache, measures 80 networks in 2 passes into ``*_quick.csv``).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NB201_CSV = ROOT.parent / "shared" / "data" / "nb201" / "nb201_accuracy_latency.csv"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "predictors_cpu_latency.csv"
TARGET = "cifar10_test_acc"
TRAIN_ACC = 100
SEEDS_ACC = 5
N_NETWORKS = 320
PASSES = 3
#: extra passes over the networks whose two lowest pass minima differ by more than STABLE
EXTRA_PASSES = 3
STABLE = 0.05
WARMUP = 5
REPEATS = 20
TRAIN_LAT = 20
SEEDS_LAT = 10
SAMPLE_SEED = 2024
LEVELS = (0.5, 0.8, 0.9, 0.95)


def _machine() -> str:
    import onnxruntime
    import sklearn

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = ""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{model or platform.machine()}, {usable} usable cores, load average at start {load}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, onnxruntime {onnxruntime.__version__}"
    )


def _progress(msg: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


# -- part 1: accuracy --------------------------------------------------------------------------
def _accuracy_models() -> dict[str, tuple[str, Any]]:
    """name -> (encoding, factory(seed))."""
    from cosearch.predictors.accuracy import EnsembleAccuracyPredictor, GPAccuracyPredictor
    from cosearch.predictors.latency import GBRTLatencyPredictor

    return {
        "GP": ("paths", lambda s: GPAccuracyPredictor(random_state=s)),
        "ensemble (10 GBRT)": ("paths", lambda s: EnsembleAccuracyPredictor(random_state=s)),
        "GP, no path features": ("table", lambda s: GPAccuracyPredictor(random_state=s)),
        "GP, raw accuracy target": (
            "paths",
            lambda s: GPAccuracyPredictor(random_state=s, target_transform="none"),
        ),
        "plain GBRT (no uncertainty)": ("table", lambda s: GBRTLatencyPredictor(random_state=s)),
    }


def _accuracy(quick: bool, lines: list[str], start: float) -> dict[str, Any]:
    from cosearch.predictors import kendall, load_table, spearman
    from cosearch.predictors._encodings import nb201_path_features

    table = load_table(NB201_CSV, "nb201")
    y = table.column(TARGET)
    x = {
        "table": table.features,
        "paths": np.hstack([table.features, nb201_path_features(table.genotypes)]),
    }
    seeds = range(2 if quick else SEEDS_ACC)
    models = _accuracy_models()
    if quick:
        models = {k: v for k, v in models.items() if k in ("GP", "ensemble (10 GBRT)")}
    results: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        fit = np.sort(rng.choice(len(y), TRAIN_ACC, replace=False))
        rest = np.setdiff1d(np.arange(len(y)), fit)
        if quick:
            rest = np.sort(rng.choice(rest, 3000, replace=False))
        top = rest[y[rest] >= 85.0]
        for name, (enc, make) in models.items():
            t0 = time.perf_counter()
            est = make(seed).fit(x[enc][fit], y[fit])
            t1 = time.perf_counter()
            r = results.setdefault(name, {})
            pred = est.predict(x[enc][rest])
            r.setdefault("spearman", []).append(spearman(y[rest], pred))
            r.setdefault("kendall", []).append(kendall(y[rest], pred))
            r.setdefault("spearman_top", []).append(spearman(y[top], est.predict(x[enc][top])))
            r.setdefault("fit_s", []).append(t1 - t0)
            r.setdefault("predict_s", []).append(time.perf_counter() - t1)
            if not hasattr(est, "predict_interval"):
                continue
            for level in LEVELS:
                lo, hi = est.predict_interval(x[enc][rest], coverage=level)
                r.setdefault(f"cov{level}", []).append(
                    float(np.mean((y[rest] >= lo) & (y[rest] <= hi)))
                )
                if level == 0.9:
                    r.setdefault("width90", []).append(float(np.median(hi - lo)))
            mean, std = est.predict(x[enc][rest], return_std=True)
            inside = np.abs(y[rest] - mean) <= 1.6448536 * std
            r.setdefault("cov_std90", []).append(float(np.mean(inside)))
        _progress(f"accuracy seed {seed}: GP {results['GP']['spearman'][-1]:.3f}", start)
    n_rest = len(rest)
    lines += [
        "## 1. Accuracy with uncertainty: NB201 CIFAR-10 from 100 architectures\n",
        f"Target `{TARGET}` (test accuracy after 200 epochs, percent) of all 15,625 cells. For "
        f"each seed in 0..{len(seeds) - 1}: {TRAIN_ACC} cells drawn with "
        "`numpy.random.default_rng(seed).choice`, scored on "
        + ("all the other 15,525 cells." if not quick else f"{n_rest} other cells (quick).")
        + " Encoding `paths`: the table encoding of `cosearch.predictors.tables` (one-hot of the "
        "6 edges as written and of the canonical cell, degenerate flag, MACs) plus the path "
        "encoding of `nb201_path_features` (counts of the 84 op sequences along input -> output "
        "paths, live-op counts, live paths, convolutions on the deepest path). No zero-cost "
        "proxies (they exist for only part of the cells). The accuracy predictors fit the log "
        "error `log(100 - acc)` (see `predictors/accuracy.py`). Intervals are "
        "`predict_interval(X, coverage)`; `±1.645 std` is the symmetric interval from "
        "`predict(X, return_std=True)`. `Spearman, acc >= 85` re-scores only the held-out cells "
        "with a true accuracy of at least 85% (the region a search cares about; it drops the easy "
        "tail of broken cells).\n",
        "| model | Spearman | Kendall | Spearman, acc >= 85 | in 90% interval | "
        "in ±1.645 std | median 90% width (points) | fit s | predict s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cov = _ms(r["cov0.9"]) if "cov0.9" in r else "-"
        cstd = _ms(r["cov_std90"]) if "cov_std90" in r else "-"
        width = f"{np.mean(r['width90']):.2f}" if "width90" in r else "-"
        lines.append(
            f"| {name} | {_ms(r['spearman'])} | {_ms(r['kendall'])} | {_ms(r['spearman_top'])} "
            f"| {cov} | {cstd} | {width} | {np.mean(r['fit_s']):.1f} | "
            f"{np.mean(r['predict_s']):.1f} |"
        )
    lines += [
        "",
        "Values are mean ± standard deviation over the seeds. Per seed (Spearman / coverage of "
        "the 90% interval):\n",
    ]
    for name in ("GP", "ensemble (10 GBRT)"):
        r = results[name]
        pairs = ", ".join(f"{s:.3f} / {c:.3f}" for s, c in zip(r["spearman"], r["cov0.9"]))
        lines.append(f"- {name}: {pairs}")
    lines += ["", "Calibration at other levels (fraction of true values inside the interval):\n"]
    lines += [
        "| model | " + " | ".join(f"{lv:.0%}" for lv in LEVELS) + " |",
        "|---|" + "---|" * len(LEVELS),
    ]
    for name, r in results.items():
        if "cov0.9" in r:
            lines.append(
                f"| {name} | " + " | ".join(f"{np.mean(r[f'cov{lv}']):.3f}" for lv in LEVELS) + " |"
            )
    lines.append("")
    return results


# -- part 2: the CPU ---------------------------------------------------------------------------
def _sample_networks(n: int) -> list[tuple[str, Any]]:
    """``n`` NB201 networks with distinct digests (isomorphic cells merged), default skeleton."""
    from cosearch.spaces.nb201 import NB201Space

    space = NB201Space()
    rng = np.random.default_rng(SAMPLE_SEED)
    seen: dict[str, tuple[str, Any]] = {}
    while len(seen) < n:
        params = space.sample(rng)
        arch = space.build(params)
        seen.setdefault(arch.digest, (space.to_string(params), arch))
    return list(seen.values())


def _unstable(runs: list[np.ndarray]) -> bool:
    """Whether the two lowest pass minima of a network differ by more than STABLE."""
    lows = sorted(float(r.min()) for r in runs)
    return len(lows) < 2 or lows[1] > lows[0] * (1 + STABLE)


def _measure(n: int, passes: int, path: Path, start: float) -> None:
    from cosearch.hwmodels import extract_layers
    from cosearch.hwmodels.measured import MeasuredCostModel

    nets = _sample_networks(n)
    timer = MeasuredCostModel(warmup=WARMUP, repeats=REPEATS, threads=1)
    samples: dict[str, list[np.ndarray]] = {s: [] for s, _ in nets}
    rng = np.random.default_rng(SAMPLE_SEED + 1)
    t0 = time.perf_counter()
    for p in range(passes + EXTRA_PASSES):
        if p < passes:
            order = list(range(n)) if p == 0 else list(range(n))[::-1] if p == 1 else None
            order = order if order is not None else [int(i) for i in rng.permutation(n)]
        else:  # re-time only the networks whose best passes still disagree
            order = [i for i, (s, _) in enumerate(nets) if _unstable(samples[s])]
            if not order:
                break
        for i in order:
            s, arch = nets[i]
            samples[s].append(np.asarray(timer.measure(arch.onnx()).samples_ms))
        _progress(
            f"measured pass {p + 1}: {len(order)} networks ({time.perf_counter() - t0:.0f} s)",
            start,
        )
    most = max(len(v) for v in samples.values())
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["arch_str", "digest", "macs_m", "latency_ms", "median_ms", "iqr_ms", "passes"]
            + [f"pass{p}_min_ms" for p in range(most)]
            + [f"pass{p}_median_ms" for p in range(most)]
            + ["warmup", "repeats", "threads", "measure_seconds"]
        )
        total = time.perf_counter() - t0
        for s, arch in nets:
            runs = np.concatenate(samples[s])
            q1, q3 = np.percentile(runs, [25, 75])
            macs = sum(layer.macs for layer in extract_layers(arch.onnx())) / 1e6
            pad = [""] * (most - len(samples[s]))
            w.writerow(
                [s, arch.digest, f"{macs:.4f}", f"{runs.min():.5f}", f"{np.median(runs):.5f}",
                 f"{q3 - q1:.5f}", len(samples[s])]
                + [f"{x.min():.5f}" for x in samples[s]] + pad
                + [f"{np.median(x):.5f}" for x in samples[s]] + pad
                + [WARMUP, REPEATS, 1, f"{total:.1f}"]
            )  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    passes = ["pass0_min_ms", "pass1_min_ms"]  # every network has these two
    return {
        "arch_str": [r["arch_str"] for r in rows],
        "y": np.array([float(r["latency_ms"]) for r in rows]),
        "median": np.array([float(r["median_ms"]) for r in rows]),
        "iqr": np.array([float(r["iqr_ms"]) for r in rows]),
        "macs": np.array([float(r["macs_m"]) for r in rows]),
        "pass_min": np.array([[float(r[k]) for k in passes] for r in rows]),
        "passes": np.array([int(r["passes"]) for r in rows]),
        "all_pass_min": [
            [float(r[f"pass{p}_min_ms"]) for p in range(int(r["passes"]))] for r in rows
        ],
        "seconds": float(rows[0]["measure_seconds"]),
        "protocol": (int(rows[0]["warmup"]), int(rows[0]["repeats"]), int(rows[0]["threads"])),
    }


def _cell(text: str) -> str:
    """``text`` inside a Markdown table cell: its pipes escaped."""
    return text.replace("|", "\\|")


def _mape(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y) / y) * 100.0)


def _device(quick: bool, remeasure: bool, lines: list[str], start: float) -> dict[str, Any]:
    from cosearch.predictors import kendall, spearman
    from cosearch.predictors.hybrid import HybridLatencyPredictor, analytical_features
    from cosearch.predictors.latency import GBRTLatencyPredictor
    from cosearch.predictors.tables import encode_genotypes
    from cosearch.spaces.nb201 import NB201Space

    path = CACHE
    if quick and (remeasure or not CACHE.exists()):
        path = RESULTS / "predictors_cpu_latency_quick.csv"
    if remeasure or not path.exists():
        n, passes = (80, 2) if path != CACHE else (N_NETWORKS, PASSES)
        _measure(n, passes, path, start)
    data = _read(path)
    y = data["y"]
    n = len(y)
    space = NB201Space()
    genotypes = [space.from_string(s) for s in data["arch_str"]]
    archs = [space.build(g) for g in genotypes]
    t0 = time.perf_counter()
    feats = {
        "roofline": analytical_features(archs),
        "systolic": analytical_features(archs, "systolic", "systolic"),
    }
    feature_s = (time.perf_counter() - t0) / (2 * n)
    analytic = feats["roofline"][:, 0::4].sum(axis=1)  # per-kind latency columns, summed
    table_x, _ = encode_genotypes("nb201", genotypes)
    _progress(f"device: {n} networks, features ready", start)

    methods = {
        "hybrid (roofline + NNLS)": lambda s: HybridLatencyPredictor(),
        "hybrid + residual GBRT": lambda s: HybridLatencyPredictor(residual="gbrt", random_state=s),
        "hybrid on the systolic model": lambda s: HybridLatencyPredictor(
            cost_model="systolic", accelerator="systolic"
        ),
    }
    res: dict[str, dict[str, list[float]]] = {}

    def score(name: str, truth: np.ndarray, pred: np.ndarray) -> None:
        r = res.setdefault(name, {})
        r.setdefault("spearman", []).append(spearman(truth, pred))
        r.setdefault("kendall", []).append(kendall(truth, pred))
        r.setdefault("mape", []).append(_mape(truth, pred))
        ape = np.abs(pred - truth) / truth
        r.setdefault("within10", []).append(float(np.mean(ape <= 0.10)))
        r.setdefault("max_ape", []).append(float(ape.max() * 100))

    weights: dict[str, float] = {}
    worst: list[tuple[int, float]] = []
    for seed in range(SEEDS_LAT):
        rng = np.random.default_rng(seed)
        fit = np.sort(rng.choice(n, TRAIN_LAT, replace=False))
        rest = np.setdiff1d(np.arange(n), fit)
        for name, make in methods.items():
            x = feats["systolic"] if "systolic" in name else feats["roofline"]
            est = make(seed).fit(x[fit], y[fit])
            score(name, y[rest], est.predict(x[rest]))
            if seed == 0 and name.startswith("hybrid (roofline"):
                weights = est.weights()
                ape0 = np.abs(est.predict(x[rest]) - y[rest]) / y[rest]
                worst = [(int(rest[i]), float(est.predict(x[rest[i : i + 1]])[0])) for i in
                         np.argsort(-ape0)[:5]]  # fmt: skip
        a, t = analytic[fit], y[fit]
        scale = float(np.sum(a / t) / np.sum(a * a / (t * t)))  # least relative squares
        score("analytical alone (roofline, 1 scale)", y[rest], scale * analytic[rest])
        m = data["macs"]
        mscale = float(np.sum(m[fit] / t) / np.sum(m[fit] ** 2 / t**2))
        score("MACs alone (1 scale)", y[rest], mscale * m[rest])
        gbrt = GBRTLatencyPredictor(random_state=seed).fit(table_x[fit], y[fit])
        score("GBRT, table encoding", y[rest], gbrt.predict(table_x[rest]))
        gbrt_a = GBRTLatencyPredictor(random_state=seed).fit(feats["roofline"][fit], y[fit])
        score("GBRT, analytical features", y[rest], gbrt_a.predict(feats["roofline"][rest]))
    _progress("device: scored", start)

    pm = data["pass_min"]
    base = int(data["passes"].min())
    warmup, repeats, threads = data["protocol"]
    rel = np.abs(pm[:, 0] - pm[:, 1]) / np.minimum(pm[:, 0], pm[:, 1])
    contention = data["median"] / y
    lines += [
        "## 2. A real device: this machine's CPU, hybrid predictor from 20 measurements\n",
        f"{n} NB201 networks with distinct digests, drawn with `NB201Space().sample` "
        f"(`default_rng({SAMPLE_SEED})`), default skeleton (16 channels, 5 cells per stage, "
        "32x32x3 input, batch 1, the NAS-Bench-201 CIFAR network). Timed with "
        f"`MeasuredCostModel(warmup={warmup}, repeats={repeats}, threads={threads})` "
        f"(onnxruntime CPUExecutionProvider, ORT_ENABLE_ALL, sequential) in {base} "
        "passes over all networks in different orders ("
        + ", ".join(["forward", "reversed", "shuffled"][: min(base, 3)])
        + f"), then up to {EXTRA_PASSES} extra passes over the networks whose two lowest pass "
        f"minima still differed by more than {STABLE:.0%} ({int(np.sum(data['passes'] > base))} "
        f"networks were re-timed, at most {int(data['passes'].max())} passes); "
        f"{data['seconds']:.0f} s of measuring in all. Latency = the minimum over all timed "
        f"runs of a network ({repeats} per pass). Measured latencies: "
        f"{y.min():.3f} to {y.max():.3f} ms (median {np.median(y):.3f} ms). Cached in "
        f"`{path.relative_to(ROOT)}`; `--remeasure` times them again.\n",
        "### Spread of the measurements (the machine is shared)\n",
        f"- test-retest, minimum of pass 1 vs pass 2: Spearman "
        f"{spearman(pm[:, 0], pm[:, 1]):.4f}; relative difference median "
        f"{np.median(rel) * 100:.2f}%, mean {np.mean(rel) * 100:.2f}%, 95th percentile "
        f"{np.percentile(rel, 95) * 100:.2f}%;",
        f"- median of all runs over their minimum (contention from other jobs): median "
        f"{np.median(contention):.2f}x, 95th percentile {np.percentile(contention, 95):.2f}x;",
        f"- interquartile range of a network's runs over its median: median "
        f"{np.median(data['iqr'] / data['median']) * 100:.1f}%;",
        f"- the medians are much noisier: Spearman of the median of all runs vs the minimum "
        f"{spearman(data['median'], y):.4f}. A predictor cannot beat this noise floor; "
        "MAPE against a single pass would include it.\n",
        "### Predictors fitted on 20 networks, scored on the other "
        f"{n - TRAIN_LAT} (seeds 0..{SEEDS_LAT - 1})\n",
        "Bars (issue 5, nn-Meter's): Spearman >= 0.95 and MAPE <= 10%. `within 10%`: fraction "
        "of predictions within ±10% of the measurement (nn-Meter reports 99% on its CPUs).\n",
        "| method | Spearman | Kendall | MAPE % | within 10% | worst error % (mean of seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res.items():
        lines.append(
            f"| {name} | {_ms(r['spearman'])} | {_ms(r['kendall'])} | {_ms(r['mape'])} | "
            f"{_ms(r['within10'])} | {np.mean(r['max_ape']):.1f} |"
        )
    lines += [
        "",
        f"Analytical model alone, no fit: Spearman of the roofline estimate vs measured over all "
        f"{n} networks {spearman(y, analytic):.4f} (scale-free).",
        f"Analytical features cost {feature_s * 1e3:.0f} ms per network (ONNX build excluded).\n",
        "Calibrated weights of the roofline hybrid (seed 0), i.e. what it learned about this CPU: "
        + ", ".join(f"`{k}` {v:.4g}" for k, v in sorted(weights.items()))
        + " (ms per feature unit: per-kind estimated ms, layer count, millions of MACs, MB).\n",
        "Worst predictions of the roofline hybrid (seed 0): measured (minimum of all runs), "
        "predicted, and the minimum of each pass: pass minima that agree mean the error is the "
        "model's, not the timer's.\n",
        "| network | MMACs | measured ms | predicted ms | error % | pass minima ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| `{_cell(data['arch_str'][i])}` | {data['macs'][i]:.1f} | {y[i]:.3f} | {p:.3f} | "
            f"{(p - y[i]) / y[i] * 100:+.1f} | "
            + ", ".join(f"{v:.3f}" for v in data["all_pass_min"][i])
            + " |"
            for i, p in worst
        ),
        "",
        "The hybrid on the systolic model scores like the roofline one (MAPE "
        f"{np.mean(res['hybrid on the systolic model']['mape']):.2f}% vs "
        f"{np.mean(res['hybrid (roofline + NNLS)']['mape']):.2f}%): the calibration re-weights "
        "each layer kind, and the columns it keeps (conv MACs, pool and eltwise traffic or "
        "time) are nearly proportional under both models; non-negative least squares does not "
        "depend on column scales. The analytical base matters through the shape of each "
        "kind's cost, not through its constants.\n",
        "The hybrid's analytical base is `roofline:peak_gmacs=100,mem_gbps=20,vector_gops=50` "
        "(`DEFAULT_ACCELERATOR`: a rough single AVX-512 core); the systolic variant uses the "
        "systolic model's reference design, which has nothing to do with a CPU.\n",
    ]
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, cached measurements")
    parser.add_argument("--remeasure", action="store_true", help="time the networks again")
    parser.add_argument("--out", type=Path, default=None, help="report path")
    args = parser.parse_args(argv)
    if not NB201_CSV.exists():
        print(f"reference table missing: {NB201_CSV}", file=sys.stderr)
        return 2
    import onnxruntime  # noqa: F401 - loaded before the thread limit, so it sees every pool
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "benchmarks/predictors/accuracy_hybrid_bench.py" + (" --quick" if args.quick else "")
    lines = [
        "# Accuracy predictors with uncertainty, and the hybrid latency predictor on a real CPU\n",
        f"`.venv/bin/python {cmd}`, {stamp}.\n",
        f"Machine: {_machine()}. The machine is shared with other jobs: wall times are "
        "indicative, and part 2 reports the spread of its measurements.\n",
        "All fitting runs with one BLAS/OpenMP thread (threadpoolctl).\n",
    ]
    with threadpool_limits(limits=1):
        acc = _accuracy(args.quick, lines, start)
        dev = _device(args.quick, args.remeasure, lines, start)
    gp, ens = acc["GP"], acc["ensemble (10 GBRT)"]
    hyb = dev["hybrid (roofline + NNLS)"]
    verdict = [
        "## Summary against the bars\n",
        f"- accuracy, Spearman >= 0.85 from 100 cells: GP {np.mean(gp['spearman']):.3f} "
        f"(min over seeds {np.min(gp['spearman']):.3f}), ensemble "
        f"{np.mean(ens['spearman']):.3f} (min {np.min(ens['spearman']):.3f});",
        f"- calibration, fraction inside the 90% interval: GP {np.mean(gp['cov0.9']):.3f}, "
        f"ensemble {np.mean(ens['cov0.9']):.3f};",
        f"- CPU, hybrid from 20 measurements: Spearman {np.mean(hyb['spearman']):.3f} "
        f"(bar 0.95), MAPE {np.mean(hyb['mape']):.2f}% (bar 10%), within 10%: "
        f"{np.mean(hyb['within10']):.1%}.",
        "",
        f"Total wall time {time.perf_counter() - start:.0f} s.\n",
    ]
    lines[4:4] = verdict
    out = args.out or RESULTS / (
        "predictors_accuracy_hybrid_quick.md" if args.quick else "predictors_accuracy_hybrid.md"
    )
    out.write_text("\n".join(lines) + "\n")
    _progress(f"wrote {out}", start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
