"""Time to build one candidate's ONNX model, for every registered network space.

For each space in ``cosearch.list_spaces()`` at its default options, this draws N random
candidates with a seeded numpy Generator and times ``space.build(params).onnx()`` for each
(validation, canonical form, digest and the ONNX build; sampling is done before the clock
starts). One warm-up build per space runs first and is reported on its own ("first"), because it
also pays one-off costs such as a shared weight pool. Spaces that cannot be created without
options (e.g. a fixed user model) are listed as skipped.

Prints a markdown table of mean / median / p95 milliseconds per candidate and writes it, with
the machine (processor, cores, Python, onnx and numpy versions), to
``benchmarks/results/spaces_build_time.md`` (or ``--out``).

Usage::

    .venv/bin/python benchmarks/spaces/build_time.py [-n 200] [--seed 0] [--spaces a,b] [--out F]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx

import cosearch
from cosearch.errors import CosearchInputError

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results" / "spaces_build_time.md"


@dataclass(frozen=True)
class Timing:
    space: str
    n: int
    first_ms: float
    mean_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float
    mean_cpu_ms: float
    mean_onnx_mb: float


def time_space(name: str, n: int, seed: int) -> Timing | str:
    """The build timings of ``n`` random candidates of ``name``, or why it was skipped."""
    rng = np.random.default_rng(seed)
    try:
        space = cosearch.get_space(name)
        warm = space.sample(rng)
        start = time.perf_counter()
        space.build(warm).onnx()
        first_ms = (time.perf_counter() - start) * 1e3
    except (CosearchInputError, TypeError) as exc:
        return f"skipped: needs options to build ({_one_line(exc)})"

    samples = [space.sample(rng) for _ in range(n)]
    times_ms = []
    cpu_ms = []
    sizes = []
    for params in samples:
        start, cpu_start = time.perf_counter(), time.process_time()
        model = space.build(params).onnx()
        times_ms.append((time.perf_counter() - start) * 1e3)
        cpu_ms.append((time.process_time() - cpu_start) * 1e3)
        sizes.append(model.ByteSize())
    t = np.asarray(times_ms)
    return Timing(
        space=name,
        n=n,
        first_ms=first_ms,
        mean_ms=float(t.mean()),
        median_ms=float(np.median(t)),
        p95_ms=float(np.percentile(t, 95)),
        max_ms=float(t.max()),
        mean_cpu_ms=float(np.mean(cpu_ms)),
        mean_onnx_mb=float(np.mean(sizes)) / 1e6,
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.replace("|", "\\|")


def machine() -> str:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return (
        f"processor: {platform.processor() or platform.machine()}; cores: {cores} "
        f"({usable} usable); {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; onnx {onnx.__version__}; numpy {np.__version__}; "
        f"cosearch {cosearch.__version__}"
        + (f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    )


def report(results: list[Timing | str], names: list[str], n: int, seed: int) -> str:
    lines = [
        "# ONNX build time per candidate (default options)",
        "",
        f"`benchmarks/spaces/build_time.py -n {n} --seed {seed}`, "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}.",
        "",
        "Time of `space.build(params).onnx()` for random candidates (after one warm-up build, "
        "shown as *first*): wall-clock, and the process's CPU time (*cpu ms*, less sensitive to "
        "other processes on a shared machine; a single-threaded build uses no more CPU than "
        "wall time unless a library spawns threads).",
        "",
        "| space | n | mean ms | median ms | p95 ms | max ms | cpu ms | first ms | ONNX MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    skipped = []
    for name, r in zip(names, results):
        if isinstance(r, str):
            skipped.append(f"- `{name}`: {r}")  # skipped or failed
            continue
        lines.append(
            f"| `{r.space}` | {r.n} | {r.mean_ms:.2f} | {r.median_ms:.2f} | {r.p95_ms:.2f} | "
            f"{r.max_ms:.2f} | {r.mean_cpu_ms:.2f} | {r.first_ms:.2f} | {r.mean_onnx_mb:.2f} |"
        )
    if skipped:
        lines += ["", "Not timed:", *skipped]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="candidates per space (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator")
    ap.add_argument("--spaces", default="", help="comma-separated names (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file to write")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("-n must be at least 1")
    names = [s.strip() for s in args.spaces.split(",") if s.strip()] or cosearch.list_spaces()
    unknown = sorted(set(names) - set(cosearch.list_spaces()))
    if unknown:
        ap.error(f"unknown space {unknown[0]!r}; registered: {', '.join(cosearch.list_spaces())}")
    results: list[Timing | str] = []
    for name in names:
        try:
            results.append(time_space(name, args.n, args.seed))
        except Exception as exc:  # report a broken space and go on timing the others
            results.append(f"FAILED: {type(exc).__name__}: {_one_line(exc)}")
    text = report(results, names, args.n, args.seed)
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 1 if any(isinstance(r, str) and r.startswith("FAILED") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
