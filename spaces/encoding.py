"""Graph encodings of ONNX models, the input of predictors and graph analyses.

- :func:`onnx_to_networkx`: a networkx DiGraph of the ONNX nodes, with inferred shapes.
- :func:`onnx_features` / :func:`architecture_features`: a fixed-length float64 vector, the same
  :data:`FEATURE_NAMES` for every model of every space (for tabular predictors).
- :func:`graph_tensors`: a node-feature matrix with one row per layer and a layer adjacency
  matrix (for graph neural networks).

The last two see the network through :func:`cosearch.hwmodels.extract_layers`, so they accept
exactly the models the cost models accept (it raises OnnxImportError otherwise).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import onnx

from cosearch.hwmodels._base import LAYER_KINDS, Layer
from cosearch.spaces.onnx_io import strip_weights

if TYPE_CHECKING:
    from cosearch.spaces._base import Architecture

__all__ = [
    "onnx_to_networkx",
    "onnx_features",
    "architecture_features",
    "graph_tensors",
    "FEATURE_NAMES",
    "LOG_FEATURES",
    "GRAPH_FEATURE_NAMES",
    "MAC_KINDS",
]

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


# -- fixed-length features ---------------------------------------------------------------------

#: layer kinds that carry MACs, each with its own statistics block
MAC_KINDS = ("conv", "depthwise", "gemm", "matmul")
_KIND_STATS = (
    "macs",
    "mac_share",
    "out_channels_mean",
    "out_channels_max",
    "in_channels_mean",
    "in_channels_max",
    "kernel_mean",
    "kernel_max",
    "spatial_mean",
    "spatial_max",
)
#: names of the :func:`onnx_features` entries, in order
FEATURE_NAMES: tuple[str, ...] = (
    *(f"layers.{k}" for k in LAYER_KINDS),
    "layers.pool_max",
    "macs",
    "params",
    "activation_bytes",
    "peak_activation_bytes",
    "depth",
    "nodes",
    *(f"{k}.{stat}" for k in MAC_KINDS for stat in _KIND_STATS),
)
#: the features stored as ``log1p(value)``: all but the ``<kind>.mac_share`` fractions, because
#: counts, MACs, bytes and sizes span many orders of magnitude across spaces
LOG_FEATURES: frozenset[str] = frozenset(n for n in FEATURE_NAMES if not n.endswith("mac_share"))
_LOG_MASK = np.array([n in LOG_FEATURES for n in FEATURE_NAMES])

#: columns of the node-feature matrix of :func:`graph_tensors`
_SHAPE_FIELDS = ("n", "c", "k", "h", "w", "p", "q", "r", "s", "stride", "groups", "operands")
GRAPH_FEATURE_NAMES: tuple[str, ...] = (
    *(f"kind.{k}" for k in LAYER_KINDS),
    "pool_max",
    *_SHAPE_FIELDS,
    "macs",
    "output_bytes",
)

# Inputs that hold trainable parameters when they are initializers or graph inputs (the
# structure-only form keeps weights as graph inputs, so both must count the same).
_WEIGHT_SLOTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (1, 2),
    "BatchNormalization": (1, 2),  # scale and bias; running statistics are buffers
    "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2),
    "RMSNormalization": (1,),
    "PRelu": (1,),
}
_BINARY = frozenset({"MatMul", "Add", "Sub", "Mul", "Div"})
_FLOATS = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.BFLOAT16,
    }
)
# Ops whose output carries a shape, not the data of their input: data-flow bridging stops there.
_SHAPE_ONLY = frozenset({"Shape", "Size"})


class _Analysis:
    """What the features need: layers, their data-flow predecessors, and graph-level counts."""

    __slots__ = ("layers", "preds", "live_to_end", "depth", "nodes", "params")

    def __init__(self, model: onnx.ModelProto) -> None:
        from cosearch.hwmodels.layers import extract_layers

        if not isinstance(model, onnx.ModelProto):
            raise TypeError(f"expected an onnx.ModelProto; got {type(model).__name__}")
        self.layers: list[Layer] = extract_layers(model)
        graph = model.graph
        self.nodes = len(graph.node)
        self.preds: list[set[int]] = [set() for _ in self.layers]
        # Which layers' data a tensor carries. Layer outputs carry their own layer; a node that
        # gives no Layer (compile-time work: Constant, nodes computed from constants, or ops
        # extract_layers folds away) passes on the union of its inputs' layers, except Shape
        # and Size, whose outputs depend on their input's shape only.
        carries: dict[str, frozenset[int]] = {}
        depth_of: dict[str, int] = {}
        depth = 0
        at = 0
        for node in graph.node:
            d = 1 + max((depth_of.get(t, 0) for t in node.input if t), default=0)
            depth = max(depth, d)
            ins = frozenset().union(*(carries.get(t, frozenset()) for t in node.input if t))
            layer = self.layers[at] if at < len(self.layers) else None
            if (
                layer is not None
                and layer.op_type == node.op_type
                and layer.name == (node.name or (node.output[0] if node.output else ""))
            ):
                self.preds[at] = set(ins)
                out = frozenset({at})
                at += 1
            elif node.op_type in _SHAPE_ONLY:
                out = frozenset()
            else:
                out = ins
            for t in node.output:
                if t:
                    carries[t] = out
                    depth_of[t] = d
        self.depth = depth
        self.live_to_end: set[int] = set()
        for vi in graph.output:
            self.live_to_end.update(carries.get(vi.name, frozenset()))
        self.params = _count_params(graph)

    def peak_activation_bytes(self) -> float:
        """Largest sum of live layer outputs over the layers in graph order (see
        :func:`onnx_features`)."""
        n = len(self.layers)
        if not n:
            return 0.0
        last = list(range(n))
        for i, preds in enumerate(self.preds):
            for j in preds:
                last[j] = max(last[j], i)
        for j in self.live_to_end:
            last[j] = n - 1
        delta = np.zeros(n + 1)
        ext = np.zeros(n)
        for j, layer in enumerate(self.layers):
            size = layer.ofmap_elems * layer.elem_bytes
            delta[j] += size
            delta[last[j] + 1] -= size
            if not self.preds[j]:  # it reads graph inputs: they are live while it runs
                ext[j] = layer.ifmap_elems * layer.elem_bytes
        return float(np.max(np.cumsum(delta[:n]) + ext))


def _count_params(graph: onnx.GraphProto) -> int:
    """Elements of float tensors that are initializers or graph inputs (not node outputs) and
    are read in a weight slot: see :func:`onnx_features`."""
    shapes: dict[str, tuple[int, list[int] | None]] = {}
    for vi in graph.input:
        t = vi.type.tensor_type
        dims = None
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            dims = [d.dim_value for d in t.shape.dim]
        shapes[vi.name] = (t.elem_type, dims)
    for init in graph.initializer:
        shapes[init.name] = (init.data_type, list(init.dims))
    for sparse in graph.sparse_initializer:
        shapes[sparse.values.name] = (sparse.values.data_type, list(sparse.dims))
    produced = {t for node in graph.node for t in node.output}

    def size(name: str) -> int:
        elem, dims = shapes.get(name, (0, None))
        if name in produced or elem not in _FLOATS or dims is None:
            return 0
        return math.prod(dims)

    counted: set[str] = set()
    for node in graph.node:
        slots: tuple[int, ...] = _WEIGHT_SLOTS.get(node.op_type, ())
        if node.op_type in _BINARY and len(node.input) == 2:
            # The operand that no node computes, next to one that a node does: a weight matrix
            # (either side of a MatMul), or a learned bias or scale (torch's Linear bias Add).
            # When neither is computed (the first layer reads a graph input), the second.
            a, b = node.input
            slots = (0,) if b in produced and a not in produced else (1,)
            if node.op_type != "MatMul" and size(node.input[slots[0]]) <= 1:
                slots = ()  # scalars are constants (an epsilon, a zero), not parameters
            elif a in produced and b in produced:
                slots = ()
        for i in slots:
            if i < len(node.input) and node.input[i]:
                counted.add(node.input[i])
    return sum(size(name) for name in counted)


def _summary(an: _Analysis) -> dict[str, float]:
    layers = an.layers
    total_macs = sum(la.macs for la in layers)
    out: dict[str, float] = {f"layers.{k}": 0.0 for k in LAYER_KINDS}
    for la in layers:
        out[f"layers.{la.kind}"] += 1
    out["layers.pool_max"] = float(sum(_selects(la) for la in layers))
    out["macs"] = float(total_macs)
    out["params"] = float(an.params)
    out["activation_bytes"] = float(sum(la.ofmap_elems * la.elem_bytes for la in layers))
    out["peak_activation_bytes"] = an.peak_activation_bytes()
    out["depth"] = float(an.depth)
    out["nodes"] = float(an.nodes)
    for kind in MAC_KINDS:
        mine = [la for la in layers if la.kind == kind]
        macs = sum(la.macs for la in mine)
        out[f"{kind}.macs"] = float(macs)
        out[f"{kind}.mac_share"] = macs / total_macs if total_macs else 0.0
        for stat, values in (
            ("out_channels", [la.k for la in mine]),
            ("in_channels", [la.c for la in mine]),
            ("kernel", [la.r * la.s for la in mine]),
            ("spatial", [la.p * la.q for la in mine]),
        ):
            out[f"{kind}.{stat}_mean"] = float(np.mean(values)) if values else 0.0
            out[f"{kind}.{stat}_max"] = float(max(values)) if values else 0.0
    return out


#: pooling ops that select (max or min) instead of summing or averaging
_SELECTING_POOLS = frozenset({"MaxPool", "GlobalMaxPool", "ReduceMax", "ReduceMin", "MaxRoiPool"})


def _selects(layer: Layer) -> bool:
    """Whether ``layer`` is a max (or min) pooling: same shapes as an average pooling, but a
    different function (DARTS' ``max_pool_3x3`` vs ``avg_pool_3x3``)."""
    return layer.kind == "pool" and layer.op_type in _SELECTING_POOLS


def onnx_features(model: onnx.ModelProto) -> np.ndarray:
    """A fixed-length float64 vector describing ``model``; entry ``i`` is ``FEATURE_NAMES[i]``.

    The length is ``len(FEATURE_NAMES)`` for every model. Entries in :data:`LOG_FEATURES` are
    ``log1p`` of the value below (all but the MAC shares, which are fractions in [0, 1]):

    - ``layers.<kind>``: number of layers of each :data:`~cosearch.hwmodels.LAYER_KINDS` kind;
    - ``layers.pool_max``: how many of the pool layers take a maximum (or minimum) rather than
      a sum or an average;
    - ``macs``: multiply-accumulates of the whole network (``sum(layer.macs)``);
    - ``params``: elements of float tensors that no node computes (initializers or graph
      inputs) read in a weight slot: Conv/ConvTranspose/Gemm weight and bias, the scale and
      bias of normalizations, PRelu's slope, and of MatMul/Add/Sub/Mul/Div the operand that no
      node computes when the other one is computed (the second one when neither is; never a
      scalar of Add/Sub/Mul/Div). BatchNormalization running statistics are not counted, as in
      torch's ``parameters()``. The rule never asks whether a tensor is an initializer, so a
      model and its structure-only form (:func:`~cosearch.spaces.onnx_io.strip_weights`) get
      the same count;
    - ``activation_bytes``: sum over layers of output elements x element bytes;
    - ``peak_activation_bytes``: walking the layers in graph order, the largest sum of the
      outputs alive at one step (an output lives from its layer to its last reader, to the end
      when it reaches a graph output), plus the step's own input when it reads graph inputs;
    - ``depth``: nodes on the longest path of :func:`onnx_to_networkx` (all ONNX nodes);
    - ``nodes``: number of ONNX nodes of the main graph;
    - for each MAC kind (conv, depthwise, gemm, matmul): ``macs``, ``mac_share`` (its share of
      all MACs), and the mean and max over its layers of output channels ``k``, input channels
      ``c``, kernel elements ``r*s`` and output positions ``p*q`` (for GEMMs, ``p`` is the rows
      M); zeros when the network has no layer of that kind.

    Raises:
        OnnxImportError: ``extract_layers`` cannot read the model (unsupported op, unknown
            shape).
        TypeError: ``model`` is not an ``onnx.ModelProto``.
    """
    return _vector(_summary(_Analysis(model)))


def _vector(summary: dict[str, float]) -> np.ndarray:
    raw = np.array([summary[n] for n in FEATURE_NAMES], dtype=np.float64)
    return np.where(_LOG_MASK, np.log1p(raw), raw)


def architecture_features(arch: Architecture) -> np.ndarray:
    """:func:`onnx_features` of ``arch.onnx()``."""
    return onnx_features(arch.onnx())


def graph_tensors(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    """``(X, A)`` for a graph neural network over the layers of ``model``.

    ``X`` (float64, ``L x len(GRAPH_FEATURE_NAMES)``) has one row per layer of
    ``extract_layers(model)``, in graph order: a one-hot of the layer kind, ``pool_max`` (1
    for a max or min pooling, see :func:`onnx_features`), then ``log1p`` of
    its shape numbers (``n c k h w p q r s stride groups operands``, see
    :class:`~cosearch.hwmodels.Layer`), its MACs and its output bytes.

    ``A`` (float64, ``L x L``) is the directed data-flow adjacency: ``A[i, j] = 1`` when layer
    ``j`` reads a tensor carrying layer ``i``'s output. Nodes that give no layer are bridged:
    compile-time nodes (``Constant``, nodes computed only from constants and shapes, anything
    extract_layers folds away) pass on the layers their inputs carry, so ``i -> x -> j`` through
    such a node becomes the edge ``i -> j``; ``Shape`` and ``Size`` stop the bridge (their output
    depends on a shape only, not on data). The graph is a DAG in row order (``A`` is strictly
    upper triangular).

    Raises the same errors as :func:`onnx_features`.
    """
    an = _Analysis(model)
    n = len(an.layers)
    x = np.zeros((n, len(GRAPH_FEATURE_NAMES)), dtype=np.float64)
    a = np.zeros((n, n), dtype=np.float64)
    kinds = {k: i for i, k in enumerate(LAYER_KINDS)}
    base = len(LAYER_KINDS) + 1
    for i, layer in enumerate(an.layers):
        x[i, kinds[layer.kind]] = 1.0
        x[i, base - 1] = float(_selects(layer))
        nums = [getattr(layer, f) for f in _SHAPE_FIELDS]
        nums += [layer.macs, layer.ofmap_elems * layer.elem_bytes]
        x[i, base:] = np.log1p(np.asarray(nums, dtype=np.float64))
        for j in an.preds[i]:
            a[j, i] = 1.0
    return x, a
