"""Regenerate ``nb201_accuracy.csv.gz`` from the shared NAS-Bench-201 table.

Run from the repository root: ``python spaces/data/make_nb201_table.py``. It reads
``../shared/data/nb201/nb201_accuracy_latency.csv`` (next to the repository root) and writes
``spaces/data/nb201_accuracy.csv.gz`` with the columns ``arch_str,cifar10,cifar100,
imagenet16_120`` (test accuracy in percent after 200 epochs, values copied verbatim), rows in
NAS-Bench-201 index order. The gzip header carries no time stamp, so the output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / ".." / "shared" / "data" / "nb201" / "nb201_accuracy_latency.csv"
TARGET = ROOT / "spaces" / "data" / "nb201_accuracy.csv.gz"
COLUMNS = {  # output column: source column
    "arch_str": "arch_str",
    "cifar10": "cifar10_test_acc",
    "cifar100": "cifar100_test_acc",
    "imagenet16_120": "imagenet16_120_test_acc",
}
EXPECTED_ROWS = 15_625


def main(source: Path = SOURCE, target: Path = TARGET) -> int:
    with open(source, newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["idx"]))
    if len(rows) != EXPECTED_ROWS:
        print(f"{source}: expected {EXPECTED_ROWS} rows, found {len(rows)}", file=sys.stderr)
        return 1
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row[src] for src in COLUMNS.values()])
    with open(target, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(text.getvalue().encode("utf-8"))
    print(f"wrote {target} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*map(Path, sys.argv[1:3])))
