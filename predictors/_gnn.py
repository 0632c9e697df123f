"""The torch part of :class:`~cosearch.predictors.latency.GNNLatencyPredictor` (imported lazily,
so importing cosearch does not import torch).

Minibatches are block-diagonal: the graphs' nodes are stacked into one matrix and their
adjacencies into one sparse matrix, so the cost is linear in nodes and edges (layer graphs have
about one to two edges per node; padding to dense ``L x L`` blocks would cost ``L^2``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["GraphNet", "collate", "train_graph_net", "predict_graph_net"]

# one graph prepared for batching: standardized node features, edge sources, edge targets
_Item = tuple[np.ndarray, np.ndarray, np.ndarray]
# one batch: node features, mean over predecessors, mean over successors, graph of each node,
# number of graphs
_Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]


class GraphNet(nn.Module):
    """Directed graph convolutions, then sum and mean pooling, then an MLP head."""

    def __init__(self, n_features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, hidden)
        self.self_w = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.pred_w = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.succ_w = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(
        self,
        x: torch.Tensor,
        a_in: torch.Tensor,
        a_out: torch.Tensor,
        graph: torch.Tensor,
        n_graphs: int,
    ) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        for ws, wp, wn in zip(self.self_w, self.pred_w, self.succ_w):
            h = torch.relu(ws(h) + wp(torch.sparse.mm(a_in, h)) + wn(torch.sparse.mm(a_out, h)))
        total = torch.zeros(n_graphs, h.shape[1]).index_add_(0, graph, h)
        count = torch.zeros(n_graphs).index_add_(0, graph, torch.ones(len(graph)))
        mean = total / count.clamp(min=1.0).unsqueeze(1)
        # sums grow with graph size (latency does too); scaled to keep activations O(1)
        return self.head(torch.cat([total / 100.0, mean], dim=1)).squeeze(1)


def collate(
    graphs: list[tuple[np.ndarray, np.ndarray]], x_mean: np.ndarray, x_std: np.ndarray
) -> list[_Item]:
    """Per graph: standardized float32 node features and its edge list (sources, targets)."""
    out = []
    for x, a in graphs:
        src, dst = np.nonzero(a)
        out.append((((x - x_mean) / x_std).astype(np.float32), src, dst))
    return out


def _mean_operator(rows: np.ndarray, cols: np.ndarray, n: int) -> torch.Tensor:
    """Sparse ``n x n`` matrix averaging, for each row node, the column nodes it lists."""
    deg = np.bincount(rows, minlength=n).astype(np.float32)
    values = 1.0 / deg[rows] if len(rows) else np.zeros(0, dtype=np.float32)
    index = torch.from_numpy(np.vstack([rows, cols]).astype(np.int64))
    return torch.sparse_coo_tensor(
        index, torch.from_numpy(values), (n, n), check_invariants=False
    ).coalesce()


def _batch(items: list[_Item], idx: np.ndarray) -> _Batch:
    xs, srcs, dsts, graph = [], [], [], []
    offset = 0
    for g, i in enumerate(idx):
        x, src, dst = items[i]
        xs.append(x)
        srcs.append(src + offset)
        dsts.append(dst + offset)
        graph.append(np.full(x.shape[0], g, dtype=np.int64))
        offset += x.shape[0]
    src_all = np.concatenate(srcs)
    dst_all = np.concatenate(dsts)
    a_in = _mean_operator(dst_all, src_all, offset)  # row j: the layers j reads
    a_out = _mean_operator(src_all, dst_all, offset)  # row i: the layers reading i
    return (
        torch.from_numpy(np.vstack(xs)),
        a_in,
        a_out,
        torch.from_numpy(np.concatenate(graph)),
        len(idx),
    )


def train_graph_net(
    net: GraphNet,
    items: list[_Item],
    z: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> list[float]:
    """Adam with a cosine schedule on the mean squared error of standardized targets ``z``;
    returns the mean loss of each epoch."""
    rng = np.random.default_rng(seed)
    target = torch.from_numpy(z.astype(np.float32))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    n = len(z)
    curve = []
    net.train()
    for _ in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            pred = net(*_batch(items, idx))
            loss = torch.mean((pred - target[torch.from_numpy(idx)]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        curve.append(total / n)
    net.eval()
    return curve


def predict_graph_net(net: GraphNet, items: list[_Item], chunk: int = 256) -> np.ndarray:
    """The network's outputs for every graph of ``items`` (float64)."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(items), chunk):
            idx = np.arange(start, min(len(items), start + chunk))
            out.append(net(*_batch(items, idx)).numpy())
    return np.concatenate(out).astype(np.float64)
