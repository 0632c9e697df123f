"""The layer plan of one Once-for-All MobileNetV3 subnet: every block's widths and kernel.

Both builders (:mod:`cosearch.spaces._ofa_onnx` and :mod:`cosearch.spaces._ofa_torch`) read the
same :class:`NetPlan`, so the ONNX graph and the torch module cannot disagree on a shape. A later
OFA supernet can use :func:`net_plan` to know which slices of its elastic weights a subnet keeps.

Macro skeleton (Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient
Deployment", ICLR 2020, built on Howard et al., "Searching for MobileNetV3", ICCV 2019):

- first conv 3x3, stride ``stem_stride`` (2), 16 channels, BN, h-swish;
- first block: MBConv with expand ratio 1 (no 1x1 expansion), depthwise 3x3, ReLU, 16 channels,
  identity shortcut;
- five stages of 2-4 MBConv blocks (expand 1x1 + BN + act, depthwise kxk + BN + act, optional
  squeeze-excite, project 1x1 + BN), with (width, stride, activation, SE):
  (24, 2, relu, no), (40, 2, relu, yes), (80, 2, h-swish, no), (112, 1, h-swish, yes),
  (160, 2, h-swish, yes); the first block of a stage applies the stride and changes the width,
  the others keep both and add an identity shortcut;
- final expand 1x1 conv to 960 + BN + h-swish; global average pool; 1x1 conv to 1280 (no BN,
  no bias) + h-swish; linear classifier.

Widths are scaled by ``width_mult`` and rounded with :func:`make_divisible`. Block names follow
the 21 slots of the full network: ``blocks.0`` is the first block and searchable block ``i``
(``ks_i``/``e_i``, stage ``i // 4``, position ``i % 4``) is ``blocks.{i + 1}``; inactive slots
are simply absent, so a subnet's names are those of the supernet's active blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "KS_CHOICES",
    "E_CHOICES",
    "D_CHOICES",
    "N_STAGES",
    "MAX_DEPTH",
    "N_BLOCKS",
    "STAGES",
    "StageSpec",
    "BlockPlan",
    "NetPlan",
    "make_divisible",
    "active_blocks",
    "net_plan",
]

KS_CHOICES = (3, 5, 7)
E_CHOICES = (3, 4, 6)
D_CHOICES = (2, 3, 4)
N_STAGES = 5
MAX_DEPTH = 4
N_BLOCKS = N_STAGES * MAX_DEPTH

CHANNEL_DIVISOR = 8
SE_REDUCTION = 4
STEM_WIDTH = 16
FIRST_BLOCK_WIDTH = 16
FINAL_EXPAND_WIDTH = 960
FEATURE_MIX_WIDTH = 1280


@dataclass(frozen=True)
class StageSpec:
    """One searchable stage at width multiplier 1.0. ``act`` is ``"relu"`` or ``"hswish"``."""

    width: int
    stride: int
    act: str
    se: bool


#: OFA-MobileNetV3's five searchable stages (Cai et al. 2020; Howard et al. 2019, Table 1)
STAGES = (
    StageSpec(24, 2, "relu", False),
    StageSpec(40, 2, "relu", True),
    StageSpec(80, 2, "hswish", False),
    StageSpec(112, 1, "hswish", True),
    StageSpec(160, 2, "hswish", True),
)


def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), bumped up
    one step when rounding down would lose more than 10% (the MobileNet channel rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockPlan:
    """One MBConv block. ``mid`` is the expanded width (``cin`` when ``expand`` is False);
    ``se_mid`` the squeeze-excite bottleneck width (0: no SE); ``residual`` adds the input."""

    name: str
    cin: int
    cout: int
    mid: int
    expand: bool
    kernel: int
    stride: int
    act: str
    se_mid: int
    residual: bool


@dataclass(frozen=True)
class NetPlan:
    """Every width and block of one subnet; ``blocks`` are in execution order."""

    in_channels: int
    stem_width: int
    stem_stride: int
    blocks: tuple[BlockPlan, ...]
    final_expand_width: int
    feature_mix_width: int
    num_classes: int


def active_blocks(d: Sequence[int]) -> tuple[int, ...]:
    """Indices (0-19) of the searchable blocks that stage depths ``d`` keep."""
    return tuple(s * MAX_DEPTH + j for s in range(N_STAGES) for j in range(d[s]))


def _block(
    name: str, cin: int, cout: int, kernel: int, expand_ratio: int, stride: int, act: str, se: bool
) -> BlockPlan:
    expand = expand_ratio != 1
    mid = make_divisible(round(cin * expand_ratio)) if expand else cin
    return BlockPlan(
        name=name,
        cin=cin,
        cout=cout,
        mid=mid,
        expand=expand,
        kernel=kernel,
        stride=stride,
        act=act,
        se_mid=make_divisible(mid // SE_REDUCTION) if se else 0,
        residual=stride == 1 and cin == cout,
    )


def net_plan(
    ks: Sequence[int],
    e: Sequence[int],
    d: Sequence[int],
    *,
    width_mult: float = 1.0,
    in_channels: int = 3,
    num_classes: int = 1000,
    stem_stride: int = 2,
) -> NetPlan:
    """The plan of the subnet with kernel sizes ``ks`` and expand ratios ``e`` (20 each; entries
    of inactive blocks are ignored) and stage depths ``d`` (5). Values are not range-checked
    here: the space validates them first."""
    stem = make_divisible(STEM_WIDTH * width_mult)
    first = make_divisible(FIRST_BLOCK_WIDTH * width_mult)
    blocks = [_block("blocks.0", stem, first, 3, 1, 1, "relu", False)]
    cin = first
    for s, stage in enumerate(STAGES):
        cout = make_divisible(stage.width * width_mult)
        for j in range(d[s]):
            i = s * MAX_DEPTH + j
            stride = stage.stride if j == 0 else 1
            blocks.append(
                _block(f"blocks.{i + 1}", cin, cout, ks[i], e[i], stride, stage.act, stage.se)
            )
            cin = cout
    return NetPlan(
        in_channels=in_channels,
        stem_width=stem,
        stem_stride=stem_stride,
        blocks=tuple(blocks),
        final_expand_width=make_divisible(FINAL_EXPAND_WIDTH * width_mult),
        feature_mix_width=make_divisible(FEATURE_MIX_WIDTH * width_mult),
        num_classes=num_classes,
    )
