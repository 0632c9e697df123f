"""Peer tools for side-by-side benchmarks: isolated virtual environments and a JSON driver.

A peer (SCALE-Sim, ...) is installed with its own pins into ``benchmarks/.peers/<name>/``
(ignored by git), never into the project's ``.venv``: peers pin old or loose dependency versions
that could clash with cosearch's. The benchmark talks to a peer through a small driver script run
by the peer's interpreter: a request JSON file in, one JSON line per finished job out. Nothing
here imports the peer, so cosearch and the peer run in the same benchmark run, on the same
machine, but in separate processes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PEERS_DIR", "Peer", "PeerError", "ensure_peer", "machine_info", "run_driver"]

#: Where peer virtual environments live (``benchmarks/.peers/``, ignored by git).
PEERS_DIR = Path(__file__).resolve().parents[1] / ".peers"


class PeerError(RuntimeError):
    """A peer could not be installed or its driver failed; the message says which and why."""


@dataclass(frozen=True)
class Peer:
    """A peer tool: its venv folder name, the distribution whose version is checked, and the pip
    requirement strings installed into its venv (the first one pins the tool itself)."""

    name: str
    distribution: str
    version: str
    requirements: tuple[str, ...]

    @property
    def venv(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _run(cmd: list[str], what: str, timeout_s: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise PeerError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


def installed_version(peer: Peer) -> str | None:
    """The version of ``peer.distribution`` in the peer's venv, or None when absent."""
    if not peer.python.exists():
        return None
    code = (
        "import importlib.metadata as m\n"
        "try:\n"
        f"    print(m.version({peer.distribution!r}))\n"
        "except m.PackageNotFoundError:\n"
        "    print('')\n"
    )
    out = _run([str(peer.python), "-c", code], f"querying {peer.name}", 120).strip()
    return out or None


def ensure_peer(peer: Peer, *, install: bool, log: Callable[[str], None] = print) -> str:
    """Make sure the peer's venv holds ``peer.version``; return the installed version.

    Creates the venv with this interpreter's ``venv`` module and pip-installs
    ``peer.requirements`` when ``install`` is true, when the venv or the distribution is missing,
    or when another version is installed. Needs the package registry only then.

    Raises:
        PeerError: venv creation or pip failed, or the version is still wrong afterwards.
    """
    found = installed_version(peer)
    if found == peer.version and not install:
        return found
    log(f"installing {' '.join(peer.requirements)} into {peer.venv} ...")
    if not peer.python.exists():
        peer.venv.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(peer.venv)], f"creating {peer.venv}", 300)
    pip = [str(peer.python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run([*pip, *peer.requirements], f"pip install into {peer.venv}", 1800)
    found = installed_version(peer)
    if found != peer.version:
        raise PeerError(f"{peer.distribution} in {peer.venv} is {found!r}, need {peer.version!r}")
    return found


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open() as fh:
        for line in fh:
            if line.endswith("\n"):  # a line still being written has no newline yet
                yield json.loads(line)


def run_driver(
    peer: Peer,
    script: Path,
    request: dict[str, Any],
    *,
    timeout_s: float,
    progress: Callable[[int], None] | None = None,
    log_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Run ``script`` with the peer's interpreter as ``script REQUEST.json RESULTS.jsonl``.

    ``request`` is written as JSON; the driver appends one JSON object per finished job to the
    results file, which is polled every 2 s (``progress`` gets the count). The driver's stdout
    and stderr go to ``log_path`` (default: a temporary file). Returns the result objects in
    order.

    Raises:
        PeerError: the driver exited non-zero or ran past ``timeout_s`` (it is then killed).
    """
    with tempfile.TemporaryDirectory(prefix=f"{peer.name}-") as tmp:
        req_path, res_path = Path(tmp) / "request.json", Path(tmp) / "results.jsonl"
        req_path.write_text(json.dumps({**request, "workdir": tmp}))
        log = log_path if log_path is not None else Path(tmp) / "driver.log"
        with log.open("w") as log_fh:
            proc = subprocess.Popen(
                [str(peer.python), str(script), str(req_path), str(res_path)],
                stdout=log_fh,
                stderr=subprocess.STDOUT,
            )
            start, seen = time.monotonic(), -1
            while proc.poll() is None:
                if time.monotonic() - start > timeout_s:
                    proc.kill()
                    proc.wait()
                    raise PeerError(f"{script.name} ran past {timeout_s:g} s; log: {log}")
                time.sleep(2.0)
                if progress is not None:
                    n = sum(1 for _ in _lines(res_path))
                    if n != seen:
                        progress(n)
                        seen = n
        results = list(_lines(res_path))
        if proc.returncode != 0:
            tail = log.read_text().strip().splitlines()[-5:]
            raise PeerError(f"{script.name} exited {proc.returncode}: {' | '.join(tail)}")
        return results


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, core counts, OS and this Python."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "processor": platform.processor(),
        "cpu_model": model,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
