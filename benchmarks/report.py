"""Assemble ``benchmarks/results/REPORT.md`` (and its PNG figures) from the benchmark outputs.

Every number comes from a result file one of the benchmark scripts wrote (Markdown tables,
CSV or JSON in ``benchmarks/results/``); nothing is measured here. Each section states what
ran side by side, the machine and the seeds as the source report gives them, and links to it.
A section whose inputs are missing says which command produces them.

    .venv/bin/python benchmarks/report.py            # from the full-size reports -> REPORT.md
    .venv/bin/python benchmarks/report.py --quick    # from the *_quick reports -> REPORT_quick.md
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

Table = tuple[list[str], list[list[str]]]


# -- reading the source reports -------------------------------------------------------------
def md_tables(path: Path) -> list[tuple[str, Table]]:
    """Every pipe table of a Markdown file with the nearest heading above it."""
    out: list[tuple[str, Table]] = []
    heading, rows = "", []
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if rows:
            body = [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]
            out.append((heading, (rows[0], body)))
            rows = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return out


def table_under(path: Path, heading_part: str, index: int = 0) -> Table:
    """The ``index``-th table under a heading containing ``heading_part``."""
    found = [t for h, t in md_tables(path) if heading_part.lower() in h.lower()]
    if len(found) <= index:
        raise LookupError(f"{path.name}: no table under a heading with {heading_part!r}")
    return found[index]


def section_bullets(path: Path, heading_part: str) -> list[str]:
    """The bullet lines of the first section whose heading contains ``heading_part``."""
    inside, out = False, []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            if inside:
                break
            inside = heading_part.lower() in line.lower()
        elif inside and line.startswith("- "):
            out.append(line)
    if not out:
        raise LookupError(f"{path.name}: no bullet list under {heading_part!r}")
    return out


def machine_line(path: Path) -> str:
    """The source report's description of the machine (its first line naming it)."""
    for line in path.read_text().splitlines():
        if re.search(r"\bmachine\b", line, re.I):
            text = re.sub(r"[*`]", "", line).strip("-: ").strip()
            text = re.sub(r"^machine\s*:\s*", "", text, flags=re.I)
            return text if len(text) < 400 else text[:397] + "..."
    return "(the source report does not name the machine)"


