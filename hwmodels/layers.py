"""ONNX -> :class:`~cosearch.hwmodels.Layer` list, using ONNX shape inference.

Every node becomes one Layer (or, for a documented zero-work set, none). An op this module does
not know raises :class:`~cosearch.errors.OnnxImportError`: unknown ops are never dropped, because
a silently missing layer makes a network look cheaper than it is.

Mapping onto the seven-loop nest of :mod:`cosearch.hwmodels._base` (N, K, C, P x Q, R x S):

- ``Conv``: ``k`` = output channels, ``c`` = input channels, ``p x q`` from the output shape,
  ``r x s`` the kernel, ``groups`` as given; kind ``depthwise`` when ``groups == c == k > 1``.
  1-D convolutions use ``q = s = 1``; 3-D ones fold depth into the first spatial axis
  (``p = D_out * H_out``, ``r = k_d * k_h``), which keeps MACs and tensor sizes exact.
- ``ConvTranspose``: a convolution over the *output* grid (``p x q`` = output size), which is
  how an array without a scatter unit runs it: on the zero-inserted input. Its MACs therefore
  include the products with inserted zeros (stride^2 times the useful work); ``h x w`` stays the
  real input size, so memory traffic counts only real data.
- ``Gemm``: kind ``gemm`` with ``p = M``, ``c = K``, ``k = N``, ``n = 1`` (transA/transB
  respected).
- ``MatMul``: kind ``matmul`` with the broadcast batch dimensions in ``n``; when the second
  operand is a constant (an initializer, a ``Constant`` output, or folded from constants) with no
  batch dimensions it is a weight: kind ``gemm``, with the first operand's batch dimensions folded
  into ``p``. Graph inputs are activations, so a structure-only model's weight MatMuls are kind
  ``matmul`` (same MACs; the cost model then does not share the weight across the batch).
- Pooling and ``Reduce*``: kind ``pool`` with ``r x s`` = the window (the reduced extent for
  global pooling and reductions).
- Element-wise ops: kind ``eltwise``; ``operands`` = the inputs that are not scalars (scalar
  inputs such as Clip bounds or a Pow exponent sit in registers, they are not streamed).
- ``Softmax``/``LogSoftmax``: kind ``softmax``; normalizations: kind ``norm``.
- Layout and data ops: kind ``data``, sized by their output elements (what they move).
- :data:`ZERO_WORK_OPS` (``Shape``, ``Constant``, ``Size``) produce no Layer: they are resolved
  at compile time and move no activation data. Likewise, a node whose inputs all come from
  initializers, constants or shapes (shape arithmetic, a transposed weight) is constant-folded:
  it is checked like any other node but gives no Layer. The tensors an ``If``/``Loop``/``Scan``
  body reads from the enclosing graph count as its inputs: control flow over activations is
  refused as unsupported, never folded away. Pricing follows the graph as given: the same
  network exported as decomposed ops (LayerNorm before opset 17, Erf-based GELU before opset
  20, HardSigmoid times x before opset 14) is priced as its several element-wise layers.
- ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Transpose`` and ``Identity`` must keep
  their input's element count (shape inference trusts a fully given Reshape target).

Non-MAC layers store their output shape as ``n, c = k, p, q`` (rank 2: ``n, c``; rank 3:
``n, c, p``; rank > 4: the middle axes folded into ``p``) with ``h, w = p, q`` except for
pooling, whose ``h x w`` is the input size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import onnx
from onnx import shape_inference

from cosearch.errors import OnnxImportError
from cosearch.hwmodels._base import Layer
from cosearch.hwmodels._fold import fold_shape_subgraphs, outer_reads

#: Model metadata key listing, as a JSON array, the graph inputs that hold weights in a
#: structure-only model (``spaces.onnx_io.strip_weights``). Weights are constants: a MatMul
#: by one is a GEMM, and a Transpose of one is folded away at compile time.
WEIGHT_INPUTS_KEY = "cosearch.weight_inputs"

__all__ = [
    "extract_layers",
    "ELTWISE_OPS",
    "DATA_OPS",
    "NORM_OPS",
    "POOL_OPS",
    "SOFTMAX_OPS",
    "ZERO_WORK_OPS",
    "SUPPORTED_OPS",
]

#: Element-wise (including activation and comparison) ops.
ELTWISE_OPS = frozenset(
    "Add Sub Mul Div Pow Sqrt Exp Log Abs Neg Reciprocal Max Min Sum Mean Relu LeakyRelu "
    "PRelu Elu Selu Celu ThresholdedRelu Sigmoid HardSigmoid HardSwish Tanh Softplus Softsign "
    "Mish Gelu Erf Clip Floor Ceil Round Sign Sin Cos Mod Where Equal Greater GreaterOrEqual "
    "Less LessOrEqual Not And Or Xor IsNaN IsInf".split()
)
#: Pooling and reductions (a window per output element).
POOL_OPS = frozenset(
    "MaxPool AveragePool LpPool GlobalAveragePool GlobalMaxPool GlobalLpPool ReduceMean "
    "ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceSumSquare "
    "ReduceLogSumExp".split()
)
SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax"})
NORM_OPS = frozenset(
    "BatchNormalization LayerNormalization InstanceNormalization GroupNormalization "
    "LpNormalization RMSNormalization".split()
)
#: Ops that only move data; their Layer is sized by the output elements.
DATA_OPS = frozenset(
    "Concat Reshape Flatten Transpose Split Slice Squeeze Unsqueeze Gather GatherElements Pad "
    "Resize Upsample Expand Tile Identity Dropout ConstantOfShape Cast CastLike DepthToSpace "
    "SpaceToDepth Range".split()
)
#: Data ops that rearrange their input's elements without adding or dropping any
_SAME_ELEMENTS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"})
#: Ops resolved at compile time: known, and deliberately given no Layer.
ZERO_WORK_OPS = frozenset({"Shape", "Constant", "Size"})
_MAC_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
SUPPORTED_OPS = (
    _MAC_OPS | ELTWISE_OPS | POOL_OPS | SOFTMAX_OPS | NORM_OPS | DATA_OPS | ZERO_WORK_OPS
)

#: Models with more weight elements are shape-inferred without their weight payloads.
_LIGHT_COPY_ELEMS = 1 << 20
#: Rounds of folding shape arithmetic when inference leaves a needed shape unknown.
_FOLD_ROUNDS = 4

_INT_ATTR = onnx.AttributeProto.INT
_CONV_ATTRS = frozenset({"group", "strides"})
_GEMM_ATTRS = frozenset({"transA", "transB"})
_POOL_ATTRS = frozenset({"kernel_shape", "strides"})


class _MissingShape(OnnxImportError):
    """A tensor a layer needs has no static shape (extract_layers may fold and retry)."""


class _Graph:
    """Shape lookups over an inferred graph; a tensor's dims are parsed only when asked for."""

    __slots__ = ("_infos", "_dims", "consts")

    def __init__(self, graph: onnx.GraphProto) -> None:
        # name -> ValueInfoProto; dims are parsed lazily in dims() because a layer looks at a
        # few of its tensors only. Later sources win: declared inputs/outputs over inferred.
        infos: dict[str, onnx.ValueInfoProto] = {vi.name: vi for vi in graph.value_info}
        infos.update((vi.name, vi) for vi in graph.input)
        infos.update((vi.name, vi) for vi in graph.output)
        self._infos = infos
        self._dims: dict[str, tuple[int, ...]] = {}
        self.consts: set[str] = set()
        for init in graph.initializer:
            self._dims[init.name] = tuple(init.dims)
            self.consts.add(init.name)
        for sparse in graph.sparse_initializer:
            self._dims[sparse.values.name] = tuple(sparse.dims)
            self.consts.add(sparse.values.name)

    def elem_bytes(self, name: str) -> int | None:
        """Bytes per element of tensor ``name`` from its inferred type; None when unknown."""
        vi = self._infos.get(name)
        if vi is None or not vi.type.HasField("tensor_type"):
            return None
        elem = vi.type.tensor_type.elem_type
        if not elem:
            return None
        try:
            return max(1, int(onnx.helper.tensor_dtype_to_np_dtype(elem).itemsize))
        except (KeyError, TypeError, ValueError):
            return None

    def dims(self, name: str, node: onnx.NodeProto) -> tuple[int, ...]:
        got = self._dims.get(name)
        if got is not None:
            return got
        vi = self._infos.get(name)
        tt = vi.type.tensor_type if vi is not None else None
        if tt is None or not tt.HasField("shape"):
            raise _MissingShape(
                f"the shape of tensor {name!r} (used by {_describe(node)}) cannot be inferred; "
                "declare the shapes of the graph inputs (weights included)"
            )
        dims = tuple(d.dim_value for d in tt.shape.dim)
        if not all(dims):  # 0 is a real size only when dim_value is set
            for d in tt.shape.dim:
                if d.HasField("dim_value") and d.dim_value >= 0:
                    continue
                what = (
                    f"the symbolic dimension {d.dim_param!r}"
                    if d.dim_param
                    else "an unknown dimension"
                )
                raise _MissingShape(
                    f"tensor {name!r} (used by {_describe(node)}) has {what}; give the graph "
                    "inputs fixed dimensions (e.g. onnx.tools.update_model_dims)"
                )
        self._dims[name] = dims
        return dims


