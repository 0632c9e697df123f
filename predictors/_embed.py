"""The torch part of :class:`~cosearch.predictors.fewshot.FewShotLatencyPredictor`: a multi-task
MLP whose last hidden layer becomes shared architecture features (imported lazily)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["EmbeddingNet", "train_embedding", "embed"]


class EmbeddingNet(nn.Module):
    """``x -> h`` (two hidden ReLU layers, then a linear map to ``embed_dim``), and one linear
    head per meta-training device on ``h``."""

    def __init__(self, n_features: int, hidden: int, embed_dim: int, n_devices: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, embed_dim),
        )
        self.heads = nn.Linear(embed_dim, n_devices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.body(x))


def train_embedding(
    x: np.ndarray,
    r: np.ndarray,
    *,
    hidden: int,
    embed_dim: int,
    epochs: int,
    seed: int,
    batch_size: int = 256,
    lr: float = 2e-3,
) -> dict[str, torch.Tensor]:
    """Fit :class:`EmbeddingNet` to the relative latencies ``r`` (N x M; NaN = not measured,
    left out of the loss) from standardized features ``x``; returns its state dict.
    Deterministic for a seed; torch's global RNG is restored afterwards."""
    mask = np.isfinite(r)
    target = np.where(mask, r, 0.0)
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(target.astype(np.float32))
    mt = torch.from_numpy(mask.astype(np.float32))
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EmbeddingNet(x.shape[1], hidden, embed_dim, r.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * max(1, -(-len(x) // batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    # centre the targets per device so the heads start near the answer
    centre = torch.from_numpy(
        np.array([r[mask[:, j], j].mean() for j in range(r.shape[1])], dtype=np.float32)
    )
    with torch.no_grad():
        net.heads.bias.copy_(centre)
    net.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            err = (net(xt[idx]) - yt[idx]) * mt[idx]
            loss = (err**2).sum() / mt[idx].sum().clamp(min=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return {k: v.detach().clone() for k, v in net.body.state_dict().items()}


def embed(state: dict[str, torch.Tensor], x: np.ndarray, hidden: int, embed_dim: int) -> np.ndarray:
    """The embedding ``h`` (float64, N x embed_dim) of standardized features ``x``."""
    with torch.random.fork_rng(devices=[]):  # its random initial weights are replaced
        net = EmbeddingNet(x.shape[1], hidden, embed_dim, 1)
    net.body.load_state_dict(state)
    with torch.no_grad():
        return net.body(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)
