"""The DARTS cell space (``darts``): a normal and a reduction cell of 4 nodes, 7 ops.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019. Each cell has two
inputs (the outputs of the previous two cells) and 4 intermediate nodes; node ``i`` adds two
operations, each applied to an earlier node (a cell input or an intermediate node before it);
the cell output concatenates the 4 intermediate nodes (4C channels). The network stacks
``layers`` cells, the ones at 1/3 and 2/3 of the depth being reduction cells (stride 2 on the
edges from the cell inputs, twice the channels); see :mod:`cosearch.spaces._darts_onnx`.

Ops. DARTS searches over 8 primitives (:data:`PRIMITIVES`), but a derived (discrete) DARTS
genotype never contains ``none`` (the paper drops it when taking the strongest ops). This
discrete space therefore uses the 7 others (:data:`OPS`); a supernet for DARTS search uses all
8 :data:`PRIMITIVES`. Sep convs are two stacked ReLU-depthwise-pointwise-BN; dil convs one
ReLU-depthwise(dilation 2)-pointwise-BN; ``skip_connect`` is the identity, or a
FactorizedReduce on stride-2 edges; pools have no BatchNorm in the discrete network.

Inputs. Unlike the paper, whose derivation takes the two inputs of a node from *distinct*
predecessors, the inputs here are chosen independently (Optuna parameters cannot express
"different from the other one"), so both may read the same node; the published genotypes are
all in the space. Its size is ``7^8 * (2*3*4*5)^2`` (~8.3e10) ordered choices per cell type,
~6.9e21 for both; the paper counts ~1e18 (unordered pairs of distinct inputs).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cosearch.errors import ConfigError
from cosearch.spaces._base import Architecture, NetworkSpace, genotype_digest, register_space
from cosearch.spaces._darts_onnx import (
    GRAPH_CONSTANTS,
    CellGenotype,
    build_darts_onnx,
    network_plan,
)
from cosearch.spaces._params import Param, check_int_options

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "PRIMITIVES",
    "OPS",
    "CELL_TYPES",
    "PARAM_NAMES",
    "DEFAULT_OPTIONS",
    "DARTS_V2",
    "DartsSpace",
    "canonical_cell",
    "darts_onnx_from_torch",
]

#: the 8 primitives of DARTS search, in the paper code's order (``none`` first)
PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: ops of the discrete space: every primitive but ``none``
OPS = PRIMITIVES[1:]
CELL_TYPES = ("normal", "reduce")
#: parameter names, per cell type and node: ``op0, in0, op1, in1`` (the genotype's pair order)
PARAM_NAMES = tuple(
    f"{t}_node{i}_{what}{j}"
    for t in CELL_TYPES
    for i in range(4)
    for j in (0, 1)
    for what in ("op", "in")
)
#: DARTS (second order) genotype of the paper's code release, ``genotypes.py`` ``DARTS_V2``
DARTS_V2 = (
    "normal=[(sep_conv_3x3,0),(sep_conv_3x3,1),(sep_conv_3x3,0),(sep_conv_3x3,1),"
    "(sep_conv_3x3,1),(skip_connect,0),(skip_connect,0),(dil_conv_3x3,2)] "
    "reduce=[(max_pool_3x3,0),(max_pool_3x3,1),(skip_connect,2),(max_pool_3x3,1),"
    "(max_pool_3x3,0),(skip_connect,2),(skip_connect,2),(max_pool_3x3,1)]"
)

#: Small defaults keep candidates cheap. The paper's CIFAR-10 network is ``channels=36,
#: layers=20`` (3.3M parameters for DARTS-V2); its ImageNet (mobile) one ``channels=48,
#: layers=14`` on a different stem.
DEFAULT_OPTIONS: dict[str, int] = {
    "channels": 16,
    "layers": 8,
    "num_classes": 10,
    "input_size": 32,
    "in_channels": 3,
    "batch": 1,
    "stem_multiplier": 3,
}
# (low, high, step): input_size must stay even through both reductions, because
# FactorizedReduce's shifted branch and the stride-2 ops disagree on odd sizes.
_OPTION_LIMITS: dict[str, tuple[int, int, int]] = {
    "channels": (1, 512, 1),
    "layers": (1, 64, 1),
    "num_classes": (1, 100_000, 1),
    "input_size": (4, 1024, 4),
    "in_channels": (1, 64, 1),
    "batch": (1, 4096, 1),
    "stem_multiplier": (1, 16, 1),
}
_RANK = {op: r for r, op in enumerate(PRIMITIVES)}
#: the canonical cell of a cell type no live cell uses (its ops then change nothing)
_PLACEHOLDER: CellGenotype = ((OPS[0], 0),) * 8


def _check_options(options: Mapping[str, Any]) -> dict[str, int]:
    return check_int_options("darts", options, DEFAULT_OPTIONS, _OPTION_LIMITS)


# -- genotype strings -----------------------------------------------------------------------------
_FIELD = re.compile(r"\s*(\w+)\s*=\s*(\[[^\]]*\]|range\s*\([^)]*\))\s*,?")
_PAIR = re.compile(r"\(\s*(['\"]?)(\w+)\1\s*,\s*(\d+)\s*\)")
_CONCAT_OK = {"[2,3,4,5]", "range(2,6)"}


def _parse_cell(text: str, kind: str, bad: Any) -> CellGenotype:
    body = text.strip()[1:-1].strip()
    pairs = []
    rest = body
    while rest:
        m = _PAIR.match(rest)
        if not m:
            raise bad(f"{kind} list: expected '(op, input)' at {rest[:20]!r}")
        pairs.append((m.group(2), int(m.group(3))))
        rest = rest[m.end() :].lstrip()
        if rest.startswith(","):
            rest = rest[1:].lstrip()
    if len(pairs) != 8:
        raise bad(f"{kind} needs 8 (op, input) pairs (2 per node), got {len(pairs)}")
    for n, (op, src) in enumerate(pairs):
        node = n // 2
        if op not in OPS:
            raise bad(f"unknown op {op!r} in {kind}; valid ops: {', '.join(OPS)}")
        if src > node + 1:
            raise bad(f"{kind} node {node} reads input {src}; it may read 0..{node + 1}")
    return tuple(pairs)


def _parse_genotype(text: Any) -> tuple[CellGenotype, CellGenotype]:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"darts genotype string {text!r}: {why}")

    if not isinstance(text, str):
        raise ConfigError(
            "darts genotype string must be a str like 'normal=[(sep_conv_3x3,0),...] "
            f"reduce=[...]'; got {type(text).__name__}"
        )
    body = text.strip()
    # Also accept the paper code's repr: Genotype(normal=[('sep_conv_3x3', 0), ...], ...)
    if body.startswith("Genotype(") and body.endswith(")"):
        body = body[len("Genotype(") : -1]
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        m = _FIELD.match(body, pos)
        if not m:
            raise bad(f"expected 'name=[...]' at {body[pos : pos + 20]!r}")
        if m.group(1) in fields:
            raise bad(f"{m.group(1)!r} is given twice")
        fields[m.group(1)] = m.group(2)
        pos = m.end()
    allowed = {"normal", "reduce", "normal_concat", "reduce_concat"}
    if set(fields) - allowed:
        raise bad(f"unknown field {sorted(set(fields) - allowed)[0]!r}; fields: normal, reduce")
    for t in CELL_TYPES:
        if t not in fields:
            raise bad(f"the {t!r} list is missing")
        concat = fields.get(f"{t}_concat")
        if concat is not None and re.sub(r"\s", "", concat) not in _CONCAT_OK:
            raise bad(f"{t}_concat must be [2, 3, 4, 5] (all intermediate nodes), got {concat}")
    for t in CELL_TYPES:
        if not fields[t].startswith("["):
            raise bad(f"{t} must be a list [(op, input), ...]")
    normal = _parse_cell(fields["normal"], "normal", bad)
    return normal, _parse_cell(fields["reduce"], "reduce", bad)


def _format_cell(cell: CellGenotype) -> str:
    return "[" + ",".join(f"({op},{src})" for op, src in cell) + "]"


def _format_genotype(normal: CellGenotype, reduce: CellGenotype) -> str:
    return f"normal={_format_cell(normal)} reduce={_format_cell(reduce)}"


# -- canonical form -------------------------------------------------------------------------------
def _pair_key(pair: tuple[str, int]) -> tuple[int, int]:
    return _RANK[pair[0]], pair[1]


@lru_cache(maxsize=1 << 16)
def canonical_cell(cell: CellGenotype) -> CellGenotype:
    """The canonical form of one cell (8 ``(op, input)`` pairs); see DartsSpace.canonical."""
    nodes = [sorted(cell[2 * i : 2 * i + 2], key=_pair_key) for i in range(4)]
    best: CellGenotype | None = None
    best_key: tuple[tuple[int, int], ...] | None = None
    for perm in itertools.permutations(range(4)):  # perm[old node] = new node
        if any(perm[src - 2] >= perm[i] for i in range(4) for _, src in nodes[i] if src >= 2):
            continue  # not a topological order
        new: list[list[tuple[str, int]]] = [[] for _ in range(4)]
        for i in range(4):
            moved = [(op, src if src < 2 else perm[src - 2] + 2) for op, src in nodes[i]]
            new[perm[i]] = sorted(moved, key=_pair_key)
        flat = tuple(p for node in new for p in node)
        key = tuple(_pair_key(p) for p in flat)
        if best_key is None or key < best_key:
            best, best_key = flat, key
    assert best is not None  # the identity permutation is always a topological order
    return best


def _canonical_pair(
    normal: CellGenotype, reduce: CellGenotype, options: Mapping[str, int]
) -> tuple[CellGenotype, CellGenotype]:
    cn, cr = canonical_cell(normal), canonical_cell(reduce)
    plan = network_plan(cn, cr, options)
    if not any(s.live and not s.reduction for s in plan):
        cn = _PLACEHOLDER
    if not any(s.live and s.reduction for s in plan):
        cr = _PLACEHOLDER
    return cn, cr


def _params_of(normal: CellGenotype, reduce: CellGenotype) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t, cell in zip(CELL_TYPES, (normal, reduce)):
        for n, (op, src) in enumerate(cell):
            i, j = divmod(n, 2)
            out[f"net.{t}_node{i}_op{j}"] = op
            out[f"net.{t}_node{i}_in{j}"] = src
    return out


# -- the space ---------------------------------------------------------------------------------
@register_space("darts")
class DartsSpace(NetworkSpace):
    """The DARTS cell space (discrete genotypes over the 7 non-``none`` ops).

    Options (ints): ``channels`` (16, C of the first cells; the paper's CIFAR network: 36),
    ``layers`` (8 cells; paper: 20), ``num_classes`` (10), ``input_size`` (32, H = W, a
    multiple of 4), ``in_channels`` (3), ``batch`` (1), ``stem_multiplier`` (3: the stem has
    ``3 * C`` channels). Raises ConfigError on an unknown option or a value out of range.

    Parameters (32), for ``t`` in ``normal``/``reduce``, node ``i`` in 0..3 and ``j`` in 0, 1:
    ``net.<t>_node<i>_op<j>``, one of :data:`OPS`, and ``net.<t>_node<i>_in<j>``, the int
    index of the node it reads: 0 = the output of cell k-2, 1 = of cell k-1, ``2 + m`` =
    intermediate node m of this cell; node i may read 0..i+1, so its input parameters have
    i + 2 choices. Pair ``j`` of node ``i`` is entry ``2i + j`` of the paper code's
    ``Genotype.normal`` / ``.reduce`` lists.
    """

    def __init__(self, **options: Any) -> None:
        opts = _check_options(options)
        super().__init__(**opts)
        self.params: dict[str, Param] = {}
        for name in PARAM_NAMES:
            t, node, what = name.split("_")
            i = int(node[4:])
            if what.startswith("op"):
                self.params[name] = Param.categorical(
                    name, OPS, help=f"op of input {what[2]} of {t} cell node {i}"
                )
            else:
                self.params[name] = Param.categorical(
                    name,
                    tuple(range(i + 2)),
                    help=f"input {what[2]} of {t} cell node {i}: 0, 1 = cell inputs, "
                    "2 + m = node m",
                )
        self._opt_items = {f"opt.{k}": v for k, v in opts.items()}

    # -- genotypes ------------------------------------------------------------------------------
    def _cells(self, params: Mapping[str, Any]) -> tuple[CellGenotype, CellGenotype]:
        values = self.validate(params)
        cells = []
        for t in CELL_TYPES:
            cells.append(
                tuple(
                    (values[f"{t}_node{i}_op{j}"], int(values[f"{t}_node{i}_in{j}"]))
                    for i in range(4)
                    for j in (0, 1)
                )
            )
        return cells[0], cells[1]

    def from_string(self, text: str) -> dict[str, Any]:
        """``{"net.normal_node0_op0": op, ...}`` from a genotype string.

        The form is ``normal=[(op,input),...8 pairs] reduce=[...]`` (as :meth:`to_string`
        writes it); quotes around op names, spaces, a comma between the lists and the paper
        code's ``Genotype(normal=[...], normal_concat=[2, 3, 4, 5], reduce=[...],
        reduce_concat=range(2, 6))`` repr are accepted (concat must list all 4 nodes).
        Raises ConfigError naming the problem when ``text`` is malformed.
        """
        return _params_of(*_parse_genotype(text))

    def to_string(self, params: Mapping[str, Any]) -> str:
        """The genotype string of ``params`` (inverse of :meth:`from_string`)."""
        return _format_genotype(*self._cells(params))

    # -- canonical form and building ------------------------------------------------------------
    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical parameter dict of ``params``.

        Treated as equivalent (same canonical form, digest and ONNX bytes): (a) the order of
        a node's two ``(op, input)`` pairs (the node adds them); the canonical node lists them
        sorted by (rank in :data:`PRIMITIVES`, input). (b) relabelling intermediate nodes
        in any order that keeps every node after the nodes it reads: the cell output then
        concatenates the same tensors in another order, which the next 1x1 convolutions (or the
        classifier) absorb by permuting their weights; the labelling whose pair list sorts
        lowest wins. (c) a cell type that no live cell uses (e.g. the normal cell when
        ``layers <= 2``, or reduction cells whose outputs no later cell reads) becomes a fixed
        placeholder (all ``(max_pool_3x3, 0)``).
        Not merged: identical pairs (``skip`` + ``skip`` on one node doubles it) and other
        algebraic identities. The result is a valid parameter dict of the space's full choices.
        Raises ConfigError when ``params`` is invalid.
        """
        return _params_of(*_canonical_pair(*self._cells(params), self.options))

    def build(self, params: Mapping[str, Any]) -> Architecture:
        """The Architecture for ``params``; ONNX and torch are built lazily, from the canonical
        genotype, with weights seeded by the digest. Raises ConfigError for invalid params.
        """
        normal, reduce = self._cells(params)
        cn, cr = _canonical_pair(normal, reduce, self.options)
        canonical = _params_of(cn, cr)
        digest = genotype_digest("darts", {**canonical, **self._opt_items})
        options = dict(self.options)
        seed = int(digest[:16], 16)
        doc = "darts " + _format_genotype(cn, cr)

        def onnx_builder() -> onnx.ModelProto:
            return build_darts_onnx(cn, cr, options, seed=seed, doc=doc)[0]

        def torch_builder() -> torch.nn.Module:
            return _torch_module(cn, cr, options, canonical, seed)

        return Architecture(
            space="darts",
            genotype=_params_of(normal, reduce),
            digest=digest,
            _onnx_builder=onnx_builder,
            _torch_builder=torch_builder,
        )


