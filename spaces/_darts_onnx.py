"""ONNX graph of a DARTS network, written directly with ``onnx.helper``, and the network plan.

The graph is built from the *canonical* genotype (see :mod:`cosearch.spaces.darts`), so
equivalent genotypes give byte-identical models. Initializer names equal the ``state_dict`` keys
of the torch module in :mod:`cosearch.spaces._darts_torch`, so trained torch weights drop into
the same graph.

Macro skeleton (Liu et al., "DARTS", ICLR 2019, Sec. 3 and the CIFAR-10 network of the paper's
code release): stem Conv3x3 + BN to ``stem_multiplier * C`` channels; ``layers`` cells, the
ones at ``layers // 3`` and ``2 * layers // 3`` being reduction cells that double the channels
and halve the resolution; cell ``k`` reads the outputs of cells ``k - 2`` and ``k - 1`` (the
stem stands in for missing ones) through a 1x1 ReLU-Conv-BN each, or a FactorizedReduce for the
``k - 2`` input when cell ``k - 1`` reduced; the cell output concatenates its 4 intermediate
nodes (4C channels); head GlobalAveragePool + Gemm. No auxiliary head, no drop path.

Cells whose output reaches the logits through no path are left out (with their weights), and so
is the preprocessing of a cell input that no node reads: a runtime would drop that work anyway,
and the cost models should not count it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from cosearch.spaces._nb201_onnx import BN_EPS, IR_VERSION, OPSET, POOL_SEED, _ones, _zeros
from cosearch.spaces._onnx_writer import OnnxWriter

__all__ = [
    "BN_EPS",
    "CellSpec",
    "CellGenotype",
    "GRAPH_CONSTANTS",
    "KERNEL",
    "build_darts_onnx",
    "network_plan",
]

#: one cell: 8 ``(op, input)`` pairs; pairs ``2i`` and ``2i + 1`` feed intermediate node ``i``;
#: input 0 / 1 are the cell inputs (cells k-2 / k-1), 2..5 the intermediate nodes 0..3
CellGenotype = tuple[tuple[str, int], ...]

#: kernel sizes of the convolution ops; dil_conv uses dilation 2 (receptive field 5 and 9)
KERNEL = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "dil_conv_3x3": 3, "dil_conv_5x5": 5}
#: int64 Slice arguments of FactorizedReduce's shifted branch; graph constants, never weights
GRAPH_CONSTANTS = ("fr.starts", "fr.ends", "fr.axes")
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class CellSpec:
    """One cell of the network: its type, channel counts, size and what of it is used.

    ``c_pp``/``c_p`` are the channels of inputs 0/1, ``c`` the per-node channels (output 4c);
    ``size`` is the input-1 spatial size (H = W). ``live`` is False when the cell's output never
    reaches the logits; ``uses0``/``uses1`` whether any node reads input 0/1.
    """

    index: int
    reduction: bool
    reduction_prev: bool
    c_pp: int
    c_p: int
    c: int
    size: int
    live: bool
    uses0: bool
    uses1: bool


def network_plan(
    normal: CellGenotype, reduce: CellGenotype, options: Mapping[str, int]
) -> tuple[CellSpec, ...]:
    """The cells of the network for the given cell genotypes and space options."""
    n_layers, c = options["layers"], options["channels"]
    reductions = {n_layers // 3, 2 * n_layers // 3}
    c_pp = c_p = options["stem_multiplier"] * c
    size = options["input_size"]
    rows: list[dict[str, Any]] = []
    reduction_prev = False
    for k in range(n_layers):
        reduction = k in reductions
        if reduction:
            c *= 2
        used = {src for _, src in (reduce if reduction else normal)}
        rows.append(
            dict(
                index=k,
                reduction=reduction,
                reduction_prev=reduction_prev,
                c_pp=c_pp,
                c_p=c_p,
                c=c,
                size=size,
                uses0=0 in used,
                uses1=1 in used,
            )
        )
        c_pp, c_p = c_p, 4 * c
        reduction_prev = reduction
        if reduction:
            size //= 2
    # Cell k reads cell k-1 through input 1 and cell k-2 through input 0; the last cell is
    # read by the head. Every cell reads at least one input, so the stem is always live.
    live = [False] * n_layers
    live[-1] = True
    for k in range(n_layers - 1, -1, -1):
        if live[k]:
            if rows[k]["uses1"] and k >= 1:
                live[k - 1] = True
            if rows[k]["uses0"] and k >= 2:
                live[k - 2] = True
    return tuple(CellSpec(live=lv, **row) for lv, row in zip(live, rows))


class _GraphBuilder(OnnxWriter):
    """Collects nodes and initializers; tensor names equal the names of the nodes making them."""

    space = "darts"
    pool_seed = POOL_SEED  # nb201's pool

    def __init__(
        self, rng: np.random.Generator | None, weights: Mapping[str, np.ndarray] | None
    ) -> None:
        super().__init__(rng, weights)
        self.arrays: dict[str, np.ndarray] = {}

    def _keep(self, name: str, arr: np.ndarray) -> None:
        self.arrays[name] = arr

    def graph_const(self, name: str, values: Sequence[int]) -> str:
        # Structural int64 constants: added once, never read from ``weights``.
        if name not in self.arrays:
            self._add(name, np.asarray(values, np.int64), TensorProto.INT64)
        return name

    def conv(
        self,
        p: str,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        *,
        groups: int = 1,
        dilation: int = 1,
    ) -> str:
        w = self.he_normal(f"{p}.weight", (cout, cin // groups, k, k), (cin // groups) * k * k)
        pad = dilation * (k - 1) // 2
        attrs: dict[str, Any] = {
            "kernel_shape": (k, k),
            "strides": (stride, stride),
            "pads": (pad, pad, pad, pad),
        }
        if groups > 1:
            attrs["group"] = groups
        if dilation > 1:
            attrs["dilations"] = (dilation, dilation)
        return self.node("Conv", [x, w], p, **attrs)

    def bn(self, p: str, x: str, c: int) -> str:
        names = [
            self.const(f"{p}.weight", _ones(c)),
            self.const(f"{p}.bias", _zeros(c)),
            self.const(f"{p}.running_mean", _zeros(c)),
            self.const(f"{p}.running_var", _ones(c)),
        ]
        return self.node("BatchNormalization", [x, *names], p, epsilon=BN_EPS)

    # -- DARTS blocks ---------------------------------------------------------------------------
    def relu_conv_bn(self, p: str, x: str, cin: int, cout: int) -> str:
        y = self.node("Relu", [x], f"{p}.relu")
        y = self.conv(f"{p}.conv", y, cin, cout, 1)
        return self.bn(f"{p}.bn", y, cout)

    def factorized_reduce(self, p: str, x: str, cin: int, cout: int) -> str:
        # Two stride-2 1x1 convs, the second on the input shifted by one pixel, concatenated:
        # halves the resolution without discarding three quarters of the pixels.
        y = self.node("Relu", [x], f"{p}.relu")
        a = self.conv(f"{p}.conv_a", y, cin, cout // 2, 1, 2)
        starts = self.graph_const("fr.starts", (1, 1))
        ends = self.graph_const("fr.ends", (_INT64_MAX, _INT64_MAX))
        axes = self.graph_const("fr.axes", (2, 3))
        shifted = self.node("Slice", [y, starts, ends, axes], f"{p}.shift")
        b = self.conv(f"{p}.conv_b", shifted, cin, cout // 2, 1, 2)
        y = self.node("Concat", [a, b], f"{p}.cat", axis=1)
        return self.bn(f"{p}.bn", y, cout)

    def sep_conv(self, p: str, x: str, c: int, k: int, stride: int) -> str:
        y = x
        for m, s in ((1, stride), (2, 1)):
            y = self.node("Relu", [y], f"{p}.relu{m}")
            y = self.conv(f"{p}.dw{m}", y, c, c, k, s, groups=c)
            y = self.conv(f"{p}.pw{m}", y, c, c, 1)
            y = self.bn(f"{p}.bn{m}", y, c)
        return y

    def dil_conv(self, p: str, x: str, c: int, k: int, stride: int) -> str:
        y = self.node("Relu", [x], f"{p}.relu")
        y = self.conv(f"{p}.dw", y, c, c, k, stride, groups=c, dilation=2)
        y = self.conv(f"{p}.pw", y, c, c, 1)
        return self.bn(f"{p}.bn", y, c)

    def op(self, p: str, name: str, x: str, c: int, stride: int) -> str:
        if name == "skip_connect":
            return x if stride == 1 else self.factorized_reduce(p, x, c, c)
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            attrs: dict[str, Any] = {
                "kernel_shape": (3, 3),
                "strides": (stride, stride),
                "pads": (1, 1, 1, 1),
            }
            if name == "avg_pool_3x3":
                attrs["count_include_pad"] = 0
                return self.node("AveragePool", [x], f"{p}.pool", **attrs)
            return self.node("MaxPool", [x], f"{p}.pool", **attrs)
        if name.startswith("sep_conv"):
            return self.sep_conv(p, x, c, KERNEL[name], stride)
        if name.startswith("dil_conv"):
            return self.dil_conv(p, x, c, KERNEL[name], stride)
        raise ValueError(f"darts op {name!r} has no ONNX form")  # canonical forms exclude it

    def cell(self, spec: CellSpec, genotype: CellGenotype, s0: str, s1: str) -> str:
        p, c = f"cell{spec.index}", spec.c
        states: list[str] = ["", ""]
        if spec.uses0:
            states[0] = (
                self.factorized_reduce(f"{p}.pre0", s0, spec.c_pp, c)
                if spec.reduction_prev
                else self.relu_conv_bn(f"{p}.pre0", s0, spec.c_pp, c)
            )
        if spec.uses1:
            states[1] = self.relu_conv_bn(f"{p}.pre1", s1, spec.c_p, c)
        for i in range(4):
            terms = []
            for j in (0, 1):
                name, src = genotype[2 * i + j]
                stride = 2 if spec.reduction and src < 2 else 1
                terms.append(self.op(f"{p}.node{i}.op{j}", name, states[src], c, stride))
            states.append(self.node("Add", terms, f"{p}.node{i}"))
        return self.node("Concat", states[2:], f"{p}.concat", axis=1)


def build_darts_onnx(
    normal: CellGenotype,
    reduce: CellGenotype,
    options: Mapping[str, int],
    *,
    seed: int | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    doc: str = "",
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The ONNX model (opset 17) of a DARTS network and its initializers as arrays.

    ``normal``/``reduce`` are canonical cell genotypes (no ``none`` op). Weights come from
    ``weights`` (``{initializer name: array}``, every float initializer required) or, when it
    is None, He-normal from a Generator seeded with ``seed``; BatchNorm starts at scale 1,
    bias 0, mean 0, variance 1. The int64 :data:`GRAPH_CONSTANTS` are part of the graph, not
    weights. Raises ValueError when ``weights`` lacks a name, has an extra one, or a shape
    differs.
    """
    if weights is None and seed is None:
        raise ValueError("build_darts_onnx needs a seed or weights")
    rng = np.random.default_rng(seed) if weights is None else None
    g = _GraphBuilder(rng, weights)
    cin, size = options["in_channels"], options["input_size"]
    c_stem = options["stem_multiplier"] * options["channels"]

    x = g.conv("stem.conv", "input", cin, c_stem, 3)
    stem = g.bn("stem.bn", x, c_stem)
    outs: dict[int, str] = {-2: stem, -1: stem}
    plan = network_plan(normal, reduce, options)
    for spec in plan:
        if spec.live:
            k = spec.index
            # A dead neighbour is one this cell does not read (the plan guarantees it).
            s0, s1 = outs.get(k - 2, ""), outs.get(k - 1, "")
            outs[k] = g.cell(spec, reduce if spec.reduction else normal, s0, s1)
    c_out = 4 * plan[-1].c
    x = g.node("GlobalAveragePool", [outs[len(plan) - 1]], "head.gap")
    x = g.node("Flatten", [x], "head.flatten", axis=1)
    w = g.he_normal("classifier.weight", (options["num_classes"], c_out), c_out)
    b = g.const("classifier.bias", _zeros(options["num_classes"]))
    g.node("Gemm", [x, w, b], "classifier", transB=1)
    g.graph.node[-1].output[0] = "logits"

    if weights is not None:
        extra = sorted(set(weights) - set(g.arrays) - set(GRAPH_CONSTANTS))
        if extra:
            raise ValueError(f"weights name {extra[0]!r}, which the darts graph does not have")

    batch, classes = options["batch"], options["num_classes"]
    g.graph.name = "darts"
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
