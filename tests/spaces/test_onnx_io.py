"""Weight stripping and (de)serialization of ONNX models."""

from __future__ import annotations

import onnx
import pytest

from cosearch.errors import OnnxImportError
from cosearch.spaces.nb201 import NB201Space
from cosearch.spaces.onnx_io import model_from_bytes, model_to_bytes, strip_weights

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"  # noqa: E501


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    space = NB201Space()
    return space.build(space.from_string(ARCH)).onnx()


def test_strip_weights(model: onnx.ModelProto) -> None:
    before = model_to_bytes(model)
    stripped = strip_weights(model)
    assert model_to_bytes(model) == before  # the original is untouched
    assert not stripped.graph.initializer
    onnx.checker.check_model(stripped, full_check=True)
    size = len(model_to_bytes(stripped))
    assert size < 64 * 1024 and size * 50 < len(before)
    inferred = onnx.shape_inference.infer_shapes(stripped, strict_mode=True)
    out = inferred.graph.output[0]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 10]
    known = {vi.name for vi in inferred.graph.value_info}
    assert all(n.output[0] in known for n in inferred.graph.node if n.output[0] != "logits")
    weights = {vi.name: vi for vi in stripped.graph.input}
    w = weights["stem.conv.weight"].type.tensor_type
    assert w.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in w.shape.dim] == [16, 3, 3, 3]


def test_bytes_round_trip(model: onnx.ModelProto) -> None:
    data = model_to_bytes(model)
    assert model_from_bytes(data) == model
    assert model_from_bytes(bytearray(data)) == model


@pytest.mark.parametrize(
    "data", [b"", b"not an onnx model at all", b"\xff\xfe\x00\x01" * 8, "a str"]
)
def test_garbage_raises(data: object) -> None:
    with pytest.raises(OnnxImportError) as info:
        model_from_bytes(data)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def _pad_resize_model(scale: float, pad: int, seed: int = 0) -> onnx.ModelProto:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).normal(size=(4, 3, 3, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales"),
        numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
        numpy_helper.from_array(np.array([0, 0, pad, pad] * 2, np.int64), "pads"),
    ]
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Resize", ["p", "roi", "scales"], ["r"], mode="nearest"),
        helper.make_node("Conv", ["r", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("GlobalAveragePool", ["c"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_constants_that_decide_shapes_are_structure_not_weights() -> None:
    from cosearch.hwmodels import extract_layers
    from cosearch.spaces.onnx_io import structure_digest

    small, big = _pad_resize_model(1.0, 0), _pad_resize_model(4.0, 8)
    # Pad widths and Resize scales used to be dropped: both networks shared one digest, and
    # the store kept the first one's model for the second campaign
    assert structure_digest(small) != structure_digest(big)
    assert structure_digest(big) == structure_digest(_pad_resize_model(4.0, 8, seed=1))
    # the structure-only copy keeps the scales, so its shapes (and costs) stay known
    macs = [sum(layer.macs for layer in extract_layers(m)) for m in (big, strip_weights(big))]
    assert macs[0] == macs[1] == 4 * 27 * 126 * 126  # (16 + 2 * 8) * 4 - 2
