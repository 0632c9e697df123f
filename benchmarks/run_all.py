"""Run every benchmark under ``benchmarks/`` one after the other, then assemble the report.

    .venv/bin/python benchmarks/run_all.py             # full sizes (hours): the published numbers
    .venv/bin/python benchmarks/run_all.py --quick     # minutes each: *_quick reports
    .venv/bin/python benchmarks/run_all.py --only store ofa
    .venv/bin/python benchmarks/run_all.py --list      # what would run, and nothing else

``make bench`` (full) and ``make bench QUICK=1`` call it. Benchmarks run one at a time (side
by side comparisons happen inside each benchmark, in one run, so each ratio is measured under
the same load); peers (SCALE-Sim, ZigZag) are installed by their benchmark into
``benchmarks/.peers/``. A failing benchmark is reported and the others still run; the exit
status is 1 when any failed. The report (``benchmarks/report.py``) is rebuilt at the end from
whatever results exist, and says which sections are missing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=lambda: ["--quick"])


BENCHES = [
    Bench("scalesim", "benchmarks/hwmodels/scalesim_compare.py"),
    Bench("zigzag", "benchmarks/hwmodels/zigzag_compare.py"),
    Bench(
        "build_time",
        "benchmarks/spaces/build_time.py",
        quick=["--out", str(RESULTS / "spaces_build_time_quick.md")],
    ),
    Bench(
        "marl",
        "benchmarks/search/marl_compare.py",
        quick=["--quick", "--out", str(RESULTS / "search_marl_quick.md")],
    ),
    Bench("marl_sweep", "benchmarks/search/marl_sweep.py"),
    Bench("bayesian", "benchmarks/search/bayesian_compare.py", full=["--jobs", "2"]),
    Bench("bayesian_bound", "benchmarks/search/bayesian_bound.py"),
    Bench("early_stop", "benchmarks/search/early_stop.py"),
    Bench("darts", "benchmarks/darts/darts_bench.py"),
    Bench("ofa", "benchmarks/ofa/ofa_bench.py"),
    Bench("fewshot", "benchmarks/predictors/fewshot_bench.py"),
    Bench("fewshot_ceiling", "benchmarks/predictors/fewshot_ceiling.py"),
    Bench("accuracy_hybrid", "benchmarks/predictors/accuracy_hybrid_bench.py"),
    Bench("store", "benchmarks/store/throughput.py"),
    Bench("screening", "benchmarks/store/screening.py"),
    Bench("workers", "benchmarks/store/workers.py"),
    Bench("queries_100k", "benchmarks/store/queries_100k.py"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run every cosearch benchmark, then REPORT.md.")
    ap.add_argument("--quick", action="store_true", help="small sizes: minutes per benchmark")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    ap.add_argument("--list", action="store_true", help="print the plan and run nothing")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the report")
    args = ap.parse_args(argv)
    names = [b.name for b in BENCHES]
    for n in args.only or []:
        if n not in names:
            print(f"run_all: unknown benchmark {n!r}; known: {', '.join(names)}", file=sys.stderr)
            return 2
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    if args.report_only:
        chosen = []
    env = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
    failed: list[str] = []
    t_all = time.perf_counter()
    for b in chosen:
        cmd = [sys.executable, b.script, *(b.quick if args.quick else b.full)]
        print(f"== {b.name}: {' '.join(cmd[1:])}", flush=True)
        if args.list:
            continue
        if not (ROOT / b.script).exists():
            print(f"   missing script {b.script}", flush=True)
            failed.append(b.name)
            continue
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        took = time.perf_counter() - t0
        print(f"   {b.name}: exit {rc} after {took / 60:.1f} min", flush=True)
        if rc != 0:
            failed.append(b.name)
    if args.list:
        return 0
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report

    report.build(args.quick)
    print(
        f"run_all: {len(chosen) - len(failed)}/{len(chosen)} benchmarks ok in "
        f"{(time.perf_counter() - t_all) / 60:.1f} min"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
