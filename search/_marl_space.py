"""Action coding and agent grouping for the ``marl`` / ``rl`` samplers.

Every parameter becomes one categorical action:

- a categorical parameter: one action per choice;
- an int parameter, or a float parameter with a ``step``, with at most ``max_choices`` grid
  values: one action per grid value;
- any other int or float parameter: ``bins`` equal-width bins of its range, in log space when
  the distribution is log-scaled. The policy picks a bin; the value inside the bin is drawn
  uniformly (over the grid values in the bin, or over the bin's interval in the distribution's
  scale) with the sampler's numpy Generator. The learner never sees where in the bin a value
  fell: ``bins`` is the resolution at which the policy can tell values apart.

A value maps back to its action with :meth:`ParamCoder.encode`, so trials that another worker
or another sampler proposed (or that were enqueued by hand) can still be learned from.

Grouping (:func:`default_groups`) gives each agent the parameters of one sub-system:

- ``net.edge_<to>_<from>`` (cell spaces such as nb201): edges grouped by target node, merging
  consecutive target nodes until a group holds at least 3 edges (nb201: edges into nodes 1
  and 2, edges into node 3);
- ``net.ks_<b>``, ``net.e_<b>``, ``net.d_<s>`` (ofa_mbv3): one agent per stage, the blocks of a
  stage being ``n_blocks / n_stages`` consecutive slots; ``net.r`` (input resolution) its own;
- other ``net.<name>_<k>`` parameters: one agent per index ``k`` (a layer of a per-layer space);
  the remaining ``net.*`` parameters one agent;
- ``hw.*``: by keyword into compute array (PE rows/cols, precision), on-chip memory (SRAM,
  buffers, register files), dataflow, and off-chip (DRAM bandwidth, clock); every parameter
  shaped ``hw.<sub><n>_<rest>`` or ``hw.<sub><n>.<rest>`` (a sub-accelerator of a
  heterogeneous design: its dataflow and PE share) goes to that sub-accelerator's agent;
  anything else joins ``hw.other``.

User groups (the ``groups`` option) are lists of exact names or ``fnmatch`` patterns; the
parameters they do not name keep their default agents.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from cosearch.errors import ConfigError

__all__ = ["ParamCoder", "default_groups", "resolve_groups"]


@dataclass(frozen=True)
class ParamCoder:
    """Maps one Optuna distribution to ``n`` actions and back.

    ``kind`` is "categorical", "grid" (one action per grid value) or "bins".
    """

    name: str
    dist: BaseDistribution
    kind: str
    n: int
    # bins only: the (possibly log) transformed range, the number of bins, and for grids the
    # grid size; ``members`` lists the non-empty bins (grid bins can be empty)
    lo: float = 0.0
    hi: float = 1.0
    nbins: int = 0
    grid: int = 0
    members: tuple[int, ...] = ()

    @classmethod
    def build(cls, name: str, dist: BaseDistribution, *, bins: int, max_choices: int) -> ParamCoder:
        if isinstance(dist, CategoricalDistribution):
            return cls(name, dist, "categorical", len(dist.choices))
        if not isinstance(dist, IntDistribution | FloatDistribution):
            raise TypeError(f"unsupported distribution for {name}: {dist!r}")
        log = bool(dist.log)
        lo, hi = (math.log(dist.low), math.log(dist.high)) if log else (dist.low, dist.high)
        step = dist.step
        grid = 0
        if step is not None:
            grid = int(round((dist.high - dist.low) / step)) + 1
            if grid <= max_choices:
                return cls(name, dist, "grid", grid, grid=grid)
        if hi <= lo:  # a single value: one action
            return cls(name, dist, "grid", 1, grid=1)
        proto = cls(name, dist, "bins", 0, lo=float(lo), hi=float(hi), nbins=bins, grid=grid)
        if grid:
            occupied = sorted({proto._bin_of_grid(i) for i in proto._bin_edges_grid()})
            members = tuple(occupied)
        else:
            members = tuple(range(bins))
        return cls(name, dist, "bins", len(members), float(lo), float(hi), bins, grid, members)

    # -- bins ---------------------------------------------------------------------------------
    def _t(self, value: float) -> float:
        assert isinstance(self.dist, IntDistribution | FloatDistribution)
        return math.log(value) if self.dist.log else float(value)

    def _t_inv(self, t: float) -> float:
        assert isinstance(self.dist, IntDistribution | FloatDistribution)
        return math.exp(t) if self.dist.log else t

    def _bin_of_t(self, t: float) -> int:
        k = int(math.floor((t - self.lo) / (self.hi - self.lo) * self.nbins))
        return min(max(k, 0), self.nbins - 1)

    def _grid_value(self, i: int) -> float:
        assert isinstance(self.dist, IntDistribution | FloatDistribution)
        assert self.dist.step is not None
        return self.dist.low + i * self.dist.step

    def _bin_of_grid(self, i: int) -> int:
        return self._bin_of_t(self._t(self._grid_value(i)))

    def _bin_edges_grid(self) -> list[int]:
        """Grid indices where the bin changes (first index of every non-empty bin)."""
        starts = [0]
        for k in range(1, self.nbins):
            i = self._first_grid_at_or_above(k)
            if i < self.grid and self._bin_of_grid(i) == k:
                starts.append(i)
        return starts

    def _first_grid_at_or_above(self, k: int) -> int:
        """Smallest grid index whose bin is >= k (binary search: bins are monotone)."""
        a, b = 0, self.grid
        while a < b:
            m = (a + b) // 2
            if self._bin_of_grid(m) >= k:
                b = m
            else:
                a = m + 1
        return a

    # -- public -------------------------------------------------------------------------------
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value of this distribution (trials of a changed space are
        not learned from)."""
        if isinstance(self.dist, CategoricalDistribution):
            return value in self.dist.choices
        assert isinstance(self.dist, IntDistribution | FloatDistribution)
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        return math.isfinite(v) and self.dist.low <= v <= self.dist.high

    def encode(self, value: Any) -> int:
        """The action of ``value`` (a value of this distribution). Raises ValueError."""
        if self.kind == "categorical":
            return int(self.dist.to_internal_repr(value))
        assert isinstance(self.dist, IntDistribution | FloatDistribution)
        if self.kind == "grid":
            if self.n == 1:
                return 0
            assert self.dist.step is not None
            i = int(round((float(value) - self.dist.low) / self.dist.step))
            return min(max(i, 0), self.n - 1)
        k = self._bin_of_t(self._t(float(value)))
        # a value in an empty bin cannot happen for grid values; for safety, use the nearest
        j = int(np.searchsorted(self.members, k))
        return min(j, self.n - 1)

    def decode(self, action: int, rng: np.random.Generator) -> Any:
        """A value for ``action``; bins draw their value uniformly with ``rng``."""
        if self.kind == "categorical":
            assert isinstance(self.dist, CategoricalDistribution)
            return self.dist.choices[action]
        assert isinstance(self.dist, IntDistribution | FloatDistribution)
        is_int = isinstance(self.dist, IntDistribution)
        if self.kind == "grid":
            if self.n == 1:
                return self.dist.low
            v = self._grid_value(action)
            return int(v) if is_int else float(min(v, self.dist.high))
        k = self.members[action]
        if self.grid:
            first = self._first_grid_at_or_above(k)
            last = self._first_grid_at_or_above(k + 1) - 1
            i = int(rng.integers(first, last + 1))
            v = self._grid_value(i)
            return int(v) if is_int else float(min(v, self.dist.high))
        width = (self.hi - self.lo) / self.nbins
        t = self.lo + (k + float(rng.random())) * width
        v = min(max(self._t_inv(t), self.dist.low), self.dist.high)
        return float(v)