def num(cell: str) -> float:
    """The first number in a table cell (``**0.977** ± 0.006`` -> 0.977, ``12,345`` -> 12345)."""
    m = re.search(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", cell.replace("**", ""))
    if m is None:
        raise ValueError(f"no number in {cell!r}")
    return float(m.group(0).replace(",", ""))


def col(table: Table, name: str) -> int:
    header = [h.replace("*", "").strip().lower() for h in table[0]]
    for i, h in enumerate(header):
        if h == name.lower():
            return i
    for i, h in enumerate(header):
        if name.lower() in h:
            return i
    raise LookupError(f"no column {name!r} in {table[0]}")


# -- figures ----------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, name: str, note: str) -> str:
    fig.text(0.01, 0.005, note, fontsize=6, color="0.35", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(RESULTS / name, dpi=110)
    _plt().close(fig)
    return name


# -- sections ---------------------------------------------------------------------------------
class Section:
    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def src(self, stem: str, ext: str = "md") -> Path:
        path = RESULTS / f"{stem}{self.suffix}.{ext}"
        if not path.exists():
            raise FileNotFoundError(path.name)
        return path


def _reruns(md: Path) -> list[str]:
    """The paragraphs of ``md`` starting "Rerun of": a rerun on another machine that did not
    reproduce every number, which the report repeats next to those numbers."""
    paras = [ln for ln in md.read_text().splitlines() if ln.startswith("Rerun of ")]
    return [x for ln in paras for x in ("", ln)]


def search_section(s: Section) -> list[str]:
    lines = ["## Search strategies: hypervolume vs trials", ""]
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    notes = []
    marl = s.src("search_marl")
    curves = table_under(marl, "Hypervolume curves")
    x = [num(r[0]) for r in curves[1]]
    for j, name in enumerate(curves[0][1:], start=1):
        axes[0].plot(x, [num(r[j]) for r in curves[1]], label=name)
    axes[0].set(title="nb201 x systolic (marl benchmark)", xlabel="trials", ylabel="hypervolume")
    axes[0].legend(fontsize=8)
    final = table_under(marl, "mean ± std over seeds")
    lines += [
        f"`benchmarks/search/marl_compare.py` ([report]({marl.name})): `marl`, `rl`, `random` and "
        "`nsga2` side by side on the same nb201 x systolic problem, the same seeds and one shared "
        f"hypervolume reference. Machine: {machine_line(marl)}",
        "",
        "| strategy | final mean hypervolume |",
        "|---|---:|",
    ]
    lines += [f"| {r[0]} | {r[-1]} |" for r in final[1]]
    reach = table_under(marl, "Trials each strategy")
    lines += ["", "Trials each strategy (row) needs to reach another's final mean hypervolume:", ""]
    lines += _md_table(reach)
    lines += _reruns(marl)
    notes.append(f"marl: {machine_line(marl)[:120]}")
    sweep = RESULTS / f"search_marl_sweep{s.suffix}.md"
    if sweep.exists():
        lines += [
            "",
            f"Learner settings on the tuning seeds ([{sweep.name}]({sweep.name})):",
            "",
            *_md_table(table_under(sweep, "`marl` vs `rl`")),
        ]
    try:
        bayes = s.src("search_bayesian")
        lines += ["", *_bayesian_lines(bayes, axes[1])]
        notes.append(f"bayesian: {machine_line(bayes)[:120]}")
    except (FileNotFoundError, LookupError, ValueError, KeyError) as e:
        axes[1].set_axis_off()
        lines += [
            "",
            f"Bayesian comparison not available ({e}); run "
            "`benchmarks/search/bayesian_compare.py`.",
        ]
    png = _save(fig, f"report_search{s.suffix}.png", " | ".join(notes))
    return [*lines, "", f"![hypervolume vs trials]({png})", ""]


def _bayesian_lines(path: Path, ax: Any) -> list[str]:
    """Problem (a) of the bayesian comparison: curves from its JSON, tables from its report."""
    data = json.loads(path.with_suffix(".json").read_text())
    true_hv = float(data["true_hv_a"])
    n = min(len(r["curve"]) for runs in data["a"].values() for r in runs)
    x = np.arange(1, n + 1) * 10  # the benchmark records the hypervolume every 10 trials
    for name, runs in data["a"].items():
        ys = np.array([r["curve"][:n] for r in runs]) / true_hv
        ax.plot(x, ys.mean(axis=0), label=f"{name} ({len(runs)} seeds)")
    ax.axhline(0.99, color="k", lw=0.6, ls="--")
    ax.set(
        title="nb201: CIFAR-10 accuracy x Pixel 3 latency",
        xlabel="trials",
        ylabel="hypervolume / true front's",
        xscale="log",
        ylim=(0.8, 1.0),
    )
    ax.legend(fontsize=8)
    goal = [ln for ln in path.read_text().splitlines() if ln.startswith("Goal check")]
    return [
        f"`benchmarks/search/bayesian_compare.py` ([report]({path.name})): the predictor-guided "
        "`bayesian` sampler against Optuna TPE, NSGA-II and random on the same problems and "
        f"seeds; true front from all 15,625 cells. Machine: {machine_line(path)}",
        "",
        *_md_table(table_under(path, "(a) nb201")),
        "",
        *_md_table(table_under(path, "(a) nb201", 1)),
        "",
        *goal,
        *_bayesian_bound_lines(path),
    ]


def _bayesian_bound_lines(bayes: Path) -> list[str]:
    """The oracle-surrogate floor of problem (a), when ``bayesian_bound.py`` has run."""
    path = bayes.with_name(bayes.name.replace("search_bayesian", "search_bayesian_bound"))
    if not path.exists():
        return []
    trials = json.loads(path.with_suffix(".json").read_text())["trials"]

    def med(ns: list[int | None]) -> str:
        m = float(np.median([np.inf if n is None else n for n in ns]))
        return f"{m:.0f}" if np.isfinite(m) else "not reached"

    pairs = "; ".join(f"{label}: {med(ns)}" for label, ns in trials.items())
    return [
        "",
        f"With the best surrogate the table allows (`benchmarks/search/bayesian_bound.py`, "
        f"[report]({path.name})), an EHVI sampler over out-of-fold predictions (an oracle "
        f"surrogate) needs, median trials to 99 %: {pairs}.",
    ]


def hwmodels_section(s: Section) -> list[str]:
    lines = ["## Cost models against SCALE-Sim and ZigZag: fidelity and speed", ""]
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    sc_path = s.src("hwmodels_scalesim", "csv")
    rows = list(csv.DictReader(sc_path.open()))
    ref = np.array([float(r["scalesim_compute_cycles"]) for r in rows])
    ours = np.array([float(r["cosearch_compute_cycles"]) for r in rows])
    # speed over the jobs without groups, as in the source report: a depthwise job times one
    # channel on either side
    plain = [r for r in rows if r.get("groups", "1") == "1"]
    sc_s = np.array([float(r["scalesim_seconds"]) for r in plain])
    co_s = np.array([float(r["cosearch_seconds"]) for r in plain])
    within = float(np.mean(np.abs(ours - ref) <= 0.01 * ref))
    axes[0].loglog(ref, ours, ".", ms=3)
    lim = [ref.min(), ref.max()]
    axes[0].plot(lim, lim, "k-", lw=0.5)
    axes[0].set(
        title=f"systolic vs SCALE-Sim ({len(rows)} jobs)",
        xlabel="SCALE-Sim cycles",
        ylabel="cosearch cycles",
    )
    md = s.src("hwmodels_scalesim")
    lines += [
        f"`benchmarks/hwmodels/scalesim_compare.py` ([report]({md.name})): each (layer, array, "
        "dataflow) job run through SCALE-Sim 3.0.0 and cosearch's `systolic` model in one run.",
        f"Machine: {machine_line(md)}",
        "",
        f"- compute cycles within 1% of SCALE-Sim's: {within:.1%} of {len(rows)} jobs "
        f"(largest relative error {np.max(np.abs(ours - ref) / ref):.2%})",
        f"- speed, median SCALE-Sim seconds / median cosearch seconds per layer: "
        f"{np.median(sc_s) / np.median(co_s):,.0f}x; slowest-ratio job {np.min(sc_s / co_s):,.0f}x "
        f"(the {len(plain)} jobs without groups)",
    ]
    zz_path = s.src("hwmodels_zigzag", "csv")
    zz = [r for r in csv.DictReader(zz_path.open()) if r.get("zigzag_latency_cycles")]
    zmd = s.src("hwmodels_zigzag")
    for k, (metric, label) in enumerate(
        [
            (("zigzag_latency_cycles", "cosearch_mac_latency_cycles"), "latency (cycles)"),
            (("zigzag_energy_pj", "cosearch_mac_energy_pj"), "energy (pJ)"),
        ],
        start=1,
    ):
        for acc in sorted({r["accelerator"] for r in zz}):
            sel = [r for r in zz if r["accelerator"] == acc]
            axes[k].loglog(
                [float(r[metric[0]]) for r in sel],
                [float(r[metric[1]]) for r in sel],
                ".",
                ms=4,
                label=acc,
            )
        axes[k].set(title=f"vs ZigZag: {label}, MAC layers", xlabel="ZigZag", ylabel="cosearch")
        axes[k].legend(fontsize=8)
    lines += [
        "",
        f"`benchmarks/hwmodels/zigzag_compare.py` ([report]({zmd.name})): the same ONNX networks "
        "through ZigZag 3.9.1 and cosearch's `systolic` / `row_stationary` models in one run. "
        f"Machine: {machine_line(zmd)}",
        "",
        "| accelerator | networks | Spearman latency (MAC layers) | Spearman energy (MAC layers) "
        "| speed, median ZigZag s / median cosearch s per network |",
        "|---|---:|---:|---:|---:|",
    ]
    for acc in sorted({r["accelerator"] for r in zz}):
        sel = [r for r in zz if r["accelerator"] == acc]
        lat = _spearman(
            [float(r["zigzag_latency_cycles"]) for r in sel],
            [float(r["cosearch_mac_latency_cycles"]) for r in sel],
        )
        en = _spearman(
            [float(r["zigzag_energy_pj"]) for r in sel],
            [float(r["cosearch_mac_energy_pj"]) for r in sel],
        )
        ratio = np.median([float(r["zigzag_seconds_uncached"]) for r in sel]) / np.median(
            [float(r["cosearch_seconds"]) for r in sel]
        )
        lines.append(f"| {acc} | {len(sel)} | {lat:.3f} | {en:.3f} | {ratio:,.0f}x |")
    png = _save(
        fig,
        f"report_hwmodels{s.suffix}.png",
        f"SCALE-Sim 3.0.0, ZigZag 3.9.1 | {machine_line(md)[:150]}",
    )
    return [*lines, "", f"![cost models]({png})", ""]


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho with tied values given their average rank (many nb201 networks tie)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def predictors_section(s: Section) -> list[str]:
    lines = ["## Predictors: few-shot latency on unseen devices, accuracy with uncertainty", ""]
    md = s.src("predictors_fewshot")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.8))
    names, offset = [], 0
    lines += [
        f"`benchmarks/predictors/fewshot_bench.py` ([report]({md.name})): the few-shot predictor "
        "and its baselines (MACs only, GBRT and ridge on the same 10 shots, GBRT with 900 rows) on "
        f"the same unseen devices and seeds. Machine: {machine_line(md)}",
        "",
        "| table | device | few-shot, 10 shots | GBRT, 10 shots | MACs only |",
        "|---|---|---:|---:|---:|",
    ]
    for table_name in ("nb201", "fbnet"):
        try:
            t = table_under(md, f"{table_name}:")
        except LookupError:
            continue
        fs, gb, macs = col(t, "few-shot, 10"), col(t, "gbrt, 10 shots"), col(t, "macs only")
        for r in t[1]:
            dev = r[0].replace("*", "")
            lines.append(f"| {table_name} | {dev} | {r[fs]} | {r[gb]} | {r[macs]} |")
            if dev == "mean":
                continue
            names.append(f"{table_name}\n{dev}")
            ax.bar(
                offset - 0.27,
                num(r[macs]),
                0.27,
                color="0.7",
                label="MACs only" if offset == 0 else None,
            )
            ax.bar(
                offset,
                num(r[gb]),
                0.27,
                color="tab:orange",
                label="GBRT, 10 shots" if offset == 0 else None,
            )
            ax.bar(
                offset + 0.27,
                num(r[fs]),
                0.27,
                color="tab:blue",
                label="few-shot, 10 shots" if offset == 0 else None,
            )
            offset += 1
    ax.axhline(0.95, color="k", lw=0.6, ls="--")
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set(ylabel="Spearman", ylim=(0, 1), title="Latency on unseen devices (mean of seeds)")
    ax.legend(fontsize=8, loc="lower right")
    png = _save(fig, f"report_predictors{s.suffix}.png", machine_line(md)[:200])
    lines += ["", f"![few-shot Spearman per device]({png})", ""]
    try:
        ceil = s.src("predictors_fewshot_ceiling")
        tables = json.loads(s.src("predictors_fewshot_ceiling", "json").read_text())["tables"]
        pairs = [f"{name} {t['mean_best']:.4f}" for name, t in tables.items()]
        lines += [
            f"What the unseen devices' own measurements allow "
            f"(`benchmarks/predictors/fewshot_ceiling.py`, [report]({ceil.name})): models fitted "
            f"on 80 % of each device's own rows average {', '.join(pairs)} (best of three "
            "models per device).",
            "",
        ]
    except FileNotFoundError as e:
        lines += [f"Few-shot ceiling not available ({e}).", ""]
    try:
        acc = s.src("predictors_accuracy_hybrid")
        lines += [
            f"`benchmarks/predictors/accuracy_hybrid_bench.py` ([report]({acc.name})), "
            "against the bars of issue 5:",
            "",
            *section_bullets(acc, "Summary"),
            "",
        ]
    except (FileNotFoundError, LookupError) as e:
        lines += [f"Accuracy/hybrid summary not available ({e}).", ""]
    return lines


