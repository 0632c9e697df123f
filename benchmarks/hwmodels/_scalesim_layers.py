"""The layers compared by ``scalesim_compare.py``: published shapes as data, plus NB201.

Each table row is ``(name, kind, in_channels, out_channels, input size, output size, kernel,
stride)``: square inputs, outputs and kernels, batch 1; padding is implied by the sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cosearch
from cosearch.hwmodels import Layer, extract_layers

#: torchvision ``resnet18`` (He et al., "Deep Residual Learning for Image Recognition", CVPR
#: 2016, Table 1), 224 x 224 input. Each distinct conv shape once (layer1 has 4 identical convs).
RESNET18 = [
    ("conv1", "conv", 3, 64, 224, 112, 7, 2),
    ("layer1.conv3x3", "conv", 64, 64, 56, 56, 3, 1),
    ("layer2.0.conv1", "conv", 64, 128, 56, 28, 3, 2),
    ("layer2.conv3x3", "conv", 128, 128, 28, 28, 3, 1),
    ("layer2.0.downsample", "conv", 64, 128, 56, 28, 1, 2),
    ("layer3.0.conv1", "conv", 128, 256, 28, 14, 3, 2),
    ("layer3.conv3x3", "conv", 256, 256, 14, 14, 3, 1),
    ("layer3.0.downsample", "conv", 128, 256, 28, 14, 1, 2),
    ("layer4.0.conv1", "conv", 256, 512, 14, 7, 3, 2),
    ("layer4.conv3x3", "conv", 512, 512, 7, 7, 3, 1),
    ("layer4.0.downsample", "conv", 256, 512, 14, 7, 1, 2),
    ("fc", "gemm", 512, 1000, 1, 1, 1, 1),
]
#: torchvision ``alexnet`` (Krizhevsky, "One weird trick for parallelizing convolutional neural
#: networks", arXiv:1404.5997, 2014: the single-tower variant), 224 x 224 input.
ALEXNET = [
    ("conv1", "conv", 3, 64, 224, 55, 11, 4),
    ("conv2", "conv", 64, 192, 27, 27, 5, 1),
    ("conv3", "conv", 192, 384, 13, 13, 3, 1),
    ("conv4", "conv", 384, 256, 13, 13, 3, 1),
    ("conv5", "conv", 256, 256, 13, 13, 3, 1),
    ("fc6", "gemm", 9216, 4096, 1, 1, 1, 1),
    ("fc7", "gemm", 4096, 4096, 1, 1, 1, 1),
    ("fc8", "gemm", 4096, 1000, 1, 1, 1, 1),
]
#: torchvision ``mobilenet_v2`` (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
#: Bottlenecks", CVPR 2018, Table 2: t, c, n, s per stage), 224 x 224 input. Blocks b0..b16;
#: each distinct shape once (e.g. b5 repeats b4; b3.expand equals b2.expand).
MOBILENET_V2 = [
    ("stem", "conv", 3, 32, 224, 112, 3, 2),
    ("b0.dw", "depthwise", 32, 32, 112, 112, 3, 1),
    ("b0.project", "conv", 32, 16, 112, 112, 1, 1),
    ("b1.expand", "conv", 16, 96, 112, 112, 1, 1),
    ("b1.dw", "depthwise", 96, 96, 112, 56, 3, 2),
    ("b1.project", "conv", 96, 24, 56, 56, 1, 1),
    ("b2.expand", "conv", 24, 144, 56, 56, 1, 1),
    ("b2.dw", "depthwise", 144, 144, 56, 56, 3, 1),
    ("b2.project", "conv", 144, 24, 56, 56, 1, 1),
    ("b3.dw", "depthwise", 144, 144, 56, 28, 3, 2),
    ("b3.project", "conv", 144, 32, 28, 28, 1, 1),
    ("b4.expand", "conv", 32, 192, 28, 28, 1, 1),
    ("b4.dw", "depthwise", 192, 192, 28, 28, 3, 1),
    ("b4.project", "conv", 192, 32, 28, 28, 1, 1),
    ("b6.dw", "depthwise", 192, 192, 28, 14, 3, 2),
    ("b6.project", "conv", 192, 64, 14, 14, 1, 1),
    ("b7.expand", "conv", 64, 384, 14, 14, 1, 1),
    ("b7.dw", "depthwise", 384, 384, 14, 14, 3, 1),
    ("b7.project", "conv", 384, 64, 14, 14, 1, 1),
    ("b10.project", "conv", 384, 96, 14, 14, 1, 1),
    ("b11.expand", "conv", 96, 576, 14, 14, 1, 1),
    ("b11.dw", "depthwise", 576, 576, 14, 14, 3, 1),
    ("b11.project", "conv", 576, 96, 14, 14, 1, 1),
    ("b13.dw", "depthwise", 576, 576, 14, 7, 3, 2),
    ("b13.project", "conv", 576, 160, 7, 7, 1, 1),
    ("b14.expand", "conv", 160, 960, 7, 7, 1, 1),
    ("b14.dw", "depthwise", 960, 960, 7, 7, 3, 1),
    ("b14.project", "conv", 960, 160, 7, 7, 1, 1),
    ("b16.project", "conv", 960, 320, 7, 7, 1, 1),
    ("conv_last", "conv", 320, 1280, 7, 7, 1, 1),
    ("classifier", "gemm", 1280, 1000, 1, 1, 1, 1),
]
#: NAS-Bench-201 cells (default CIFAR skeleton) whose union holds every conv shape of the space.
NB201_CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
)


@dataclass(frozen=True)
class Entry:
    network: str
    name: str
    layer: Layer


def _table_layers(network: str, rows: Sequence[tuple[Any, ...]]) -> list[Entry]:
    out = []
    for name, kind, c, k, h, p, r, stride in rows:
        groups = c if kind == "depthwise" else 1
        layer = Layer(kind, c=c, k=k, h=h, w=h, p=p, q=p, r=r, s=r, stride=stride, groups=groups)
        out.append(Entry(network, name, layer))
    return out


def nb201_layers() -> list[Entry]:
    """The distinct conv and gemm layers of ``NB201_CELLS`` built by cosearch's nb201 space."""
    space = cosearch.get_space("nb201")
    seen: dict[Layer, Entry] = {}
    for cell in NB201_CELLS:
        arch = space.build(space.from_string(cell))
        for layer in extract_layers(arch.onnx()):
            if layer.kind in ("conv", "depthwise", "gemm") and layer not in seen:
                seen[layer] = Entry("nb201", layer.name, layer)
    return list(seen.values())


def catalogue() -> list[Entry]:
    """Every layer compared: ResNet-18, AlexNet, MobileNetV2, then NB201."""
    return [
        *_table_layers("resnet18", RESNET18),
        *_table_layers("alexnet", ALEXNET),
        *_table_layers("mobilenet_v2", MOBILENET_V2),
        *nb201_layers(),
    ]
