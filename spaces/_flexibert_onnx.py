"""ONNX graph of a flexibert network, written directly with ``onnx.helper``.

The graph is built from the *canonical* layer list, so equivalent genotypes give byte-identical
models. Initializer names equal the ``state_dict`` keys of the torch module in
:mod:`cosearch.spaces._flexibert_torch` (constants that are not weights start with ``const.``),
so trained torch weights drop into the same graph.

Skeleton (Tuli et al., "FlexiBERT: Are Current Transformer Architectures too Homogeneous and
Rigid?", JAIR 2023; post-LN encoder layers as in BERT, Devlin et al. 2019):

- embedding: ``input`` ``[batch, seq_len, in_features]`` @ ``embed.weight`` (``[in_features,
  hidden_0]``) + ``embed.position`` (``[seq_len, hidden_0]``, a learned position embedding),
  then LayerNorm. Activations then stay 2-D, ``[batch * seq_len, hidden]``, so every linear
  layer is one Gemm (``transB=1``, torch's ``[out, in]`` weight layout, bias fused);
- per layer: a Gemm projection when the hidden size changes (it feeds both the op and the
  residual), then ``x = LN(x + op(x))`` and ``x = LN(x + FFN(x))`` with
  ``FFN = Gemm -> GELU -> Gemm``; GELU is the exact erf form ``0.5 x (1 + erf(x / sqrt 2))``
  because the Gelu op needs opset 20;
- ops: ``attention`` (scaled dot-product multi-head self-attention, Q/K/V/output Gemms);
  ``conv`` (depthwise-separable 1-D convolution over the sequence: a depthwise Conv with
  ``group = hidden`` and "same" zero padding, then a pointwise Gemm); ``linear_mix`` (a learned
  ``[seq_len, seq_len]`` token-mixing matrix applied as ``M @ x``, as in FNet / MLP-Mixer's
  token mixing, without bias);
- head: mean over the sequence (ReduceMean) and a Gemm classifier giving ``logits``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from cosearch.spaces._nb201_onnx import IR_VERSION, OPSET, POOL_SEED
from cosearch.spaces._onnx_writer import POOL_SIZE as _POOL_SIZE
from cosearch.spaces._onnx_writer import OnnxWriter, normal_pool

__all__ = ["OPS", "LN_EPS", "POSITION_STD", "LayerSpec", "build_flexibert_onnx"]

#: per-layer operation types
OPS = ("attention", "conv", "linear_mix")
LN_EPS = 1e-5  # torch.nn.LayerNorm's default, so the torch module and the graph agree
#: std of the initial position embedding (BERT's initializer range, Devlin et al. 2019)
POSITION_STD = 0.02


@dataclass(frozen=True)
class LayerSpec:
    """One encoder layer: ``op`` (one of :data:`OPS`), ``hidden`` size, attention ``heads``,
    ``ffn`` (feed-forward inner size) and conv ``kernel``. Unused fields hold the canonical
    fixed value; builders read only what ``op`` needs."""

    op: str
    hidden: int
    heads: int
    ffn: int
    kernel: int


class _GraphBuilder(OnnxWriter):
    """Collects nodes and initializers; tensor names equal the names of the nodes making them."""

    space = "flexibert"
    pool_seed = POOL_SEED  # nb201's pool

    def __init__(
        self, rng: np.random.Generator | None, weights: Mapping[str, np.ndarray] | None
    ) -> None:
        super().__init__(rng, weights)
        self.arrays: dict[str, np.ndarray] = {}
        self.consts: set[str] = set()

    def weight(self, name: str, shape: tuple[int, ...], init: float | str) -> str:
        """A trainable tensor: from ``weights`` when given, else ``init``: ``"zeros"``,
        ``"ones"`` or a float std of a normal draw."""
        if self.weights is not None:
            if name not in self.weights:
                raise ValueError(f"weights for the flexibert graph lack {name!r}")
            arr = np.ascontiguousarray(self.weights[name], dtype=np.float32)
            if arr.shape != shape:
                raise ValueError(f"weight {name!r} has shape {arr.shape}; the graph needs {shape}")
        elif init == "zeros":
            arr = _zeros(shape)
        elif init == "ones":
            arr = _ones(shape)
        else:
            assert self.rng is not None and isinstance(init, float)
            n = math.prod(shape)
            scale = np.float32(init)
            if n <= _POOL_SIZE:
                # A slice of a shared pool of normals: drawing millions of fresh normals per
                # candidate would dominate the build time (see _nb201_onnx).
                off = int(self.rng.integers(0, _POOL_SIZE - n + 1))
                arr = (normal_pool(POOL_SEED)[off : off + n] * scale).reshape(shape)
            else:
                arr = (self.rng.standard_normal(n, dtype=np.float32) * scale).reshape(shape)
        self.arrays[name] = arr
        return self._add(name, arr)

    def linear_weights(self, p: str, cin: int, cout: int) -> tuple[str, str]:
        # LeCun-normal (std 1/sqrt(fan_in)) keeps untrained activations near unit scale.
        w = self.weight(f"{p}.weight", (cout, cin), 1.0 / math.sqrt(cin))
        b = self.weight(f"{p}.bias", (cout,), "zeros")
        return w, b

    def shape(self, dims: tuple[int, ...]) -> str:
        name = "const.shape_" + "x".join(map(str, dims))
        if name not in self.consts:
            self.consts.add(name)
            self._add(name, np.array(dims, np.int64), TensorProto.INT64)
        return name

    def scalar(self, name: str, value: float) -> str:
        name = f"const.{name}"
        if name not in self.consts:
            self.consts.add(name)
            self._add(name, np.array(value, np.float32))
        return name

    def linear(self, p: str, x: str, cin: int, cout: int) -> str:
        w, b = self.linear_weights(p, cin, cout)
        return self.node("Gemm", [x, w, b], p, transB=1)

    def layer_norm(self, p: str, x: str, c: int) -> str:
        scale = self.weight(f"{p}.weight", (c,), "ones")
        bias = self.weight(f"{p}.bias", (c,), "zeros")
        return self.node("LayerNormalization", [x, scale, bias], p, axis=-1, epsilon=LN_EPS)

    def gelu(self, p: str, x: str) -> str:
        y = self.node("Mul", [x, self.scalar("inv_sqrt2", 1.0 / math.sqrt(2.0))], f"{p}.scale")
        y = self.node("Erf", [y], f"{p}.erf")
        y = self.node("Add", [y, self.scalar("one", 1.0)], f"{p}.add")
        y = self.node("Mul", [x, y], f"{p}.mul")
        return self.node("Mul", [y, self.scalar("half", 0.5)], f"{p}.half")

    # -- token mixers --------------------------------------------------------------------------
    def attention(self, p: str, x: str, b: int, s: int, h: int, heads: int) -> str:
        d = h // heads
        split = self.shape((b, s, heads, d))
        q = self.linear(f"{p}.query", x, h, h)
        k = self.linear(f"{p}.key", x, h, h)
        v = self.linear(f"{p}.value", x, h, h)
        q = self.node("Reshape", [q, split], f"{p}.query.heads")
        k = self.node("Reshape", [k, split], f"{p}.key.heads")
        v = self.node("Reshape", [v, split], f"{p}.value.heads")
        q = self.node("Transpose", [q], f"{p}.query.t", perm=(0, 2, 1, 3))  # [b, H, s, d]
        k = self.node("Transpose", [k], f"{p}.key.t", perm=(0, 2, 3, 1))  # [b, H, d, s]
        v = self.node("Transpose", [v], f"{p}.value.t", perm=(0, 2, 1, 3))  # [b, H, s, d]
        a = self.node("MatMul", [q, k], f"{p}.scores")  # [b, H, s, s]
        a = self.node("Mul", [a, self.scalar(f"attn_scale_{d}", 1.0 / math.sqrt(d))], f"{p}.scale")
        a = self.node("Softmax", [a], f"{p}.softmax", axis=-1)
        c = self.node("MatMul", [a, v], f"{p}.context")  # [b, H, s, d]
        c = self.node("Transpose", [c], f"{p}.context.t", perm=(0, 2, 1, 3))
        c = self.node("Reshape", [c, self.shape((b * s, h))], f"{p}.context.merge")
        return self.linear(f"{p}.out", c, h, h)

    def conv(self, p: str, x: str, b: int, s: int, h: int, kernel: int) -> str:
        y = self.node("Reshape", [x, self.shape((b, s, h))], f"{p}.unflatten")
        y = self.node("Transpose", [y], f"{p}.to_channels", perm=(0, 2, 1))  # [b, h, s]
        w = self.weight(f"{p}.depthwise.weight", (h, 1, kernel), 1.0 / math.sqrt(kernel))
        bias = self.weight(f"{p}.depthwise.bias", (h,), "zeros")
        pad = kernel // 2
        y = self.node(
            "Conv",
            [y, w, bias],
            f"{p}.depthwise",
            group=h,
            kernel_shape=(kernel,),
            pads=(pad, pad),
            strides=(1,),
        )
        y = self.node("Transpose", [y], f"{p}.to_tokens", perm=(0, 2, 1))  # [b, s, h]
        y = self.node("Reshape", [y, self.shape((b * s, h))], f"{p}.flatten")
        return self.linear(f"{p}.pointwise", y, h, h)

    def linear_mix(self, p: str, x: str, b: int, s: int, h: int) -> str:
        m = self.weight(f"{p}.weight", (s, s), 1.0 / math.sqrt(s))
        y = self.node("Reshape", [x, self.shape((b, s, h))], f"{p}.unflatten")
        y = self.node("MatMul", [m, y], p)  # [s, s] @ [b, s, h]: mixes tokens per channel
        return self.node("Reshape", [y, self.shape((b * s, h))], f"{p}.flatten")


@cache
def _ones(shape: tuple[int, ...]) -> np.ndarray:
    a = np.ones(shape, np.float32)
    a.flags.writeable = False
    return a


@cache
def _zeros(shape: tuple[int, ...]) -> np.ndarray:
    a = np.zeros(shape, np.float32)
    a.flags.writeable = False
    return a


def build_flexibert_onnx(
    layers: Sequence[LayerSpec],
    options: Mapping[str, Any],
    *,
    seed: int | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    doc: str = "",
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The ONNX model (opset 17) of a flexibert network and its weights as arrays.

    ``layers`` is the canonical layer list; ``options`` the space's options (``seq_len``,
    ``in_features``, ``num_classes``, ``batch`` are read). Weights come from ``weights``
    (``{initializer name: array}``, every weight name required, ``const.*`` constants never
    read) or, when it is None, from a Generator seeded with ``seed``: LeCun-normal matrices,
    zero biases, LayerNorm scale 1 and bias 0, position embedding N(0, 0.02^2). The returned
    dict holds the weights only (no ``const.*``). Raises ValueError when ``weights`` lacks a
    name, has an extra one, or a shape differs.
    """
    if weights is None and seed is None:
        raise ValueError("build_flexibert_onnx needs a seed or weights")
    rng = np.random.default_rng(seed) if weights is None else None
    g = _GraphBuilder(rng, weights)
    b, s = options["batch"], options["seq_len"]
    f, classes = options["in_features"], options["num_classes"]
    width = layers[0].hidden

    ew = g.weight("embed.weight", (f, width), 1.0 / math.sqrt(f))
    pos = g.weight("embed.position", (s, width), POSITION_STD)
    x = g.node("MatMul", ["input", ew], "embed.project")  # [b, s, width]
    x = g.node("Add", [x, pos], "embed.add_position")
    x = g.node("Reshape", [x, g.shape((b * s, width))], "embed.flatten")
    x = g.layer_norm("embed_norm", x, width)
    for i, spec in enumerate(layers):
        p, h = f"layers.{i}", spec.hidden
        if h != width:
            x = g.linear(f"{p}.proj", x, width, h)
            width = h
        if spec.op == "attention":
            y = g.attention(f"{p}.attn", x, b, s, h, spec.heads)
        elif spec.op == "conv":
            y = g.conv(f"{p}.conv", x, b, s, h, spec.kernel)
        else:
            y = g.linear_mix(f"{p}.mix", x, b, s, h)
        x = g.node("Add", [x, y], f"{p}.residual1")
        x = g.layer_norm(f"{p}.norm1", x, h)
        y = g.linear(f"{p}.ffn.fc1", x, h, spec.ffn)
        y = g.gelu(f"{p}.ffn.gelu", y)
        y = g.linear(f"{p}.ffn.fc2", y, spec.ffn, h)
        x = g.node("Add", [x, y], f"{p}.residual2")
        x = g.layer_norm(f"{p}.norm2", x, h)
    x = g.node("Reshape", [x, g.shape((b, s, width))], "head.unflatten")
    x = g.node("ReduceMean", [x], "head.mean", axes=(1,), keepdims=0)  # [b, width]
    g.linear("classifier", x, width, classes)
    g.graph.node[-1].output[0] = "logits"

    if weights is not None:
        extra = sorted(set(weights) - set(g.arrays))
        if extra:
            raise ValueError(f"weights name {extra[0]!r}, which the flexibert graph does not have")

    g.graph.name = "flexibert"
    g.graph.input.append(helper.make_tensor_value_info("input", TensorProto.FLOAT, [b, s, f]))
    g.graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [b, classes]))
    model = g.model
    model.ir_version = IR_VERSION
    model.opset_import.append(helper.make_opsetid("", OPSET))
    model.producer_name = "cosearch"
    model.doc_string = doc
    return model, g.arrays
