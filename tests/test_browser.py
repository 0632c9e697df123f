"""optuna-dashboard on a finished cosearch campaign, looked at in a real headless Chromium."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import time

import pytest

from .conftest import QUICK_TOML, run_cli, serve_dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(args, tmp_path, timeout=240):
    profile = tmp_path / f"profile{time.monotonic_ns()}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _text(dom: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))


@pytest.mark.slow
def test_dashboard_shows_campaign_trials_and_artifacts(tmp_path):
    if CHROMIUM is None:
        msg = "chromium is not installed (.ci/run installs Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    cfg = tmp_path / "b.toml"
    cfg.write_text(QUICK_TOML.format(name="browser", trials=12, seed=1, strategy="nsga2"))
    url = f"sqlite:///{tmp_path / 'b.db'}"
    r = run_cli("run", str(cfg), "--storage", url, "--no-progress")
    assert r.returncode == 0, r.stderr
    server, port = serve_dashboard("browser", url, tmp_path / "dashboard.log")
    base = f"http://127.0.0.1:{port}/dashboard/studies/1"
    try:
        trials_page = _text(_chromium(["--dump-dom", f"{base}/trials"], tmp_path).stdout)
        assert "browser (id=1)" in trials_page
        assert "12 Trials" in trials_page
        study_page = _text(_chromium(["--dump-dom", base], tmp_path).stdout)
        assert "Study Artifacts" in study_page
        assert re.search(r"trial\d+\.onnx", study_page)
        assert re.search(r"trial\d+_layers\.png", study_page)
        shot = tmp_path / "dashboard.png"
        _chromium([f"--screenshot={shot}", "--window-size=1400,1000", base], tmp_path)
        assert shot.stat().st_size > 20_000 and shot.read_bytes()[:4] == b"\x89PNG"
    finally:
        server.terminate()
        server.wait(timeout=20)
