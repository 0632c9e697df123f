"""docs/config_reference.md and docs/cli_reference.md are what docs/_gen_reference.py makes
from the code now, and they document every key, strategy option and command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import cosearch
from cosearch import config

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = ".venv/bin/python docs/_gen_reference.py"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gen_reference", ROOT / "docs/_gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_gen_reference", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def config_md(gen: ModuleType) -> str:
    return str(gen.render_config())


@pytest.fixture(scope="module")
def cli_md(gen: ModuleType) -> str:
    return str(gen.render_cli())


@pytest.mark.parametrize("name", ["config_reference.md", "cli_reference.md"])
def test_committed_reference_is_current(name: str, config_md: str, cli_md: str) -> None:
    fresh = config_md if name.startswith("config") else cli_md
    committed = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert committed == fresh, f"docs/{name} is stale: run {REGENERATE} and commit the result"


def test_every_top_level_key_and_evaluate_key_has_a_row(config_md: str) -> None:
    # the generator finds keys by reading the validation code; a key read some other way
    # would otherwise vanish from the reference without anyone noticing
    for key in config._TOP_KEYS:
        if key not in ("space", "objectives", "evaluate", "strategy", "screen"):
            assert f"| `{key}` |" in config_md, key
        else:
            assert f"[{key}]" in config_md, key
    for key in ("accuracy", "cost", "latency", "layer_cache", "artifacts"):
        assert f"| `{key}` |" in config_md.split("### `[evaluate]`", 1)[1], key


def test_every_registered_name_and_strategy_option_is_documented(config_md: str) -> None:
    for name in cosearch.list_spaces() + cosearch.list_hardware_spaces():
        assert f"### `{name}`" in config_md, name
    for name in cosearch.list_strategies():
        if name.startswith("_"):  # private registrations (tests' own) are left out
            continue
        section = config_md.split(f"### `{name}` (", 1)[1].split("\n### ", 1)[0]
        for option in cosearch.get_strategy(name).options:
            assert f"| `{option}` |" in section, f"{name}.{option}"
    for name in cosearch.list_cost_models():
        assert f"| `{name}` |" in config_md, name


def test_every_command_and_flag_is_documented(cli_md: str) -> None:
    from cosearch.cli import build_parser

    help_text = build_parser().format_help()
    for command in ("run", "worker", "status", "pareto", "show", "export", "compare", "query"):
        assert command in help_text
        assert f"## `cosearch {command}`" in cli_md, command
    run = cli_md.split("## `cosearch run`", 1)[1].split("\n## ", 1)[0]
    for flag in ("--trials", "--storage", "--no-progress"):
        assert f"`{flag}" in run, flag


def test_check_mode_reports_a_stale_file(gen: ModuleType, tmp_path: Path, monkeypatch) -> None:
    stale = tmp_path / "config_reference.md"
    stale.write_text("old\n", encoding="utf-8")
    fresh_cli = tmp_path / "cli_reference.md"
    fresh_cli.write_text(gen.render_cli(), encoding="utf-8")
    monkeypatch.setattr(gen, "CONFIG_MD", stale)
    monkeypatch.setattr(gen, "CLI_MD", fresh_cli)
    assert gen.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "old\n"  # --check never writes
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
