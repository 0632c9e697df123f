"""cosearch's ``systolic`` compute cycles against SCALE-Sim 3.0.0, layer by layer, same run.

    .venv/bin/python benchmarks/hwmodels/scalesim_compare.py            # full, ~15 min, 2 cores
    .venv/bin/python benchmarks/hwmodels/scalesim_compare.py --quick    # a few minutes
    .venv/bin/python benchmarks/hwmodels/scalesim_compare.py --plan     # list jobs, run nothing

SCALE-Sim is installed by the benchmark itself into ``benchmarks/.peers/scalesim`` (see
``_peers.py``; ``--install`` forces a reinstall) and run through ``_scalesim_driver.py``.

For every (layer, array, dataflow) job the benchmark records SCALE-Sim's compute cycles and
cosearch's ``SystolicCostModel().layer_cost(layer, acc).compute_cycles``, their relative error,
and each tool's wall time for that layer. Jobs whose predicted SCALE-Sim work exceeds a per-array
cap (SCALE-Sim simulates every cycle in Python, ~0.1-1 ms per cycle) are not simulated; the
report lists them. Results: ``benchmarks/results/hwmodels_scalesim{,_quick}.{md,csv}``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _peers  # benchmarks/hwmodels/ is on sys.path when this file runs as a script
from _scalesim_layers import Entry, catalogue

from cosearch.hwmodels import Accelerator, Layer
from cosearch.hwmodels.systolic import SystolicCostModel, gemm_view, scalesim_compute_cycles
from cosearch.spaces import parse_accelerator

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
SCALESIM = _peers.Peer(
    name="scalesim",
    distribution="scalesim",
    version="3.0.0",
    # scalesim 3.0.0 pins no numpy; NumPy 2.4 turned the int(1-element array) conversions it
    # relies on (memory/double_buffered_scratchpad_mem.py) into a TypeError.
    requirements=("scalesim==3.0.0", "numpy<2.4"),
)
ARRAYS = (8, 32, 128)
DATAFLOWS = ("os", "ws", "is")
#: Per-array cap on the predicted SCALE-Sim cycles of one job (its run time is about
#: proportional: it steps through every cycle). Chosen so that a full run takes ~15 min on a
#: 2-core machine; the report lists every job left out.
CAPS = {8: 80_000, 32: 50_000, 128: 12_000}
QUICK_CAPS = {8: 10_000, 32: 6_000, 128: 2_500}
#: Rough SCALE-Sim seconds per simulated cycle on the machine this was written on, only for
#: --plan and for ordering; the report uses the rates measured in the run.
PLAN_S_PER_CYCLE = {8: 1.3e-4, 32: 2.0e-4, 128: 5e-4}
PLAN_S_PER_JOB = 0.05
#: The depthwise layer also run through SCALE-Sim's own per-channel expansion (full mode).
DP_CHECK = ("mobilenet_v2", "b13.dw", 8)
COSEARCH_REPS = 200


# -- SCALE-Sim inputs ------------------------------------------------------------------------
def scalesim_row(layer: Layer, name: str) -> tuple[list[Any], int]:
    """A SCALE-Sim topology row for one group of ``layer``, and how many groups there are.

    SCALE-Sim topologies are unpadded and have one stride: the IFMAP given is the extent the
    output windows read, ``(p - 1) * stride + r``, so SCALE-Sim's ``ceil((H - R + S) / S)``
    gives back ``p``. A gemm ``(M x K) @ (K x N)`` is a 1x1 conv on an ``M x 1`` IFMAP with
    ``K`` channels and ``N`` filters. SCALE-Sim has no groups: one group (one channel of a
    depthwise layer) is simulated; the groups are identical and independent.
    """
    if layer.n != 1:
        raise ValueError(f"SCALE-Sim runs batch 1 only; layer {name!r} has n={layer.n}")
    g = layer.groups
    ifh = (layer.p - 1) * layer.stride + layer.r
    ifw = (layer.q - 1) * layer.stride + layer.s
    return [name, ifh, ifw, layer.r, layer.s, layer.c // g, layer.k // g, layer.stride], g


def accelerator(array: int, dataflow: str) -> Accelerator:
    return parse_accelerator(f"systolic:pe_rows={array},pe_cols={array},dataflow={dataflow}")


def sram_kib(acc: Accelerator) -> list[int]:
    return [int(acc[k]) for k in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib")]


def predicted_cycles(layer: Layer, array: int, dataflow: str) -> int:
    """SCALE-Sim's work for one group of ``layer``: the cycles it will step through."""
    _, sr, sc, t = gemm_view(layer, dataflow)
    return scalesim_compute_cycles(sr, sc, t, array, array, dataflow)


