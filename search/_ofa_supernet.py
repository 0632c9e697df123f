"""The elastic Once-for-All MobileNetV3 supernet (imported lazily: it imports torch).

Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
ICLR 2020, section 3.2. One set of weights holds every subnet of the ``ofa_mbv3`` space:

- elastic kernel: a block stores only its largest depthwise kernel (7x7). A smaller kernel is
  the centre crop of the next larger *effective* kernel, passed through a learned linear map
  per block and size (``transform_5``: 25x25, ``transform_3``: 9x9, shared by the block's
  channels, initialized to the identity), so 7 -> 5 -> 3 chains two maps. A plain crop would
  force one weight to serve as the centre of three kernels of different roles;
- elastic depth: stage ``s`` runs its first ``d_s`` blocks;
- elastic width: a block with expand ratio ``e`` uses the first ``make_divisible(cin * e)``
  expanded channels (and the first squeeze-excite channels its plan gives);
  :meth:`OFASupernet.sort_channels_` first orders those channels by importance (L1 norm of
  their projection weights) so the narrow subnets keep the most important ones;
- elastic resolution: any input size works; the training loop resizes each batch to a
  resolution drawn from the space's ``resolutions`` option.

Layer widths and names come from :func:`cosearch.spaces._ofa_plan.net_plan`, the same plan the
space's ONNX and torch builders read, so :meth:`OFASupernet.extract_subnet` fills the space's own
torch module (:class:`cosearch.spaces._ofa_torch.OFAMBv3Net`) by state_dict key, and its ONNX
export is the space's graph for those parameters. The elastic-module interface (``config``,
``from_config``, ``set_active``, ``sample_active``, ``extract_subnet``) follows the idea of
Once-for-All's dynamic layers; the code is written for this package.

CPU speed: PyTorch's CPU convolutions cost about a millisecond per call on tiny maps, and on
small maps most taps of a 7x7 kernel only ever meet zero padding. Convolutions here drop those
taps (a kernel larger than ``2 * H - 1`` for an ``H x H`` input is cropped: exact, the dropped
taps multiply padding zeros) and compute 1x1 maps as matrix products; :func:`fast_convs_` does
the same for the space's static module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cosearch.spaces._ofa_onnx import BN_EPS
from cosearch.spaces._ofa_plan import (
    D_CHOICES,
    E_CHOICES,
    KS_CHOICES,
    BlockPlan,
    NetPlan,
    net_plan,
)
from cosearch.spaces._ofa_torch import ConvBNAct, OFAMBv3Net
from cosearch.spaces.ofa_mbv3 import D_NAMES, E_NAMES, KS_NAMES, OFAMBv3Space

__all__ = [
    "ElasticChoices",
    "ElasticBatchNorm2d",
    "ElasticPointwiseConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticMBConv",
    "OFASupernet",
    "fast_convs_",
]


@dataclass(frozen=True)
class ElasticChoices:
    """The values :meth:`OFASupernet.sample_active` may draw: kernel sizes, expand ratios,
    stage depths and input resolutions (pixels)."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: tuple[int, ...]

    def to_json(self) -> dict[str, list[int]]:
        return {k: list(getattr(self, k)) for k in ("ks", "e", "d", "r")}


