"""Fixed-length graph features and GNN tensors of ONNX models (spaces/encoding.py)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from cosearch.errors import OnnxImportError
from cosearch.hwmodels import LAYER_KINDS, extract_layers
from cosearch.spaces import get_space, list_spaces
from cosearch.spaces.encoding import (
    FEATURE_NAMES,
    GRAPH_FEATURE_NAMES,
    LOG_FEATURES,
    architecture_features,
    graph_tensors,
    onnx_features,
    onnx_to_networkx,
)
from cosearch.spaces.nb201 import EDGE_NAMES, OPS, NB201Space
from cosearch.spaces.onnx_io import strip_weights

SMALL = {"channels": 4, "cells_per_stage": 1, "input_size": 8}
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"  # noqa: E501


def raw(vec: np.ndarray) -> dict[str, float]:
    """Feature values by name, with log1p undone."""
    return {
        n: float(np.expm1(v)) if n in LOG_FEATURES else float(v)
        for n, v in zip(FEATURE_NAMES, vec, strict=True)
    }


def tensor(name: str, shape: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def chain_model() -> onnx.ModelProto:
    """x[1,3,8,8] -> Conv(4, 3x3, pad 1, bias) -> Relu -> GlobalAvgPool -> Flatten -> Gemm(10)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    inits = [
        tensor("w", [4, 3, 3, 3]),
        tensor("b", [4]),
        tensor("fc_w", [10, 4]),
        tensor("fc_b", [10]),
    ]
    graph = helper.make_graph(nodes, "chain", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_names() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert LOG_FEATURES <= set(FEATURE_NAMES)
    assert {n for n in FEATURE_NAMES if n not in LOG_FEATURES} == {
        f"{k}.mac_share" for k in ("conv", "depthwise", "gemm", "matmul")
    }
    assert len(GRAPH_FEATURE_NAMES) == len(set(GRAPH_FEATURE_NAMES))


def test_chain_values_align_with_names() -> None:
    model = chain_model()
    vec = onnx_features(model)
    assert vec.dtype == np.float64 and vec.shape == (len(FEATURE_NAMES),)
    f = raw(vec)
    conv_macs, fc_macs = 4 * 3 * 9 * 64, 4 * 10
    expected = {
        "layers.conv": 1,
        "layers.eltwise": 1,
        "layers.pool": 1,
        "layers.data": 1,
        "layers.gemm": 1,
        "layers.depthwise": 0,
        "macs": conv_macs + fc_macs,
        "params": 108 + 4 + 40 + 10,
        "activation_bytes": 4 * (256 + 256 + 4 + 4 + 10),
        # Relu's step: the conv output (read by Relu) and Relu's own output are both alive
        "peak_activation_bytes": 4 * (256 + 256),
        "depth": 5,
        "nodes": 5,
        "conv.macs": conv_macs,
        "conv.mac_share": conv_macs / (conv_macs + fc_macs),
        "conv.out_channels_max": 4,
        "conv.in_channels_mean": 3,
        "conv.kernel_max": 9,
        "conv.spatial_mean": 64,
        "gemm.out_channels_mean": 10,
        "gemm.in_channels_max": 4,
        "gemm.kernel_mean": 1,
        "gemm.spatial_max": 1,
        "depthwise.macs": 0,
        "matmul.out_channels_max": 0,
    }
    for name, value in expected.items():
        assert f[name] == pytest.approx(value, rel=1e-12), name


def test_peak_counts_graph_input() -> None:
    # The first layer reads the graph input: 3x8x8 input + 4x8x8 output at its step; make the
    # input big enough to dominate.
    model = chain_model()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 64
    model.graph.initializer[0].CopyFrom(tensor("w", [4, 64, 3, 3]))
    f = raw(onnx_features(model))
    assert f["peak_activation_bytes"] == pytest.approx(4 * (64 * 64 + 256))


def test_graph_tensors_chain() -> None:
    x, a = graph_tensors(chain_model())
    assert x.shape == (5, len(GRAPH_FEATURE_NAMES)) and a.shape == (5, 5)
    np.testing.assert_array_equal(a, np.eye(5, k=1))
    kinds = [LAYER_KINDS[i] for i in np.argmax(x[:, : len(LAYER_KINDS)], axis=1)]
    assert kinds == ["conv", "eltwise", "pool", "data", "gemm"]
    col = {n: i for i, n in enumerate(GRAPH_FEATURE_NAMES)}
    assert np.expm1(x[0, col["macs"]]) == pytest.approx(4 * 3 * 9 * 64)
    assert np.expm1(x[0, col["r"]]) == pytest.approx(3)
    assert np.expm1(x[4, col["output_bytes"]]) == pytest.approx(40)


def test_graph_tensors_shape_does_not_bridge() -> None:
    # Reshape(sigmoid(x), Shape(relu(x))): data flows from Sigmoid only, not from Relu.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
        helper.make_node("Shape", ["r"], ["shape"], name="shape"),
        helper.make_node("Reshape", ["s", "shape"], ["y"], name="reshape"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    feats, a = graph_tensors(model)
    assert feats.shape[0] == 3  # Shape gives no layer
    np.testing.assert_array_equal(a, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])


def test_structure_only_form_has_the_same_features() -> None:
    space = NB201Space(**SMALL)
    model = space.build(space.from_string(ARCH)).onnx()
    np.testing.assert_array_equal(onnx_features(strip_weights(model)), onnx_features(model))
    xa, aa = graph_tensors(model)
    xb, ab = graph_tensors(strip_weights(model))
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(aa, ab)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.sampled_from(OPS), min_size=6, max_size=6))
def test_nb201_candidates(ops: list[str]) -> None:
    space = NB201Space(**SMALL)
    arch = space.build({f"net.{n}": op for n, op in zip(EDGE_NAMES, ops)})
    model = arch.onnx()
    vec = architecture_features(arch)
    assert vec.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(vec)) and np.all(vec >= 0)
    f = raw(vec)
    layers = extract_layers(model)
    assert f["macs"] == pytest.approx(sum(la.macs for la in layers), rel=1e-12)
    assert sum(f[f"layers.{k}"] for k in LAYER_KINDS) == pytest.approx(len(layers))
    assert f["nodes"] == pytest.approx(len(model.graph.node))
    assert f["depth"] == pytest.approx(nx.dag_longest_path_length(onnx_to_networkx(model)) + 1)
    x, a = graph_tensors(model)
    assert x.shape == (len(layers), len(GRAPH_FEATURE_NAMES))
    assert np.all(a == np.triu(a, 1))  # a DAG in graph order
    # every layer but the first reads another layer's output
    assert np.all(a[:, 1:].sum(axis=0) >= 1)