def darts_section(s: Section) -> list[str]:
    path = s.src("darts", "json")
    data = json.loads(path.read_text())
    mem = [m for m in data["parts"]["memory"] if m["order"] == 1]
    lines = [
        "## DARTS vs PC-DARTS: activation memory",
        "",
        f"`benchmarks/darts/darts_bench.py` ([report]({s.src('darts').name})): the same supernet "
        "and batch with full channels (K=1, DARTS) and partial channels (PC-DARTS), first order; "
        "activation bytes autograd saves for backward in one training step.",
        "",
        "| space | K | activations MiB | parameters KiB | activations / DARTS |",
        "|---|---:|---:|---:|---:|",
    ]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    spaces = sorted({m["space"] for m in mem})
    for i, sp in enumerate(spaces):
        base = next(m["act_mib"] for m in mem if m["space"] == sp and m["k"] == 1)
        for j, m in enumerate(sorted((m for m in mem if m["space"] == sp), key=lambda m: m["k"])):
            lines.append(
                f"| {sp} | {m['k']} | {m['act_mib']:.1f} | {m['param_kib']:.0f} | "
                f"{m['act_mib'] / base:.2f} |"
            )
            ax.bar(
                i + 0.35 * j,
                m["act_mib"] / base,
                0.33,
                color="tab:blue" if m["k"] == 1 else "tab:green",
                label=("DARTS (K=1)" if m["k"] == 1 else f"PC-DARTS (K={m['k']})")
                if i == 0
                else None,
            )
    ax.set_xticks([i + 0.17 for i in range(len(spaces))], spaces)
    ax.set(ylabel="activation memory / DARTS", title="Activation memory per training step")
    ax.legend(fontsize=8)
    png = _save(fig, f"report_darts{s.suffix}.png", machine_line(s.src("darts"))[:200])
    return [*lines, "", f"![darts memory]({png})", ""]


