"""The torch form of an OFA-MobileNetV3 subnet (imported only by ``to_torch``: it imports torch).

The module follows the same :class:`~cosearch.spaces._ofa_plan.NetPlan` as the ONNX builder,
and every ``state_dict`` key (except BatchNorm's ``num_batches_tracked``) is the name of an ONNX
initializer, so :func:`cosearch.spaces.ofa_mbv3.ofa_mbv3_onnx_from_torch` exports trained
weights. Blocks live in ``blocks`` (a ModuleDict keyed by slot: ``"0"`` is the first block,
``str(i + 1)`` is searchable block ``i``), each with ``expand``, ``depthwise``, ``se`` and
``project`` parts, the layout an OFA supernet's ``extract_subnet`` can fill by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cosearch.spaces._ofa_onnx import BN_EPS
from cosearch.spaces._ofa_plan import BlockPlan, NetPlan

__all__ = ["OFAMBv3Net", "MBConv"]


def _activate(x: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "relu":
        return F.relu(x)
    if act == "hswish":
        return F.hardswish(x)
    return x


class ConvBNAct(nn.Module):
    """Conv (no bias, padding k // 2) + BatchNorm + optional activation."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int, act: str | None, groups: int = 1
    ) -> None:
        super().__init__()
        self.act = act
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _activate(self.bn(self.conv(x)), self.act)


class SqueezeExcite(nn.Module):
    """x * h-sigmoid(expand(relu(reduce(mean(x)))))."""

    def __init__(self, c: int, mid: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c, mid, 1)
        self.expand = nn.Conv2d(mid, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3), keepdim=True)
        y = F.hardsigmoid(self.expand(F.relu(self.reduce(y))))
        return x * y


class MBConv(nn.Module):
    """An inverted-residual block as planned by ``plan``."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.residual = plan.residual
        self.expand = ConvBNAct(plan.cin, plan.mid, 1, 1, plan.act) if plan.expand else None
        self.depthwise = ConvBNAct(
            plan.mid, plan.mid, plan.kernel, plan.stride, plan.act, groups=plan.mid
        )
        self.se = SqueezeExcite(plan.mid, plan.se_mid) if plan.se_mid else None
        self.project = ConvBNAct(plan.mid, plan.cout, 1, 1, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return y + x if self.residual else y


class _FeatureMix(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(self.conv(x))


class OFAMBv3Net(nn.Module):
    """An OFA-MobileNetV3 subnet for ``plan``.

    ``ofa_options`` and ``ofa_genotype`` (the canonical ``net.*`` dict) record what it was
    built from, for the export back to ONNX. Input ``(batch, in_channels, r, r)`` float32;
    output logits ``(batch, num_classes)``.
    """

    def __init__(
        self, plan: NetPlan, options: Mapping[str, Any], genotype: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.ofa_options = dict(options)
        self.ofa_genotype = dict(genotype)
        self.first_conv = ConvBNAct(
            plan.in_channels, plan.stem_width, 3, plan.stem_stride, "hswish"
        )
        self.blocks = nn.ModuleDict(
            {b.name.removeprefix("blocks."): MBConv(b) for b in plan.blocks}
        )
        c = plan.blocks[-1].cout
        self.final_expand = ConvBNAct(c, plan.final_expand_width, 1, 1, "hswish")
        self.feature_mix = _FeatureMix(plan.final_expand_width, plan.feature_mix_width)
        self.classifier = nn.Linear(plan.feature_mix_width, plan.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks.values():
            x = block(x)
        x = self.final_expand(x).mean(dim=(2, 3), keepdim=True)
        return self.classifier(torch.flatten(self.feature_mix(x), 1))
