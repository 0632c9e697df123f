"""One DARTS search epoch (first or second order), evaluation, and checkpointable state.

Imported only by the ``darts`` strategy at run time (it imports torch).

Bilevel optimization (Liu et al., "DARTS", ICLR 2019, Sec. 2.3): network weights ``w`` descend
the training loss with SGD on the training split; architecture parameters ``alpha`` (and the
PC-DARTS edge weights ``beta``) descend the validation loss with Adam on the validation split,
one step each per training batch. First order uses the gradient at the current ``w``; second
order the gradient after a virtual SGD step ``w' = w - xi * (momentum * buf + grad + wd * w)``
with ``xi`` the current weight learning rate, plus the implicit term
``-xi * grad^2_{alpha,w} L_train(w, alpha) . grad_{w'} L_val(w', alpha)``, whose Hessian-vector
product is approximated by central finite differences at ``w +- eps * grad_{w'} L_val`` with
``eps = 0.01 / ||grad_{w'} L_val||`` (the paper's Eq. 7 and 8).

The hardware term ``lambda * E[cost] / target`` depends on the architecture parameters only,
so it is added to the validation loss of the architecture step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from cosearch.search._darts_supernet import Supernet
from cosearch.search.data import DataSplits, batches

__all__ = ["LoopConfig", "SearchState", "train_epoch", "evaluate"]


@dataclass(frozen=True)
class LoopConfig:
    """Hyper-parameters of the search loop (see the strategy's options for their meaning)."""

    epochs: int
    order: int
    batch_size: int
    batches_per_epoch: int
    w_lr: float
    w_lr_min: float
    w_momentum: float
    w_weight_decay: float
    grad_clip: float
    arch_lr: float
    arch_weight_decay: float
    warmup_epochs: int
    lam: float
    target: float
    device: str


class SearchState:
    """The supernet, both optimizers and the batch-order generator of one search round."""

    def __init__(self, net: Supernet, cfg: LoopConfig, seed: int) -> None:
        self.net = net.to(cfg.device)
        self.cfg = cfg
        self.w_opt = torch.optim.SGD(
            net.weight_parameters(),
            lr=cfg.w_lr,
            momentum=cfg.w_momentum,
            weight_decay=cfg.w_weight_decay,
        )
        # DARTS: Adam with beta1 = 0.5 and weight decay 1e-3 on the architecture parameters
        self.a_opt = torch.optim.Adam(
            net.arch_parameters(),
            lr=cfg.arch_lr,
            betas=(0.5, 0.999),
            weight_decay=cfg.arch_weight_decay,
        )
        self.gen = torch.Generator().manual_seed(seed)

    # -- checkpoints: flat {name: tensor} ---------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        for tag, opt in (("w_opt", self.w_opt), ("a_opt", self.a_opt)):
            for idx, slots in opt.state_dict()["state"].items():
                for name, value in slots.items():
                    out[f"{tag}.{idx}.{name}"] = torch.as_tensor(value)
        out["rng.batches"] = self.gen.get_state()
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`tensors`; KeyError/RuntimeError when they do not fit."""
        net_state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        self.net.load_state_dict(net_state)
        for tag, opt in (("w_opt", self.w_opt), ("a_opt", self.a_opt)):
            sd = opt.state_dict()
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(tag + "."):
                    _, idx, name = key.split(".", 2)
                    state.setdefault(int(idx), {})[name] = value
            sd["state"] = state
            opt.load_state_dict(sd)
        self.gen.set_state(tensors["rng.batches"])


def _lr(cfg: LoopConfig, epoch: int) -> float:
    """Cosine annealing from ``w_lr`` to ``w_lr_min`` over the search (DARTS' schedule)."""
    frac = epoch / max(cfg.epochs, 1)
    return cfg.w_lr_min + 0.5 * (cfg.w_lr - cfg.w_lr_min) * (1.0 + math.cos(math.pi * frac))


def train_epoch(
    state: SearchState,
    data: DataSplits,
    epoch: int,
    hw: Callable[[Supernet], torch.Tensor] | None,
) -> dict[str, float]:
    """One epoch: per training batch an architecture step (after warm-up) and a weight step.

    ``hw(net)`` is the differentiable expected hardware cost (None: no hardware term).
    Returns mean ``train_loss``, ``val_loss`` (of architecture steps), ``seconds``.
    """
    cfg, net = state.cfg, state.net
    lr = _lr(cfg, epoch)
    for group in state.w_opt.param_groups:
        group["lr"] = lr
    arch_on = epoch >= cfg.warmup_epochs
    net.train()
    t0 = time.perf_counter()
    val_iter: Any = iter(())
    losses: list[float] = []
    vlosses: list[float] = []
    for step, (x, y) in enumerate(batches(data.train, cfg.batch_size, generator=state.gen)):
        if cfg.batches_per_epoch and step >= cfg.batches_per_epoch:
            break
        if len(y) < 2:  # BatchNorm with batch statistics needs two samples
            continue
        x, y = x.to(cfg.device), y.to(cfg.device)
        if arch_on:
            xv_yv: Any = next(val_iter, None)
            if xv_yv is None or len(xv_yv[1]) < 2:  # the validation split is smaller: cycle
                val_iter = iter(batches(data.val, cfg.batch_size, generator=state.gen))
                xv_yv = next(val_iter)
            xv, yv = xv_yv[0].to(cfg.device), xv_yv[1].to(cfg.device)
            vlosses.append(_arch_step(state, x, y, xv, yv, lr, hw))
        state.w_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward(inputs=net.weight_parameters())
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), cfg.grad_clip)
        state.w_opt.step()
        losses.append(float(loss.detach()))
    return {
        "train_loss": sum(losses) / max(len(losses), 1),
        "val_loss": sum(vlosses) / max(len(vlosses), 1) if vlosses else float("nan"),
        "seconds": time.perf_counter() - t0,
    }