def scalesim_cycles(report: dict[str, float]) -> int:
    """Cycles of one SCALE-Sim layer: "Total Cycles" - "Stall Cycles" + 1.

    scalesim 3.0.0 reports as "Total Cycles" the largest cycle index at which an OFMAP row was
    written, counting from cycle 0 (double_buffered_scratchpad.service_memory_requests), i.e.
    the number of cycles minus one; "Stall Cycles" are 0 in CALC bandwidth mode.
    """
    return int(report["total_cycles"] - report["stall_cycles"]) + 1


# -- cosearch side ---------------------------------------------------------------------------
def time_cosearch(model: SystolicCostModel, layer: Layer, acc: Accelerator) -> tuple[int, float]:
    """(compute cycles, seconds per ``layer_cost`` call). ``layer_cost`` is the uncached pure
    function (``evaluate`` memoizes it; this bypasses that); the per-accelerator constants it
    derives once per accelerator are warmed by one untimed call first."""
    cycles = int(model.layer_cost(layer, acc).compute_cycles)
    t0 = time.perf_counter()
    for _ in range(COSEARCH_REPS):
        model.layer_cost(layer, acc)
    return cycles, (time.perf_counter() - t0) / COSEARCH_REPS


# -- the run ---------------------------------------------------------------------------------
@dataclass
class Job:
    entry: Entry
    array: int
    dataflow: str
    predicted: int  # per group
    groups: int
    topo: list[Any]
    key: tuple[Layer, int, str]


def plan(entries: list[Entry], caps: dict[int, int]) -> tuple[list[Job], list[Job]]:
    run: list[Job] = []
    skipped: list[Job] = []
    for array in ARRAYS:
        for df in DATAFLOWS:
            for i, e in enumerate(entries):
                row, groups = scalesim_row(e.layer, f"L{i}")
                job = Job(
                    e, array, df, predicted_cycles(e.layer, array, df), groups, row,
                    (e.layer, array, df),
                )  # fmt: skip
                (run if job.predicted <= caps[array] else skipped).append(job)
    return run, skipped


def estimate_s(job: Job, rate: dict[int, float] | None = None) -> float:
    per_cycle = (rate or PLAN_S_PER_CYCLE)[job.array]
    return PLAN_S_PER_JOB + job.predicted * per_cycle


def run_scalesim(
    jobs: list[Job], timeout_s: float
) -> tuple[dict[str, str], dict[tuple[Layer, int, str], Any]]:
    """(versions header, SCALE-Sim result per unique job key)."""
    unique: dict[tuple[Layer, int, str], Job] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    request = {
        "jobs": [
            {
                "id": str(n),
                "rows": j.array,
                "cols": j.array,
                "dataflow": j.dataflow,
                "sram_kib": sram_kib(accelerator(j.array, j.dataflow)),
                "topology": [j.topo],
            }
            for n, j in enumerate(unique.values())
        ]
    }
    start = time.monotonic()

    def progress(n: int) -> None:
        done = max(n - 1, 0)  # the first line is the header
        print(
            f"  SCALE-Sim {done}/{len(unique)} jobs, {time.monotonic() - start:.0f} s", flush=True
        )

    results = _peers.run_driver(
        SCALESIM, HERE / "_scalesim_driver.py", request, timeout_s=timeout_s, progress=progress
    )
    header = results[0]["header"]
    by_id = {r["id"]: r for r in results[1:]}
    return header, {key: by_id[str(n)] for n, key in enumerate(unique)}


