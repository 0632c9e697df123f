from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run, so a red CI is reproducible and a green
# one is not luck: with a random seed per run, a rare counterexample (a row_stationary mapping
# that gets cheaper with more filters) turned up in one full run of two. HYPOTHESIS_RANDOM=1
# explores new examples, as a search for bugs rather than a gate.
settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_RANDOM") else "fixed")
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


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A PostgreSQL server for the scale-out tests: $COSEARCH_TEST_PG_URL (CI starts one), or
    a throwaway one started here by .ci/pg.sh. Outside CI a missing server skips the tests
    with the reason; in CI it fails them."""
    url = os.environ.get("COSEARCH_TEST_PG_URL")
    proc_dir = None
    if not url:
        import tempfile

        # under /tmp itself: the server runs as the postgres user, which cannot enter
        # pytest's per-user temporary folders
        proc_dir = Path(tempfile.mkdtemp(prefix="cosearch-pg-"))
        r = subprocess.run(
            [
                "bash",
                str(ROOT / ".ci" / "pg.sh"),
                "start",
                str(proc_dir),
                os.environ.get("COSEARCH_TEST_PG_PORT", "55439"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if r.returncode != 0:
            msg = f"no PostgreSQL server could be started: {r.stderr.strip()[-300:]}"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        url = r.stdout.strip().splitlines()[-1]
    yield url
    if proc_dir is not None:
        import shutil

        subprocess.run(
            ["bash", str(ROOT / ".ci" / "pg.sh"), "stop", str(proc_dir)],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(proc_dir, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database on the test server for one test."""
    import uuid

    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    base, _, _ = pg_server.rpartition("/")
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def serve_dashboard(name: str, url: str, log: Path) -> tuple[subprocess.Popen, int]:
    """Start `cosearch dashboard` on a free port and wait until it answers. The port is free
    when chosen but another process may take it before the server binds: then try another."""
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with log.open("w") as err:  # a file: a pipe nobody reads fills up with request logs
            server = subprocess.Popen(
                [sys.executable, "-m", "cosearch.cli", "dashboard", name, "--storage", url]
                + ["--port", str(port)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.time() + 60
        while server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5):
                    return server, port
            except OSError:
                if time.time() > deadline:
                    server.terminate()
                    pytest.fail("the dashboard did not answer within 60 s")
                time.sleep(0.3)
        said = log.read_text()
        if "is in use" not in said:
            pytest.fail(f"the dashboard exited with {server.returncode}: {said[-2000:]}")
    pytest.fail("three free ports were taken before the dashboard could bind one")
