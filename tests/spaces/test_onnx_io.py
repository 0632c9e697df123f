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
