"""Graph encodings of ONNX models (networkx), the input of predictors and graph analyses."""

from __future__ import annotations

from typing import Any

import networkx as nx
import onnx

from cosearch.spaces.onnx_io import strip_weights

__all__ = ["onnx_to_networkx"]

Shape = list[int | str | None]


def _shape_of(vi: onnx.ValueInfoProto) -> Shape | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def onnx_to_networkx(model: onnx.ModelProto) -> nx.DiGraph:
    """A DiGraph with one node per ONNX node of the main graph, edges along tensors.

    Node keys are the ONNX node names (``"<op_type>_<index>"`` for unnamed nodes, and a
    ``"#<index>"`` suffix on repeated names). Node attributes: ``op_type``, ``name`` (the ONNX
    name, possibly empty), ``output_shapes`` (one entry per output: a list of dims, ints for
    known sizes, the symbol for symbolic ones, None for unknown; None when inference gives no
    shape). Edge attribute ``tensor``: the name of a tensor the source produces and the target
    reads (the first one when they share several). Graph attributes ``input_shapes`` and
    ``output_shapes``: ``{tensor name: shape}`` of the graph's real inputs (not initializers)
    and outputs. Shapes come from ``onnx.shape_inference`` run on a weight-free copy.
    """
    inferred = onnx.shape_inference.infer_shapes(strip_weights(model))
    g = inferred.graph
    shapes: dict[str, Shape | None] = {}
    for vi in (*g.input, *g.value_info, *g.output):
        shapes[vi.name] = _shape_of(vi)
    weights = {i.name for i in model.graph.initializer}

    graph = nx.DiGraph()
    graph.graph["input_shapes"] = {
        vi.name: _shape_of(vi) for vi in model.graph.input if vi.name not in weights
    }
    graph.graph["output_shapes"] = {vi.name: shapes.get(vi.name) for vi in g.output}
    producer: dict[str, Any] = {}
    keys = []
    for idx, node in enumerate(model.graph.node):
        key = node.name or f"{node.op_type}_{idx}"
        if key in graph:
            key = f"{key}#{idx}"
        keys.append(key)
        graph.add_node(
            key,
            op_type=node.op_type,
            name=node.name,
            output_shapes=[shapes.get(o) for o in node.output],
        )
        for out in node.output:
            if out:
                producer[out] = key
    for key, node in zip(keys, model.graph.node):
        for tensor in node.input:
            src = producer.get(tensor)
            if src is not None and not graph.has_edge(src, key):
                graph.add_edge(src, key, tensor=tensor)
    return graph
