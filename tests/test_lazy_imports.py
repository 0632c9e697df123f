"""`import cosearch` and the quick CLI commands stay free of the heavy libraries.

onnx, torch, scipy.stats and scikit-learn take 0.3-1 s each to import; ``cosearch --help``,
``status`` and ``pareto`` need none of them, and took about 3 s when the package imported
everything up front.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cosearch
import cosearch.cli
import cosearch.hwmodels
import cosearch.predictors

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

HEAVY = ("onnx", "torch", "scipy.stats", "sklearn", "matplotlib")


def _modules_loaded_by(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('lazy') / 'c.db'}"
    cosearch.cli.main(
        [
            "run",
            str(EXAMPLES / "quickstart.toml"),
            "--trials",
            "6",
            "--no-progress",
            "--storage",
            url,
        ]
    )
    return url


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["predictor", "--help"],
        ["status"],
        ["status", "quickstart"],
        ["pareto", "quickstart"],
        ["query", "SELECT count(*) FROM trials"],
    ],
    ids=" ".join,
)
def test_quick_commands_do_not_import_heavy_libraries(storage, argv):
    if argv[-1] != "--help":
        argv = [*argv, "--storage", storage]
    code = (
        "import contextlib, io, cosearch.cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):\n"
        "    try:\n"
        f"        rc = cosearch.cli.main({argv!r})\n"
        "    except SystemExit as exit:\n"
        "        rc = exit.code\n"
        "assert rc == 0, out.getvalue()\n"
    )
    loaded = _modules_loaded_by(code)
    assert not [m for m in HEAVY if m in loaded]


@pytest.mark.parametrize(
    "argv, allowed",
    [(["hwmodels"], ()), (["strategies"], ("onnx",)), (["spaces"], ("onnx",))],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_the_listings_import_only_what_they_list(argv, allowed):
    """`cosearch strategies` took 1.7 s, 0.7 s of it importing scipy.stats that no listing
    uses; `cosearch hwmodels` imported onnx (0.7 s). The network spaces' modules build ONNX
    graphs, so listing them (and the strategies, which name spaces) still imports onnx."""
    code = (
        "import contextlib, io, cosearch.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert cosearch.cli.main({argv!r}) == 0\n"
    )
    loaded = _modules_loaded_by(code)
    assert not [m for m in HEAVY if m in loaded and m not in allowed]


@pytest.mark.parametrize(
    "package", [cosearch, cosearch.predictors, cosearch.hwmodels], ids=lambda p: p.__name__
)
def test_every_public_name_resolves_and_is_listed(package):
    for name in package.__all__:
        assert getattr(package, name) is not None
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = package.nope


def test_public_names_are_the_defining_objects():
    from cosearch.campaign import Campaign
    from cosearch.hwmodels import get_cost_model

    assert cosearch.Campaign is Campaign
    assert cosearch.get_cost_model is get_cost_model
    assert cosearch.store.Store is cosearch.Store
    assert "nb201" in cosearch.list_spaces()


def test_the_layers_module_is_an_attribute_of_hwmodels():
    """`cosearch.hwmodels.layers` (the README's pointer to each op's rule) was bound only as a
    side effect of importing extract_layers eagerly; lazy, it raised AttributeError."""
    code = "import cosearch.hwmodels as h\nassert 'Conv' in h.layers.SUPPORTED_OPS\n"
    assert "cosearch.hwmodels.layers" in _modules_loaded_by(code)