def dp_check(entries: list[Entry], timeout_s: float) -> dict[str, Any] | None:
    """Run one depthwise layer through SCALE-Sim's own per-channel expansion (a topology row
    named ``DP...``) on every dataflow, and compare the summed cycles with cosearch."""
    net, name, array = DP_CHECK
    entry = next((e for e in entries if (e.network, e.name) == (net, name)), None)
    if entry is None:
        return None
    layer = entry.layer
    row, groups = scalesim_row(layer, "DPcheck")  # "DP" in the name: SCALE-Sim's expansion
    row[5] = groups  # all channels; SCALE-Sim runs one single-channel layer per channel
    request = {
        "jobs": [
            {
                "id": df,
                "rows": array,
                "cols": array,
                "dataflow": df,
                "sram_kib": sram_kib(accelerator(array, df)),
                "topology": [row],
            }
            for df in DATAFLOWS
        ]
    }
    results = _peers.run_driver(
        SCALESIM, HERE / "_scalesim_driver.py", request, timeout_s=timeout_s
    )
    model, checks = SystolicCostModel(), []
    for res in results[1:]:
        df = res["id"]
        ss = sum(scalesim_cycles(lr) for lr in res["layers"])
        cs = int(model.layer_cost(layer, accelerator(array, df)).compute_cycles)
        checks.append(
            {
                "dataflow": df,
                "layers_run": len(res["layers"]),
                "scalesim": ss,
                "cosearch": cs,
                "seconds": res["seconds"],
            }
        )
    return {"entry": entry, "array": array, "rows": checks}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smaller caps: ~2 min instead of ~15")
    ap.add_argument("--install", action="store_true", help="(re)install SCALE-Sim into its venv")
    ap.add_argument("--plan", action="store_true", help="list the jobs and estimates; run nothing")
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where the .md/.csv go")
    ap.add_argument("--timeout-s", type=float, default=3600.0, help="SCALE-Sim time limit")
    args = ap.parse_args(argv)

    entries = catalogue()
    caps = QUICK_CAPS if args.quick else CAPS
    jobs, skipped = plan(entries, caps)
    est = sum(estimate_s(j) for j in {j.key: j for j in jobs}.values())
    print(
        f"{len(entries)} layers, {len(jobs)} jobs to simulate (~{est / 60:.1f} min by the "
        f"planning rates), {len(skipped)} over the caps {caps}"
    )
    if args.plan:
        for j in jobs:
            print(f"  {j.array:>3} {j.dataflow} {j.entry.network}/{j.entry.name}: {j.predicted}")
        return 0

    version = _peers.ensure_peer(SCALESIM, install=args.install)
    print(f"scalesim {version} in {SCALESIM.venv}")

    model = SystolicCostModel()
    cos: dict[tuple[Layer, int, str], tuple[int, float]] = {}
    for j in jobs + skipped:
        if j.key not in cos:
            cos[j.key] = time_cosearch(model, j.entry.layer, accelerator(j.array, j.dataflow))
    t0 = time.monotonic()
    header, sim = run_scalesim(jobs, args.timeout_s)
    sim_wall = time.monotonic() - t0
    dp = None if args.quick else dp_check(entries, args.timeout_s)

    rows = [_row(j, sim[j.key], cos[j.key]) for j in jobs]
    suffix = "_quick" if args.quick else ""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.out_dir / f"hwmodels_scalesim{suffix}.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cmd = "python benchmarks/hwmodels/scalesim_compare.py" + (" --quick" if args.quick else "")
    md = render(
        rows=rows,
        skipped=skipped,
        caps=caps,
        dp=dp,
        header=header,
        machine=_peers.machine_info(),
        command=f".venv/bin/{cmd}",
        sim_wall_s=sim_wall,
        csv_name=csv_path.name,
        entries=entries,
        model_version=model.version,
        when=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    md_path = args.out_dir / f"hwmodels_scalesim{suffix}.md"
    md_path.write_text(md)
    bad = [r for r in rows if abs(r["rel_err"]) > 0.01]
    print(f"wrote {md_path} and {csv_path}: {len(rows)} jobs, {len(bad)} outside 1%")
    return 0


# -- the report ------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.3f}%"


def _secs(x: float) -> str:
    return f"{x:.3g}"


def _err_table(rows: list[dict[str, Any]], key: str, values: Sequence[Any]) -> list[str]:
    out = []
    for v in values:
        sel = [r for r in rows if r[key] == v]
        if not sel:
            continue
        errs = [abs(r["rel_err"]) for r in sel]
        raw = max(abs(r["rel_err_vs_raw_total"]) for r in sel)
        within = sum(e <= 0.01 for e in errs)
        out.append(
            f"| {v} | {len({(r['network'], r['layer']) for r in sel})} | {len(sel)} | "
            f"{_pct(max(errs))} | {_pct(statistics.fmean(errs))} | {within}/{len(sel)} | "
            f"{_pct(raw)} |"
        )
    return out


def render(
    *,
    rows: list[dict[str, Any]],
    skipped: list[Job],
    caps: dict[int, int],
    dp: dict[str, Any] | None,
    header: dict[str, str],
    machine: dict[str, Any],
    command: str,
    sim_wall_s: float,
    csv_name: str,
    entries: list[Entry],
    model_version: str,
    when: str,
) -> str:
    """The Markdown report of one run."""
    errs = [abs(r["rel_err"]) for r in rows]
    within = sum(e <= 0.01 for e in errs)
    layers = {(r["network"], r["layer"]) for r in rows}
    direct = [r for r in rows if r["scalesim_runs"] == 1]
    med_ss = statistics.median(r["scalesim_seconds"] for r in direct)
    med_cs = statistics.median(r["cosearch_seconds"] for r in direct)
    worst_ratio = min(r["scalesim_seconds"] / r["cosearch_seconds"] for r in direct)
    rate = {}
    for a in ARRAYS:
        per = [
            r["scalesim_seconds"] / (r["scalesim_compute_cycles"] / r["scalesim_runs"])
            for r in rows
            if r["array_rows"] == a and r["scalesim_compute_cycles"] / r["scalesim_runs"] > 2000
        ]
        rate[a] = statistics.median(per) if per else PLAN_S_PER_CYCLE[a]
    lines = [
        "# cosearch `systolic` vs SCALE-Sim: compute cycles per layer",
        "",
        f"Generated {when} by `{command}` (from the repository root; it installs SCALE-Sim",
        "into `benchmarks/.peers/scalesim` when missing). Per-job numbers: "
        f"[`{csv_name}`]({csv_name}).",
        "",
        "## Setup",
        "",
        f"- Machine: `platform.processor()` = `{machine['processor'] or '(empty)'}`, CPU "
        f"`{machine['cpu_model']}`, {machine['cpu_count']} logical cores "
        f"({machine['usable_cores']} usable), {machine['platform']}. The machine was "
        "shared with other processes; the benchmark itself runs one job at a time.",
        f"- cosearch side: Python {machine['python']}, `SystolicCostModel` version "
        f"`{model_version}`.",
        f"- SCALE-Sim side: scalesim {header['scalesim']} (PyPI), numpy {header['numpy']}, "
        f"Python {header['python']}, in its own venv, driven by `_scalesim_driver.py`.",
        f"- Arrays {', '.join(f'{a}x{a}' for a in ARRAYS)}; dataflows "
        f"{', '.join(DATAFLOWS)}; SRAMs 128 KiB each (cosearch's reference design, given to "
        "both); SCALE-Sim `InterfaceBandwidth = CALC` (stall-free: every job reported 0 stall "
        "cycles)."
        if all(r["scalesim_stall_cycles"] == 0 for r in rows)
        else "- SCALE-Sim reported stall cycles in some jobs: see the CSV.",
        f"- Layers: {len(entries)} distinct conv/gemm shapes (batch 1) from ResNet-18, AlexNet "
        "and MobileNetV2 at 224x224 (tables with sources in `_scalesim_layers.py`) and from "
        "cosearch's `nb201` space (`extract_layers` on the cells listed there).",
        "",
        "## Result",
        "",
        f"- **{within} of {len(rows)} jobs within 1%** ({len(layers)} of the {len(entries)} "
        f"layers had jobs under the caps, each on up to {len(ARRAYS) * len(DATAFLOWS)} "
        "array/dataflow pairs); largest |relative error| "
        f"{_pct(max(errs))}, mean {_pct(statistics.fmean(errs))}.",
        f"- **Speed: median SCALE-Sim {_secs(med_ss)} s per layer / median cosearch "
        f"{_secs(med_cs)} s per layer = {med_ss / med_cs:,.0f}x**; the slowest-ratio single "
        f"job is still {worst_ratio:,.0f}x (over the {len(direct)} jobs without groups; "
        f"SCALE-Sim took {sim_wall_s / 60:.1f} min in all). Wall times on this shared machine "
        "vary from run to run with the load of other processes; both tools ran in the same "
        "run, cosearch first.",
        "",
        "Relative error is `(cosearch - SCALE-Sim) / SCALE-Sim` of compute cycles.",
        "",
        "| dataflow | layers | jobs | max abs rel err | mean abs rel err | within 1% "
        "| max vs raw Total Cycles |",
        "|---|---|---|---|---|---|---|",
        *_err_table(rows, "dataflow", DATAFLOWS),
        "",
        "| array | layers | jobs | max abs rel err | mean abs rel err | within 1% "
        "| max vs raw Total Cycles |",
        "|---|---|---|---|---|---|---|",
        *_err_table(rows, "array_rows", ARRAYS),
        "",
        "| network | layers | jobs | max abs rel err | mean abs rel err | within 1% "
        "| max vs raw Total Cycles |",
        "|---|---|---|---|---|---|---|",
        *_err_table(rows, "network", sorted({r["network"] for r in rows})),
        "",
        "Speed per array (jobs without groups; seconds per layer):",
        "",
        "| array | jobs | median SCALE-Sim s | median cosearch s | ratio of medians |",
        "|---|---|---|---|---|",
    ]
    for a in ARRAYS:
        sel = [r for r in direct if r["array_rows"] == a]
        if sel:
            ss = statistics.median(r["scalesim_seconds"] for r in sel)
            cs = statistics.median(r["cosearch_seconds"] for r in sel)
            lines.append(f"| {a}x{a} | {len(sel)} | {_secs(ss)} | {_secs(cs)} | {ss / cs:,.0f}x |")
    bad = [r for r in rows if abs(r["rel_err"]) > 0.01]
    lines += ["", "## Jobs outside 1%", ""]
    if not bad:
        lines.append("None.")
    for r in bad:
        lines.append(
            f"- {r['network']}/{r['layer']} {r['array_rows']}x{r['array_cols']} "
            f"{r['dataflow']}: cosearch {r['cosearch_compute_cycles']}, SCALE-Sim "
            f"{r['scalesim_compute_cycles']} ({_pct(r['rel_err'])})"
        )
    lines += [
        "",
        "## What is compared, and how",
        "",
        "- **SCALE-Sim's compute cycles** = COMPUTE_REPORT.csv `Total Cycles` - `Stall Cycles` "
        "+ 1. scalesim 3.0.0 reports as `Total Cycles` the 0-based index of the last cycle in "
        "which an OFMAP row is written (`max` of the serviced cycles in "
        "`double_buffered_scratchpad.service_memory_requests`), i.e. the cycle count minus one; "
        "stalls are included in it and reported separately (0 here). The column `max vs raw "
        "Total Cycles` above compares against the unconverted number. `Total Cycles (incl. "
        "prefetch)` (the DRAM prefill before compute) is recorded in the CSV, not compared.",
        "- **cosearch's compute cycles** = `SystolicCostModel().layer_cost(layer, acc)"
        ".compute_cycles`, with `acc = parse_accelerator('systolic:pe_rows=R,pe_cols=R,"
        "dataflow=D')`.",
        "- **Padding and strides.** SCALE-Sim takes unpadded IFMAPs and one stride; each layer "
        "is given the IFMAP extent its output windows read, `(P - 1) * stride + R`, so "
        "SCALE-Sim's `ceil((H - R + stride) / stride)` reproduces the output size P. A gemm "
        "`(M x K) @ (K x N)` is a 1x1 conv on an `M x 1` IFMAP with K channels and N filters.",
        "- **Depthwise layers** (MobileNetV2 `*.dw`): SCALE-Sim has no groups; its own "
        "convention (a topology row named `DP...`) runs one single-channel, single-filter "
        "layer per channel. The benchmark simulates one channel and multiplies its cycles "
        "by the channel count (channels are identical and SCALE-Sim simulates layers "
        "independently); the check below runs one layer through SCALE-Sim's full `DP` "
        "expansion. cosearch maps depthwise the same way (`gemm_view`: C GEMMs of one filter).",
        "- **Timing.** SCALE-Sim: per job, inside the driver process (imports and interpreter "
        "start-up excluded): constructing `scalesim(...)` (parses the .cfg and topology CSV), "
        "`run_scale()` and reading COMPUTE_REPORT.csv back; `save_disk_space=True`, so no "
        "traces are written. For depthwise jobs that is one channel, which is why they are "
        f"left out of the speed ratio. cosearch: mean of {COSEARCH_REPS} calls of "
        "`model.layer_cost(layer, acc)` (the whole LayerCost: cycles, DRAM, SRAM, energy) "
        "after one untimed call that caches the per-accelerator constants; `layer_cost` itself "
        "is not memoized (`evaluate` memoizes it, and is bypassed). Both `time.perf_counter`.",
        "- **Formula.** cosearch uses SCALE-Sim's mapping (OS `Sr, Sc, T = pixels, filters, "
        "window`; WS `window, filters, pixels`; IS `window, pixels, filters`) and per fold "
        "`2R + C + T - 2` cycles for WS and IS, `R + C + T - 2` for OS (no stationary preload), "
        "times `ceil(Sr / R) * ceil(Sc / C)` folds (`scalesim_compute_cycles`).",
    ]
    if dp is not None:
        e = dp["entry"]
        lines += [
            "",
            f"## Depthwise check: {e.network}/{e.name} through SCALE-Sim's `DP` expansion",
            "",
            f"{e.layer.c} channels, {e.layer.p}x{e.layer.q} outputs, {dp['array']}x"
            f"{dp['array']} array; SCALE-Sim ran one layer per channel and the cycles are "
            "summed over them.",
            "",
            "| dataflow | SCALE-Sim layers run | SCALE-Sim cycles | cosearch cycles | rel err "
            "| SCALE-Sim s (all channels) |",
            "|---|---|---|---|---|---|",
        ]
        for d in dp["rows"]:
            err = (d["cosearch"] - d["scalesim"]) / d["scalesim"]
            lines.append(
                f"| {d['dataflow']} | {d['layers_run']} | {d['scalesim']} | {d['cosearch']} | "
                f"{_pct(err)} | {_secs(d['seconds'])} |"
            )
    by_layer: dict[tuple[str, str], list[Job]] = {}
    for j in skipped:
        by_layer.setdefault((j.entry.network, j.entry.name), []).append(j)
    total_est = sum(estimate_s(j, rate) * j.groups for j in skipped)
    lines += [
        "",
        "## Not simulated",
        "",
        f"{len(skipped)} jobs were left out because SCALE-Sim would step through more than "
        f"{', '.join(f'{caps[a]:,} cycles on {a}x{a}' for a in ARRAYS)} (per group). At the "
        "seconds per cycle measured in this run "
        f"({', '.join(f'{a}x{a}: {rate[a] * 1e3:.2f} ms' for a in ARRAYS)}) they would take "
        f"about {total_est / 3600:.1f} h. cosearch evaluated them all (not compared).",
        "",
        "| network/layer | left out (array: dataflows) | largest predicted cycles | est. "
        "SCALE-Sim time |",
        "|---|---|---|---|",
    ]
    for (net, name), js in by_layer.items():
        where = "; ".join(
            f"{a}: {','.join(j.dataflow for j in js if j.array == a)}"
            for a in ARRAYS
            if any(j.array == a for j in js)
        )
        est = sum(estimate_s(j, rate) * j.groups for j in js)
        lines.append(
            f"| {net}/{name} | {where} | {max(j.predicted * j.groups for j in js):,} | "
            f"{est / 60:,.1f} min |"
        )
    return "\n".join(lines) + "\n"


def _row(job: Job, res: dict[str, Any], cos: tuple[int, float]) -> dict[str, Any]:
    (report,) = res["layers"]
    layer, g = job.entry.layer, job.groups
    ss = scalesim_cycles(report) * g
    raw = int(report["total_cycles"] - report["stall_cycles"]) * g
    cycles, cos_s = cos
    return {
        "network": job.entry.network,
        "layer": job.entry.name,
        "kind": layer.kind,
        "n": layer.n,
        "c": layer.c,
        "k": layer.k,
        "h": layer.h,
        "w": layer.w,
        "p": layer.p,
        "q": layer.q,
        "r": layer.r,
        "s": layer.s,
        "stride": layer.stride,
        "groups": layer.groups,
        "array_rows": job.array,
        "array_cols": job.array,
        "dataflow": job.dataflow,
        "scalesim_topology": " ".join(str(v) for v in job.topo[1:]),
        "scalesim_runs": g,
        "scalesim_total_cycles_incl_prefetch": int(report["total_cycles_incl_prefetch"]),
        "scalesim_total_cycles": int(report["total_cycles"]),
        "scalesim_stall_cycles": int(report["stall_cycles"]),
        "scalesim_overall_util_pct": round(report["overall_util_pct"], 3),
        "scalesim_compute_cycles": ss,
        "cosearch_compute_cycles": cycles,
        "rel_err": (cycles - ss) / ss,
        "rel_err_vs_raw_total": (cycles - raw) / raw,
        "scalesim_seconds": res["seconds"],
        "cosearch_seconds": cos_s,
    }


if __name__ == "__main__":
    sys.exit(main())
