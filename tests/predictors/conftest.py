from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NB201_CSV = SHARED_DATA / "nb201" / "nb201_accuracy_latency.csv"
FBNET_CSV = SHARED_DATA / "fbnet" / "fbnet_latency.csv"
OFA_CSV = SHARED_DATA / "ofa_mbv3" / "ofa_latency.csv"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference table {path} is absent (../shared/data is not beside the repo)")
    return path


@pytest.fixture
def nb201_csv() -> Path:
    return _need(NB201_CSV)


@pytest.fixture
def fbnet_csv() -> Path:
    return _need(FBNET_CSV)


@pytest.fixture
def ofa_csv() -> Path:
    return _need(OFA_CSV)


@pytest.fixture(autouse=True)
def _one_thread():
    """One OpenMP/BLAS/torch thread: on a shared machine, spinning thread pools slow tiny fits
    by an order of magnitude."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# per-device cost of each op (ms) on a synthetic family of devices; device 0..5
_COSTS = np.array(
    [
        [0.05, 0.1, 1.0, 3.0, 0.5],
        [0.05, 0.2, 1.5, 2.5, 0.8],
        [0.10, 0.1, 0.8, 4.0, 0.3],
        [0.05, 0.3, 2.0, 2.0, 1.0],
        [0.02, 0.1, 1.2, 3.5, 0.6],
        [0.08, 0.2, 0.9, 3.2, 0.4],
    ]
)


def arch_str(ops: tuple[str, ...]) -> str:
    a = ops
    return f"|{a[0]}~0|+|{a[1]}~0|{a[2]}~1|+|{a[3]}~0|{a[4]}~1|{a[5]}~2|"


@pytest.fixture
def tiny_nb201_csv(tmp_path: Path) -> Path:
    """A 120-row nb201 table with six synthetic devices whose latency adds per-op costs (with
    a device-specific interaction term), plus an accuracy column."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(120):
        ops = tuple(OPS[j] for j in rng.integers(0, 5, size=6))
        counts = np.array([ops.count(op) for op in OPS], dtype=float)
        lat = 2.0 + _COSTS @ counts
        lat = lat * (1 + 0.05 * np.arange(6) * counts[3] * counts[2] / 9)
        acc = 80 + 2 * counts[3] - counts[0] + rng.normal(0, 0.5)
        rows.append((i, arch_str(ops), acc, *lat))
    header = "idx,arch_str,cifar10_test_acc," + ",".join(f"lat_dev{j}" for j in range(6))
    lines = [header] + [
        f"{r[0]},{r[1]},{r[2]:.4f}," + ",".join(f"{v:.5f}" for v in r[3:]) for r in rows
    ]
    path = tmp_path / "tiny_nb201.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
