"""DARTS supernets for the ``darts`` and ``nb201`` spaces, with PC-DARTS partial channels.

Imported only by the ``darts`` strategy at run time (it imports torch).

Every edge of a search cell is a :class:`MixedOp`: all candidate operations of the space, whose
outputs are summed with weights ``softmax(alpha)`` (Liu et al., "DARTS", ICLR 2019, Eq. 2).
``none`` is never computed: its output is zero, so leaving it out changes neither the sum nor
any gradient (``alpha_none`` still moves through the softmax).

PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture
Search", ICLR 2020): with ``k > 1`` an edge sends only its first ``C/k`` channels through the
mixed operation and passes the other channels by (stride 2: max-pooled), then shuffles the
channels in ``k`` groups so later edges sample other channels; activation memory of the mixed
operations drops about ``k``-fold. Edge normalization multiplies each edge into a node by
``softmax(beta)`` over the node's incoming edges, which steadies the edge choice that channel
sampling makes noisy.

BatchNorm in the supernet uses batch statistics in training and evaluation
(``track_running_stats=False``) and, inside mixed operations, no affine parameters (as in the
DARTS search network): the architecture weights, not BN scales, then decide an op's share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cosearch.spaces._darts_onnx import network_plan
from cosearch.spaces._nb201_onnx import EDGES as NB201_EDGES
from cosearch.spaces.darts import OPS as DARTS_OPS
from cosearch.spaces.darts import PRIMITIVES as DARTS_PRIMITIVES
from cosearch.spaces.nb201 import EDGE_NAMES as NB201_EDGE_NAMES
from cosearch.spaces.nb201 import OPS as NB201_OPS

__all__ = [
    "MixedOp",
    "Supernet",
    "DartsSupernet",
    "NB201Supernet",
    "DARTS_EDGES",
    "build_supernet",
]

#: DARTS cell edges in alpha-row order: (node i, input j), j in 0..i+1
DARTS_EDGES = tuple((i, j) for i in range(4) for j in range(i + 2))
_CONV_K = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "dil_conv_3x3": 3, "dil_conv_5x5": 5}


def _bn(c: int, affine: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, affine=affine, track_running_stats=False)


class _ReLUConvBN(nn.Module):
    def __init__(
        self, cin: int, cout: int, k: int = 1, stride: int = 1, affine: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = _bn(cout, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(F.relu(x)))


class _FactorizedReduce(nn.Module):
    """Halves H and W with two stride-2 1x1 convs, the second on the input shifted by a pixel."""

    def __init__(self, cin: int, cout: int, affine: bool = False) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv_b = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
        self.bn = _bn(cout, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x)
        return self.bn(torch.cat([self.conv_a(y), self.conv_b(y[:, :, 1:, 1:])], dim=1))


class _SepConv(nn.Module):
    def __init__(self, c: int, k: int, stride: int) -> None:
        super().__init__()
        p = (k - 1) // 2
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c, c, k, stride, p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            _bn(c, False),
            nn.ReLU(),
            nn.Conv2d(c, c, k, 1, p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            _bn(c, False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _DilConv(nn.Module):
    def __init__(self, c: int, k: int, stride: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            _bn(c, False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Pool(nn.Module):
    def __init__(self, kind: str, c: int, stride: int, bn: bool) -> None:
        super().__init__()
        self.kind, self.stride = kind, stride
        # DARTS follows pooling with a non-affine BN in the search network, so pools are on
        # the same scale as the normalized conv outputs they compete with
        self.bn = _bn(c, False) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max_pool_3x3":
            y = F.max_pool2d(x, 3, self.stride, 1)
        else:
            y = F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        return self.bn(y) if self.bn is not None else y


def _darts_op(name: str, c: int, stride: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else _FactorizedReduce(c, c)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return _Pool(name, c, stride, bn=True)
    if name.startswith("sep_conv"):
        return _SepConv(c, _CONV_K[name], stride)
    if name.startswith("dil_conv"):
        return _DilConv(c, _CONV_K[name], stride)
    raise ValueError(f"darts op {name!r} has no module")


def _nb201_op(name: str, c: int, stride: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(c, c, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(c, c, 3)
    if name == "avg_pool_3x3":
        return _Pool(name, c, 1, bn=False)
    raise ValueError(f"nb201 op {name!r} has no module")


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class MixedOp(nn.Module):
    """One edge: ``sum_o w[o] * op_o(x)`` over the non-``none`` candidates.

    ``k`` > 1 (PC-DARTS) mixes only the first ``c // k`` channels and passes the rest by.
    ``forward(x, w, active)``: ``w`` holds a weight per primitive (``none`` included);
    ``active`` (indices into the primitives) restricts which ops run, for discrete
    evaluation; an edge whose active ops are all ``none`` outputs zeros.
    """

    def __init__(self, primitives: Sequence[str], c: int, stride: int, k: int, space: str) -> None:
        super().__init__()
        make = _darts_op if space == "darts" else _nb201_op
        self.k, self.stride = k, stride
        self.c_mix = c // k
        self.index = tuple(i for i, name in enumerate(primitives) if name != "none")
        self.ops = nn.ModuleList(make(primitives[i], self.c_mix, stride) for i in self.index)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, active: Sequence[int] | None = None
    ) -> torch.Tensor:
        xa = x[:, : self.c_mix] if self.k > 1 else x
        out: torch.Tensor | None = None
        for i, op in zip(self.index, self.ops):
            if active is not None and i not in active:
                continue
            y = w[i] * op(xa)
            out = y if out is None else out + y
        if out is None:  # only `none`: a zero tensor of the output's shape
            s = self.stride
            return x[:, :, ::s, ::s] * 0.0
        if self.k == 1:
            return out
        rest = x[:, self.c_mix :]
        if self.stride == 2:
            rest = F.max_pool2d(rest, 2, 2)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)


class Supernet(nn.Module):
    """What both supernets share: architecture parameters apart from weights.

    ``alphas``: ``[cell types, edges, primitives]``; ``betas``: ``[cell types, edges]``
    (edge normalization; unused when off). ``forward(x, discrete=None)`` mixes with
    ``softmax(alphas)``; ``discrete`` maps ``(cell type, edge)`` to the chosen primitive index
    (edges that are left out are dropped), which evaluates a derived architecture with the
    supernet's weights.
    """

    primitives: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]

    def __init__(self, n_types: int, edge_norm: bool, generator: torch.Generator) -> None:
        super().__init__()
        n_edges, n_ops = len(self.edges), len(self.primitives)
        self.edge_norm = edge_norm
        # DARTS initializes alphas at 1e-3 * N(0, 1): nearly uniform, ties broken at random
        self.alphas = nn.Parameter(1e-3 * torch.randn(n_types, n_edges, n_ops, generator=generator))
        self.betas = nn.Parameter(1e-3 * torch.randn(n_types, n_edges, generator=generator))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas, self.betas] if self.edge_norm else [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n not in ("alphas", "betas")]

    def edge_weights(self, t: int) -> torch.Tensor:
        """Per-edge multipliers of cell type ``t``: softmax(beta) over each node's inputs."""
        betas = self.betas[t]
        out = torch.ones_like(betas)
        if not self.edge_norm:
            return out
        for node in sorted({i for i, _ in self.edges}):
            idx = torch.tensor(
                [e for e, (i, _) in enumerate(self.edges) if i == node], device=betas.device
            )
            out = out.index_put((idx,), torch.softmax(betas[idx], dim=0))
        return out


