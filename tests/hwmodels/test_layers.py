"""extract_layers on small hand-built ONNX models."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cosearch.errors import OnnxImportError
from cosearch.hwmodels import Layer, extract_layers

FLOAT = TensorProto.FLOAT


def _vi(name: str, shape: list[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, FLOAT, shape)


def _init(name: str, shape: tuple[int, ...]) -> TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _one(model: onnx.ModelProto, **kw) -> Layer:
    layers = extract_layers(model, **kw)
    assert len(layers) == 1
    return layers[0]


def test_conv_shapes_stride_and_name() -> None:
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]
    )
    m = _model([node], [_vi("x", [1, 3, 8, 8])], [_vi("y", None)], [_init("w", (4, 3, 3, 3))])
    lay = _one(m)
    assert lay == Layer("conv", n=1, c=3, k=4, h=8, w=8, p=4, q=4, r=3, s=3, stride=2, groups=1)
    assert (lay.name, lay.op_type, lay.elem_bytes) == ("c1", "Conv", 4)
    assert lay.macs == 4 * 3 * 4 * 4 * 9


def test_depthwise_and_grouped_conv() -> None:
    dw = helper.make_node("Conv", ["x", "w"], ["y"], group=8, pads=[1, 1, 1, 1])
    m = _model([dw], [_vi("x", [2, 8, 6, 6])], [_vi("y", None)], [_init("w", (8, 1, 3, 3))])
    lay = _one(m)
    assert (lay.kind, lay.groups, lay.c, lay.k, lay.n, lay.p) == ("depthwise", 8, 8, 8, 2, 6)
    assert lay.name == "y"  # unnamed node: its output tensor's name
    assert lay.macs == 2 * 8 * 6 * 6 * 9

    grouped = helper.make_node("Conv", ["x", "w"], ["y"], group=2)
    m = _model([grouped], [_vi("x", [1, 8, 6, 6])], [_vi("y", None)], [_init("w", (8, 4, 1, 1))])
    lay = _one(m)
    assert (lay.kind, lay.groups, lay.c, lay.k) == ("conv", 2, 8, 8)


def test_conv_transpose_runs_on_the_output_grid() -> None:
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    m = _model([node], [_vi("x", [1, 4, 4, 4])], [_vi("y", None)], [_init("w", (4, 2, 3, 3))])
    lay = _one(m)
    assert (lay.kind, lay.c, lay.k, lay.h, lay.p, lay.q, lay.r) == ("conv", 4, 2, 4, 9, 9, 3)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "attrs"),
    [
        ((2, 16), (16, 10), {}),
        ((2, 16), (10, 16), {"transB": 1}),
        ((16, 2), (16, 10), {"transA": 1}),
    ],
)
def test_gemm_respects_transposes(a_shape, b_shape, attrs) -> None:
    node = helper.make_node("Gemm", ["a", "b", "bias"], ["y"], **attrs)
    inits = [_init("b", b_shape), _init("bias", (10,))]
    m = _model([node], [_vi("a", list(a_shape))], [_vi("y", None)], inits)
    lay = _one(m)
    assert (lay.kind, lay.n, lay.p, lay.c, lay.k) == ("gemm", 1, 2, 16, 10)
    assert lay.macs == 2 * 16 * 10


def test_matmul_broadcast_batch_and_constant_weight() -> None:
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    m = _model([node], [_vi("a", [2, 1, 4, 5]), _vi("b", [3, 5, 6])], [_vi("y", None)])
    lay = _one(m)
    assert (lay.kind, lay.n, lay.p, lay.c, lay.k) == ("matmul", 6, 4, 5, 6)
    assert lay.macs == 6 * 4 * 5 * 6

    # A constant second operand is a weight: a GEMM with the batch folded into the rows.
    m = _model([node], [_vi("a", [2, 4, 5])], [_vi("y", None)], [_init("b", (5, 6))])
    lay = _one(m)
    assert (lay.kind, lay.n, lay.p, lay.c, lay.k) == ("gemm", 1, 8, 5, 6)


def test_dropout_moves_its_output_only() -> None:
    # an inference Dropout is the identity: its optional mask output is not computed
    node = helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")
    m = _model([node], [_vi("x", [2, 48])], [_vi("y", None), _vi("mask", None)])
    assert _one(m).ofmap_elems == 96


def test_pooling_windows() -> None:
    mp = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4
    )
    gap = helper.make_node("GlobalAveragePool", ["y"], ["z"])
    m = _model([mp, gap], [_vi("x", [1, 4, 8, 8])], [_vi("z", None)])
    a, b = extract_layers(m)
    assert (a.kind, a.r, a.s, a.p, a.q, a.h, a.stride) == ("pool", 3, 3, 4, 4, 8, 2)
    assert a.vector_ops == 4 * 4 * 4 * 9
    assert (b.kind, b.r, b.s, b.p, b.q, b.k) == ("pool", 4, 4, 1, 1, 4)


def test_eltwise_operands_softmax_norm() -> None:
    nodes = [
        helper.make_node("Add", ["x", "x2"], ["s"], name="add"),
        helper.make_node("Mul", ["s", "half"], ["m"], name="scale"),
        helper.make_node("BatchNormalization", ["m", "g", "b", "mu", "var"], ["bn"], name="bn"),
        helper.make_node("Flatten", ["bn"], ["f"]),
        helper.make_node("Softmax", ["f"], ["y"], name="sm"),
    ]
    inits = [_init("half", ()), *(_init(n, (4,)) for n in ("g", "b", "mu", "var"))]
    m = _model(nodes, [_vi("x", [2, 4, 3, 3]), _vi("x2", [2, 4, 3, 3])], [_vi("y", None)], inits)
    add, mul, bn, flat, sm = extract_layers(m)
    assert (add.kind, add.operands, add.ofmap_elems) == ("eltwise", 2, 72)
    assert (mul.kind, mul.operands) == ("eltwise", 1)  # the scalar sits in a register
    assert (bn.kind, bn.n, bn.c, bn.p, bn.q) == ("norm", 2, 4, 3, 3)
    assert (flat.kind, flat.ofmap_elems) == ("data", 72)
    assert (sm.kind, sm.n, sm.c, sm.op_type) == ("softmax", 2, 36, "Softmax")


def test_data_ops_and_zero_work_ops() -> None:
    shape = numpy_helper.from_array(np.array([2, 24], dtype=np.int64))
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1, name="cat"),
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("Reshape", ["c", "shape"], ["r"], name="reshape"),
        helper.make_node("Shape", ["r"], ["rs"]),
        helper.make_node("Transpose", ["r"], ["y"], perm=[1, 0], name="t"),
    ]
    m = _model(nodes, [_vi("a", [2, 2, 3, 2]), _vi("b", [2, 2, 3, 2])], [_vi("y", None)])
    layers = extract_layers(m)
    assert [lay.name for lay in layers] == ["cat", "reshape", "t"]  # no Constant, no Shape
    assert all(lay.kind == "data" and lay.ofmap_elems == 48 for lay in layers)


def test_structure_only_model_matches_the_one_with_weights() -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1], name="conv")
    gemm_in = helper.make_node("Flatten", ["h"], ["f"])
    fc = helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc")
    shapes = {"w": (8, 3, 3, 3), "fw": (10, 8 * 4 * 4), "fb": (10,)}
    with_weights = _model(
        [conv, gemm_in, fc],
        [_vi("x", [1, 3, 4, 4])],
        [_vi("y", None)],
        [_init(k, v) for k, v in shapes.items()],
    )
    structure_only = _model(
        [conv, gemm_in, fc],
        [_vi("x", [1, 3, 4, 4]), *(_vi(k, list(v)) for k, v in shapes.items())],
        [_vi("y", None)],
    )
    a, b = extract_layers(with_weights), extract_layers(structure_only)
    assert a == b and len(a) == 3
    assert a[2].k == 10 and a[2].c == 128


def test_unknown_ops_raise_naming_type_and_node() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("TopK", ["r", "k"], ["v", "i"], name="pick"),
        helper.make_node("FancyOp", ["r"], ["y"], name="mystery", domain="my.ops"),
    ]
    m = _model(nodes, [_vi("x", [4]), _vi("k", [1])], [_vi("y", None)])
    with pytest.raises(OnnxImportError) as err:
        extract_layers(m)
    msg = str(err.value)
    assert "FancyOp" in msg and "'mystery'" in msg and "TopK" in msg and "'pick'" in msg


def test_any_op_may_build_a_constant() -> None:
    # A causal mask as torch.onnx exports it: Trilu over a tensor shaped from the input's
    # Shape is folded at compile time; the same op on activations is a layer nobody prices.
    ones = numpy_helper.from_array(np.ones((1,), np.float32), "one")
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Expand", ["one", "shape"], ["full"]),
        helper.make_node("Trilu", ["full"], ["mask"], name="causal"),
        helper.make_node("Mul", ["x", "mask"], ["y"], name="masked"),
    ]
    m = _model(nodes, [_vi("x", [4, 4])], [_vi("y", None)], [ones])
    assert [(lay.name, lay.kind) for lay in extract_layers(m)] == [("masked", "eltwise")]

    on_activations = helper.make_node("Trilu", ["y"], ["z"], name="runtime")
    m = _model([*nodes, on_activations], [_vi("x", [4, 4])], [_vi("z", None)], [ones])
    with pytest.raises(OnnxImportError, match="Trilu \\(node 'runtime'\\)"):
        extract_layers(m)


def test_uninferable_shape_names_the_tensor() -> None:
    node = helper.make_node("Relu", ["x"], ["y"], name="act")
    m = _model([node], [_vi("x", ["batch", 4])], [_vi("y", None)])
    with pytest.raises(OnnxImportError, match="tensor 'y' .*'act'.* symbolic dimension 'batch'"):
        extract_layers(m)
    m = _model([node], [_vi("x", None)], [_vi("y", None)])  # no shape at all
    with pytest.raises(OnnxImportError, match="shape of tensor 'y' .*cannot be inferred"):
        extract_layers(m)


def test_elem_bytes_override_and_validation() -> None:
    node = helper.make_node("Relu", ["x"], ["y"])
    m = _model([node], [_vi("x", [1, 4])], [_vi("y", None)])
    assert _one(m, elem_bytes=2).elem_bytes == 2
    assert _one(m).elem_bytes == 4
    # by default from the tensor's type: a float16 model moves half the bytes
    half = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
    )
    half_model = helper.make_model(half, opset_imports=[helper.make_opsetid("", 17)])
    assert _one(half_model).elem_bytes == 2
    assert _one(half_model, elem_bytes=4).elem_bytes == 4
    with pytest.raises(ValueError, match="elem_bytes"):
        extract_layers(m, elem_bytes=0)
    with pytest.raises(TypeError):
        extract_layers(m.SerializeToString())  # type: ignore[arg-type]


def _chain(n_blocks: int) -> onnx.ModelProto:
    """conv-bn-relu-add blocks: 4 nodes each, with real weights."""
    nodes, inits, prev = [], [], "x"
    for i in range(n_blocks):
        nodes += [
            helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1] * 4, name=f"conv{i}"),
            helper.make_node(
                "BatchNormalization",
                [f"c{i}", f"g{i}", f"b{i}", f"m{i}", f"v{i}"],
                [f"n{i}"],
            ),
            helper.make_node("Relu", [f"n{i}"], [f"r{i}"]),
            helper.make_node("Add", [f"r{i}", prev], [f"a{i}"]),
        ]
        inits.append(_init(f"w{i}", (16, 16, 3, 3)))
        inits += [_init(f"{k}{i}", (16,)) for k in "gbmv"]
        prev = f"a{i}"
    return _model(nodes, [_vi("x", [1, 16, 32, 32])], [_vi(prev, None)], inits)


def test_extraction_is_fast() -> None:
    model = _chain(50)  # 200 nodes
    extract_layers(model)
    per_model = float("inf")
    for _ in range(5):  # CPU time, best of 5: wall time on a loaded 2-core CI measures the load
        start = time.process_time()
        layers = extract_layers(model)
        per_model = min(per_model, time.process_time() - start)
    assert len(layers) == 200
    assert per_model < 0.05, f"{per_model * 1e3:.1f} ms for 200 nodes"


def _reshape_by_mod(x: str) -> list[onnx.NodeProto]:
    """Reshape ``x`` (2 x 6) to Concat(Mod(Shape(x), [5, 4]), [3]) = (2, 2, 3), then Relu:
    ONNX data propagation does not evaluate Mod."""

    def const(name: str, values: list[int]) -> onnx.NodeProto:
        arr = numpy_helper.from_array(np.array(values, dtype=np.int64))
        return helper.make_node("Constant", [], [name], value=arr)

    return [
        helper.make_node("Shape", [x], ["s"]),
        const("m", [5, 4]),
        helper.make_node("Mod", ["s", "m"], ["sm"]),
        const("three", [3]),
        helper.make_node("Concat", ["sm", "three"], ["target"], axis=0),
        helper.make_node("Reshape", [x, "target"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]


def test_shape_arithmetic_is_folded_when_inference_cannot_follow_it() -> None:
    # extract_layers folds the shape arithmetic itself
    m = _model(_reshape_by_mod("x"), [_vi("x", [2, 6])], [_vi("y", None)])
    reshape, relu = extract_layers(m)
    assert (reshape.name, relu.name) == ("reshape", "relu")
    assert (relu.kind, relu.n, relu.c, relu.p) == ("eltwise", 2, 2, 3)


def test_folding_skips_small_weights_kept_in_an_external_file(tmp_path) -> None:
    # torch.onnx's dynamo exporter writes small biases to the .data file too; folding fed them
    # to onnx's reference evaluator, which failed on their missing data, so a transformer
    # whose Reshape targets needed folding could not be priced
    bias = numpy_helper.from_array(np.ones(6, np.float32), "bias")
    onnx.external_data_helper.set_external_data(bias, "w.data")
    bias.ClearField("raw_data")
    nodes = [helper.make_node("Add", ["x", "bias"], ["xb"]), *_reshape_by_mod("xb")]
    m = _model(nodes, [_vi("x", [2, 6])], [_vi("y", None)], [bias])
    add, reshape, relu = extract_layers(m)
    assert (relu.kind, relu.n, relu.c, relu.p) == ("eltwise", 2, 2, 3)


def test_large_weights_are_left_out_of_shape_inference() -> None:
    # Over 1M weight elements: inference runs on a copy whose weights are typed inputs; the
    # int64 Reshape target keeps its data.
    target = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "target")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4, name="conv"),
        helper.make_node("Reshape", ["c", "target"], ["y"], name="flat"),
    ]
    m = _model(
        nodes, [_vi("x", [1, 256, 4, 4])], [_vi("y", None)], [_init("w", (512, 256, 3, 3)), target]
    )
    conv, flat = extract_layers(m)
    assert (conv.c, conv.k, conv.p) == (256, 512, 4)
    assert flat.ofmap_elems == 512 * 16
    assert len(m.graph.initializer) == 2 and m.graph.initializer[0].raw_data  # not mutated


def test_weights_stay_constants_in_big_and_structure_only_models() -> None:
    # A MatMul by a weight is one GEMM with the batch as rows, and a Transpose of a weight is
    # folded away, whether or not the model is big enough (over 1M weight elements) for shape
    # inference to run on a copy whose weights are inputs, and in cosearch's structure-only
    # form, where the weights are graph inputs listed in the model's metadata.
    from cosearch.spaces.onnx_io import model_from_bytes, model_to_bytes, strip_weights

    nodes = [
        helper.make_node("Conv", ["img", "cw"], ["c"], name="conv"),
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0], name="wt"),
        helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm"),
    ]
    inputs = [_vi("img", [1, 8, 4, 4]), _vi("x", [8, 16, 64])]
    outputs = [_vi("c", None), _vi("y", None)]
    for big in (False, True):
        inits = [_init("cw", (8, 8, 3, 3)), _init("w", (32, 64))]
        if big:  # an unused weight takes the model past the 1M elements
            inits.append(_init("big", (1 << 20,)))
        m = _model(nodes, inputs, outputs, inits)
        for model in (m, model_from_bytes(model_to_bytes(strip_weights(m)))):
            layers = extract_layers(model)
            assert [(lay.name, lay.kind) for lay in layers] == [("conv", "conv"), ("mm", "gemm")]
            assert (layers[1].n, layers[1].p, layers[1].c, layers[1].k) == (1, 128, 64, 32)


def _if_on(cond: str, then_reads: str) -> onnx.ModelProto:
    then_g = helper.make_graph(
        [helper.make_node("MatMul", [then_reads, "w"], ["t"])], "then", [], [_vi("t", [8, 16])]
    )
    else_g = helper.make_graph(
        [helper.make_node("Identity", [then_reads], ["e"])], "else", [], [_vi("e", [8, 16])]
    )
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ReduceSum", ["shape"], [cond], keepdims=0),  # a shape test
        helper.make_node("Cast", [cond], ["c"], to=TensorProto.BOOL),
        helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
    ]
    return _model(nodes, [_vi("x", [8, 16])], [_vi("y", None)], [_init("w", (16, 16))])


def test_control_flow_on_activations_is_refused_not_priced_as_a_constant() -> None:
    # torch.onnx exports `if x.size(0) > 16: ...` as an If whose condition comes from Shape:
    # a compile-time constant, but the branch multiplies the activation x, which the If node
    # reads from the enclosing graph without listing it as an input (it was priced at 0 MACs)
    with pytest.raises(OnnxImportError, match="If \\(node 'branch'\\)"):
        extract_layers(_if_on("n", then_reads="x"))
    # a branch that only reads weights is still folded at compile time
    assert extract_layers(_if_on("n", then_reads="w")) == []


def test_nested_subgraph_reads_count() -> None:
    inner = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"])], "inner", [], [_vi("r", [4])]
    )
    outer = helper.make_graph(
        [helper.make_node("If", ["k"], ["o"], then_branch=inner, else_branch=inner)],
        "outer",
        [],
        [_vi("o", [4])],
    )
    k = numpy_helper.from_array(np.array(True), "k")
    node = helper.make_node("If", ["k"], ["y"], name="top", then_branch=outer, else_branch=outer)
    with pytest.raises(OnnxImportError, match="If \\(node 'top'\\)"):
        extract_layers(_model([node], [_vi("x", [4])], [_vi("y", None)], [k]))


@pytest.mark.parametrize("target", [[16, 128], [4, 64, 10]])
def test_a_reshape_that_changes_the_element_count_is_refused(target) -> None:
    # ONNX shape inference accepts a fully given target shape without checking it; onnxruntime
    # refuses the model, so pricing it would price a network that cannot run
    shape = numpy_helper.from_array(np.array(target, np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="view"),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
    ]
    m = _model(nodes, [_vi("x", [4, 64])], [_vi("y", None)], [shape, _init("w", (target[-1], 8))])
    with pytest.raises(OnnxImportError, match="Reshape node 'view' turns 256 elements into"):
        extract_layers(m)
