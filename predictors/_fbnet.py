"""The FBNet search space's macro-architecture, for MAC counts of the HELP FBNet table's rows.

Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search", CVPR 2019, Table 1 (macro-architecture) and Table 2 (the 9 candidate
blocks). Input 224 x 224 x 3; a 3x3 stride-2 conv to 16 channels; 22 searchable layers in
stages of (output channels, layers, first stride) = (16, 1, 1), (24, 4, 2), (32, 4, 2),
(64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1); a 1x1 conv to 1984, global average
pooling and a 1000-way classifier.

Each candidate block ``k<K>_e<E>[_g2]`` is a 1x1 group conv expanding by ``E`` (``g`` groups),
a KxK depthwise conv carrying the layer's stride, and a 1x1 group conv to the output width.
``skip`` is the identity where shape allows it; where the layer changes width or strides, this
module counts a 1x1 projection conv (an assumption: the table does not say how HELP's network
realizes skip there). MACs here feed features and a MACs-only baseline, not a cost model.
"""

from __future__ import annotations

from functools import cache

import numpy as np

__all__ = ["BLOCK_NAMES", "N_LAYERS", "N_CHOICES", "LAYERS", "layer_macs", "fixed_macs"]

#: candidate blocks in the order of the HELP table's ``op_idx`` (its ``ops`` column names them)
BLOCK_NAMES = (
    "k3_e1",
    "k3_e1_g2",
    "k3_e3",
    "k3_e6",
    "k5_e1",
    "k5_e1_g2",
    "k5_e3",
    "k5_e6",
    "skip",
)
N_CHOICES = len(BLOCK_NAMES)
_STAGES = ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
_STEM = 16
_INPUT = 224
_HEAD = 1984
_CLASSES = 1000


def _layers() -> tuple[tuple[int, int, int, int], ...]:
    """(input size H, input channels, output channels, stride) of the 22 searchable layers."""
    out = []
    h, cin = _INPUT // 2, _STEM
    for cout, n, stride in _STAGES:
        for j in range(n):
            s = stride if j == 0 else 1
            out.append((h, cin, cout, s))
            h, cin = -(-h // s), cout
    return tuple(out)


#: (input size H, input channels, output channels, stride) of each searchable layer
LAYERS = _layers()
N_LAYERS = len(LAYERS)


def _block_macs(name: str, h: int, cin: int, cout: int, stride: int) -> int:
    out = -(-h // stride)
    if name == "skip":
        return 0 if (cin == cout and stride == 1) else out * out * cin * cout
    parts = name.split("_")
    k = int(parts[0][1:])
    e = int(parts[1][1:])
    g = int(parts[2][1:]) if len(parts) > 2 else 1
    mid = cin * e
    return h * h * cin * mid // g + out * out * mid * k * k + out * out * mid * cout // g


@cache
def _layer_macs() -> np.ndarray:
    table = np.array(
        [[_block_macs(b, *layer) for b in BLOCK_NAMES] for layer in LAYERS], dtype=np.float64
    )
    table.flags.writeable = False
    return table


def layer_macs() -> np.ndarray:
    """``N_LAYERS x N_CHOICES`` MACs of each candidate block at each layer (read-only)."""
    return _layer_macs()


def fixed_macs() -> float:
    """MACs outside the searchable layers: stem conv, head conv and classifier."""
    h_last = LAYERS[-1][0]  # the last layer has stride 1
    stem = (_INPUT // 2) ** 2 * 3 * _STEM * 9
    head = h_last * h_last * _STAGES[-1][0] * _HEAD
    return float(stem + head + _HEAD * _CLASSES)
