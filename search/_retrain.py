"""Train a discrete architecture from scratch and measure its test accuracy.

Used for the final architecture of a DARTS search (source ``train:<dataset>/<epochs>ep``) and by
the benchmarks for the random baselines, so both are trained the same way: SGD with Nesterov
momentum 0.9, weight decay 3e-4, cosine learning rate from ``lr`` to 0 over ``epochs``, cross
entropy, gradient norm clipped at 5 (the DARTS evaluation recipe, Liu et al. 2019, without
cutout, drop path or the auxiliary head, which matter only for long schedules). The model
trains on the training and validation splits together (the search used the validation split
for the architecture; the final network is fitted on all non-test data) and is scored on the
test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from cosearch.search.data import DataSplits, batches

if TYPE_CHECKING:
    import torch

__all__ = ["train_from_scratch", "accuracy"]


def accuracy(
    module: torch.nn.Module, ds: object, *, batch_size: int = 256, device: str = "cpu"
) -> float:
    """Top-1 accuracy of ``module`` on dataset ``ds``, in percent (module in eval mode)."""
    import torch

    module.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches(ds, batch_size):  # type: ignore[arg-type]
            pred = module(x.to(device)).argmax(dim=1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)


def train_from_scratch(
    module: torch.nn.Module,
    data: DataSplits,
    epochs: int,
    seed: int,
    *,
    batch_size: int = 64,
    lr: float = 0.05,
    weight_decay: float = 3e-4,
    device: str = "cpu",
    after_epoch: Callable[[int, float], bool] | None = None,
) -> float:
    """Train ``module`` (its initial weights as given: "from scratch" means untrained) for
    ``epochs`` epochs on ``data.train + data.val``; return its test accuracy in percent.

    ``seed`` fixes the batch order (a private ``torch.Generator``; the global RNG is not
    touched). ``module`` is trained in place and left in eval mode. ``epochs = 0`` scores the
    untrained module. Raises ValueError for ``epochs < 0`` or ``batch_size < 1``.

    ``after_epoch(epoch, test accuracy)`` (epochs counted from 1) is called after every epoch
    with the test accuracy then; training stops after an epoch where it returns True.
    """
    import torch
    from torch.nn import functional as F
    from torch.utils.data import ConcatDataset, TensorDataset

    if epochs < 0 or batch_size < 1:
        raise ValueError(f"epochs must be >= 0 and batch_size >= 1; got {epochs}, {batch_size}")
    module.to(device)
    train = _concat(data.train, data.val)
    if not isinstance(train, TensorDataset):
        train = ConcatDataset([data.train, data.val])
    gen = torch.Generator().manual_seed(int(seed) % (2**63))
    opt = torch.optim.SGD(
        module.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * epoch / epochs))
        module.train()
        for x, y in batches(train, batch_size, generator=gen):
            if len(y) < 2:  # a last batch of one image: BatchNorm cannot train on it
                continue
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(x.to(device)), y.to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
            opt.step()
        if after_epoch is not None:
            score = accuracy(module, data.test, device=device)
            if after_epoch(epoch + 1, score) or epoch + 1 == epochs:
                return score
    return accuracy(module, data.test, device=device)


def _concat(a: object, b: object) -> object:
    """Two TensorDatasets as one (keeps the fast batching path); else None."""
    import torch
    from torch.utils.data import TensorDataset

    if isinstance(a, TensorDataset) and isinstance(b, TensorDataset):
        return TensorDataset(*(torch.cat([x, y]) for x, y in zip(a.tensors, b.tensors)))
    return None
