from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

QUICK_TOML = """\
name = "{name}"
seed = {seed}
trials = {trials}

[space]
network = "nb201"
hardware = "systolic"

[objectives]
accuracy = "maximize"
latency_ms = "minimize"
energy_mj = "minimize"
constraints = ["area_mm2 <= 4"]

[evaluate]
accuracy = "benchmark:nb201/cifar10"
cost = "analytical:systolic"

[strategy]
name = "{strategy}"
"""


@pytest.fixture
def make_config(tmp_path: Path):
    """Write a small nb201 x systolic campaign file and return its path."""

    def make(
        name: str = "t",
        trials: int = 20,
        seed: int = 0,
        strategy: str = "random",
        text: str | None = None,
    ) -> Path:
        path = tmp_path / f"{name}.toml"
        body = (
            text
            if text is not None
            else QUICK_TOML.format(name=name, trials=trials, seed=seed, strategy=strategy)
        )
        path.write_text(body)
        return path

    return make


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'c.db'}"


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the real `cosearch` entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cosearch.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
