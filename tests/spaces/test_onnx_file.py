"""The onnx_file network space: a fixed user model, no knobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import optuna
import pytest
from onnx import TensorProto, helper, numpy_helper

import cosearch
from cosearch.errors import ConfigError, OnnxImportError
from cosearch.hwmodels import extract_layers
from cosearch.spaces import get_space
from cosearch.spaces.onnx_io import load_onnx, model_to_bytes


def write_model(path: Path, *, seed: int = 0, out_channels: int = 4, batch: int | str = 1) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, out_channels, 8, 8])
    w = np.random.default_rng(seed).standard_normal((out_channels, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="act"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model_to_bytes(model))
    return path


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return write_model(tmp_path / "m.onnx")


def test_no_knobs(model_path: Path) -> None:
    space = get_space("onnx_file", path=str(model_path))
    assert space.name == "onnx_file" and "onnx_file" in cosearch.list_spaces()
    assert space.params == {} and space.distributions() == {} and space.size == 1
    assert space.sample(np.random.default_rng(0)) == {}
    assert space.canonical({}) == {}
    assert space.canonical({"hw.pe_rows": 8}) == {}  # other namespaces are ignored
    with pytest.raises(ConfigError, match="no parameter 'width'"):
        space.build({"net.width": 3})
    assert space.describe()["nodes"] == 2


def test_build(model_path: Path) -> None:
    space = get_space("onnx_file", path=model_path)
    arch = space.build({})
    assert arch.space == "onnx_file" and dict(arch.genotype) == {}
    model = arch.onnx()
    assert model == load_onnx(model_path)
    onnx.checker.check_model(model, full_check=True)
    assert extract_layers(model)[0].macs == 4 * 27 * 64
    assert arch.graph().number_of_nodes() == 2
    other = space.build(space.sample(np.random.default_rng(1)))
    assert other == arch and other.digest == arch.digest
    assert other.onnx() is not arch.onnx()  # each Architecture has its own copy
    with pytest.raises(TypeError, match="no torch form"):
        arch.to_torch()


def test_digest_ignores_weights_and_path(tmp_path: Path) -> None:
    def digest(path: Path, **opts: object) -> str:
        return get_space("onnx_file", path=str(path), **opts).build({}).digest

    a = digest(write_model(tmp_path / "a.onnx", seed=0))
    (tmp_path / "sub").mkdir()
    assert digest(write_model(tmp_path / "sub" / "b.onnx", seed=1)) == a  # other weights
    assert digest(write_model(tmp_path / "c.onnx", out_channels=8)) != a  # other structure
    dyn = write_model(tmp_path / "d.onnx", batch="N")
    assert digest(dyn) == digest(dyn, batch=1) != digest(dyn, batch=2)
    assert len(a) == 64


def test_batch_option(tmp_path: Path) -> None:
    path = write_model(tmp_path / "d.onnx", batch="N")
    space = get_space("onnx_file", path=str(path), batch=4)
    assert extract_layers(space.build({}).onnx())[0].n == 4
    space = get_space("onnx_file", path=str(path), symbols={"N": 2})
    assert extract_layers(space.build({}).onnx())[0].n == 2
    # a fixed batch axis: batch = 4 was ignored and the batch-1 costs came out
    fixed = write_model(tmp_path / "f.onnx")
    with pytest.raises(ConfigError, match=r"batch 4 given, but .* no symbolic batch axis"):
        get_space("onnx_file", path=str(fixed), batch=4)
    with pytest.raises(ConfigError, match="no symbolic batch axis"):  # N fixed by symbols
        get_space("onnx_file", path=str(path), batch=4, symbols={"N": 2})


def test_without_path_is_describable() -> None:
    space = get_space("onnx_file")
    assert space.options == {"path": None, "batch": 1, "symbols": {}}
    assert space.describe()["parameters"] == 0
    assert space.sample(np.random.default_rng(0)) == {}
    with pytest.raises(ConfigError, match="needs the 'path' option"):
        space.build({})


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"file": "x.onnx"}, "file"),
        ({"path": ""}, "path"),
        ({"path": 3}, "path"),
        ({"batch": 0}, "batch"),
        ({"batch": True}, "batch"),
        ({"symbols": {"seq": -1}}, "symbols"),
        ({"symbols": ["seq"]}, "symbols"),
    ],
)
def test_bad_options(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_space("onnx_file", **options)
    assert info.value.key == key


def test_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(OnnxImportError, match="bad.onnx"):
        get_space("onnx_file", path=str(bad))
    with pytest.raises(OnnxImportError, match="no such file"):
        get_space("onnx_file", path=str(tmp_path / "missing.onnx"))


def test_cli_spaces_lists_onnx_file() -> None:
    # every space is instantiated without options there: onnx_file must not need its path
    proc = subprocess.run(
        [sys.executable, "-m", "cosearch.cli", "spaces"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "onnx_file" in proc.stdout


def test_another_model_at_the_same_path_is_another_campaign(tmp_path: Path) -> None:
    # copying another model over the file mixed two networks in one campaign silently
    path = write_model(tmp_path / "m.onnx")
    text = (
        'name = "file"\nseed = 0\ntrials = 2\n[space]\nnetwork = "onnx_file"\n'
        f'hardware = "systolic"\n[space.net]\npath = "{path}"\n'
        '[objectives]\nlatency_ms = "minimize"\n[evaluate]\ncost = "analytical:systolic"\n'
    )
    url = f"sqlite:///{tmp_path / 'f.db'}"
    cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(url)).run()
    write_model(path, seed=5)  # other weights: the same network, so the campaign goes on
    cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(url)).run(3)
    write_model(path, out_channels=8)
    again = cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(url))
    with pytest.raises(ConfigError, match="is not the network campaign 'file' was started with"):
        again.run(4)
    assert len(optuna.load_study(study_name="file", storage=url).trials) == 3


def test_show_needs_only_the_stored_graph(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # show re-read the campaign's TOML, which loads the model file: once the file was gone,
    # "no such file" although pareto and export --structure-only worked from the store
    from cosearch.cli import main

    path = write_model(tmp_path / "gone.onnx")
    text = (
        'name = "gone"\ntrials = 1\n[space]\nnetwork = "onnx_file"\nhardware = "systolic"\n'
        f'[space.net]\npath = "{path}"\n[objectives]\nlatency_ms = "minimize"\n'
    )
    url = f"sqlite:///{tmp_path / 'g.db'}"
    cosearch.Campaign(cosearch.parse_config(text), cosearch.open_store(url)).run()
    path.unlink()
    capsys.readouterr()
    assert main(["show", "gone", "0", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "architecture: the model file's network" in out and "per-layer costs" in out


def test_a_relative_model_path_is_read_beside_the_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cosearch run project/c.toml` with `path = "m.onnx"` next to it looked for m.onnx in the
    working directory; a path relative to the working directory keeps working."""
    project = tmp_path / "project"
    project.mkdir()
    write_model(project / "m.onnx", out_channels=8)
    text = (
        'name = "rel"\ntrials = 1\n[space]\nnetwork = "onnx_file"\nhardware = "systolic"\n'
        '[space.net]\npath = "m.onnx"\n[objectives]\nlatency_ms = "minimize"\n'
    )
    (project / "c.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_model(elsewhere / "m.onnx", out_channels=4)  # a different m.onnx in the cwd
    monkeypatch.chdir(elsewhere)
    cfg = cosearch.load_config(project / "c.toml")
    assert cfg.network_options["path"] == "m.onnx"  # the identity keeps the path as written
    space = get_space(cfg.network, **cfg.space_options())
    assert extract_layers(space.build({}).onnx())[0].k == 8  # the model beside the TOML
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert cosearch.Campaign(cfg, cosearch.open_store(url)).run().completed == 1
    # a worker joining from the store, and export, read the same model (still from elsewhere)
    joined = cosearch.Campaign.from_store("rel", url)
    assert joined.network.model_digest == space.model_digest and joined.run(2).completed == 2
    from cosearch.cli import main

    assert main(["export", "rel", "0", "--onnx", str(tmp_path / "e.onnx"), "--storage", url]) == 0
    assert extract_layers(load_onnx(tmp_path / "e.onnx"))[0].k == 8
    # written relative to the working directory (as before), with no such file beside the TOML
    (project / "old.toml").write_text(text.replace('"m.onnx"', '"elsewhere/m.onnx"'))
    monkeypatch.chdir(tmp_path)
    cfg = cosearch.load_config(project / "old.toml")
    assert extract_layers(get_space("onnx_file", **cfg.space_options()).build({}).onnx())[0].k == 4