def _describe(node: onnx.NodeProto) -> str:
    return f"{node.op_type} node {node.name or (node.output[0] if node.output else '?')!r}"


def _attrs(node: onnx.NodeProto, names: frozenset[str]) -> dict[str, Any]:
    """The int and ints attributes among ``names`` (reading only those keeps this cheap)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        name = a.name
        if name in names:
            out[name] = a.i if a.type == _INT_ATTR else tuple(a.ints)
    return out


def _prod(xs: Sequence[int]) -> int:
    return math.prod(xs) if xs else 1


def _spatial(dims: Sequence[int]) -> tuple[int, int]:
    """Spatial axes as (first, last): 1-D -> (L, 1); 3-D -> (D*H, W)."""
    if not dims:
        return 1, 1
    if len(dims) == 1:
        return dims[0], 1
    return _prod(dims[:-1]), dims[-1]


def _nckpq(shape: Sequence[int]) -> tuple[int, int, int, int]:
    r = len(shape)
    if r == 0:
        return 1, 1, 1, 1
    if r == 1:
        return 1, shape[0], 1, 1
    if r == 2:
        return shape[0], shape[1], 1, 1
    if r == 3:
        return shape[0], shape[1], shape[2], 1
    return shape[0], shape[1], _prod(shape[2:-1]), shape[-1]


def _stride(attrs: dict[str, Any]) -> int:
    strides = attrs.get("strides")
    return max(strides) if strides else 1


# -- per-kind builders: (node, graph, elem_bytes, name) -> Layer -----------------------------


def _conv(node: onnx.NodeProto, g: _Graph, eb: int, name: str) -> Layer:
    at = _attrs(node, _CONV_ATTRS)
    x = g.dims(node.input[0], node)
    wt = g.dims(node.input[1], node)
    y = g.dims(node.output[0], node)
    groups = at.get("group", 1)
    n = x[0]
    if node.op_type == "ConvTranspose":  # weight is (C, K/groups, kernel...)
        c, k = wt[0], wt[1] * groups
    else:  # weight is (K, C/groups, kernel...)
        k, c = wt[0], wt[1] * groups
    r, s = _spatial(wt[2:])
    h, w = _spatial(x[2:])
    p, q = _spatial(y[2:])
    # what ONNX's shape inference lets through and a runtime refuses (onnxruntime: "Input
    # channels C is not equal to kernel channels * group"): a model no device can run
    if len(x) > 1 and x[1] != c:
        raise OnnxImportError(
            f"{_describe(node)}: its input has {x[1]} channels, but its weight {list(wt)} with "
            f"group {groups} expects {c}"
        )
    if groups < 1 or k % groups:
        raise OnnxImportError(
            f"{_describe(node)}: group {groups} does not divide its {k} output channels"
        )
    if min(p, q, h, w) < 1:
        raise OnnxImportError(
            f"{_describe(node)}: a spatial size is not positive (input {h}x{w}, output {p}x{q})"
        )
    kind = "depthwise" if groups > 1 and groups == c == k else "conv"
    return Layer(
        kind,
        n=n,
        c=c,
        k=k,
        h=h,
        w=w,
        p=p,
        q=q,
        r=r,
        s=s,
        stride=_stride(at),
        groups=groups,
        elem_bytes=eb,
        name=name,
        op_type=node.op_type,
    )


def _gemm(node: onnx.NodeProto, g: _Graph, eb: int, name: str) -> Layer:
    at = _attrs(node, _GEMM_ATTRS)
    a = g.dims(node.input[0], node)
    b = g.dims(node.input[1], node)
    if len(a) != 2 or len(b) != 2:
        raise OnnxImportError(f"{_describe(node)} needs 2-D operands; got shapes {a} and {b}")
    m, kd = (a[1], a[0]) if at.get("transA", 0) else (a[0], a[1])
    nc = b[0] if at.get("transB", 0) else b[1]
    return Layer(
        "gemm", n=1, c=kd, k=nc, h=m, w=1, p=m, q=1, elem_bytes=eb, name=name, op_type=node.op_type
    )


def _matmul(node: onnx.NodeProto, g: _Graph, eb: int, name: str) -> Layer:
    a = g.dims(node.input[0], node)
    b = g.dims(node.input[1], node)
    a2 = (1, a[0]) if len(a) == 1 else a[-2:]
    b2 = (b[0], 1) if len(b) == 1 else b[-2:]
    m, kd, nc = a2[0], a2[1], b2[1]
    a_batch = a[:-2]
    b_batch = b[:-2]
    if node.input[1] in g.consts and _prod(b_batch) == 1:
        rows = _prod(a_batch) * m  # shared weight: the batch is more rows of one GEMM
        return Layer(
            "gemm",
            n=1,
            c=kd,
            k=nc,
            h=rows,
            w=1,
            p=rows,
            q=1,
            elem_bytes=eb,
            name=name,
            op_type=node.op_type,
        )
    batch = []
    for i in range(max(len(a_batch), len(b_batch))):
        da = a_batch[len(a_batch) - 1 - i] if i < len(a_batch) else 1
        db = b_batch[len(b_batch) - 1 - i] if i < len(b_batch) else 1
        batch.append(max(da, db) if 0 not in (da, db) else 0)
    return Layer(
        "matmul",
        n=_prod(batch),
        c=kd,
        k=nc,
        h=m,
        w=1,
        p=m,
        q=1,
        elem_bytes=eb,
        name=name,
        op_type=node.op_type,
    )


def _pool(node: onnx.NodeProto, g: _Graph, eb: int, name: str) -> Layer:
    x = g.dims(node.input[0], node)
    y = g.dims(node.output[0], node)
    op = node.op_type
    if op.startswith("Reduce"):
        # A reduction is a pool whose window is the reduced extent; keep the output layout.
        n, c, p, q = _nckpq(y)
        out = _prod(y)
        window = _prod(x) // out if out else 0
        return Layer(
            "pool",
            n=n,
            c=c,
            k=c,
            h=p * window,
            w=q,
            p=p,
            q=q,
            r=window,
            s=1,
            elem_bytes=eb,
            name=name,
            op_type=op,
        )
    at = _attrs(node, _POOL_ATTRS)
    n, c = (x[0], x[1]) if len(x) >= 2 else (1, _prod(x))
    h, w = _spatial(x[2:])
    p, q = _spatial(y[2:])
    if op.startswith("Global"):
        r, s = h, w
    else:
        r, s = _spatial(at.get("kernel_shape", ()))
    return Layer(
        "pool",
        n=n,
        c=c,
        k=c,
        h=h,
        w=w,
        p=p,
        q=q,
        r=r,
        s=s,
        stride=_stride(at),
        elem_bytes=eb,
        name=name,
        op_type=op,
    )


def _shaped(kind: str) -> Callable[[onnx.NodeProto, _Graph, int, str], Layer]:
    def build(node: onnx.NodeProto, g: _Graph, eb: int, name: str) -> Layer:
        if node.op_type == "Split":  # all outputs together (Dropout's mask is not computed)
            total = sum(_prod(g.dims(o, node)) for o in node.output if o)
            n, c, p, q = 1, total, 1, 1
        else:
            n, c, p, q = _nckpq(g.dims(node.output[0], node))
        if node.op_type in _SAME_ELEMENTS:
            given, made = _prod(g.dims(node.input[0], node)), n * c * p * q
            if given != made:  # shape inference takes a fully given target shape on trust
                raise OnnxImportError(
                    f"{_describe(node)} turns {given} elements into {made} "
                    f"(tensor {node.input[0]!r} into {node.output[0]!r}); the model is invalid"
                )
        operands = 1
        if kind == "eltwise":
            operands = 0
            for i in node.input:
                if i and _prod(g.dims(i, node)) > 1:
                    operands += 1
            operands = max(operands, 1)
        return Layer(
            kind,
            n=n,
            c=c,
            k=c,
            h=p,
            w=q,
            p=p,
            q=q,
            operands=operands,
            elem_bytes=eb,
            name=name,
            op_type=node.op_type,
        )

    return build


_BUILDERS: dict[str, Callable[[onnx.NodeProto, _Graph, int, str], Layer]] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    **{op: _pool for op in POOL_OPS},
    **{op: _shaped("eltwise") for op in ELTWISE_OPS},
    **{op: _shaped("softmax") for op in SOFTMAX_OPS},
    **{op: _shaped("norm") for op in NORM_OPS},
    **{op: _shaped("data") for op in DATA_OPS},
}


def _light_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without large weight payloads, for cheap shape inference.

    ``infer_shapes`` serializes the whole model; weights only need their shapes, so large
    initializers become typed graph inputs. Small ones (shape tensors, axes) keep their data
    because Reshape/Slice/Expand inference reads them.
    """
    src = model.graph
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g = light.graph
    g.name = src.name
    g.node.extend(src.node)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    g.input.extend(src.input)
    declared = {vi.name for vi in src.input}
    for init in src.initializer:
        size = _prod(init.dims)
        if size <= 64 or init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            g.initializer.append(init)
        elif init.name not in declared:
            g.input.append(
                onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            )
    g.sparse_initializer.extend(src.sparse_initializer)
    return light