def _activate(x: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "relu":
        return F.relu(x)
    if act == "hswish":
        return F.hardswish(x)
    return x


def _crop_kernel(w: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size x size`` taps of square kernels ``w`` (..., k, k)."""
    k = w.shape[-1]
    if size >= k:
        return w
    o = (k - size) // 2
    return w[..., o : o + size, o : o + size]


def _useful_kernel(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # With padding k // 2, output pixel i reads input rows i*s + t for |t| <= k // 2; only
    # |t| <= H - 1 can land inside an H-row input, so taps beyond that always meet zeros.
    return _crop_kernel(w, 2 * max(x.shape[-2], x.shape[-1]) - 1)


def _conv(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: int, groups: int
) -> torch.Tensor:
    """``F.conv2d(x, w, b, stride, padding=k // 2, groups=groups)`` for square odd kernels,
    computed the cheap way where that is exact: taps that only meet padding are dropped, a
    1x1 map is a matrix product, a 1x1 depthwise kernel an elementwise product (PyTorch's CPU
    convolutions cost ~1 ms per call on such tiny maps, far more than the arithmetic)."""
    w = _useful_kernel(w, x)
    k = w.shape[-1]
    if groups == 1 and x.shape[-1] == 1 and x.shape[-2] == 1:
        y = F.linear(x.flatten(1), w[:, :, k // 2, k // 2], b)
        return y[:, :, None, None]
    if groups > 1 and groups == x.shape[1] == w.shape[0] and k == 1:
        if stride > 1:
            x = x[:, :, ::stride, ::stride]
        y = x * w.reshape(1, -1, 1, 1)
        return y if b is None else y + b.reshape(1, -1, 1, 1)
    return F.conv2d(x, w, b, stride, k // 2, 1, groups)


# -- elastic layers -------------------------------------------------------------------------------
class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``C`` channels of a ``C``-channel input (``C <= num_features``).

    Running statistics of the used channels are updated in place, as the full layer would;
    the others are left alone.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            # momentum None: cumulative average (the BN-recalibration mode), as nn.BatchNorm2d
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        return F.batch_norm(
            x,
            self.running_mean[:c],  # views: the batch statistics update the used channels
            self.running_var[:c],
            self.weight[:c],
            self.bias[:c],
            self.training,
            factor,
            self.eps,
        )


class ElasticPointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution using the first ``active_out`` output channels (None: all) and as many
    input channels as the input has."""

    def __init__(self, cin: int, cout: int, bias: bool = False) -> None:
        super().__init__(cin, cout, 1, bias=bias)
        self.active_out: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.out_channels if self.active_out is None else self.active_out
        w = self.weight[:out, : x.shape[1]]
        b = self.bias[:out] if self.bias is not None else None
        return _conv(x, w, b, 1, 1)


class ElasticDepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution with an elastic kernel and as many channels as the input has.

    ``kernels`` (odd sizes) are kept largest first; ``weight`` holds the largest kernel and
    ``transform_<k>`` the ``k*k x k*k`` map applied to the centre crop of the next larger
    effective kernel.
    """

    def __init__(self, channels: int, kernels: Sequence[int], stride: int) -> None:
        ks = tuple(sorted({int(k) for k in kernels}, reverse=True))
        if not ks or any(k < 1 or k % 2 == 0 for k in ks):
            raise ValueError(f"kernel sizes must be odd ints >= 1; got {kernels!r}")
        super().__init__(channels, channels, ks[0], stride, ks[0] // 2, groups=channels, bias=False)
        self.kernels = ks
        for k in ks[1:]:
            self.register_parameter(f"transform_{k}", nn.Parameter(torch.eye(k * k)))
        self.active_kernel = ks[0]

    def kernel_weight(self, k: int, channels: int | None = None) -> torch.Tensor:
        """The effective ``k x k`` kernels of the first ``channels`` channels, (C, 1, k, k)."""
        if k not in self.kernels:
            raise ValueError(f"kernel size {k} is not one of {self.kernels}")
        w = self.weight if channels is None else self.weight[:channels]
        c = w.shape[0]
        for nxt in self.kernels[1:]:
            if w.shape[-1] == k:
                break
            m = getattr(self, f"transform_{nxt}")
            w = F.linear(_crop_kernel(w, nxt).reshape(c, nxt * nxt), m).reshape(c, 1, nxt, nxt)
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return _conv(x, self.kernel_weight(self.active_kernel, c), None, self.stride[0], c)


class ElasticConvBNAct(nn.Module):
    """``conv`` (an elastic convolution) + elastic BatchNorm + optional activation; the
    attribute names match the static ``ConvBNAct`` so state_dict keys line up."""

    def __init__(self, conv: nn.Conv2d, act: str | None) -> None:
        super().__init__()
        self.act = act
        self.conv = conv
        self.bn = ElasticBatchNorm2d(conv.out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _activate(self.bn(self.conv(x)), self.act)


class ElasticSqueezeExcite(nn.Module):
    """Squeeze-excite over the input's channels with ``reduce.active_out`` hidden channels."""

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__()
        self.reduce = ElasticPointwiseConv2d(channels, mid, bias=True)
        self.expand = ElasticPointwiseConv2d(mid, channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.expand.active_out = x.shape[1]
        y = x.mean(dim=(2, 3), keepdim=True)
        y = F.hardsigmoid(self.expand(F.relu(self.reduce(y))))
        return x * y


class ElasticMBConv(nn.Module):
    """An inverted-residual block holding its largest plan ``big``; :meth:`set_active` picks a
    smaller plan of the same slot (kernel, expanded width, SE width)."""

    def __init__(self, big: BlockPlan, kernels: Sequence[int]) -> None:
        super().__init__()
        self.big = big
        self.residual = big.residual
        self.expand = None
        if big.expand:
            self.expand = ElasticConvBNAct(ElasticPointwiseConv2d(big.cin, big.mid), big.act)
        self.depthwise = ElasticConvBNAct(
            ElasticDepthwiseConv2d(big.mid, kernels, big.stride), big.act
        )
        self.se = ElasticSqueezeExcite(big.mid, big.se_mid) if big.se_mid else None
        self.project = ElasticConvBNAct(ElasticPointwiseConv2d(big.mid, big.cout), None)
        self.active = big
        self.set_active(big)

    @property
    def dw(self) -> ElasticDepthwiseConv2d:
        conv = self.depthwise.conv
        assert isinstance(conv, ElasticDepthwiseConv2d)
        return conv

    def set_active(self, plan: BlockPlan) -> None:
        """Run as ``plan`` (same slot, widths and kernel within the largest plan's).

        Raises ValueError when ``plan`` does not fit this block.
        """
        big = self.big
        fixed = ("name", "cin", "cout", "stride", "act", "expand", "residual")
        same = all(getattr(plan, f) == getattr(big, f) for f in fixed)
        if not same or plan.mid > big.mid or plan.se_mid > big.se_mid:
            raise ValueError(f"plan {plan} does not fit the block {big.name}")
        if plan.kernel not in self.dw.kernels:
            raise ValueError(f"kernel {plan.kernel} of {big.name} not in {self.dw.kernels}")
        self.active = plan
        if self.expand is not None:
            conv = self.expand.conv
            assert isinstance(conv, ElasticPointwiseConv2d)
            conv.active_out = plan.mid
        self.dw.active_kernel = plan.kernel
        if self.se is not None:
            self.se.reduce.active_out = plan.se_mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return y + x if self.residual else y

    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Reorder the expanded channels (and SE hidden channels) by importance, descending.

        Importance is the L1 norm of a channel's weights in the next layer (projection, SE
        expand), as in OFA's channel sorting. The permutation is applied consistently to every
        tensor indexed by the channel, so the largest subnet computes the same function. A
        block without expansion (the first block) has no elastic width and is left as it is.
        """
        if self.expand is None:
            return
        order = torch.argsort(
            self.project.conv.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True
        )
        _permute(self.expand.conv.weight, 0, order)
        _permute_bn(self.expand.bn, order)
        _permute(self.depthwise.conv.weight, 0, order)
        _permute_bn(self.depthwise.bn, order)
        _permute(self.project.conv.weight, 1, order)
        if self.se is not None:
            se = self.se
            _permute(se.reduce.weight, 1, order)
            _permute(se.expand.weight, 0, order)
            assert se.expand.bias is not None and se.reduce.bias is not None
            _permute(se.expand.bias, 0, order)
            hidden = torch.argsort(
                se.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True
            )
            _permute(se.reduce.weight, 0, hidden)
            _permute(se.reduce.bias, 0, hidden)
            _permute(se.expand.weight, 1, hidden)


def _permute(t: torch.Tensor, dim: int, order: torch.Tensor) -> None:
    t.copy_(t.index_select(dim, order.to(t.device)))


def _permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if t is not None:
            _permute(t, 0, order)


class _FeatureMix(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(self.conv(x))


# -- the supernet ---------------------------------------------------------------------------------
class OFASupernet(nn.Module):
    """Every subnet of ``OFAMBv3Space(**options)`` in one module.

    ``kernels``, ``expands`` and ``depths`` narrow the elastic choices (default: the space's);
    the resolutions are the space's ``resolutions`` option. The module starts with the largest
    subnet active and PyTorch's default initialization (see ``_ofa_train.init_weights``).
    ``forward`` runs the active subnet on a ``(N, in_channels, H, W)`` batch, any ``H, W``
    (resize to the active resolution with ``_ofa_train.resize``). Raises ConfigError for bad space
    options and ValueError for choices outside the space.
    """

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        kernels: Sequence[int] = KS_CHOICES,
        expands: Sequence[int] = E_CHOICES,
        depths: Sequence[int] = D_CHOICES,
    ) -> None:
        super().__init__()
        space = OFAMBv3Space(**dict(options or {}))
        self.space = space
        self.options = dict(space.options)
        r_param = space.params["r"]
        resolutions = tuple(int(v) for v in self.options["resolutions"])
        if r_param.kind == "categorical":
            resolutions = tuple(int(v) for v in r_param.choices)
        self.choices = ElasticChoices(
            _subset("kernels", kernels, KS_CHOICES),
            _subset("expands", expands, E_CHOICES),
            _subset("depths", depths, D_CHOICES),
            resolutions,
        )
        big = self._plan(self._extreme(max))
        self.first_conv = ConvBNAct(big.in_channels, big.stem_width, 3, big.stem_stride, "hswish")
        self.blocks = nn.ModuleDict(
            {
                b.name.removeprefix("blocks."): ElasticMBConv(
                    b, self.choices.ks if b.name != "blocks.0" else (b.kernel,)
                )
                for b in big.blocks
            }
        )
        c = big.blocks[-1].cout
        self.final_expand = ConvBNAct(c, big.final_expand_width, 1, 1, "hswish")
        self.feature_mix = _FeatureMix(big.final_expand_width, big.feature_mix_width)
        self.classifier = nn.Linear(big.feature_mix_width, big.num_classes)
        fast_convs_(self)  # the stem, final expand and feature mix (the rest is elastic)
        self._active: dict[str, int] = {}
        self._slots: list[str] = []
        self.set_active(self.largest())

    # -- configuration ------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """A JSON-able description; ``OFASupernet.from_config(config)`` rebuilds the module
        (same shapes, fresh weights)."""
        opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.options.items()}
        return {
            "options": opts,
            "kernels": list(self.choices.ks),
            "expands": list(self.choices.e),
            "depths": list(self.choices.d),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OFASupernet:
        return cls(
            config["options"],
            kernels=config["kernels"],
            expands=config["expands"],
            depths=config["depths"],
        )

    # -- parameter dicts ----------------------------------------------------------------------
    def _extreme(self, pick: Any) -> dict[str, int]:
        ch = self.choices
        out = {n: pick(ch.ks) for n in KS_NAMES}
        out.update({n: pick(ch.e) for n in E_NAMES})
        out.update({n: pick(ch.d) for n in D_NAMES})
        out["r"] = pick(ch.r)
        return out

    def largest(self) -> dict[str, int]:
        """``net.*`` params of the largest subnet (largest kernel, width, depth, resolution)."""
        return {f"net.{k}": v for k, v in self._extreme(max).items()}

    def smallest(self) -> dict[str, int]:
        """``net.*`` params of the smallest subnet."""
        return {f"net.{k}": v for k, v in self._extreme(min).items()}

    def _values(self, params: Mapping[str, Any]) -> dict[str, int]:
        """``{name: int}`` of ``params`` (``net.*`` keys; others ignored), checked against the
        space and this supernet's choices. Raises ConfigError / ValueError."""
        values = {k: int(v) for k, v in self.space.validate(params).items()}
        ch = self.choices
        for names, allowed in ((KS_NAMES, ch.ks), (E_NAMES, ch.e), (D_NAMES, ch.d)):
            for n in names:
                if values[n] not in allowed:
                    raise ValueError(f"net.{n} = {values[n]} is not one of {list(allowed)}")
        return values

    def _plan(self, values: Mapping[str, int]) -> NetPlan:
        o = self.options
        return net_plan(
            [values[n] for n in KS_NAMES],
            [values[n] for n in E_NAMES],
            [values[n] for n in D_NAMES],
            width_mult=o["width_mult"],
            in_channels=o["in_channels"],
            num_classes=o["num_classes"],
            stem_stride=o["stem_stride"],
        )

    # -- the active subnet --------------------------------------------------------------------
    @property
    def active(self) -> dict[str, int]:
        """A copy of the active subnet's ``net.*`` params."""
        return {f"net.{k}": v for k, v in self._active.items()}

    def set_active(self, params: Mapping[str, Any]) -> None:
        """Make ``params`` (every ``net.*`` parameter; other keys ignored, the dict is not
        changed) the active subnet. Raises ConfigError / ValueError when invalid."""
        values = self._values(params)
        plan = self._plan(values)
        for b in plan.blocks:
            block = self.blocks[b.name.removeprefix("blocks.")]
            assert isinstance(block, ElasticMBConv)
            block.set_active(b)
        self._active = values
        self._slots = [b.name.removeprefix("blocks.") for b in plan.blocks]

    def sample_active(
        self, rng: np.random.Generator, choices: ElasticChoices | None = None
    ) -> dict[str, int]:
        """Draw a subnet uniformly from ``choices`` (default: all of this supernet's) with
        ``rng``, make it active and return its ``net.*`` params (a new dict). Every block's
        kernel and expand ratio is drawn, also of blocks beyond their stage's depth."""
        ch = choices or self.choices

        def pick(options: Sequence[int]) -> int:
            return int(options[int(rng.integers(len(options)))])

        params = {f"net.{n}": pick(ch.ks) for n in KS_NAMES}
        params.update({f"net.{n}": pick(ch.e) for n in E_NAMES})
        params.update({f"net.{n}": pick(ch.d) for n in D_NAMES})
        params["net.r"] = pick(ch.r)
        self.set_active(params)
        return params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for slot in self._slots:
            x = self.blocks[slot](x)
        x = self.final_expand(x).mean(dim=(2, 3), keepdim=True)
        return self.classifier(torch.flatten(self.feature_mix(x), 1))

    # -- width sorting and extraction ---------------------------------------------------------
    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Sort every block's expanded channels by importance (see ElasticMBConv)."""
        for block in self.blocks.values():
            assert isinstance(block, ElasticMBConv)
            block.sort_channels_()

    @torch.no_grad()
    def extract_subnet(
        self, params: Mapping[str, Any] | None = None, preserve_weight: bool = True
    ) -> OFAMBv3Net:
        """The subnet ``params`` (default: the active one) as the space's stand-alone torch
        module (``OFAMBv3Space(**options).build(params).to_torch()``'s class), in eval mode, on
        this supernet's device.

        With ``preserve_weight`` its weights, biases and BatchNorm statistics are this
        supernet's (sliced, kernels transformed), copied: training it leaves the supernet
        alone. Without, it keeps PyTorch's default initialization. Its ONNX export
        (:func:`cosearch.spaces.ofa_mbv3.ofa_mbv3_onnx_from_torch`) has the space's graph
        for ``params``. Raises ConfigError / ValueError when ``params`` is invalid.
        """
        values = self._values(params) if params is not None else dict(self._active)
        plan = self._plan(values)
        canonical = self.space.canonical({f"net.{k}": v for k, v in values.items()})
        device = self.classifier.weight.device
        module = OFAMBv3Net(plan, self.options, canonical).to(device)
        if preserve_weight:
            mine = self.state_dict()
            state: dict[str, torch.Tensor] = {}
            for key, target in module.state_dict().items():
                state[key] = self._inherited(key, tuple(target.shape), mine).clone()
            module.load_state_dict(state)
        return module.eval()

    def _inherited(
        self, key: str, shape: tuple[int, ...], mine: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        parts = key.split(".")
        if parts[0] == "blocks" and parts[2:] == ["depthwise", "conv", "weight"]:
            block = self.blocks[parts[1]]
            assert isinstance(block, ElasticMBConv)
            return block.dw.kernel_weight(shape[-1], shape[0])
        src = mine[key]
        if len(src.shape) != len(shape) or any(s > m for s, m in zip(shape, src.shape)):
            raise RuntimeError(f"{key}: subnet shape {shape} does not fit {tuple(src.shape)}")
        return src[tuple(slice(0, s) for s in shape)]


def _subset(name: str, given: Sequence[int], allowed: Sequence[int]) -> tuple[int, ...]:
    out = tuple(sorted({int(v) for v in given}))
    if not out or any(v not in allowed for v in out):
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}; got {given!r}")
    return out


# -- helpers --------------------------------------------------------------------------------------
class _FastConv2d(nn.Conv2d):
    """nn.Conv2d (square odd kernel, padding k // 2, no dilation) computed with :func:`_conv`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv(x, self.weight, self.bias, self.stride[0], self.groups)


def fast_convs_(module: nn.Module) -> nn.Module:
    """Swap the plain convolutions of ``module`` (e.g. a space module from
    :meth:`OFASupernet.extract_subnet`) for ones computed with :func:`_conv`: same parameters
    (shared, not copied), same state_dict keys, same outputs up to float rounding, several
    times faster on CPU for the tiny maps of small inputs. Returns ``module``, changed in place.
    """
    for parent in list(module.modules()):
        for name, old in list(parent.named_children()):
            if type(old) is not nn.Conv2d:
                continue
            k, s = old.kernel_size[0], old.stride[0]
            square = old.kernel_size == (k, k) and k % 2 == 1 and old.stride == (s, s)
            if not square or old.padding != (k // 2, k // 2) or old.dilation != (1, 1):
                continue
            new = _FastConv2d(
                old.in_channels,
                old.out_channels,
                k,
                s,
                k // 2,
                groups=old.groups,
                bias=old.bias is not None,
                device=old.weight.device,
            )
            new.weight = old.weight
            if old.bias is not None:
                new.bias = old.bias
            setattr(parent, name, new)
    return module