def _torch_module(
    normal: CellGenotype,
    reduce: CellGenotype,
    options: dict[str, int],
    canonical: dict[str, Any],
    seed: int,
) -> torch.nn.Module:
    import torch

    from cosearch.spaces._darts_torch import DartsNet

    module = DartsNet(normal, reduce, options, canonical)
    _, arrays = build_darts_onnx(normal, reduce, options, seed=seed)
    state = {k: torch.from_numpy(a.copy()) for k, a in arrays.items() if k not in GRAPH_CONSTANTS}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:  # the two builders disagree on names: a bug, not user input
        raise RuntimeError(
            f"darts torch/ONNX names differ: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return module.eval()


def darts_onnx_from_torch(module: torch.nn.Module) -> onnx.ModelProto:
    """The ONNX graph of a darts torch module (from ``arch.to_torch()``) with its weights.

    BatchNorm is exported in inference form (running statistics). Raises TypeError when
    ``module`` was not built by the darts space.
    """
    options = getattr(module, "darts_options", None)
    genotype = getattr(module, "darts_genotype", None)
    if not isinstance(options, dict) or not isinstance(genotype, dict):
        raise TypeError(
            "darts_onnx_from_torch takes a module from a darts Architecture's to_torch()"
        )
    space = DartsSpace(**options)
    normal, reduce = _canonical_pair(*space._cells(genotype), space.options)
    weights = {
        k: v.detach().cpu().float().numpy()
        for k, v in module.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    doc = "darts " + _format_genotype(normal, reduce)
    return build_darts_onnx(normal, reduce, options, weights=weights, doc=doc)[0]
