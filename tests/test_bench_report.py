"""benchmarks/report.py rebuilds REPORT.md from the committed benchmark results."""

from __future__ import annotations

import shutil
import subprocess
import sys

from .conftest import ROOT

RESULTS = ROOT / "benchmarks" / "results"


def test_report_rebuilds_from_the_committed_results(tmp_path):
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out, ignore=shutil.ignore_patterns("REPORT*", "report_*.png"))
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report.py"), "--results", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = (out / "REPORT.md").read_text()
    # every section of the committed results parses: none reports missing inputs
    assert "Not available" not in report, report
    for fig in ("search", "hwmodels", "predictors", "darts", "ofa", "store"):
        assert (out / f"report_{fig}.png").stat().st_size > 10_000, fig
        assert f"(report_{fig}.png)" in report
    # numbers are carried over from the sources, e.g. the store ratio row
    assert "| cosearch BatchWriter sqlite, batches of 1000 |" in report


def test_report_names_what_is_missing(tmp_path):
    (tmp_path / "ofa.md").write_text("# nothing useful\n")
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report.py"), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "REPORT.md").read_text()
    assert "Run `benchmarks/store/throughput.py`" in report
    assert "ofa.md: no table under a heading" in report
