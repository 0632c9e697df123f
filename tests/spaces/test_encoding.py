"""ONNX -> networkx encoding."""

from __future__ import annotations

import networkx as nx

from cosearch.spaces.encoding import onnx_to_networkx
from cosearch.spaces.nb201 import NB201Space

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"  # noqa: E501


def test_onnx_to_networkx() -> None:
    space = NB201Space(channels=4, cells_per_stage=1, input_size=8, batch=2)
    arch = space.build(space.from_string(ARCH))
    model = arch.onnx()
    g = onnx_to_networkx(model)
    assert g.number_of_nodes() == len(model.graph.node)
    assert nx.is_directed_acyclic_graph(g)
    assert g.graph["input_shapes"] == {"input": [2, 3, 8, 8]}
    assert g.graph["output_shapes"] == {"logits": [2, 10]}
    stem = g.nodes["stem.conv"]
    assert stem["op_type"] == "Conv" and stem["output_shapes"] == [[2, 4, 8, 8]]
    assert g.nodes["classifier"]["output_shapes"] == [[2, 10]]
    assert g.nodes["reduce2.add"]["output_shapes"] == [[2, 16, 2, 2]]
    assert g.edges["stem.conv", "stem.bn"]["tensor"] == "stem.conv"
    # a skip edge is a tensor reused: node 3 adds the cell input directly
    assert g.has_edge("reduce1.add", "stage2.cell0.node3.add0")
    assert [n for n in g if g.in_degree(n) == 0] == ["stem.conv"]
    assert [n for n in g if g.out_degree(n) == 0] == ["classifier"]
    assert nx.is_isomorphic(arch.graph(), g)
