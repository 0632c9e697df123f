"""cosearch installed as a package, not run from its repository: the wheel carries the examples,
the licences and the type marker; every library cosearch imports is a declared dependency;
`cosearch examples` gives a user without the repository the README's campaigns."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from cosearch.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.toml"))
#: imported only inside ``try: ... except ImportError`` with an install hint
OPTIONAL = {"PIL"}


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_examples_lists_and_prints_every_shipped_example(capsys):
    import json

    code, out, _ = _cli(capsys, "examples", "--format", "json")
    assert code == 0 and [row["name"] for row in json.loads(out)] == EXAMPLES
    # each example's first sentence, whole (it was the first line, cut mid-sentence)
    assert all(row["searches"].endswith((".", ")")) for row in json.loads(out)), out
    code, out, _ = _cli(capsys, "examples", "quickstart")
    text = (ROOT / "examples" / "quickstart.toml").read_text()
    assert code == 0 and out == text
    code, out, _ = _cli(capsys, "examples", "quickstart", "--format", "json")
    assert code == 0 and json.loads(out)["toml"] == text
    code, _, err = _cli(capsys, "examples", "nope")
    assert code == 2 and err.count("\n") == 1 and "quickstart" in err


def test_a_missing_examples_file_names_the_command_that_writes_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an installed cosearch: no examples/ beside the user
    code, _, err = _cli(capsys, "run", "examples/quickstart.toml")
    assert code == 2 and "`cosearch examples quickstart > quickstart.toml`, then" in err
    assert "`cosearch run quickstart.toml`" in err
    code, out, _ = _cli(capsys, "examples", "quickstart")
    (tmp_path / "quickstart.toml").write_text(out)
    code, _, err = _cli(
        capsys, "run", "quickstart.toml", "--trials", "3", "--no-progress", "--storage",
        f"sqlite:///{tmp_path / 'q.db'}",
    )  # fmt: skip
    assert code == 0, err


def test_python_m_cosearch_is_the_cosearch_command():
    out = subprocess.run(
        [sys.executable, "-m", "cosearch", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("cosearch ")


def _distribution(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_library_cosearch_imports_is_a_declared_dependency():
    """scipy, protobuf and threadpoolctl were imported but not declared: they came only
    through scikit-learn and onnx, and a change in either would break cosearch's imports."""
    declared = {
        _distribution(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    owners = importlib.metadata.packages_distributions()
    skip = {"tests", "benchmarks", "notebooks", "docs", "build", ".venv"}
    missing = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in skip or ".egg-info" in str(rel):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "cosearch" or top in OPTIONAL:
                    continue
                dists = {d.lower().replace("_", "-") for d in owners.get(top, [top])}
                if not dists & declared:
                    missing.setdefault(name, str(rel))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A wheel and an sdist built from a copy of the tracked sources."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    noise = shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", "*.db*", ".*_cache", "results"
    )
    shutil.copytree(ROOT, src, ignore=noise)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    code = f"from setuptools import build_meta as b; b.build_sdist({str(out)!r})"
    subprocess.run([sys.executable, "-c", code], cwd=src, check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_carries_examples_licences_and_the_type_marker(built):
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"cosearch/examples/{e}.toml" for e in EXAMPLES} <= names
    assert {"cosearch/py.typed", "cosearch/__main__.py"} <= names
    assert "cosearch/spaces/data/LICENSES.md" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("cosearch/tests/", "cosearch/benchmarks/"))]
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA")))
    assert b"Requires-Dist: scikit-learn>=1.6" in meta and b"License-Expression: MIT" in meta


def test_the_sdist_holds_no_partial_test_suite(built):
    """setuptools put 16 of the 57 test files in the sdist, without their conftest: a
    packager running them got 'No module named tests.conftest'."""
    _, sdist = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert not [n for n in names if n.startswith("tests/")]
    assert {"LICENSE", "py.typed", "examples/quickstart.toml", "pyproject.toml"} <= names