# -- grouping ---------------------------------------------------------------------------------
_EDGE = re.compile(r"^net\.edge_(\d+)_(\d+)$")
_OFA = re.compile(r"^net\.(ks|e)_(\d+)$")
_OFA_D = re.compile(r"^net\.d_(\d+)$")
_INDEXED = re.compile(r"^net\.(.+?)_(\d+)$")
_SUB = re.compile(r"^hw\.([A-Za-z]+\d+)[._](.+)$")
_HW_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dataflow", ("dataflow",)),
    ("memory", ("sram", "buffer", "glb", "rf_", "_rf", "kib", "spad", "cache")),
    ("offchip", ("dram", "gbps", "clock", "mhz", "bandwidth", "offchip", "noc")),
    ("compute", ("pe", "rows", "cols", "precision", "bits", "mac", "array", "lanes", "subs")),
)
MIN_EDGES_PER_AGENT = 3


def _hw_kind(rest: str) -> str:
    for kind, keys in _HW_KINDS:
        if any(k in rest for k in keys):
            return kind
    return "other"


def default_groups(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Agents for ``names`` by sub-system (see the module docstring), in first-seen order.

    Returns ``(agent name, parameter names)`` pairs; every name is in exactly one group.
    """
    groups: dict[str, list[str]] = {}

    def put(agent: str, name: str) -> None:
        groups.setdefault(agent, []).append(name)

    edges = sorted(
        ((int(m.group(1)), name) for name in names if (m := _EDGE.match(name))),
        key=lambda x: x[0],
    )
    edge_agent: dict[str, str] = {}
    pending: list[tuple[int, str]] = []

    def flush() -> None:
        if pending:
            lo, hi = pending[0][0], pending[-1][0]
            label = f"net.cell[{lo}]" if lo == hi else f"net.cell[{lo}-{hi}]"
            for _, n in pending:
                edge_agent[n] = label
            pending.clear()

    for node in sorted({n for n, _ in edges}):
        pending.extend(e for e in edges if e[0] == node)
        if len(pending) >= MIN_EDGES_PER_AGENT:
            flush()
    if pending and edge_agent:  # a short tail joins the previous group
        last = edge_agent[next(reversed(edge_agent))]
        for _, n in pending:
            edge_agent[n] = last
        pending.clear()
    flush()

    n_blocks = len({int(m.group(2)) for name in names if (m := _OFA.match(name))})
    n_stages = len({int(m.group(1)) for name in names if (m := _OFA_D.match(name))})
    per_stage = n_blocks // n_stages if n_stages and n_blocks % n_stages == 0 else 0

    for name in names:
        if name in edge_agent:
            put(edge_agent[name], name)
        elif per_stage and (m := _OFA.match(name)):
            put(f"net.stage{int(m.group(2)) // per_stage}", name)
        elif per_stage and (m := _OFA_D.match(name)):
            put(f"net.stage{int(m.group(1))}", name)
        elif per_stage and name == "net.r":
            put("net.resolution", name)
        elif name.startswith("net."):
            m = _INDEXED.match(name)
            put(f"net.layer{int(m.group(2))}" if m else "net.global", name)
        elif name.startswith("hw."):
            m = _SUB.match(name)
            if m:  # one agent per sub-accelerator of a heterogeneous design
                put(f"hw.{m.group(1)}", name)
            else:
                put(f"hw.{_hw_kind(name[3:].lower())}", name)
        else:
            put("other", name)
    return list(groups.items())


def resolve_groups(
    names: Sequence[str], user: Sequence[Sequence[str]] | None, *, single: bool = False
) -> list[tuple[str, list[str]]]:
    """The agents for ``names``: ``single`` puts everything in one agent; otherwise the user's
    groups (exact names or fnmatch patterns) first, the default grouping for the rest.

    Raises ConfigError when a user entry matches no parameter or a parameter is claimed by two
    user groups.
    """
    if single:
        return [("all", list(names))]
    taken: dict[str, int] = {}
    out: list[tuple[str, list[str]]] = []
    for gi, group in enumerate(user or ()):
        members: list[str] = []
        for pattern in group:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise ConfigError(
                    f"strategy option groups[{gi}] entry {pattern!r} matches no parameter of "
                    f"the search space; parameters: {', '.join(names)}",
                    key="groups",
                )
            for n in hits:
                if n in taken and taken[n] != gi:
                    raise ConfigError(
                        f"parameter {n!r} is in strategy option groups[{taken[n]}] and "
                        f"groups[{gi}]; each parameter belongs to one agent",
                        key="groups",
                    )
                if n not in taken:
                    taken[n] = gi
                    members.append(n)
        out.append((f"group{gi}", members))
    rest = [n for n in names if n not in taken]
    return out + default_groups(rest)
