"""The torch form of an NAS-Bench-201 network (imported only by ``to_torch``: it imports torch).

Structure and pruning follow :mod:`cosearch.spaces._nb201_onnx` exactly, and every
``state_dict`` key (except BatchNorm's ``num_batches_tracked``) is the name of an ONNX
initializer, so :func:`cosearch.spaces.nb201.nb201_onnx_from_torch` can export trained weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cosearch.spaces._nb201_onnx import BN_EPS, live_edges

__all__ = ["NB201Net"]

_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


class _ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _ReLUConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(F.relu(x)))


class _Shortcut(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.avg_pool2d(x, 2, 2))


class _Reduction(nn.Module):
    """NAS-Bench-201's ResNetBasicblock with stride 2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = _ReLUConvBN(cout, cout, 3, 1)
        self.shortcut = _Shortcut(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class _AvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class _Cell(nn.Module):
    """The canonical cell; edge modules are registered as ``edge_<i>_<j>`` (no container)."""

    def __init__(self, c: int, live: tuple[tuple[int, int, str], ...]) -> None:
        super().__init__()
        self.live = live
        for i, j, op in live:
            if op in _CONV_KERNEL:
                self.add_module(f"edge_{i}_{j}", _ReLUConvBN(c, c, _CONV_KERNEL[op], 1))
            elif op == "avg_pool_3x3":
                self.add_module(f"edge_{i}_{j}", _AvgPool())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = {0: x}
        for i in (1, 2, 3):
            out = None
            for tgt, src, op in self.live:
                if tgt != i:
                    continue
                y = (
                    nodes[src]
                    if op == "skip_connect"
                    else getattr(self, f"edge_{i}_{src}")(nodes[src])
                )
                out = y if out is None else out + y  # same order as the ONNX Add chain
            if out is not None:
                nodes[i] = out
        return nodes[3] if 3 in nodes else x * 0.0


class _Head(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn(x)), 1), 1)


class NB201Net(nn.Module):
    """An NAS-Bench-201 network for ``canon_ops`` (the canonical cell, six ops).

    ``nb201_options`` and ``nb201_genotype`` (the canonical ``net.*`` dict) record what it
    was built from, for the export back to ONNX. Input ``(batch, in_channels, H, W)`` float32;
    output logits ``(batch, num_classes)``.
    """

    def __init__(
        self, canon_ops: Sequence[str], options: Mapping[str, Any], genotype: Mapping[str, str]
    ) -> None:
        super().__init__()
        self.nb201_options = dict(options)
        self.nb201_genotype = dict(genotype)
        live = live_edges(canon_ops)
        c0, n = options["channels"], options["cells_per_stage"]
        self.stem = _ConvBN(options["in_channels"], c0)
        for s in (1, 2, 3):
            c = c0 << (s - 1)
            if s > 1:
                self.add_module(f"reduce{s - 1}", _Reduction(c // 2, c))
            self.add_module(
                f"stage{s}", nn.ModuleDict({f"cell{k}": _Cell(c, live) for k in range(n)})
            )
        self.head = _Head(c0 << 2)
        self.classifier = nn.Linear(c0 << 2, options["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for s in (1, 2, 3):
            if s > 1:
                x = getattr(self, f"reduce{s - 1}")(x)
            for cell in getattr(self, f"stage{s}").values():
                x = cell(x)
        return self.classifier(self.head(x))