def ofa_section(s: Section) -> list[str]:
    md = s.src("ofa")
    t = table_under(md, "Inherited weights vs training from scratch")
    phases = table_under(md, "smallest and largest subnets after each phase")
    lines = [
        "## Once-for-All: inherited accuracy against training from scratch",
        "",
        f"`benchmarks/ofa/ofa_bench.py` ([report]({md.name})): subnets of one progressive-"
        "shrinking supernet, evaluated with inherited weights after BatchNorm recalibration, next "
        "to the same subnets trained from scratch for the same epochs. "
        f"Machine: {machine_line(md)}",
        "",
        *_md_table(t),
        *_reruns(md),
    ]
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    inh, scr = col(t, "inherited"), col(t, "scratch")
    xs = np.arange(len(t[1]))
    axes[0].bar(xs - 0.2, [num(r[inh]) for r in t[1]], 0.4, label="inherited")
    axes[0].bar(xs + 0.2, [num(r[scr]) for r in t[1]], 0.4, label="from scratch")
    axes[0].set_xticks(xs, [r[0].replace(" r=8", "") for r in t[1]], fontsize=7)
    lo = min(num(r[c]) for r in t[1] for c in (inh, scr))
    axes[0].set(ylim=(lo - 3, 100), ylabel="test accuracy %", title="Subnets (digits)")
    axes[0].legend(fontsize=8)
    names = [r[0] for r in phases[1]]
    for label in ("smallest test", "largest test"):
        axes[1].plot(names, [num(r[col(phases, label)]) for r in phases[1]], "o-", label=label)
    axes[1].set(ylabel="test accuracy %", title="After each phase")
    axes[1].legend(fontsize=8)
    png = _save(fig, f"report_ofa{s.suffix}.png", machine_line(md)[:200])
    return [*lines, "", f"![ofa]({png})", ""]


