"""The CLI's reads at 100,000 trials, alone (part (e) of ``throughput.py`` without the rest,
so it can be repeated while the machine is quiet): fill one SQLite campaign with 100,000
finished trials through the batched path, then time each query (best of 3, wall and CPU).

    .venv/bin/python benchmarks/store/queries_100k.py [--trials 100000] [--pool 2000]

Writes ``benchmarks/results/store_queries_100k.md``. The trials cycle over ``--pool``
evaluated nb201 x systolic candidates (250 architectures), so many share values and the
front holds more trials than a real campaign's would.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as tp  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="--trials 20000; *_quick report")
    args = ap.parse_args(argv)
    suffix = "_quick" if args.quick else ""
    if args.quick:
        args.trials = 20000
    tp.quiet()
    folder = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    pool, _ = tp.make_pool(args.pool, 250, procs=1)
    c, rate = tp.fill_big(tp.sqlite_url(folder, "big"), pool, args.trials)
    load_before = os.getloadavg()
    res = tp.query_suite(c.store, repeat=3)
    load_after = os.getloadavg()
    front = int(res.pop("front size")[0])
    lines = [
        f"# The CLI's reads at {args.trials:,} trials (SQLite)",
        "",
        f"Command: `.venv/bin/python benchmarks/store/queries_100k.py --trials {args.trials} "
        f"--pool {args.pool}` ({(time.perf_counter() - t0) / 60:.1f} min). Machine: "
        f"{tp.machine()}; load average before the queries "
        f"{', '.join(f'{x:.1f}' for x in load_before)}, after "
        f"{', '.join(f'{x:.1f}' for x in load_after)}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in tp.versions().items())
        + f". Written through `BatchWriter` in batches of 1,000 at {rate:,.0f} trials/s; "
        f"the front holds {front:,} trials. Best of 3 runs per query.",
        "",
        "| query | wall s | CPU s |",
        "|---|---:|---:|",
        *[f"| {k} | {w:.3f} | {cpu:.3f} |" for k, (w, cpu) in res.items()],
        "",
    ]
    out = ROOT / "benchmarks" / "results" / f"store_queries_100k{suffix}.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