def weight_names(model: onnx.ModelProto) -> set[str]:
    """The model's weights: its initializers and the graph inputs ``WEIGHT_INPUTS_KEY`` lists."""
    names = {i.name for i in model.graph.initializer}
    names |= {s.values.name for s in model.graph.sparse_initializer}
    for prop in model.metadata_props:
        if prop.key == WEIGHT_INPUTS_KEY:
            try:
                listed = json.loads(prop.value)
            except ValueError:
                continue
            if isinstance(listed, list):
                names.update(n for n in listed if isinstance(n, str))
    return names


def _node_name(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else f"<unnamed {node.op_type}>")


def extract_layers(model: onnx.ModelProto, *, elem_bytes: int | None = None) -> list[Layer]:
    """The layers of ``model``, in graph order, with shapes from ONNX shape inference (with
    data propagation, so shapes computed by Shape/Gather/Concat chains resolve).

    Weights may be initializers or graph inputs with declared shapes (structure-only models).
    ``elem_bytes`` (bytes per element) is recorded on every Layer; by default each layer takes
    its output tensor's element size (2 for float16, 4 for float32, 4 when unknown). Cost
    models may use their own precision instead.

    Raises:
        OnnxImportError: the model holds ops this module does not know (all are named, with a
            node name each), shape inference fails, or a tensor a layer needs has no static
            shape (the tensor is named).
        TypeError: ``model`` is not an ``onnx.ModelProto``.
        ValueError: ``elem_bytes`` is not a positive int.
    """
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"extract_layers() takes an onnx.ModelProto; got {type(model).__name__}")
    eb = elem_bytes
    if eb is not None and (isinstance(eb, bool) or not isinstance(eb, int) or eb < 1):
        raise ValueError(f"elem_bytes must be a positive int; got {elem_bytes!r}")

    # from the model as given: shape inference may run on a copy whose big weights are inputs
    weights = weight_names(model)
    unknown: dict[str, list[str]] = {}
    static = set(weights)
    for node in model.graph.node:
        if _folds(node, static):  # any op may build a constant (a causal mask's Trilu)
            static.update(node.output)
        elif node.op_type not in SUPPORTED_OPS:
            unknown.setdefault(node.op_type, []).append(_node_name(node))
    if unknown:
        parts = [
            f"{op} (node {', '.join(repr(n) for n in names[:3])}"
            f"{', ...' if len(names) > 3 else ''})"
            for op, names in sorted(unknown.items())
        ]
        raise OnnxImportError(
            f"unsupported ONNX op type(s): {'; '.join(parts)}. "
            "The measured cost model (onnxruntime, `measured:cpu`) times any op it runs; the "
            f"analytical ones price: {', '.join(sorted(SUPPORTED_OPS))}"
        )

    inferred = _infer(model)
    try:
        return _collect(inferred, eb, weights)
    except _MissingShape as err:
        missing = err
    # Shapes that depend on shape arithmetic inference could not follow: fold it and retry.
    current = model
    for _ in range(_FOLD_ROUNDS):
        try:
            folded = fold_shape_subgraphs(current, inferred)
        except Exception as err:  # the reference evaluator raises many types; report ours
            raise OnnxImportError(str(missing)) from err
        if folded is None:
            break
        current = folded
        inferred = _infer(current)
        try:
            return _collect(inferred, eb, weights)
        except _MissingShape as err:
            missing = err
    raise OnnxImportError(str(missing))


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        # The copy costs about as much as serializing a few MB of weights: only big models gain.
        weights = sum(math.prod(init.dims) for init in model.graph.initializer)
        light = _light_copy(model) if weights > _LIGHT_COPY_ELEMS else model
        return shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as err:
        raise OnnxImportError(f"ONNX shape inference failed: {err}") from err


def _collect(inferred: onnx.ModelProto, eb: int | None, weights: set[str]) -> list[Layer]:
    g = _Graph(inferred.graph)
    layers: list[Layer] = []
    static = g.consts  # weights, then everything computed from constants and shapes
    static |= weights
    for node in inferred.graph.node:
        if _folds(node, static):
            static.update(node.output)
            continue
        size = eb or g.elem_bytes(node.output[0]) or 4
        layers.append(_BUILDERS[node.op_type](node, g, size, _node_name(node)))
    return layers


def _folds(node: onnx.NodeProto, static: set[str]) -> bool:
    """Whether ``node`` is computed once at compile time (constant folding: shape arithmetic,
    transposed weights, masks), given the tensors already known to be ``static``."""
    if node.op_type in ZERO_WORK_OPS:
        return True
    # a subgraph (If, Loop, Scan) reads the enclosing graph's tensors without listing them as
    # inputs: an If on a shape test over activations is work, not a constant
    inputs = [i for i in node.input if i] + sorted(outer_reads(node))
    return bool(inputs) and all(i in static for i in inputs)