class _DartsCell(nn.Module):
    """A DARTS search cell: preprocessing of both inputs and 14 mixed edges."""

    def __init__(self, spec: Any, edges: Sequence[tuple[int, int]], k: int) -> None:
        super().__init__()
        self.pre0 = (
            _FactorizedReduce(spec.c_pp, spec.c)
            if spec.reduction_prev
            else _ReLUConvBN(spec.c_pp, spec.c)
        )
        self.pre1 = _ReLUConvBN(spec.c_p, spec.c)
        self.edges = nn.ModuleList(
            MixedOp(DARTS_PRIMITIVES, spec.c, 2 if spec.reduction and j < 2 else 1, k, "darts")
            for _, j in edges
        )

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor,
        edge_w: torch.Tensor,
        chosen: Mapping[int, int] | None,
    ) -> torch.Tensor:
        """``chosen`` (discrete evaluation): edge -> primitive; other edges are dropped."""
        states = [self.pre0(s0), self.pre1(s1)]
        ones = weights.new_ones(weights.shape[-1])
        e = 0
        for i in range(4):
            acc: torch.Tensor | None = None
            for j in range(i + 2):
                y: torch.Tensor | None = None
                if chosen is None:
                    y = edge_w[e] * self.edges[e](states[j], weights[e])
                elif e in chosen:
                    y = self.edges[e](states[j], ones, (chosen[e],))
                if y is not None:
                    acc = y if acc is None else acc + y
                e += 1
            assert acc is not None  # every node has inputs (discrete: two)
            states.append(acc)
        return torch.cat(states[2:], dim=1)


