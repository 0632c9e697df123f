"""`cosearch worker` scale-out alone: 1, 2 and 4 worker processes on one campaign, SQLite and
PostgreSQL, in one run (part (d) of ``throughput.py`` without the rest, so it can be repeated
in a quiet moment of a shared machine).

    .venv/bin/python benchmarks/store/workers.py [--trials 120] [--pg-url URL | --no-pg]

Writes ``benchmarks/results/store_workers.{md,json}``. Without ``--pg-url`` it starts a
throwaway server with ``.ci/pg.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as tp  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=120)
    ap.add_argument("--pg-url", help="a PostgreSQL server URL instead of starting one")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--quick", action="store_true", help="--trials 40; *_quick report")
    args = ap.parse_args(argv)
    suffix = "_quick" if args.quick else ""
    if args.quick:
        args.trials = 40
    tp.quiet()
    folder = Path(tempfile.mkdtemp())
    pg, started = args.pg_url, None
    if not pg and not args.no_pg:
        # its own top-level folder: the server runs as the postgres user, which cannot enter
        # the private folder holding the SQLite files
        started = Path(tempfile.mkdtemp(prefix="cosearch-pg-"))
        r = subprocess.run(
            ["bash", str(ROOT / ".ci" / "pg.sh"), "start", str(started), "55441"],
            capture_output=True,
            text=True,
        )
        pg = r.stdout.strip().splitlines()[-1] if r.returncode == 0 else None
        if pg is None:
            print(f"no PostgreSQL (.ci/pg.sh failed): {r.stderr.strip()[-300:]}", file=sys.stderr)
    res: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    try:
        for backend in ["sqlite"] + (["postgresql"] if pg else []):
            for k in (1, 2, 4):
                url = (
                    tp.sqlite_url(folder, f"w{k}")
                    if backend == "sqlite"
                    else tp.pg_db(str(pg), f"workers{k}")
                )
                res[f"{backend}:{k}"] = d = tp.workers(url, k, args.trials, folder)
                print(f"{backend} x{k}: {d['rate']:.2f} trials/s", flush=True)
    finally:
        if started is not None:
            subprocess.run(["bash", str(ROOT / ".ci" / "pg.sh"), "stop", str(started)])
    out = {
        "workers": res,
        "trials": args.trials,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "seconds": time.perf_counter() - t0,
        "machine": tp.machine(),
        "versions": tp.versions(),
    }
    results = ROOT / "benchmarks" / "results"
    (results / f"store_workers{suffix}.json").write_text(json.dumps(out, indent=1))
    lines = [
        "# `cosearch worker` scale-out (1, 2, 4 processes on one campaign)",
        "",
        f"Command: `.venv/bin/python benchmarks/store/workers.py --trials {args.trials}`; "
        f"{out['seconds'] / 60:.1f} min. Machine: {out['machine']}; load average before "
        f"{', '.join(f'{x:.1f}' for x in load_before)}, after "
        f"{', '.join(f'{x:.1f}' for x in out['load_after'])}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in out["versions"].items())
        + ". Quickstart problem, random strategy, real evaluation; trials/s from the trials' "
        "timestamps (first start to last completion). The PostgreSQL server runs on the same "
        "cores.",
        "",
        "| backend | workers | trials/s | vs 1 worker | steady-state trials/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, d in res.items():
        backend, k = key.split(":")
        base = res[f"{backend}:1"]["rate"]
        lines.append(
            f"| {backend} | {k} | {d['rate']:.2f} | {d['rate'] / base:.2f} | {d['steady']:.2f} |"
        )
    (results / f"store_workers{suffix}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote benchmarks/results/store_workers{suffix}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