def _arch_loss(
    state: SearchState,
    x: torch.Tensor,
    y: torch.Tensor,
    hw: Callable[[Supernet], torch.Tensor] | None,
) -> torch.Tensor:
    loss = F.cross_entropy(state.net(x), y)
    if hw is not None and state.cfg.lam > 0:
        loss = loss + state.cfg.lam * hw(state.net) / state.cfg.target
    return loss


def _arch_step(
    state: SearchState,
    x: torch.Tensor,
    y: torch.Tensor,
    xv: torch.Tensor,
    yv: torch.Tensor,
    lr: float,
    hw: Callable[[Supernet], torch.Tensor] | None,
) -> float:
    arch = state.net.arch_parameters()
    state.a_opt.zero_grad(set_to_none=True)
    if state.cfg.order == 1:
        loss = _arch_loss(state, xv, yv, hw)
        grads = torch.autograd.grad(loss, arch, allow_unused=True)
    else:
        loss, grads = _unrolled_grads(state, x, y, xv, yv, lr, hw)
    for p, g in zip(arch, grads):
        p.grad = torch.zeros_like(p) if g is None else g
    state.a_opt.step()
    return float(loss.detach())


def _unrolled_grads(
    state: SearchState,
    x: torch.Tensor,
    y: torch.Tensor,
    xv: torch.Tensor,
    yv: torch.Tensor,
    xi: float,
    hw: Callable[[Supernet], torch.Tensor] | None,
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    net, cfg = state.net, state.cfg
    weights, arch = net.weight_parameters(), net.arch_parameters()
    g_train = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    backup = [w.detach().clone() for w in weights]
    with torch.no_grad():  # the virtual step w' (SGD with momentum and weight decay)
        for w, g in zip(weights, g_train):
            d = (torch.zeros_like(w) if g is None else g) + cfg.w_weight_decay * w
            buf = state.w_opt.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                d = d + cfg.w_momentum * buf
            w.sub_(xi * d)
    loss = _arch_loss(state, xv, yv, hw)
    grads = torch.autograd.grad(loss, [*arch, *weights], allow_unused=True)
    g_arch, g_w = list(grads[: len(arch)]), grads[len(arch) :]
    dw = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, g_w)]
    norm = torch.sqrt(sum((d * d).sum() for d in dw))  # type: ignore[arg-type]
    eps = 0.01 / (float(norm) + 1e-12)
    hvp: list[list[torch.Tensor | None]] = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, b, d in zip(weights, backup, dw):
                w.copy_(b + sign * eps * d)
        hvp.append(list(torch.autograd.grad(F.cross_entropy(net(x), y), arch, allow_unused=True)))
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    out: list[torch.Tensor | None] = []
    for ga, gp, gn, a in zip(g_arch, hvp[0], hvp[1], arch):
        base = torch.zeros_like(a) if ga is None else ga
        if gp is not None and gn is not None:
            base = base - xi * (gp - gn) / (2.0 * eps)
        out.append(base)
    return loss, out


def evaluate(
    state: SearchState,
    ds: Any,
    discrete: dict[tuple[int, int], int] | None = None,
    *,
    batch_size: int = 256,
) -> float:
    """Top-1 accuracy (percent) of the supernet (``discrete`` None) or of the derived
    architecture with the supernet's weights (``discrete`` from ``derive``)."""
    net, device = state.net, state.cfg.device
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches(ds, batch_size):
            pred = net(x.to(device), discrete).argmax(dim=1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)