class DartsSupernet(Supernet):
    """The DARTS search network: stem, ``layers`` cells (reductions at 1/3 and 2/3), head.

    Shapes follow :func:`cosearch.spaces._darts_onnx.network_plan` (every cell reads both of
    its inputs), so a derived genotype has the layout of the discrete ``darts`` network with
    the same options.
    """

    primitives = DARTS_PRIMITIVES
    edges = DARTS_EDGES

    def __init__(
        self,
        *,
        channels: int,
        layers: int,
        in_channels: int,
        input_size: int,
        num_classes: int,
        stem_multiplier: int = 3,
        k: int = 1,
        edge_norm: bool = False,
        generator: torch.Generator,
    ) -> None:
        super().__init__(2, edge_norm, generator)
        both = ((DARTS_OPS[0], 0), (DARTS_OPS[0], 1)) * 4
        opts = dict(
            channels=channels,
            layers=layers,
            input_size=input_size,
            stem_multiplier=stem_multiplier,
        )
        self.plan = network_plan(both, both, opts)
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, 1, 1, bias=False), _bn(c_stem, True)
        )
        self.cells = nn.ModuleList(_DartsCell(spec, self.edges, k) for spec in self.plan)
        self.classifier = nn.Linear(4 * self.plan[-1].c, num_classes)

    def forward(
        self, x: torch.Tensor, discrete: dict[tuple[int, int], int] | None = None
    ) -> torch.Tensor:
        weights = torch.softmax(self.alphas, dim=-1)
        edge_w = [self.edge_weights(0), self.edge_weights(1)]
        chosen: list[dict[int, int] | None] = [None, None]
        if discrete is not None:
            chosen = [{e: o for (t, e), o in discrete.items() if t == tt} for tt in (0, 1)]
        s0 = s1 = self.stem(x)
        for spec, cell in zip(self.plan, self.cells):
            t = int(spec.reduction)
            s0, s1 = s1, cell(s0, s1, weights[t], edge_w[t], chosen[t])
        y = F.adaptive_avg_pool2d(s1, 1)
        return self.classifier(torch.flatten(y, 1))


