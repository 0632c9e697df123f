"""load_onnx: reading a user's ONNX file safely (limits, external data, opsets, symbols)."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cosearch.errors import ConfigError, OnnxImportError
from cosearch.hwmodels import extract_layers
from cosearch.spaces import onnx_io
from cosearch.spaces.onnx_io import load_onnx, model_to_bytes


def conv_model(
    *,
    batch: int | str = 1,
    opset: int = 17,
    weight_name: str = "w",
    op: str = "Relu",
) -> onnx.ModelProto:
    """x[batch,3,8,8] -> Conv 3x3 (4 out, pad 1) -> op -> y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])
    w = numpy_helper.from_array(
        np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3), weight_name
    )
    nodes = [
        helper.make_node("Conv", ["x", weight_name], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c"], ["y"], name="act"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model_to_bytes(model))
    return path


def externalize(model: onnx.ModelProto, location: str, offset: int = 0) -> bytes:
    """Move initializer 'w' to external data at ``location``; return its bytes."""
    t = model.graph.initializer[0]
    raw = numpy_helper.to_array(t).tobytes()
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(raw)))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return raw


class OpenRecorder:
    """Records every path opened through builtins.open / io.open / os.open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real_open, real_os_open = builtins.open, os.open

        def rec_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.paths.append(
                os.path.realpath(os.fspath(file)) if not isinstance(file, int) else ""
            )
            return real_open(file, *args, **kwargs)

        def rec_os_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.paths.append(os.path.realpath(os.fspath(file)))
            return real_os_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", rec_open)
        monkeypatch.setattr(io, "open", rec_open)
        monkeypatch.setattr(os, "open", rec_os_open)


def refused(path: Path, *parts: str, **kwargs: object) -> str:
    with pytest.raises(OnnxImportError) as info:
        load_onnx(path, **kwargs)  # type: ignore[arg-type]
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    for part in parts:
        assert part in msg, msg
    return msg


# -- valid models ----------------------------------------------------------------------------


def test_valid_conv_model(tmp_path: Path) -> None:
    path = save(conv_model(), tmp_path / "m.onnx")
    model = load_onnx(path)
    assert isinstance(model, onnx.ModelProto)
    assert {vi.name for vi in model.graph.value_info} == {"c"}  # inferred
    layers = extract_layers(model)
    assert [la.kind for la in layers] == ["conv", "eltwise"]
    assert layers[0].macs == 4 * 3 * 9 * 64
    assert load_onnx(str(path)) == model  # str and Path alike


def test_opset_11_is_converted(tmp_path: Path) -> None:
    path = save(conv_model(opset=11), tmp_path / "old.onnx")
    model = load_onnx(path)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", onnx_io.TARGET_OPSET)]
    assert extract_layers(model)[0].macs == 4 * 3 * 9 * 64


def test_symbolic_batch_fixed(tmp_path: Path) -> None:
    path = save(conv_model(batch="N"), tmp_path / "dyn.onnx")
    model = load_onnx(path)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 8, 8]
    out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == [1, 4, 8, 8]
    assert extract_layers(load_onnx(path, batch=8))[0].n == 8
    assert extract_layers(load_onnx(path, symbols={"N": 2}))[0].n == 2
    with pytest.raises(ConfigError, match="'seq'"):
        load_onnx(path, symbols={"seq": 4})
    with pytest.raises(ConfigError, match="batch"):
        load_onnx(path, batch=0)


def test_the_note_names_the_symbol_that_took_the_batch(tmp_path: Path) -> None:
    # a sequence-first export: axis 0 is "seq", so --batch 8 sets seq, not batch; the note
    # said only "batch set to 1"
    model = conv_model(batch="seq")
    x = model.graph.input[0].type.tensor_type.shape
    x.dim[1].dim_param = "batch"  # x[seq, batch, 8, 8]: a 1x1 conv over "batch" channels
    model.graph.node[0].input[1] = "w1"
    model.graph.initializer.append(numpy_helper.from_array(np.ones((4, 1, 1, 1), np.float32), "w1"))
    model.graph.output[0].type.tensor_type.ClearField("shape")
    path = save(model, tmp_path / "seqfirst.onnx")
    with pytest.warns(onnx_io.DefaultedDimensionWarning) as got:
        load_onnx(path, batch=8)
    assert str(got[0].message) == (
        "symbolic input dimension(s) batch set to 1; seq (axis 0) set to the batch, 8"
    )


def test_unknown_dims_fixed(tmp_path: Path) -> None:
    model = conv_model()
    for vi in (model.graph.input[0], model.graph.output[0]):
        vi.type.tensor_type.shape.dim[0].Clear()  # neither value nor symbol
    loaded = load_onnx(save(model, tmp_path / "u.onnx"), batch=3)
    assert extract_layers(loaded)[0].n == 3


# -- broken files ----------------------------------------------------------------------------


def test_missing_and_directory(tmp_path: Path) -> None:
    refused(tmp_path / "nope.onnx", "no such file")
    refused(tmp_path, "directory")


def test_empty_text_random_truncated(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    refused(empty, "empty")
    text = tmp_path / "notes.onnx"
    text.write_text("this is a text file, not a model\n")
    refused(text, "not an ONNX model")
    rnd = tmp_path / "random.onnx"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(rnd, "not an ONNX model")
    data = model_to_bytes(conv_model())
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    refused(cut, "not an ONNX model")


def test_truncated_after_graph(tmp_path: Path) -> None:
    # Cut right after the graph: the protobuf parses, but the opset import is gone.
    model = conv_model()
    no_opset = onnx.ModelProto()
    no_opset.CopyFrom(model)
    del no_opset.opset_import[:]
    data = model_to_bytes(model)
    prefix = model_to_bytes(no_opset)
    assert data.startswith(prefix)  # opset_import (field 8) is serialized after the graph (7)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(prefix)
    refused(cut, "opset_import")


def test_max_bytes(tmp_path: Path) -> None:
    path = save(conv_model(), tmp_path / "m.onnx")
    refused(path, "limit", max_bytes=16)


@pytest.mark.parametrize(
    ("dims", "why"),
    [
        ([0, 3, 8, 8], "dimension 0"),
        ([-4, 3, 8, 8], "dimension -4"),
        ([1, 3, 2**31 + 1, 8], "dimension 2147483649"),
        ([1, 3, 2**20, 2**20], "elements"),
    ],
)
def test_absurd_dims(tmp_path: Path, dims: list[int], why: str) -> None:
    model = conv_model()
    shape = model.graph.input[0].type.tensor_type.shape
    for d, v in zip(shape.dim, dims):
        d.dim_value = v
    refused(save(model, tmp_path / "absurd.onnx"), why)


def test_absurd_initializer(tmp_path: Path) -> None:
    model = conv_model()
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[2**20, 2**15])
    model.graph.initializer.append(huge)
    refused(save(model, tmp_path / "huge.onnx"), "'huge'", "elements")


def test_too_many_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_io, "MAX_NODES", 1)
    refused(save(conv_model(), tmp_path / "m.onnx"), "2 nodes", "limit 1")


# -- operators -------------------------------------------------------------------------------


def test_unsupported_standard_op(tmp_path: Path) -> None:
    # NonMaxSuppression is standard ONNX but has no cost model; built by hand (5 inputs).
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 10, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 10])
    sel = helper.make_tensor_value_info("sel", TensorProto.INT64, [None, 3])
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="nms")
    graph = helper.make_graph([node], "g", [boxes, scores], [sel])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    refused(save(model, tmp_path / "nms.onnx"), "NonMaxSuppression", "'nms'")


def test_custom_domain_op(tmp_path: Path) -> None:
    model = conv_model()
    model.graph.node[1].domain = "com.example"
    model.graph.node[1].op_type = "FancyAct"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    refused(save(model, tmp_path / "custom.onnx"), "com.example.FancyAct", "'act'")


def test_inference_error(tmp_path: Path) -> None:
    model = conv_model()
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 5  # conv makes 4
    refused(save(model, tmp_path / "bad.onnx"), "shape inference failed")


# -- external data ---------------------------------------------------------------------------


def test_external_data_inside_folder(tmp_path: Path) -> None:
    model = conv_model()
    raw = externalize(model, "weights/w.bin", offset=16)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.bin").write_bytes(b"\0" * 16 + raw)
    path = save(model, tmp_path / "ext.onnx")
    loaded = load_onnx(path)
    t = loaded.graph.initializer[0]  # still an initializer, still external, not read
    assert t.data_location == TensorProto.EXTERNAL and not t.raw_data
    assert extract_layers(loaded)[0].macs == 4 * 3 * 9 * 64
    full = load_onnx(path, load_weights=True)
    w = numpy_helper.to_array(full.graph.initializer[0])
    np.testing.assert_array_equal(w, numpy_helper.to_array(conv_model().graph.initializer[0]))


def test_external_data_not_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = conv_model()
    raw = externalize(model, "w.bin")
    (tmp_path / "w.bin").write_bytes(raw)
    path = save(model, tmp_path / "ext.onnx")
    rec = OpenRecorder(monkeypatch)
    load_onnx(path)
    assert os.path.realpath(tmp_path / "w.bin") not in rec.paths


def test_external_data_truncated_file(tmp_path: Path) -> None:
    model = conv_model()
    raw = externalize(model, "w.bin")
    (tmp_path / "w.bin").write_bytes(raw[:10])
    refused(save(model, tmp_path / "ext.onnx"), "w.bin", "truncated")


@pytest.mark.parametrize("location", ["../outside.bin", "sub/../../outside.bin", "link.bin"])
def test_external_data_outside_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sub").mkdir()
    outside = tmp_path / "outside.bin"
    model = conv_model()
    outside.write_bytes(externalize(model, location))
    (folder / "link.bin").symlink_to(outside)  # a symlink inside pointing outside
    path = save(model, folder / "ext.onnx")
    rec = OpenRecorder(monkeypatch)
    refused(path, "outside the model's folder", load_weights=True)
    refused(path, "outside the model's folder", allow_structure_only=False)
    assert str(outside.resolve()) not in rec.paths
    assert str(path.resolve()) in rec.paths  # the recorder works


def test_external_data_absolute_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = conv_model()
    externalize(model, "/etc/passwd")
    path = save(model, tmp_path / "abs.onnx")
    rec = OpenRecorder(monkeypatch)
    refused(path, "absolute", "'/etc/passwd'", load_weights=True)
    assert not any(p.startswith("/etc") for p in rec.paths)


def test_external_data_missing_structure_only(tmp_path: Path) -> None:
    model = conv_model()
    externalize(model, "gone.bin")
    path = save(model, tmp_path / "ext.onnx")
    loaded = load_onnx(path)
    assert not loaded.graph.initializer
    inputs = {vi.name: vi.type.tensor_type for vi in loaded.graph.input}
    assert inputs["w"].elem_type == TensorProto.FLOAT
    assert [d.dim_value for d in inputs["w"].shape.dim] == [4, 3, 3, 3]
    assert extract_layers(loaded)[0].macs == 4 * 3 * 9 * 64
    refused(path, "gone.bin", "missing", allow_structure_only=False)
