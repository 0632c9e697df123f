"""Regenerate ``nb201_latency.csv.gz`` from the shared NAS-Bench-201 table.

Run from the repository root: ``python spaces/data/make_nb201_latency_table.py``. It reads
``../shared/data/nb201/nb201_accuracy_latency.csv`` (next to the repository root) and writes
``spaces/data/nb201_latency.csv.gz`` with the columns ``idx,pixel3,1080ti_1``: measured
inference latency in milliseconds of every NAS-Bench-201 cell (rows in NAS-Bench-201 index
order, values copied verbatim) on a Pixel 3 phone (HW-NAS-Bench, Li et al., ICLR 2021) and on
a GTX 1080 Ti at batch 1 (HELP, Lee et al., NeurIPS 2021). The gzip header carries no time
stamp, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / ".." / "shared" / "data" / "nb201" / "nb201_accuracy_latency.csv"
TARGET = ROOT / "spaces" / "data" / "nb201_latency.csv.gz"
DEVICES = ("pixel3", "1080ti_1")  # output column: source column lat_<device>
EXPECTED_ROWS = 15_625


def main(source: Path = SOURCE, target: Path = TARGET) -> int:
    with open(source, newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["idx"]))
    if len(rows) != EXPECTED_ROWS or [int(r["idx"]) for r in rows] != list(range(EXPECTED_ROWS)):
        print(f"{source}: expected indices 0..{EXPECTED_ROWS - 1}", file=sys.stderr)
        return 1
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("idx", *DEVICES))
    for row in rows:
        writer.writerow([row["idx"], *(row[f"lat_{d}"] for d in DEVICES)])
    with open(target, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(text.getvalue().encode("utf-8"))
    print(f"wrote {target} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*map(Path, sys.argv[1:3])))
