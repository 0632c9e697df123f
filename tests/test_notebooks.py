"""Every notebook in notebooks/ runs top to bottom in the project's interpreter.

The notebooks are documentation that executes: a cell that raises fails the test with the
cell's source and the error. They are committed without outputs, and each writes only under
its own temporary folder; both are checked here.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 600  # generous: the suite often shares a loaded machine

nbformat = pytest.importorskip("nbformat", reason="nbformat is installed by `make install`")


def _written_places() -> set[str]:
    """Entries of the repository root and of notebooks/: where a notebook that forgot its
    temporary folder would write (the default store is ``cosearch.db`` in the working
    directory). Other folders are left out so that edits elsewhere in the tree while the
    suite runs do not count."""
    return {p.name for p in ROOT.iterdir()} | {
        f"notebooks/{p.name}" for p in (ROOT / "notebooks").iterdir()
    }


def test_notebooks_exist() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {
        "01_quickstart",
        "02_hardware_models",
        "03_predictors",
        "04_strategies",
        "05_querying",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; strip them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by `make install`")
    pytest.importorskip("ipykernel", reason="ipykernel is installed by `make install`")
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    # The kernel inherits this environment: one thread per math library (the test machine
    # is shared; OpenMP's default of one thread per core made scikit-learn's boosted trees
    # 30x slower on a loaded two-core machine), matplotlib's inline backend as in Jupyter
    # (an inherited MPLBACKEND would replace it), and the project's interpreter first on PATH.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    # the notebooks' tempfile.mkdtemp() folders (stores, checkpoints) land under pytest's
    # own temporary directory, which pytest prunes, instead of piling up in /tmp
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    nb = nbformat.read(path, as_version=4)
    before = _written_places()
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name=NATIVE_KERNEL_NAME,
        resources={"metadata": {"path": str(ROOT)}},
    )
    # The "python3" kernel started through ipykernel's in-process spec runs sys.executable,
    # so the notebook sees exactly the interpreter (and installed cosearch) under test.
    client.kernel_manager_class = _kernel_manager_class()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{_plain(str(exc))}", pytrace=False)
    except nbclient.exceptions.CellTimeoutError as exc:
        msg = f"{path.name}: a cell ran over {CELL_TIMEOUT_S} s:\n{_plain(str(exc))}"
        pytest.fail(msg, pytrace=False)
    created = sorted(_written_places() - before)
    assert not created, f"{path.name} wrote into the repository: {created[:10]}"


def _plain(text: str) -> str:
    """The traceback without the terminal colour codes IPython puts in it."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _kernel_manager_class() -> type:
    """A KernelManager whose python3 kernel is this interpreter, whatever kernelspecs the
    user has installed elsewhere (a global python3 kernel would run another Python)."""
    from jupyter_client.manager import KernelManager

    class _ThisPython(KernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            cmd = super().format_kernel_cmd(extra_arguments)
            return [sys.executable, *cmd[1:]] if cmd and "python" in Path(cmd[0]).name else cmd

    return _ThisPython