class _NB201Reduction(nn.Module):
    """NAS-Bench-201's stride-2 ResNet block between stages."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(cin, cout, 3, 2, affine=True)
        self.conv_b = _ReLUConvBN(cout, cout, 3, 1, affine=True)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(F.avg_pool2d(x, 2, 2)) + self.conv_b(self.conv_a(x))


class _NB201Cell(nn.Module):
    """An NAS-Bench-201 search cell: 6 mixed edges between 4 nodes."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedOp(NB201_OPS, c, 1, k, "nb201") for _ in NB201_EDGES)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        edge_w: torch.Tensor,
        chosen: Mapping[int, int] | None,
    ) -> torch.Tensor:
        ones = weights.new_ones(weights.shape[-1])
        nodes = [x]
        for i in (1, 2, 3):
            acc: torch.Tensor | None = None
            for e, (tgt, j) in enumerate(NB201_EDGES):
                if tgt != i:
                    continue
                if chosen is None:
                    y = edge_w[e] * self.edges[e](nodes[j], weights[e])
                else:
                    y = self.edges[e](nodes[j], ones, (chosen[e],))
                acc = y if acc is None else acc + y
            assert acc is not None
            nodes.append(acc)
        return nodes[3]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search network: stem, 3 stages of search cells, ResNet reductions.

    One set of alphas is shared by every cell (the space has one cell type).
    """

    primitives = NB201_OPS
    edges = NB201_EDGES

    def __init__(
        self,
        *,
        channels: int,
        cells_per_stage: int,
        in_channels: int,
        input_size: int,
        num_classes: int,
        k: int = 1,
        edge_norm: bool = False,
        generator: torch.Generator,
    ) -> None:
        super().__init__(1, edge_norm, generator)
        del input_size  # any size that survives two stride-2 reductions works
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False), _bn(channels, True)
        )
        blocks: list[nn.Module] = []
        for s in range(3):
            c = channels << s
            if s > 0:
                blocks.append(_NB201Reduction(c // 2, c))
            blocks.extend(_NB201Cell(c, k) for _ in range(cells_per_stage))
        self.blocks = nn.ModuleList(blocks)
        self.head_bn = _bn(channels << 2, True)
        self.classifier = nn.Linear(channels << 2, num_classes)

    def forward(
        self, x: torch.Tensor, discrete: dict[tuple[int, int], int] | None = None
    ) -> torch.Tensor:
        weights = torch.softmax(self.alphas[0], dim=-1)
        edge_w = self.edge_weights(0)
        chosen = None if discrete is None else {e: o for (_, e), o in discrete.items()}
        x = self.stem(x)
        for block in self.blocks:
            if isinstance(block, _NB201Cell):
                x = block(x, weights, edge_w, chosen)
            else:
                x = block(x)
        x = F.adaptive_avg_pool2d(F.relu(self.head_bn(x)), 1)
        return self.classifier(torch.flatten(x, 1))


def build_supernet(
    space: str,
    *,
    channels: int,
    depth: int,
    in_channels: int,
    input_size: int,
    num_classes: int,
    k: int,
    edge_norm: bool,
    seed: int,
    stem_multiplier: int = 3,
) -> Supernet:
    """A supernet of ``space`` ("darts": ``depth`` cells; "nb201": ``depth`` cells per stage).

    Weights and architecture parameters are initialized from ``seed`` only (the global torch
    RNG is forked, so the caller's random state is left as it was).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # nn.Module initializers draw from the global generator
        if space == "darts":
            return DartsSupernet(
                channels=channels,
                layers=depth,
                in_channels=in_channels,
                input_size=input_size,
                num_classes=num_classes,
                stem_multiplier=stem_multiplier,
                k=k,
                edge_norm=edge_norm,
                generator=gen,
            )
        return NB201Supernet(
            channels=channels,
            cells_per_stage=depth,
            in_channels=in_channels,
            input_size=input_size,
            num_classes=num_classes,
            k=k,
            edge_norm=edge_norm,
            generator=gen,
        )


# -- derivation -------------------------------------------------------------------------------
def derive(net: Supernet, space: str) -> tuple[dict[str, object], dict[tuple[int, int], int]]:
    """The discrete architecture: ``net.*`` params and the ``discrete`` map for ``forward``.

    darts: per node, the two incoming edges with the largest non-``none`` op weight (times
    the edge weight under edge normalization; ties go to the lower input), each with its
    best non-``none`` op; the stronger edge is pair 0. nb201: per edge, the argmax over all
    five ops, ``none`` included.
    """
    with torch.no_grad():
        w = torch.softmax(net.alphas.detach().cpu().double(), dim=-1)
        params: dict[str, object] = {}
        discrete: dict[tuple[int, int], int] = {}
        if space == "nb201":
            for e, name in enumerate(NB201_EDGE_NAMES):
                best = int(torch.argmax(w[0, e]).item())
                params[f"net.{name}"] = net.primitives[best]
                discrete[(0, e)] = best
            return params, discrete
        for t, cell_type in enumerate(("normal", "reduce")):
            edge_w = net.edge_weights(t).detach().cpu().double()
            e0 = 0
            for i in range(4):
                cands = []
                for j in range(i + 2):
                    e = e0 + j
                    ops = w[t, e, 1:]  # primitive 0 is `none`
                    o = int(torch.argmax(ops).item()) + 1
                    cands.append((-(float(ops.max()) * float(edge_w[e])), j, e, o))
                for slot, (_, j, e, o) in enumerate(sorted(cands)[:2]):
                    params[f"net.{cell_type}_node{i}_op{slot}"] = net.primitives[o]
                    params[f"net.{cell_type}_node{i}_in{slot}"] = j
                    discrete[(t, e)] = o
                e0 += i + 2
        return params, discrete


def skip_count(params: dict[str, object], space: str) -> int:
    """``skip_connect`` ops of the derived normal cell (darts) or of the cell (nb201)."""
    if space == "darts":
        keys = [k for k in params if k.startswith("net.normal_") and "_op" in k]
    else:
        keys = [k for k in params if k.startswith("net.edge_")]
    return sum(params[k] == "skip_connect" for k in keys)
