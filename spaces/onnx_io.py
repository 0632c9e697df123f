"""ONNX model serialization and the structure-only form the store keeps."""

from __future__ import annotations

import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from cosearch.errors import OnnxImportError

__all__ = ["strip_weights", "model_to_bytes", "model_from_bytes"]


def strip_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A structure-only copy of ``model``: every initializer becomes a graph input.

    Each former initializer keeps its name, element type and shape (no data), so the copy
    still passes ``onnx.checker.check_model`` and shape inference still reaches every tensor;
    a cell-network model shrinks from megabytes to a few kilobytes. Sparse initializers are
    treated the same way. Constant nodes and subgraph initializers are kept as they are.
    ``model`` is not changed.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    have = {i.name for i in graph.input}
    added = []
    for init in graph.initializer:
        if init.name not in have:
            added.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    for sparse in graph.sparse_initializer:
        if sparse.values.name not in have:
            added.append(
                helper.make_tensor_value_info(
                    sparse.values.name, sparse.values.data_type, list(sparse.dims)
                )
            )
    graph.input.extend(added)
    del graph.initializer[:]
    del graph.sparse_initializer[:]
    return out


def model_to_bytes(model: onnx.ModelProto) -> bytes:
    """The serialized model (protobuf bytes, as an ``.onnx`` file holds them)."""
    return model.SerializeToString()


def model_from_bytes(data: bytes) -> onnx.ModelProto:
    """Parse serialized ONNX. Raises OnnxImportError (one line) when ``data`` is not a model.

    A model must parse as protobuf and carry an IR version and a graph with at least one node;
    arbitrary bytes often parse as an (empty) protobuf message, so parsing alone proves little.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise OnnxImportError(f"ONNX data must be bytes; got {type(data).__name__}")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(data))
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OnnxImportError(
            f"not an ONNX model ({len(data)} bytes): the protobuf does "
            f"not parse: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(
            f"not an ONNX model ({len(data)} bytes): no IR version or no graph nodes"
        )
    return model
