"""The torch form of a flexibert network (imported only by ``to_torch``: it imports torch).

Structure follows :mod:`cosearch.spaces._flexibert_onnx` exactly, and every ``state_dict`` key
is the name of an ONNX initializer, so
:func:`cosearch.spaces.flexibert.flexibert_onnx_from_torch` can export trained weights.
Activations are ``[batch, seq_len, hidden]`` here; the graph flattens them to 2-D, which
computes the same values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cosearch.spaces._flexibert_onnx import LN_EPS, LayerSpec

__all__ = ["FlexiBERTNet"]


class _Embedding(nn.Module):
    """``x @ weight + position``; ``weight`` is ``[in_features, hidden]`` (input-major)."""

    def __init__(self, in_features: int, seq_len: int, hidden: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(in_features, hidden))
        self.position = nn.Parameter(torch.zeros(seq_len, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight) + self.position


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(hidden // heads)  # rounded to float32 when applied
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        d = h // self.heads
        q = self.query(x).reshape(b, s, self.heads, d).transpose(1, 2)
        k = self.key(x).reshape(b, s, self.heads, d).permute(0, 2, 3, 1)
        v = self.value(x).reshape(b, s, self.heads, d).transpose(1, 2)
        a = torch.softmax(torch.matmul(q, k) * self.scale, dim=-1)
        c = torch.matmul(a, v).transpose(1, 2).reshape(b, s, h)
        return self.out(c)


class _SeparableConv(nn.Module):
    def __init__(self, hidden: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden)
        self.pointwise = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x.transpose(1, 2)).transpose(1, 2))


class _TokenMix(nn.Module):
    def __init__(self, seq_len: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(seq_len, seq_len))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.weight, x)


class _FFN(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, as in the graph


class _Layer(nn.Module):
    """Post-LN encoder layer; ``proj`` exists only when the hidden size changes."""

    def __init__(self, spec: LayerSpec, width_in: int, seq_len: int) -> None:
        super().__init__()
        h = spec.hidden
        self.proj = nn.Linear(width_in, h) if width_in != h else None
        self.op = spec.op
        if spec.op == "attention":
            self.attn = _Attention(h, spec.heads)
        elif spec.op == "conv":
            self.conv = _SeparableConv(h, spec.kernel)
        else:
            self.mix = _TokenMix(seq_len)
        self.norm1 = nn.LayerNorm(h, eps=LN_EPS)
        self.ffn = _FFN(h, spec.ffn)
        self.norm2 = nn.LayerNorm(h, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            x = self.proj(x)
        if self.op == "attention":
            y = self.attn(x)
        elif self.op == "conv":
            y = self.conv(x)
        else:
            y = self.mix(x)
        x = self.norm1(x + y)
        return self.norm2(x + self.ffn(x))


class FlexiBERTNet(nn.Module):
    """A flexibert network for the canonical layer list ``layers``.

    ``flexibert_options`` and ``flexibert_genotype`` (the canonical ``net.*`` dict) record what
    it was built from, for the export back to ONNX. Input ``(batch, seq_len, in_features)``
    float32; output logits ``(batch, num_classes)``.
    """

    def __init__(
        self, layers: Sequence[LayerSpec], options: Mapping[str, Any], genotype: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.flexibert_options = dict(options)
        self.flexibert_genotype = dict(genotype)
        s = options["seq_len"]
        width = layers[0].hidden
        self.embed = _Embedding(options["in_features"], s, width)
        self.embed_norm = nn.LayerNorm(width, eps=LN_EPS)
        blocks = []
        for spec in layers:
            blocks.append(_Layer(spec, width, s))
            width = spec.hidden
        self.layers = nn.ModuleList(blocks)
        self.classifier = nn.Linear(width, options["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.embed(x))
        for layer in self.layers:
            x = layer(x)
        return self.classifier(x.mean(dim=1))
