"""ONNX graph of an NAS-Bench-201 network, written directly with ``onnx.helper``.

The graph is built from the *canonical* (pruned, relabelled) cell, so isomorphic cells give
byte-identical models. Initializer names equal the ``state_dict`` keys of the torch module in
:mod:`cosearch.spaces._nb201_torch`, so trained torch weights drop into the same graph.

Macro skeleton (Dong & Yang, "NAS-Bench-201", ICLR 2020, Fig. 1): stem Conv3x3 + BN; three
stages of ``cells_per_stage`` cells at C, 2C, 4C channels joined by residual reduction blocks;
head BN-ReLU-GlobalAveragePool-Gemm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import onnx
from onnx import TensorProto, helper

from cosearch.spaces._onnx_writer import OnnxWriter

__all__ = ["OPSET", "build_nb201_onnx", "live_edges"]

OPSET = 17
#: the IR version that goes with opset 17 (onnx 1.12), so older runtimes load the models too
IR_VERSION = 8
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, so the torch module and the graph agree

EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}

#: the seed of nb201's pool of placeholder normals (the darts space shares it)
POOL_SEED = 0x20B201


def live_edges(canon_ops: Sequence[str]) -> tuple[tuple[int, int, str], ...]:
    """``(target, source, op)`` for every edge of a canonical cell that is not ``none``."""
    return tuple((i, j, op) for (i, j), op in zip(EDGES, canon_ops) if op != "none")


class _GraphBuilder(OnnxWriter):
    """Collects nodes and initializers; tensor names equal the names of the nodes making them."""

    space = "nb201"
    pool_seed = POOL_SEED

    def __init__(
        self, rng: np.random.Generator | None, weights: Mapping[str, np.ndarray] | None
    ) -> None:
        super().__init__(rng, weights)
        self.arrays: dict[str, np.ndarray] = {}

    def _keep(self, name: str, arr: np.ndarray) -> None:
        self.arrays[name] = arr

    def conv(self, p: str, x: str, cin: int, cout: int, k: int, stride: int) -> str:
        w = self.he_normal(f"{p}.weight", (cout, cin, k, k), cin * k * k)
        pad = k // 2
        return self.node(
            "Conv",
            [x, w],
            p,
            kernel_shape=(k, k),
            strides=(stride, stride),
            pads=(pad, pad, pad, pad),
        )

    def bn(self, p: str, x: str, c: int) -> str:
        names = [
            self.const(f"{p}.weight", _ones(c)),
            self.const(f"{p}.bias", _zeros(c)),
            self.const(f"{p}.running_mean", _zeros(c)),
            self.const(f"{p}.running_var", _ones(c)),
        ]
        return self.node("BatchNormalization", [x, *names], p, epsilon=BN_EPS)

    def relu_conv_bn(self, p: str, x: str, cin: int, cout: int, k: int, stride: int) -> str:
        y = self.node("Relu", [x], f"{p}.relu")
        y = self.conv(f"{p}.conv", y, cin, cout, k, stride)
        return self.bn(f"{p}.bn", y, cout)

    def add_all(self, terms: list[str], p: str) -> str:
        # A chain of binary Adds (rather than one Sum) keeps every node a two-operand eltwise
        # op, the form cost models and runtimes handle best.
        out = terms[0]
        for m, t in enumerate(terms[1:]):
            out = self.node("Add", [out, t], f"{p}.add{m}")
        return out

    # -- blocks ---------------------------------------------------------------------------------
    def cell(self, p: str, x: str, c: int, live: tuple[tuple[int, int, str], ...]) -> str:
        nodes = {0: x}
        for i in (1, 2, 3):
            terms = []
            for tgt, src, op in live:
                if tgt != i:
                    continue
                e = f"{p}.edge_{i}_{src}"
                if op == "skip_connect":
                    terms.append(nodes[src])
                elif op == "avg_pool_3x3":
                    terms.append(
                        self.node(
                            "AveragePool",
                            [nodes[src]],
                            f"{e}.pool",
                            kernel_shape=(3, 3),
                            strides=(1, 1),
                            pads=(1, 1, 1, 1),
                            count_include_pad=0,
                        )
                    )
                else:
                    k = _CONV_KERNEL[op]
                    terms.append(self.relu_conv_bn(e, nodes[src], c, c, k, 1))
            if terms:
                nodes[i] = self.add_all(terms, f"{p}.node{i}")
        if 3 in nodes:
            return nodes[3]
        # Output disconnected from the input: a zero tensor of the input's shape.
        # The scalar 0 is a constant of the graph, not a weight: never taken from ``weights``.
        zero = "zero" if "zero" in self.arrays else self._add("zero", np.zeros((), np.float32))
        return self.node("Mul", [x, zero], f"{p}.zero")

    def reduction(self, p: str, x: str, cin: int, cout: int) -> str:
        # NAS-Bench-201's ResNetBasicblock with stride 2
        y = self.relu_conv_bn(f"{p}.conv_a", x, cin, cout, 3, 2)
        y = self.relu_conv_bn(f"{p}.conv_b", y, cout, cout, 3, 1)
        s = self.node("AveragePool", [x], f"{p}.shortcut.pool", kernel_shape=(2, 2), strides=(2, 2))
        s = self.conv(f"{p}.shortcut.conv", s, cin, cout, 1, 1)
        return self.node("Add", [s, y], f"{p}.add")


@cache
def _ones(c: int) -> np.ndarray:
    a = np.ones(c, np.float32)
    a.flags.writeable = False
    return a


@cache
def _zeros(c: int) -> np.ndarray:
    a = np.zeros(c, np.float32)
    a.flags.writeable = False
    return a


def build_nb201_onnx(
    canon_ops: Sequence[str],
    options: Mapping[str, int],
    *,
    seed: int | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    doc: str = "",
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The ONNX model (opset 17) of an NB201 network and its initializers as arrays.

    ``canon_ops`` is the canonical cell (six ops in ``EDGES`` order, dead edges ``none``).
    Weights come from ``weights`` (``{initializer name: array}``, every name required) or, when
    it is None, He-normal from a Generator seeded with ``seed``; BatchNorm starts at scale 1,
    bias 0, mean 0, variance 1. Raises ValueError when ``weights`` lacks a name, has an extra
    one, or a shape differs.
    """
    if weights is None and seed is None:
        raise ValueError("build_nb201_onnx needs a seed or weights")
    rng = np.random.default_rng(seed) if weights is None else None
    g = _GraphBuilder(rng, weights)
    live = live_edges(canon_ops)
    c0, n_cells = options["channels"], options["cells_per_stage"]
    size, cin = options["input_size"], options["in_channels"]

    x = g.conv("stem.conv", "input", cin, c0, 3, 1)
    x = g.bn("stem.bn", x, c0)
    for s in (1, 2, 3):
        c = c0 << (s - 1)
        if s > 1:
            x = g.reduction(f"reduce{s - 1}", x, c // 2, c)
        for k in range(n_cells):
            x = g.cell(f"stage{s}.cell{k}", x, c, live)
    c = c0 << 2
    x = g.bn("head.bn", x, c)
    x = g.node("Relu", [x], "head.relu")
    x = g.node("GlobalAveragePool", [x], "head.gap")
    x = g.node("Flatten", [x], "head.flatten", axis=1)
    w = g.he_normal("classifier.weight", (options["num_classes"], c), c)
    b = g.const("classifier.bias", _zeros(options["num_classes"]))
    g.node("Gemm", [x, w, b], "classifier", transB=1)
    g.graph.node[-1].output[0] = "logits"

    if weights is not None:
        extra = sorted(set(weights) - set(g.arrays) - {"zero"})
        if extra:
            raise ValueError(f"weights name {extra[0]!r}, which the nb201 graph does not have")

    batch, classes = options["batch"], options["num_classes"]
    g.graph.name = "nb201"
    g.graph.input.append(
        helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, cin, size, size])
    )
    g.graph.output.append(
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])
    )
    model = g.model
    model.ir_version = IR_VERSION
    model.opset_import.append(helper.make_opsetid("", OPSET))
    model.producer_name = "cosearch"
    model.doc_string = doc
    return model, g.arrays
