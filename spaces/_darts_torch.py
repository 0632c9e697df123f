"""The torch form of a DARTS network (imported only by ``to_torch``: it imports torch).

Structure and pruning follow :mod:`cosearch.spaces._darts_onnx` exactly, and every
``state_dict`` key (except BatchNorm's ``num_batches_tracked``) is the name of an ONNX
initializer, so :func:`cosearch.spaces.darts.darts_onnx_from_torch` can export trained weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cosearch.spaces._darts_onnx import BN_EPS, KERNEL, CellGenotype, CellSpec, network_plan

__all__ = ["DartsNet"]


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class _ReLUConvBN(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(F.relu(x)))


class _FactorizedReduce(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv_b = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.bn = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x)
        return self.bn(torch.cat([self.conv_a(y), self.conv_b(y[:, :, 1:, 1:])], dim=1))


class _SepConv(nn.Module):
    def __init__(self, c: int, k: int, stride: int) -> None:
        super().__init__()
        pad = (k - 1) // 2
        self.dw1 = nn.Conv2d(c, c, k, stride, pad, groups=c, bias=False)
        self.pw1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = _bn(c)
        self.dw2 = nn.Conv2d(c, c, k, 1, pad, groups=c, bias=False)
        self.pw2 = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = _bn(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.pw1(self.dw1(F.relu(x))))
        return self.bn2(self.pw2(self.dw2(F.relu(y))))


class _DilConv(nn.Module):
    def __init__(self, c: int, k: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn = _bn(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pw(self.dw(F.relu(x))))


class _Pool(nn.Module):
    def __init__(self, kind: str, stride: int) -> None:
        super().__init__()
        self.kind, self.stride = kind, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max_pool_3x3":
            return F.max_pool2d(x, 3, self.stride, 1)
        return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)


def _op(name: str, c: int, stride: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else _FactorizedReduce(c, c)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return _Pool(name, stride)
    if name.startswith("sep_conv"):
        return _SepConv(c, KERNEL[name], stride)
    if name.startswith("dil_conv"):
        return _DilConv(c, KERNEL[name], stride)
    raise ValueError(f"darts op {name!r} has no torch form")


class _Node(nn.Module):
    def __init__(self, pairs: CellGenotype, c: int, reduction: bool) -> None:
        super().__init__()
        self.sources = tuple(src for _, src in pairs)
        self.op0, self.op1 = (
            _op(name, c, 2 if reduction and src < 2 else 1) for name, src in pairs
        )

    def forward(self, states: list[torch.Tensor | None]) -> torch.Tensor:
        a, b = (states[s] for s in self.sources)
        assert a is not None and b is not None  # the plan builds every input a node reads
        return self.op0(a) + self.op1(b)


class _Cell(nn.Module):
    def __init__(self, spec: CellSpec, genotype: CellGenotype) -> None:
        super().__init__()
        c = spec.c
        self.pre0: nn.Module | None = None
        self.pre1: nn.Module | None = None
        if spec.uses0:
            self.pre0 = (
                _FactorizedReduce(spec.c_pp, c)
                if spec.reduction_prev
                else _ReLUConvBN(spec.c_pp, c)
            )
        if spec.uses1:
            self.pre1 = _ReLUConvBN(spec.c_p, c)
        for i in range(4):
            self.add_module(f"node{i}", _Node(genotype[2 * i : 2 * i + 2], c, spec.reduction))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor | None] = [
            self.pre0(s0) if self.pre0 is not None else None,
            self.pre1(s1) if self.pre1 is not None else None,
        ]
        for i in range(4):
            states.append(getattr(self, f"node{i}")(states))
        return torch.cat(states[2:], dim=1)  # type: ignore[arg-type]


class _Stem(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class DartsNet(nn.Module):
    """A DARTS network for canonical cell genotypes ``normal`` and ``reduce``.

    Cells that never reach the logits are not built (as in the ONNX graph); live cells are
    the submodules ``cell<k>``. ``darts_options`` and ``darts_genotype`` (the canonical
    ``net.*`` dict) record what it was built from, for the export back to ONNX. Input
    ``(batch, in_channels, H, W)`` float32; output logits ``(batch, num_classes)``.
    """

    def __init__(
        self,
        normal: CellGenotype,
        reduce: CellGenotype,
        options: Mapping[str, Any],
        genotype: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.darts_options = dict(options)
        self.darts_genotype = dict(genotype)
        self.plan = network_plan(normal, reduce, options)
        self.stem = _Stem(options["in_channels"], options["stem_multiplier"] * options["channels"])
        for spec in self.plan:
            if spec.live:
                cell = _Cell(spec, reduce if spec.reduction else normal)
                self.add_module(f"cell{spec.index}", cell)
        self.classifier = nn.Linear(4 * self.plan[-1].c, options["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        outs: dict[int, torch.Tensor] = {-2: stem, -1: stem}
        for spec in self.plan:
            if spec.live:
                k = spec.index
                # A dead neighbour is one this cell does not read: any tensor stands in.
                outs[k] = getattr(self, f"cell{k}")(outs.get(k - 2, stem), outs.get(k - 1, stem))
        y = F.adaptive_avg_pool2d(outs[len(self.plan) - 1], 1)
        return self.classifier(torch.flatten(y, 1))