def store_section(s: Section) -> list[str]:
    path = s.src("store", "json")
    d = json.loads(path.read_text())
    plain = (d["a1"] + d.get("a1_again", d["a1"])) / 2
    rows = [("Optuna study.optimize, trivial objective", plain)]
    rows.append(("cosearch Campaign.run (evaluation included)", d["b"]["rate"]))
    rows += [
        (f"cosearch BatchWriter {k.replace(':', ', batches of ')}", v) for k, v in d["c"].items()
    ]
    lines = [
        "## Trial store throughput",
        "",
        f"`benchmarks/store/throughput.py` ([report]({s.src('store').name})): plain Optuna and "
        "cosearch's paths writing to the same kind of SQLite file in one run (PostgreSQL rows on a "
        f"local server). Machine: {d.get('machine', '?')}; versions: "
        + ", ".join(f"{k} {v}" for k, v in d.get("versions", {}).items()),
        "",
        "| path | trials/s | ratio to plain Optuna |",
        "|---|---:|---:|",
        *[f"| {n} | {r:,.1f} | {r / plain:.1f}x |" for n, r in rows],
    ]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.barh([n for n, _ in rows][::-1], [r / plain for _, r in rows][::-1])
    ax.set_xscale("log")
    ax.set(xlabel="trials/s relative to plain Optuna study.optimize", title="Persisting trials")
    ax.tick_params(axis="y", labelsize=7)
    png = _save(fig, f"report_store{s.suffix}.png", str(d.get("machine", ""))[:200])
    try:
        big = table_under(s.src("store"), "100,000 trials")
        lines += ["", "Queries at 100,000 trials:", "", *_md_table(big)]
    except LookupError:
        pass
    return [*lines, "", f"![store throughput]({png})", ""]


