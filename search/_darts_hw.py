"""The differentiable hardware term of the ``darts`` strategy.

ProxylessNAS (Cai et al., ICLR 2019) and FBNet (Wu et al., CVPR 2019) add the *expected*
latency of the mixed operations to the loss: the cost of each candidate op weighted by its
architecture probability. Here the costs come from the campaign's own cost model and
accelerator, for the network the campaign actually evaluates (its ``[space.net]`` options),
so the term and the reported costs agree:

- Every candidate op is priced at every position it can take in that network, with its real
  shapes: the campaign's space builds a network whose every edge is that op, hwmodels
  extracts its layers, and the layers of each edge (named ``cell<k>.node<i>.op<j>.*`` in
  darts, ``stage<s>.cell<k>.edge_<i>_<j>.*`` in nb201) are priced by the cost model. A
  cell's edges share the architecture weights of all cells of its type, so an edge's cost
  sums over those cells. Layers are extracted once; costs once per accelerator (cached).
- Everything else (stem, cell input preprocessing, node sums, head) is a constant ``base``;
  it does not move gradients but keeps the expected cost in the units of the reported one.
- ``none`` costs nothing; ``skip_connect`` costs nothing at stride 1 and a FactorizedReduce at
  stride 2, as in the discrete network.

Expected cost. nb201: ``base + sum_e sum_o softmax(alpha_e)_o * cost[e, o]``, exact for
one-hot weights whose cell has no dead edge (the discrete network drops edges out of nodes no
path from the input reaches and into nodes with no path to the output: for
``|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|`` the
expected cost is 47 % above the network's). darts: a derived node keeps two of its ``i + 2``
inputs, each with its best non-``none`` op, so an edge counts with selection probability
``2 / (i + 2)`` (or ``2 * softmax(beta)`` under edge normalization) times
``sum_o p_o * cost[e, o]`` with ``p`` the softmax over the non-``none`` ops; for a derived
genotype this equals the campaign's cost of that network whenever all its cells are live.
Dead cells and unread cell inputs (dropped from the discrete network) are not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosearch.errors import ConfigError
from cosearch.hwmodels import Accelerator, CostModel, Layer, extract_layers
from cosearch.spaces import NetworkSpace

if TYPE_CHECKING:
    import torch

    from cosearch.search._darts_supernet import Supernet

__all__ = ["CostTable", "HardwareTerm", "METRICS"]

#: hardware metrics the term can use (fields of hwmodels.Cost)
METRICS = ("latency_ms", "energy_mj")
_DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
_NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_DARTS_EDGES = tuple((i, j) for i in range(4) for j in range(i + 2))
_DARTS_LAYER = re.compile(r"^cell(\d+)\.node\d\.op\d\.")
_NB201_LAYER = re.compile(r"^stage\d\.cell\d+\.edge_(\d)_(\d)\.")
_NB201_ADD = re.compile(r"^stage\d\.cell\d+\.node(\d)\.add(\d)$")


@dataclass(frozen=True)
class CostTable:
    """Costs on one accelerator, in the metric's unit: ``per_edge[type, edge, primitive]``
    (primitives in the supernet's order, ``none`` first) and the constant ``base``."""

    metric: str
    base: float
    per_edge: np.ndarray
    #: nb201: one node sum (an Add) at a node's position, summed over all cells
    add: float = 0.0


class HardwareTerm:
    """Prices the candidate ops of ``network`` (the campaign's space) with ``cost_model``.

    Raises ConfigError when the space is neither darts nor nb201 or ``metric`` is unknown.
    """

    def __init__(self, network: NetworkSpace, cost_model: CostModel, metric: str) -> None:
        if network.name not in ("darts", "nb201"):
            raise ConfigError(
                f"the darts hardware term prices darts and nb201 networks; got {network.name!r}"
            )
        if metric not in METRICS:
            raise ConfigError(
                f"The 'hw_metric' option of strategy darts must be one of "
                f"{', '.join(METRICS)}. Got {metric!r} instead.",
                key="hw_metric",
            )
        self.network = network
        self.space = network.name
        self.cost_model = cost_model
        self.metric = metric
        self._groups: dict[tuple[int, int, int], list[Layer]] | None = None
        self._base: list[Layer] = []
        self._adds: list[Layer] = []
        self._tables: dict[str, CostTable] = {}

    # -- layers (once) --------------------------------------------------------------------------
    def _layer_groups(self) -> dict[tuple[int, int, int], list[Layer]]:
        """``(type, edge-or-stride key, primitive) -> layers`` summed over the network."""
        if self._groups is not None:
            return self._groups
        groups: dict[tuple[int, int, int], list[Layer]] = {}
        if self.space == "darts":
            self._darts_groups(groups)
        else:
            self._nb201_groups(groups)
        self._groups = groups
        return groups

    def _darts_groups(self, groups: dict[tuple[int, int, int], list[Layer]]) -> None:
        from cosearch.spaces._darts_onnx import network_plan

        opts = self.network.options
        for o, op in enumerate(_DARTS_OPS):
            if op == "none":
                continue
            # node 0 reads both cell inputs (stride 2 in reduction cells), node 1 an
            # intermediate node (stride 1): every (cell, stride) position appears
            pairs = [(op, 0), (op, 1), (op, 2), (op, 2), (op, 0), (op, 1), (op, 0), (op, 1)]
            cell = "[" + ",".join(f"({a},{b})" for a, b in pairs) + "]"
            params = self.network.from_string(f"normal={cell} reduce={cell}")
            plan = network_plan(tuple(pairs), tuple(pairs), opts)
            instances: dict[str, list[Layer]] = {}
            base: list[Layer] = []
            for layer in extract_layers(self.network.build(params).onnx()):
                m = _DARTS_LAYER.match(layer.name)
                if m is None:
                    base.append(layer)
                    continue
                instances.setdefault(layer.name[: m.end()], []).append(layer)
            if op == "sep_conv_3x3":
                self._base = base
            seen: set[tuple[int, int]] = set()
            for prefix, layers in instances.items():
                k = int(_DARTS_LAYER.match(prefix).group(1))  # type: ignore[union-attr]
                spec = plan[k]
                stride = 2 if spec.reduction and layers[0].h == spec.size else 1
                if (k, stride) in seen:  # the same op at the same position: priced once
                    continue
                seen.add((k, stride))
                groups.setdefault((int(spec.reduction), stride, o), []).extend(layers)

    def _nb201_groups(self, groups: dict[tuple[int, int, int], list[Layer]]) -> None:
        for o, op in enumerate(_NB201_OPS):
            if op == "none":
                continue
            text = f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"
            params = self.network.from_string(text)
            base: list[Layer] = []
            adds: list[Layer] = []
            for layer in extract_layers(self.network.build(params).onnx()):
                m = _NB201_LAYER.match(layer.name)
                if m is None:
                    a = _NB201_ADD.match(layer.name)
                    if a is None:
                        base.append(layer)
                    elif a.group(1) == "2":  # one Add per cell; node 3's Adds have its shape
                        adds.append(layer)
                    continue
                e = _NB201_EDGES.index((int(m.group(1)), int(m.group(2))))
                groups.setdefault((0, e, o), []).append(layer)
            if op == "nor_conv_3x3":
                self._base = base
                self._adds = adds

    # -- costs (per accelerator) ----------------------------------------------------------------
    def _price(self, layers: list[Layer], acc: Accelerator) -> float:
        if not layers:
            return 0.0
        return float(getattr(self.cost_model.evaluate(layers, acc), self.metric))

    def table(self, acc: Accelerator) -> CostTable:
        """The cost table on ``acc`` (computed once per accelerator)."""
        hit = self._tables.get(acc.digest)
        if hit is not None:
            return hit
        groups = self._layer_groups()
        if self.space == "darts":
            per = np.zeros((2, len(_DARTS_EDGES), len(_DARTS_OPS)))
            for t in (0, 1):
                for e, (_, j) in enumerate(_DARTS_EDGES):
                    stride = 2 if t == 1 and j < 2 else 1
                    for o in range(1, len(_DARTS_OPS)):
                        per[t, e, o] = self._price(groups.get((t, stride, o), []), acc)
        else:
            per = np.zeros((1, len(_NB201_EDGES), len(_NB201_OPS)))
            for (_, e, o), layers in groups.items():
                per[0, e, o] = self._price(layers, acc)
        base, add = self._price(self._base, acc), self._price(self._adds, acc)
        table = CostTable(self.metric, base, per, add)
        self._tables[acc.digest] = table
        return table

    # -- expected and discrete costs ------------------------------------------------------------
    def expected(self, net: Supernet, table: CostTable) -> torch.Tensor:
        """The differentiable expected cost of ``net``'s architecture (a 0-d tensor)."""
        import torch

        cost = torch.as_tensor(table.per_edge, dtype=net.alphas.dtype, device=net.alphas.device)
        if self.space == "nb201":
            p = torch.softmax(net.alphas, dim=-1)
            return table.base + (p * cost).sum() + table.add * self._expected_adds(p[0])
        p = torch.softmax(net.alphas[:, :, 1:], dim=-1)
        per_edge = (p * cost[:, :, 1:]).sum(-1)  # [2, 14]
        sel = torch.stack([self._selection(net, t) for t in (0, 1)])
        return table.base + (sel * per_edge).sum()

    @staticmethod
    def _expected_adds(p: Any) -> Any:
        """Node sums of an nb201 cell: a node with n non-``none`` inputs needs n - 1 Adds.
        With edge probabilities ``p`` ([6, 5], numpy or torch) that is ``relu(E[n] - 1)`` per
        node, exact for one-hot weights."""
        live = 1.0 - p[:, 0]
        out = 0.0
        for node in (2, 3):
            extra = sum(live[e] for e, (i, _) in enumerate(_NB201_EDGES) if i == node) - 1.0
            out = out + extra * (extra > 0)  # relu that works on arrays and tensors alike
        return out

    def _selection(self, net: Supernet, t: int) -> torch.Tensor:
        import torch

        if net.edge_norm:
            return 2.0 * net.edge_weights(t)
        fan_in = [i + 2 for i, _ in _DARTS_EDGES]
        return torch.tensor(
            [2.0 / f for f in fan_in], dtype=net.alphas.dtype, device=net.alphas.device
        )

    def uniform(self, table: CostTable) -> float:
        """The expected cost with uniform architecture weights (the default ``target``)."""
        per = table.per_edge
        if self.space == "nb201":
            uniform = np.full(per.shape[1:], 1.0 / per.shape[2])
            adds = float(self._expected_adds(uniform))
            return float(table.base + per.mean(axis=-1).sum() + table.add * adds)
        sel = np.asarray([2.0 / (i + 2) for i, _ in _DARTS_EDGES])
        return float(table.base + (per[:, :, 1:].mean(axis=-1) * sel).sum())

    def discrete(self, params: Mapping[str, Any], acc: Accelerator) -> float:
        """The campaign's cost of a discrete architecture (``net.*`` params) on ``acc``: the
        whole network priced by the cost model, as the evaluator does."""
        layers = extract_layers(self.network.build(params).onnx())
        return float(getattr(self.cost_model.evaluate(layers, acc), self.metric))
