"""ONNX graph of an OFA-MobileNetV3 subnet, written directly into a ``ModelProto``.

The graph follows a :class:`~cosearch.spaces._ofa_plan.NetPlan`. Initializer names equal the
``state_dict`` keys of the torch module in :mod:`cosearch.spaces._ofa_torch` (e.g.
``blocks.5.depthwise.conv.weight``), so trained torch weights drop into the same graph; node
names are the module paths (``blocks.5.se.reduce``) and every node's output tensor carries its
node's name.

Ops used (all in :data:`cosearch.hwmodels.layers.SUPPORTED_OPS`): Conv (grouped for depthwise),
BatchNormalization, Relu, HardSwish (x * relu6(x + 3) / 6), HardSigmoid with alpha 1/6 and beta
1/2 (relu6(x + 3) / 6), GlobalAveragePool, Mul, Add, Flatten, Gemm.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from cosearch.spaces._ofa_plan import BlockPlan, NetPlan
from cosearch.spaces._onnx_writer import OnnxWriter, normal_pool

__all__ = ["OPSET", "IR_VERSION", "BN_EPS", "build_ofa_onnx", "initializer_arrays"]

OPSET = 17
#: the IR version that goes with opset 17 (onnx 1.12), so older runtimes load the models too
IR_VERSION = 8
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default (and OFA's), so module and graph agree

# Fresh normals for the largest subnet (~7.7M weights) cost ~60 ms per candidate, more than
# the bar for a whole build: tensors are slices of a fixed pool (see _onnx_writer).
POOL_SEED = 0x0FA3B3
# The scaled slice is written into a reused per-thread buffer and only its bytes are kept:
# allocating (and keeping) a fresh array per tensor made builds ~20% slower, most of it page
# faults and cache misses on the ~20 MB of weights of a typical subnet.
_scratch = threading.local()

_ACT_OPS = {"relu": "Relu", "hswish": "HardSwish"}


def _scratch_buffer(n: int) -> np.ndarray:
    buf: np.ndarray | None = getattr(_scratch, "buf", None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 1 << 16), np.float32)
        _scratch.buf = buf
    return buf[:n]


@cache
def _filled(c: int, value: float) -> np.ndarray:
    a = np.full(c, value, np.float32)
    a.flags.writeable = False
    return a


class _Graph(OnnxWriter):
    """Collects nodes and initializers in place (helper.make_graph would copy every weight)."""

    space = "ofa_mbv3"
    pool_seed = POOL_SEED

    def _scaled(self, off: int, n: int, std: np.float32) -> np.ndarray:
        buf = _scratch_buffer(n)  # only the bytes are kept (_add), so the buffer is reused
        np.multiply(normal_pool(POOL_SEED)[off : off + n], std, out=buf)
        return buf

    def conv(
        self,
        p: str,
        x: str,
        cin: int,
        cout: int,
        k: int = 1,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> str:
        w = self.he_normal(f"{p}.weight", (cout, cin // groups, k, k), cin // groups * k * k)
        inputs = [x, w]
        if bias:
            inputs.append(self.const(f"{p}.bias", _filled(cout, 0.0)))
        pad = k // 2
        attrs: dict[str, Any] = {
            "kernel_shape": (k, k),
            "strides": (stride, stride),
            "pads": (pad, pad, pad, pad),
        }
        if groups > 1:
            attrs["group"] = groups
        return self.node("Conv", inputs, p, **attrs)

    def bn(self, p: str, x: str, c: int) -> str:
        names = [
            self.const(f"{p}.weight", _filled(c, 1.0)),
            self.const(f"{p}.bias", _filled(c, 0.0)),
            self.const(f"{p}.running_mean", _filled(c, 0.0)),
            self.const(f"{p}.running_var", _filled(c, 1.0)),
        ]
        return self.node("BatchNormalization", [x, *names], p, epsilon=BN_EPS)

    def act(self, p: str, x: str, kind: str) -> str:
        return self.node(_ACT_OPS[kind], [x], p)

    def conv_bn_act(
        self,
        p: str,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int,
        act: str | None,
        groups: int = 1,
    ) -> str:
        y = self.conv(f"{p}.conv", x, cin, cout, k, stride, groups)
        y = self.bn(f"{p}.bn", y, cout)
        return y if act is None else self.act(f"{p}.act", y, act)

    # -- blocks ---------------------------------------------------------------------------------
    def squeeze_excite(self, p: str, x: str, c: int, mid: int) -> str:
        y = self.node("GlobalAveragePool", [x], f"{p}.pool")
        y = self.conv(f"{p}.reduce", y, c, mid, bias=True)
        y = self.node("Relu", [y], f"{p}.relu")
        y = self.conv(f"{p}.expand", y, mid, c, bias=True)
        # h-sigmoid = relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1); ONNX's default alpha is 0.2
        y = self.node("HardSigmoid", [y], f"{p}.gate", alpha=1.0 / 6.0, beta=0.5)
        return self.node("Mul", [x, y], f"{p}.scale")

    def mbconv(self, b: BlockPlan, x: str) -> str:
        p = b.name
        y = x
        if b.expand:
            y = self.conv_bn_act(f"{p}.expand", y, b.cin, b.mid, 1, 1, b.act)
        y = self.conv_bn_act(
            f"{p}.depthwise", y, b.mid, b.mid, b.kernel, b.stride, b.act, groups=b.mid
        )
        if b.se_mid:
            y = self.squeeze_excite(f"{p}.se", y, b.mid, b.se_mid)
        y = self.conv_bn_act(f"{p}.project", y, b.mid, b.cout, 1, 1, None)
        return self.node("Add", [y, x], f"{p}.add") if b.residual else y


def build_ofa_onnx(
    plan: NetPlan,
    *,
    resolution: int,
    batch: int = 1,
    seed: int | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    doc: str = "",
) -> onnx.ModelProto:
    """The ONNX model (opset 17) of ``plan`` for ``batch`` x C x ``resolution`` x ``resolution``
    float32 inputs (see :func:`initializer_arrays` for its weights as arrays).

    Weights come from ``weights`` (``{initializer name: array}``, every name required) or, when
    it is None, He-normal from a Generator seeded with ``seed``; BatchNorm starts at scale 1,
    bias 0, mean 0, variance 1 and conv/linear biases at 0. Raises ValueError when ``weights``
    lacks a name, has an extra one, or a shape differs, or when neither is given.
    """
    if weights is None and seed is None:
        raise ValueError("build_ofa_onnx needs a seed or weights")
    rng = np.random.default_rng(seed) if weights is None else None
    g = _Graph(rng, weights)

    x = g.conv_bn_act(
        "first_conv", "input", plan.in_channels, plan.stem_width, 3, plan.stem_stride, "hswish"
    )
    for block in plan.blocks:
        x = g.mbconv(block, x)
    c = plan.blocks[-1].cout
    x = g.conv_bn_act("final_expand", x, c, plan.final_expand_width, 1, 1, "hswish")
    x = g.node("GlobalAveragePool", [x], "pool")
    x = g.conv("feature_mix.conv", x, plan.final_expand_width, plan.feature_mix_width)
    x = g.act("feature_mix.act", x, "hswish")
    x = g.node("Flatten", [x], "flatten", axis=1)
    w = g.he_normal(
        "classifier.weight", (plan.num_classes, plan.feature_mix_width), plan.feature_mix_width
    )
    b = g.const("classifier.bias", _filled(plan.num_classes, 0.0))
    g.node("Gemm", [x, w, b], "classifier", transB=1)
    g.graph.node[-1].output[0] = "logits"

    if weights is not None:
        extra = sorted(set(weights) - g.names)
        if extra:
            raise ValueError(f"weights name {extra[0]!r}, which the ofa_mbv3 graph does not have")

    g.graph.name = "ofa_mbv3"
    g.graph.input.append(
        helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, [batch, plan.in_channels, resolution, resolution]
        )
    )
    g.graph.output.append(
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, plan.num_classes])
    )
    model = g.model
    model.ir_version = IR_VERSION
    model.opset_import.append(helper.make_opsetid("", OPSET))
    model.producer_name = "cosearch"
    model.doc_string = doc
    return model


def initializer_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """``{initializer name: float32 array}`` of a model from :func:`build_ofa_onnx` (copies)."""
    return {
        t.name: np.frombuffer(t.raw_data, np.float32).reshape(tuple(t.dims)).copy()
        for t in model.graph.initializer
    }