def _md_table(t: Table) -> list[str]:
    head, body = t
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *["| " + " | ".join(r) + " |" for r in body],
    ]


SECTIONS: list[tuple[str, Callable[[Section], list[str]], str]] = [
    ("search", search_section, "benchmarks/search/*.py"),
    ("hwmodels", hwmodels_section, "benchmarks/hwmodels/*_compare.py"),
    ("predictors", predictors_section, "benchmarks/predictors/*.py"),
    ("darts", darts_section, "benchmarks/darts/darts_bench.py"),
    ("ofa", ofa_section, "benchmarks/ofa/ofa_bench.py"),
    ("store", store_section, "benchmarks/store/throughput.py"),
]


def build(
    quick: bool = False, log: Callable[[str], None] = print, results: Path | None = None
) -> Path:
    """Write REPORT.md (REPORT_quick.md with ``quick``) and its figures into ``results``
    (default ``benchmarks/results``) from the reports there; return its path."""
    global RESULTS
    if results is not None:
        RESULTS = Path(results)
    s = Section("_quick" if quick else "")
    out = ["# cosearch benchmark report", ""]
    out += [
        "Assembled by `benchmarks/report.py` from the reports in this folder, which "
        f"`make bench{' QUICK=1' if quick else ''}` regenerates (`benchmarks/run_all.py`). Every "
        "comparison below ran side by side in one run of its benchmark on one machine; figures "
        "show ratios or quality numbers rather than absolute times where the machine matters.",
        "",
    ]
    missing = []
    for name, fn, script in SECTIONS:
        try:
            out += fn(s)
            log(f"report: {name} ok")
        except (FileNotFoundError, LookupError, KeyError, ValueError) as e:
            missing.append(name)
            out += [
                f"## {name}",
                "",
                f"Not available: {e}. Run `{script}`{' --quick' if quick else ''}.",
                "",
            ]
            log(f"report: {name} missing ({e})")
    path = RESULTS / f"REPORT{s.suffix}.md"
    path.write_text("\n".join(out))
    log(f"wrote {path} ({len(SECTIONS) - len(missing)}/{len(SECTIONS)} sections)")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="use the *_quick reports")
    ap.add_argument("--results", type=Path, help="the results folder (default: beside this file)")
    args = ap.parse_args(argv)
    build(args.quick, results=args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
