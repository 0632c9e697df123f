"""Progressive shrinking: the phase schedule, knowledge distillation, BatchNorm recalibration.

Cai et al., "Once-for-All", ICLR 2020, section 3.2 and appendix B. The supernet is trained in
six phases, each with its own epochs and learning rate (cosine decay to 0 within the phase,
per step), SGD with Nesterov momentum:

=========  ===============================  ==============================================
phase      subnets sampled                  notes
=========  ===============================  ==============================================
full       largest kernel, width and depth  the teacher; elastic resolution only
kernel     + every kernel size              kernel transforms start to learn
depth1     + depth >= the second largest    (ofa_mbv3: d in {3, 4})
depth2     + every depth                    (d in {2, 3, 4})
width1     + expand >= the second largest   channels sorted by importance first (e in {4, 6})
width2     + every expand ratio             sorted again (e in {3, 4, 6})
=========  ===============================  ==============================================

Each step draws one resolution for the batch, then trains ``subnets_per_step`` subnets (one
in the full phase) whose gradients are averaged: drawn at random from the phase's choices (OFA)
or, with ``sandwich``, the phase's largest and smallest subnet plus random ones (the sandwich
rule of slimmable networks and BigNAS, which keeps the small end of the range trained).
After the full phase the largest network is frozen as the teacher: the loss of every later
step is ``CE(student, y) + kd_weight * T^2 * KL(softmax(teacher / T) || softmax(student /
T))`` (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; OFA distils from
the full network the same way). Gradient norms are clipped at 5.

A subnet is scored after re-estimating its BatchNorm statistics (OFA's BN recalibration): the
running statistics of the extracted subnet are reset and set to the plain average of the
statistics of ``bn_batches`` fixed training batches at the subnet's resolution, because the
running averages kept during training mix all subnets that shared the channels.

Every draw derives from the seed, the phase and the epoch (``default_rng([seed, phase,
epoch])``), so a run resumed from any epoch's checkpoint replays exactly the epochs it missed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cosearch.search._ofa_supernet import ElasticChoices, OFASupernet, fast_convs_
from cosearch.search.data import DataSplits, batches
from cosearch.spaces._ofa_torch import OFAMBv3Net

__all__ = [
    "PHASES",
    "Phase",
    "TrainConfig",
    "schedule",
    "recalibrate_bn",
    "init_weights",
    "resize",
    "SubnetScorer",
    "ProgressiveShrinking",
    "GRAD_CLIP",
]

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
PHASES = ("full", "kernel", "depth1", "depth2", "width1", "width2")
GRAD_CLIP = 5.0
_FORMAT = 1


@dataclass(frozen=True)
class Phase:
    """One phase: its name, epochs, peak learning rate and the choices subnets come from."""

    name: str
    epochs: int
    lr: float
    choices: ElasticChoices
    distill: bool
    sort_channels: bool

    @property
    def one_network(self) -> bool:
        """True when only the resolution varies (the full phase): one subnet per step."""
        c = self.choices
        return len(c.ks) == len(c.e) == len(c.d) == 1


def schedule(
    choices: ElasticChoices, epochs: Mapping[str, int], lrs: Mapping[str, float]
) -> list[Phase]:
    """The six phases of :data:`PHASES` over ``choices`` (the supernet's), with ``epochs[name]``
    and ``lrs[name]`` per phase. Raises KeyError when a phase lacks a value."""
    ks, es, ds = sorted(choices.ks), sorted(choices.e), sorted(choices.d)
    full = replace(choices, ks=(ks[-1],), e=(es[-1],), d=(ds[-1],))
    kernel = replace(full, ks=tuple(ks))
    depth1 = replace(kernel, d=tuple(ds[-2:]))
    depth2 = replace(kernel, d=tuple(ds))
    width1 = replace(depth2, e=tuple(es[-2:]))
    width2 = replace(depth2, e=tuple(es))
    spec = {
        "full": (full, False, False),
        "kernel": (kernel, True, False),
        "depth1": (depth1, True, False),
        "depth2": (depth2, True, False),
        "width1": (width1, True, True),
        "width2": (width2, True, True),
    }
    return [Phase(name, int(epochs[name]), float(lrs[name]), *spec[name]) for name in PHASES]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (see the module docstring). ``batches_per_epoch`` caps the
    training batches of an epoch (0: all); ``device`` is a torch device string."""

    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 3e-5
    kd_weight: float = 1.0
    kd_temperature: float = 3.0
    subnets_per_step: int = 3
    sandwich: bool = True
    batches_per_epoch: int = 0
    bn_batches: int = 8
    device: str = "cpu"
    seed: int = 0


@torch.no_grad()
def init_weights(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """He-normal (fan-out) convolutions, BatchNorm scale 1 and shift 0, uniform linear layers
    (bound ``1 / sqrt(fan_in)``), zero biases; every draw from ``generator`` (a CPU generator).
    The last BatchNorm scale of every residual block starts at 0, so the block starts as the
    identity (Goyal et al., "Accurate, Large Minibatch SGD", 2017): on digits the 20-block
    network then trains from the first epoch instead of idling for three. Kernel transforms
    are left as they are (the identity). Works on the supernet and on the space's modules
    alike. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            std = (2.0 / (m.out_channels * k / m.groups)) ** 0.5
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
        elif isinstance(m, nn.Linear):
            bound = 1.0 / m.in_features**0.5
            m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
            if m.bias is not None:
                m.bias.zero_()
    for m in module.modules():
        bn = getattr(getattr(m, "project", None), "bn", None)
        if getattr(m, "residual", False) and isinstance(bn, nn.BatchNorm2d):
            bn.weight.zero_()
    return module


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """``x`` (N, C, H, W) resized to ``resolution x resolution`` (bilinear; unchanged when it
    already has that size)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


# -- BatchNorm recalibration and scoring ------------------------------------------------------
@torch.no_grad()
def recalibrate_bn(module: nn.Module, inputs: Iterable[torch.Tensor]) -> None:
    """Set every BatchNorm's running statistics of ``module`` to the average of the batch
    statistics over ``inputs`` (reset first; momentum None = cumulative average). The module's
    training flag and momenta are restored afterwards; nothing else changes."""
    bns = [m for m in module.modules() if isinstance(m, _BATCH_NORMS)]
    momenta = [bn.momentum for bn in bns]
    was_training = module.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    module.train()
    try:
        for x in inputs:
            module(x)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        module.train(was_training)


class SubnetScorer:
    """Scores subnets of a supernet: extract, recalibrate BatchNorm, measure accuracy.

    The recalibration batches (``bn_batches`` batches of the training split in a fixed order
    drawn from ``seed``) and the evaluation splits are read once and kept in memory.
    """

    def __init__(self, data: DataSplits, cfg: TrainConfig) -> None:
        gen = torch.Generator().manual_seed(cfg.seed)
        self.device = cfg.device
        self.bn_inputs: list[torch.Tensor] = []
        for x, _ in batches(data.train, cfg.batch_size, generator=gen):
            if len(self.bn_inputs) >= cfg.bn_batches:
                break
            if len(x) >= 2:  # batch statistics need two images
                self.bn_inputs.append(x)
        self.splits = {
            "val": list(batches(data.val, 512)),
            "test": list(batches(data.test, 512)),
        }

    def prepare(self, net: OFASupernet, params: Mapping[str, Any]) -> OFAMBv3Net:
        """The subnet ``params`` with inherited weights and recalibrated BatchNorm statistics,
        in eval mode, with fast convolutions (:func:`fast_convs_`)."""
        sub = fast_convs_(net.extract_subnet(params))
        r = int(params["net.r"])
        recalibrate_bn(sub, (resize(x.to(self.device), r) for x in self.bn_inputs))
        return sub.eval()

    @torch.no_grad()
    def accuracy(self, module: nn.Module, resolution: int, split: str = "val") -> float:
        """Top-1 accuracy in percent of ``module`` (eval mode) on ``split`` at ``resolution``."""
        module.eval()
        correct = total = 0
        for x, y in self.splits[split]:
            pred = module(resize(x.to(self.device), resolution)).argmax(dim=1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
        return 100.0 * correct / max(total, 1)

    def score(
        self, net: OFASupernet, params: Mapping[str, Any], splits: Sequence[str] = ("val",)
    ) -> dict[str, float]:
        """``{split: accuracy}`` of subnet ``params`` after BN recalibration."""
        sub = self.prepare(net, params)
        r = int(params["net.r"])
        return {s: self.accuracy(sub, r, s) for s in splits}


# -- the trainer -----------------------------------------------------------------------------------
@dataclass
class EpochEnd:
    """What the trainer hands its callback after each epoch (to checkpoint it)."""

    step: int  # global epoch index, 0-based
    phase: str
    epoch: int  # within the phase, 0-based
    done: bool  # the last epoch of the schedule
    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


class ProgressiveShrinking:
    """Runs the :func:`schedule` on ``net``, resumable from :meth:`state`.

    ``load(meta, tensors)`` restores a state saved after some epoch; :meth:`run` then trains
    the epochs after it. ``history`` holds, per finished phase, the validation and test
    accuracies of the smallest and largest subnets (at the largest resolution).
    """

    def __init__(
        self,
        net: OFASupernet,
        phases: Sequence[Phase],
        cfg: TrainConfig,
        data: DataSplits,
        scorer: SubnetScorer,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.net = net.to(cfg.device)
        self.phases = list(phases)
        self.cfg = cfg
        self.data = data
        self.scorer = scorer
        self.log = log or (lambda message: None)
        self.teacher: OFAMBv3Net | None = None
        self.history: list[dict[str, Any]] = []
        self.trained: list[list[Any]] = []  # [phase, epoch] of every epoch trained, in order
        self.next_phase = 0
        self.next_epoch = 0
        self._momentum: dict[str, torch.Tensor] = {}
        self._opt: torch.optim.Optimizer | None = None
        self.steps_per_epoch = self._steps_per_epoch()

    def _steps_per_epoch(self) -> int:
        n = math.ceil(len(self.data.train) / self.cfg.batch_size)  # type: ignore[arg-type]
        cap = self.cfg.batches_per_epoch
        return min(n, cap) if cap > 0 else n

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.phases)

    @property
    def done(self) -> bool:
        return self.next_phase >= len(self.phases)

    def step_of(self, phase_index: int, epoch: int) -> int:
        """The global epoch index (checkpoint step) of ``epoch`` of phase ``phase_index``."""
        return sum(p.epochs for p in self.phases[:phase_index]) + epoch

    # -- state --------------------------------------------------------------------------------
    def _schedule_json(self) -> list[list[Any]]:
        return [[p.name, p.epochs, p.lr] for p in self.phases]

    def state(self, phase_index: int, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(meta, tensors)`` after ``epoch`` of phase ``phase_index``: supernet weights
        (``net.*``), teacher (``teacher.*``), SGD momentum (``opt.<param name>``)."""
        meta = {
            "format": _FORMAT,
            "config": self.net.config,
            "schedule": self._schedule_json(),
            "phase_index": phase_index,
            "phase": self.phases[phase_index].name,
            "epoch": epoch,
            "done": self.done,
            "history": list(self.history),
            "trained": list(self.trained),
        }
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        if self.teacher is not None:
            tensors.update({f"teacher.{k}": v for k, v in self.teacher.state_dict().items()})
        if self._opt is not None:
            names = {id(p): n for n, p in self.net.named_parameters()}
            for group in self._opt.param_groups:
                for p in group["params"]:
                    buf = self._opt.state.get(p, {}).get("momentum_buffer")
                    if buf is not None:
                        tensors[f"opt.{names[id(p)]}"] = buf
        return meta, tensors

    def load(self, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore the state saved after an epoch. Raises ValueError when it was saved for
        another supernet or schedule."""
        if meta.get("format") != _FORMAT or meta.get("config") != self.net.config:
            raise ValueError("the checkpoint holds another supernet (space options differ)")
        if meta.get("schedule") != self._schedule_json():
            raise ValueError("the checkpoint was written with another phase schedule")
        dev = self.cfg.device
        self.net.load_state_dict(
            {k[4:]: v.to(dev) for k, v in tensors.items() if k.startswith("net.")}
        )
        teacher = {k[8:]: v.to(dev) for k, v in tensors.items() if k.startswith("teacher.")}
        self.teacher = None
        if teacher:
            self.teacher = self._new_teacher()
            self.teacher.load_state_dict(teacher)
        self._momentum = {k[4:]: v.to(dev) for k, v in tensors.items() if k.startswith("opt.")}
        self.history = list(meta["history"])
        self.trained = [list(t) for t in meta["trained"]]
        pi, epoch = int(meta["phase_index"]), int(meta["epoch"])
        self.next_phase, self.next_epoch = self._after(pi, epoch)
        if self.next_phase != pi:
            self._momentum = {}  # a new phase starts with a new optimizer

    def _after(self, pi: int, epoch: int) -> tuple[int, int]:
        """(phase index, epoch) of the epoch that follows ``epoch`` of phase ``pi``."""
        epoch += 1
        while pi < len(self.phases) and epoch >= self.phases[pi].epochs:
            pi, epoch = pi + 1, 0
        return pi, epoch

    def _new_teacher(self) -> OFAMBv3Net:
        teacher = fast_convs_(self.net.extract_subnet(self.net.largest()))
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher.eval()

    # -- training -----------------------------------------------------------------------------
    def _optimizer(self, lr: float) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, p in self.net.named_parameters():
            # no decay on BatchNorm, biases and kernel transforms (which start at the identity)
            if p.ndim <= 1 or ".transform_" in name:
                no_decay.append(p)
            else:
                decay.append(p)
        opt = torch.optim.SGD(
            [
                {"params": decay, "weight_decay": self.cfg.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=lr,
            momentum=self.cfg.momentum,
            nesterov=self.cfg.momentum > 0,
        )
        if self._momentum:
            for name, p in self.net.named_parameters():
                if name in self._momentum:
                    opt.state[p]["momentum_buffer"] = self._momentum[name].clone()
            self._momentum = {}
        return opt

    def run(self, on_epoch_end: Callable[[EpochEnd], None]) -> None:
        """Train from the next epoch to the end of the schedule; after every epoch call
        ``on_epoch_end`` with the state to checkpoint."""
        for pi in range(self.next_phase, len(self.phases)):
            phase = self.phases[pi]
            start = self.next_epoch if pi == self.next_phase else 0
            if phase.epochs == 0:
                continue
            if start == 0:
                self._momentum = {}
                if phase.sort_channels:
                    self.net.sort_channels_()
            if phase.distill and self.teacher is None:
                self.teacher = self._new_teacher()
            self._opt = self._optimizer(phase.lr)
            for epoch in range(start, phase.epochs):
                t0 = time.perf_counter()
                loss = self._epoch(pi, phase, epoch)
                self.trained.append([phase.name, epoch])
                last = epoch == phase.epochs - 1
                if last:
                    self.history.append(self._phase_scores(pi, phase))
                self.next_phase, self.next_epoch = self._after(pi, epoch)
                self.log(
                    f"progressive shrinking: {phase.name} epoch {epoch + 1}/{phase.epochs} "
                    f"loss {loss:.4f} ({time.perf_counter() - t0:.1f} s)"
                    + (f"; {self._summary(self.history[-1])}" if last else "")
                )
                meta, tensors = self.state(pi, epoch)
                on_epoch_end(
                    EpochEnd(self.step_of(pi, epoch), phase.name, epoch, self.done, meta, tensors)
                )
        self._opt = None
        self.next_phase, self.next_epoch = len(self.phases), 0

    def _epoch(self, pi: int, phase: Phase, epoch: int) -> float:
        cfg, net, opt = self.cfg, self.net, self._opt
        assert opt is not None
        rng = np.random.default_rng([cfg.seed, pi, epoch])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        n_sub = 1 if phase.one_network else cfg.subnets_per_step
        total_steps = phase.epochs * self.steps_per_epoch
        resolutions = phase.choices.r
        net.train()
        losses = []
        for i, (x, y) in enumerate(batches(self.data.train, cfg.batch_size, generator=gen)):
            if i >= self.steps_per_epoch:
                break
            if len(y) < 2:  # a last batch of one image: BatchNorm cannot train on it
                continue
            t = epoch * self.steps_per_epoch + i
            lr = 0.5 * phase.lr * (1.0 + math.cos(math.pi * t / total_steps))
            for group in opt.param_groups:
                group["lr"] = lr
            r = int(resolutions[int(rng.integers(len(resolutions)))])
            x = resize(x.to(cfg.device), r)
            y = y.to(cfg.device)
            soft = None
            if phase.distill and self.teacher is not None:
                with torch.no_grad():
                    soft = self.teacher(x)
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            choices = replace(phase.choices, r=(r,))
            for j in range(n_sub):
                if cfg.sandwich and j < 2 and n_sub > 1:
                    net.set_active(_extreme(choices, max if j == 0 else min))
                else:
                    net.sample_active(rng, choices)
                out = net(x)
                loss = F.cross_entropy(out, y)
                if soft is not None and cfg.kd_weight > 0:
                    loss = loss + cfg.kd_weight * _kd(out, soft, cfg.kd_temperature)
                (loss / n_sub).backward()
                step_loss += float(loss.detach()) / n_sub
            nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
            opt.step()
            losses.append(step_loss)
        net.set_active(net.largest())
        return float(np.mean(losses)) if losses else float("nan")

    def _phase_scores(self, pi: int, phase: Phase) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phase": phase.name,
            "step": self.step_of(pi, phase.epochs - 1),
            "epochs": self.step_of(pi, phase.epochs),
        }
        for which, params in (("smallest", self.net.smallest()), ("largest", self.net.largest())):
            out[which] = self.scorer.score(self.net, params, ("val", "test"))
        self.net.set_active(self.net.largest())
        return out

    @staticmethod
    def _summary(h: Mapping[str, Any]) -> str:
        return (
            f"val accuracy smallest {h['smallest']['val']:.1f}%, largest {h['largest']['val']:.1f}%"
        )


def _extreme(choices: ElasticChoices, pick: Callable[[Sequence[int]], int]) -> dict[str, int]:
    """``net.*`` params of the largest (``pick=max``) or smallest subnet ``choices`` allow."""
    from cosearch.spaces.ofa_mbv3 import D_NAMES, E_NAMES, KS_NAMES

    out = {f"net.{n}": pick(choices.ks) for n in KS_NAMES}
    out.update({f"net.{n}": pick(choices.e) for n in E_NAMES})
    out.update({f"net.{n}": pick(choices.d) for n in D_NAMES})
    out["net.r"] = pick(choices.r)
    return out


def _kd(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    t = temperature
    return F.kl_div(
        F.log_softmax(student / t, dim=1),
        F.log_softmax(teacher / t, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