def test_params_match_torch() -> None:
    space = NB201Space(**SMALL)
    arch = space.build(space.from_string(ARCH))
    n_torch = sum(p.numel() for p in arch.to_torch().parameters())
    assert raw(architecture_features(arch))["params"] == pytest.approx(n_torch)


def test_wider_network_has_more_params_and_macs() -> None:
    narrow, wide = NB201Space(**SMALL), NB201Space(**{**SMALL, "channels": 8})
    a = raw(architecture_features(narrow.build(narrow.from_string(ARCH))))
    b = raw(architecture_features(wide.build(wide.from_string(ARCH))))
    for name in ("params", "macs", "activation_bytes", "peak_activation_bytes"):
        assert b[name] > a[name], name
    assert b["depth"] == a["depth"] and b["nodes"] == a["nodes"]


@pytest.mark.parametrize("name", [n for n in list_spaces() if n != "onnx_file"])
def test_every_space_same_length(name: str) -> None:
    space = get_space(name)
    arch = space.build(space.sample(np.random.default_rng(0)))
    vec = architecture_features(arch)
    assert vec.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(vec))
    assert raw(vec)["macs"] == pytest.approx(sum(la.macs for la in extract_layers(arch.onnx())))


def test_errors() -> None:
    model = chain_model()
    model.graph.node[1].op_type = "NonMaxSuppression"
    with pytest.raises(OnnxImportError, match="NonMaxSuppression"):
        onnx_features(model)
    with pytest.raises(TypeError):
        onnx_features(b"not a model")  # type: ignore[arg-type]


def test_max_and_average_pooling_are_told_apart() -> None:
    # DARTS genotypes that differ only in max_pool_3x3 vs avg_pool_3x3 had identical
    # encodings, so no predictor over them could tell the two networks apart
    from cosearch.spaces.darts import DARTS_V2

    space = get_space("darts", channels=4, layers=3)
    maxed = space.from_string(DARTS_V2)
    averaged = {k: "avg_pool_3x3" if v == "max_pool_3x3" else v for k, v in maxed.items()}
    fa, fb = (onnx_features(space.build(g).onnx()) for g in (maxed, averaged))
    at = FEATURE_NAMES.index("layers.pool_max")
    assert np.expm1(fa[at]) > 0 and fb[at] == 0.0
    assert np.array_equal(np.delete(fa, at), np.delete(fb, at))  # nothing else differs
    (xa, _), (xb, _) = (graph_tensors(space.build(g).onnx()) for g in (maxed, averaged))
    assert not np.array_equal(xa, xb)
