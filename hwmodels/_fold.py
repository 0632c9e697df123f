"""Constant folding of shape arithmetic, for models whose shapes ONNX inference cannot resolve.

Exporters (``torch.onnx`` for ``nn.MultiheadAttention``, for example) compute Reshape targets
with ``Shape -> Gather/Slice/Mod/Div -> Concat`` chains. ONNX shape inference propagates some
of these but not all, and a Reshape with an unknown target leaves every later shape unknown.
:func:`fold_shape_subgraphs` evaluates such chains with ``onnx.reference`` once activation
shapes are known, and returns a copy of the model with the results as initializers.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["fold_shape_subgraphs", "outer_reads"]

#: Initializers up to this many elements take part in folding (shape tensors, axes, scalars).
_SMALL = 1024


def _static_dims(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def outer_reads(node: onnx.NodeProto) -> set[str]:
    """The enclosing scope's tensors that ``node``'s subgraph attributes read, at any depth."""
    reads: set[str] = set()
    for attr in node.attribute:  # by type first: this runs twice for every node of a model
        if attr.type == onnx.AttributeProto.GRAPH:
            subs = [attr.g]
        elif attr.type == onnx.AttributeProto.GRAPHS:
            subs = list(attr.graphs)
        else:
            continue
        for sub in subs:
            local = {v.name for v in sub.input} | {t.name for t in sub.initializer}
            local |= {t.values.name for t in sub.sparse_initializer}
            for inner in sub.node:
                outer = [i for i in inner.input if i] + sorted(outer_reads(inner))
                reads.update(i for i in outer if i not in local)
                local.update(inner.output)
            reads.update(o.name for o in sub.output if o.name not in local)
    return reads


def fold_shape_subgraphs(
    model: onnx.ModelProto, inferred: onnx.ModelProto
) -> onnx.ModelProto | None:
    """A copy of ``model`` whose shape computations are replaced by their values.

    Nodes computed only from ``Shape``/``Size`` of tensors whose shapes ``inferred`` knows,
    ``Constant`` nodes and small initializers are evaluated with ``onnx.reference``; the values
    that other nodes consume become initializers and the folded nodes are removed (they are
    compile-time work and produce no Layer either way). Returns ``None`` when nothing new folds.
    Errors of the reference evaluator propagate.
    """
    from onnx.reference import ReferenceEvaluator

    g = inferred.graph
    infos = {vi.name: vi for seq in (g.value_info, g.input, g.output) for vi in seq}
    small = {  # a weight whose data sits in an external file is never shape arithmetic
        i.name: i
        for i in model.graph.initializer
        if math.prod(i.dims) <= _SMALL and i.data_location != onnx.TensorProto.EXTERNAL
    }
    static: set[str] = set(small)
    fold: list[onnx.NodeProto] = []
    folded_ids: set[int] = set()
    for idx, node in enumerate(g.node):
        op = node.op_type
        if op in ("Shape", "Size"):
            vi = infos.get(node.input[0])
            dims = _static_dims(vi) if vi is not None else None
            if dims is None:
                continue
            if op == "Shape":
                attrs = {a.name: a.i for a in node.attribute}
                value = np.array(dims[attrs.get("start", 0) : attrs.get("end", len(dims))])
            else:
                value = np.array(math.prod(dims))
            tensor = numpy_helper.from_array(value.astype(np.int64))
            fold.append(helper.make_node("Constant", [], [node.output[0]], value=tensor))
        elif op == "Constant" or (
            node.input
            and all(i in static for i in node.input if i)
            and any(node.input)
            and outer_reads(node) <= static
        ):
            fold.append(node)
        else:
            continue
        folded_ids.add(idx)
        static.update(o for o in node.output if o)

    produced = {o for n in fold for o in n.output}
    consumed = {i for idx, n in enumerate(g.node) if idx not in folded_ids for i in n.input}
    consumed.update(o.name for o in g.output)
    needed = sorted(produced & consumed - set(small))
    if not needed:
        return None

    sub = helper.make_graph(
        fold,
        "shape_arithmetic",
        [],
        [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in needed],
        initializer=list(small.values()),
    )
    sub_model = helper.make_model(sub, opset_imports=list(model.opset_import))
    sub_model.ir_version = model.ir_version
    values = ReferenceEvaluator(sub_model).run(needed, {})

    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep = [n for idx, n in enumerate(model.graph.node) if idx not in folded_ids]
    del out.graph.node[:]
    out.graph.node.extend(keep)
    for name, value in zip(needed, values):
        out.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return out
