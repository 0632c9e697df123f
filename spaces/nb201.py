"""The NAS-Bench-201 cell space (``nb201``): 5 ops on the 6 edges of a 4-node cell, 15,625 cells.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020; Dong et al., "NATS-Bench", TPAMI 2021. With default options the network is the
NAS-Bench-201 CIFAR network (16 channels, 5 cells per stage, 32x32x3 input, 10 classes), so the
published accuracies apply; :func:`benchmark_accuracy` looks them up.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from cosearch.errors import ConfigError
from cosearch.spaces._base import Architecture, NetworkSpace, genotype_digest, register_space
from cosearch.spaces._nb201_onnx import EDGES, build_nb201_onnx
from cosearch.spaces._params import Param, check_int_options

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "OPS",
    "EDGE_NAMES",
    "DATASETS",
    "DEFAULT_OPTIONS",
    "DATASET_OPTIONS",
    "NB201Space",
    "benchmark_accuracy",
    "canonical_ops",
    "nb201_onnx_from_torch",
]

#: candidate operations, in NAS-Bench-201's order (also the order used to break ties)
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: parameter names; ``edge_i_j`` is the edge into node i from node j, in arch_str order
EDGE_NAMES = tuple(f"edge_{i}_{j}" for i, j in EDGES)
#: datasets of the accuracy table: test accuracy (percent) after 200 epochs
DATASETS = ("cifar10", "cifar100", "imagenet16_120")
#: the network NAS-Bench-201 trained for each dataset, as options that differ from the
#: defaults (the CIFAR-10 network): CIFAR-100 has 100 classes, ImageNet16-120 16x16 images
#: of 120 classes (Dong & Yang, ICLR 2020)
DATASET_OPTIONS: dict[str, dict[str, int]] = {
    "cifar10": {},
    "cifar100": {"num_classes": 100},
    "imagenet16_120": {"input_size": 16, "num_classes": 120},
}

DEFAULT_OPTIONS: dict[str, int] = {
    "channels": 16,
    "cells_per_stage": 5,
    "num_classes": 10,
    "input_size": 32,
    "in_channels": 3,
    "batch": 1,
}
# (low, high, step): input_size must survive two stride-2 reductions with even sizes, because
# the shortcut's 2x2 pooling and the main path's stride-2 conv disagree on odd sizes.
_OPTION_LIMITS: dict[str, tuple[int, int, int]] = {
    "channels": (1, 512, 1),
    "cells_per_stage": (1, 32, 1),
    "num_classes": (1, 100_000, 1),
    "input_size": (4, 1024, 4),
    "in_channels": (1, 64, 1),
    "batch": (1, 4096, 1),
}
_ZERO = ("none",) * 6
_RANK = {op: r for r, op in enumerate(OPS)}


def _check_options(options: Mapping[str, Any]) -> dict[str, int]:
    return check_int_options("nb201", options, DEFAULT_OPTIONS, _OPTION_LIMITS)


# -- arch strings ---------------------------------------------------------------------------------
def _parse_arch_str(text: Any) -> tuple[str, ...]:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"nb201 arch string {text!r}: {why}")

    if not isinstance(text, str):
        raise ConfigError(
            f"nb201 arch string must be a str like '|nor_conv_3x3~0|+|...|'; "
            f"got {type(text).__name__}"
        )
    parts = text.strip().split("+")
    if len(parts) != 3:
        raise bad(f"expected 3 node groups joined by '+', got {len(parts)}")
    ops: list[str] = []
    for i, part in enumerate(parts, start=1):
        if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
            raise bad(f"node {i} group {part!r} must start and end with '|'")
        tokens = part[1:-1].split("|")
        if len(tokens) != i:
            raise bad(f"node {i} needs {i} edge(s) (from nodes 0..{i - 1}), got {len(tokens)}")
        for j, token in enumerate(tokens):
            op, tilde, src = token.partition("~")
            if not tilde or src != str(j):
                raise bad(f"edge {token!r} of node {i} must be 'op~{j}'")
            if op not in _RANK:
                raise bad(f"unknown op {op!r}; valid ops: {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def _format_arch_str(ops: Sequence[str]) -> str:
    groups = []
    for i in (1, 2, 3):
        groups.append("|" + "|".join(f"{op}~{j}" for (t, j), op in zip(EDGES, ops) if t == i) + "|")
    return "+".join(groups)


# -- canonical form -------------------------------------------------------------------------------
@lru_cache(maxsize=None)  # at most 15,625 keys
def canonical_ops(ops: tuple[str, ...]) -> tuple[str, ...]:
    """The canonical cell of ``ops`` (six ops in ``EDGE_NAMES`` order); see NB201Space.canonical."""
    live = {e: op for e, op in zip(EDGES, ops) if op != "none"}
    # Nodes fed, through non-none edges, by the input; the others are identically zero.
    fed = {0}
    for i in (1, 2, 3):
        if any((i, j) in live and j in fed for j in range(i)):
            fed.add(i)
    if 3 not in fed:
        return _ZERO
    live = {e: op for e, op in live.items() if e[1] in fed}
    # Nodes whose value reaches the output; edges into the others are never used.
    used = {3}
    for j in (2, 1, 0):
        if any((i, j) in live and i in used for i in range(j + 1, 4)):
            used.add(j)
    a = tuple(live.get(e, "none") if e[0] in used else "none" for e in EDGES)
    if a[2] != "none":  # node 2 depends on node 1: only the identity labelling is a DAG order
        return a
    b = (a[1], a[0], "none", a[3], a[5], a[4])  # nodes 1 and 2 swapped
    return min(a, b, key=lambda t: [_RANK[op] for op in t])


# -- the space ---------------------------------------------------------------------------------
@register_space("nb201")
class NB201Space(NetworkSpace):
    """The NAS-Bench-201 cell space.

    Options (ints): ``channels`` (16, first stage width), ``cells_per_stage`` (5),
    ``num_classes`` (10), ``input_size`` (32, H = W, a multiple of 4), ``in_channels`` (3),
    ``batch`` (1). Raises ConfigError on an unknown option or a value out of range.
    Parameters: ``net.edge_1_0`` ... ``net.edge_3_2``, each one of :data:`OPS`.
    """

    benchmarks = tuple(f"nb201/{d}" for d in DATASETS)
    #: the ``[space.net]`` options each table's network needs beyond the defaults
    benchmark_options = {f"nb201/{d}": o for d, o in DATASET_OPTIONS.items()}

    def __init__(self, **options: Any) -> None:
        opts = _check_options(options)
        super().__init__(**opts)
        self.params = {
            name: Param.categorical(
                name, OPS, help=f"op on the edge node {name[5]} <- node {name[7]}"
            )
            for name in EDGE_NAMES
        }
        self._opt_items = {f"opt.{k}": v for k, v in opts.items()}

    # -- strings ------------------------------------------------------------------------------
    def from_string(self, text: str) -> dict[str, Any]:
        """``{"net.edge_1_0": op, ...}`` from an NAS-Bench-201 arch string.

        Raises ConfigError naming the problem when ``text`` is malformed.
        """
        return {f"net.{n}": op for n, op in zip(EDGE_NAMES, _parse_arch_str(text))}

    def to_string(self, params: Mapping[str, Any]) -> str:
        """The NAS-Bench-201 arch string of ``params`` (inverse of :meth:`from_string`)."""
        return _format_arch_str(self._ops(params))

    def _ops(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        values = self.validate(params)
        return tuple(values[n] for n in EDGE_NAMES)

    # -- canonical form and building ------------------------------------------------------------
    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical ``{"net.edge_i_j": op}`` of ``params``; itself a valid parameter dict.

        Treated as equivalent (same canonical form, digest and ONNX bytes):
        (a) dead edges: ``none`` edges; edges out of nodes that no non-none path from node 0
        reaches (such nodes are zero); edges into nodes with no path to node 3. Dead edges
        become ``none``. (b) relabelling: when node 2 does not read node 1, swapping the
        intermediate nodes 1 and 2 gives the same network; the labelling whose op list ranks
        lower in :data:`OPS` order wins. (c) every cell whose output is disconnected from its
        input is the single all-``none`` form (the cell outputs zeros).
        Not merged, although some compute the same function: skip-collapsing (node 1 =
        skip(x) feeding conv(node 1) vs conv(x) on the direct edge; the ONNX graphs then differ
        only in names), summed parallel linear ops (two ReLU-Conv-BN edges from one node into
        one node equal a single one with summed weights, at twice the work), and other
        algebraic identities. The canonical form stays a labelled cell of this space (a valid
        parameter dict), not a normal form of the computed function.
        (a) holds exactly for untrained networks and for the cost models. Once BatchNorm is
        trained it is an approximation: a ReLU-Conv-BN edge out of a zero node adds BatchNorm's
        learned shift (a per-channel constant), which the canonical network leaves out.
        Raises ConfigError when ``params`` is invalid.
        """
        canon = canonical_ops(self._ops(params))
        return {f"net.{n}": op for n, op in zip(EDGE_NAMES, canon)}

    def build(self, params: Mapping[str, Any]) -> Architecture:
        """The Architecture for ``params``; ONNX and torch are built lazily, from the canonical
        cell, with weights seeded by the digest. Raises ConfigError when ``params`` is invalid.
        """
        ops = self._ops(params)
        canon = canonical_ops(ops)
        canonical = {f"net.{n}": op for n, op in zip(EDGE_NAMES, canon)}
        digest = genotype_digest("nb201", {**canonical, **self._opt_items})
        options = dict(self.options)
        seed = int(digest[:16], 16)
        doc = "nb201 " + _format_arch_str(canon)

        def onnx_builder() -> onnx.ModelProto:
            return build_nb201_onnx(canon, options, seed=seed, doc=doc)[0]

        def torch_builder() -> torch.nn.Module:
            return _torch_module(canon, options, canonical, seed)

        return Architecture(
            space="nb201",
            genotype={f"net.{n}": op for n, op in zip(EDGE_NAMES, ops)},
            digest=digest,
            _onnx_builder=onnx_builder,
            _torch_builder=torch_builder,
        )

    # -- benchmark ------------------------------------------------------------------------------
    def check_benchmark(self, table: str) -> None:
        """Raise ConfigError unless the published table ``table`` applies to this space."""
        _check_table(self, table)

    def benchmark_accuracy(self, params: Mapping[str, Any], dataset: str) -> float:
        """See :func:`benchmark_accuracy`."""
        return benchmark_accuracy(params, dataset, space=self)


def _torch_module(
    canon: tuple[str, ...], options: dict[str, int], canonical: dict[str, str], seed: int
) -> torch.nn.Module:
    import torch

    from cosearch.spaces._nb201_torch import NB201Net

    module = NB201Net(canon, options, canonical)
    _, arrays = build_nb201_onnx(canon, options, seed=seed)
    state = {k: torch.from_numpy(a.copy()) for k, a in arrays.items() if k != "zero"}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:  # the two builders disagree on names: a bug, not user input
        raise RuntimeError(
            f"nb201 torch/ONNX names differ: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return module.eval()


def nb201_onnx_from_torch(module: torch.nn.Module) -> onnx.ModelProto:
    """The ONNX graph of an nb201 torch module (from ``arch.to_torch()``) with its weights.

    BatchNorm is exported in inference form (running statistics). Raises TypeError when
    ``module`` was not built by the nb201 space.
    """
    options = getattr(module, "nb201_options", None)
    genotype = getattr(module, "nb201_genotype", None)
    if not isinstance(options, dict) or not isinstance(genotype, dict):
        raise TypeError(
            "nb201_onnx_from_torch takes a module from an nb201 Architecture's to_torch()"
        )
    space = NB201Space(**options)
    canon = canonical_ops(space._ops(genotype))
    weights = {
        k: v.detach().cpu().float().numpy()
        for k, v in module.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    return build_nb201_onnx(
        canon, options, weights=weights, doc="nb201 " + _format_arch_str(canon)
    )[0]


# -- accuracy table -------------------------------------------------------------------------------
@cache
def _accuracy_table() -> dict[str, tuple[float, float, float]]:
    ref = resources.files("cosearch.spaces").joinpath("data/nb201_accuracy.csv.gz")
    with ref.open("rb") as raw, gzip.open(raw, "rb") as unz:
        reader = csv.DictReader(io.TextIOWrapper(unz, encoding="utf-8", newline=""))
        return {
            row["arch_str"]: tuple(float(row[d]) for d in DATASETS)  # type: ignore[misc]
            for row in reader
        }


def benchmark_accuracy(
    params: Mapping[str, Any], dataset: str, *, space: NB201Space | None = None
) -> float:
    """NAS-Bench-201 test accuracy (percent, after 200 epochs) of ``params`` on ``dataset``.

    ``dataset`` is one of :data:`DATASETS` (the ``nb201/`` prefix is accepted). The lookup is
    by the exact arch string, not the canonical form: isomorphic cells were trained separately
    and their published accuracies differ. ``space`` defaults to the dataset's published network.
    Raises ConfigError for an unknown dataset, invalid params, or a space whose options other
    than ``batch`` differ from the published network of that dataset (:data:`DATASET_OPTIONS`:
    the defaults for CIFAR-10, 100 classes for CIFAR-100, 16x16 inputs and 120 classes for
    ImageNet16-120): the costs of the candidates must be those of the network the accuracy
    belongs to.
    """
    if space is None:
        key = dataset.removeprefix("nb201/") if isinstance(dataset, str) else dataset
        space = NB201Space(**DATASET_OPTIONS.get(key, {}))
    name = _check_table(space, dataset)
    arch = space.to_string(params)
    return _accuracy_table()[arch][DATASETS.index(name)]


def _check_table(space: NB201Space, dataset: str) -> str:
    """The dataset name if the published table applies to ``space``; else ConfigError."""
    name = dataset.removeprefix("nb201/") if isinstance(dataset, str) else dataset
    if name not in DATASETS:
        raise ConfigError(
            f"nb201 has no accuracy table for dataset {dataset!r}; valid "
            f"datasets: {', '.join(DATASETS)}",
            key="dataset",
        )
    published = {**DEFAULT_OPTIONS, **DATASET_OPTIONS[name]}
    changed = sorted(k for k, v in space.options.items() if k != "batch" and v != published[k])
    if changed:
        k = changed[0]
        needs = ", ".join(f"{o} = {v}" for o, v in DATASET_OPTIONS[name].items())
        what = f"the {name} network ({needs})" if needs else "the default nb201 network"
        raise ConfigError(
            f"the NAS-Bench-201 {name} accuracy table applies only to {what}; option {k!r} "
            f"is {space.options[k]} (the table's network has {published[k]}; set it in "
            "[space.net])",
            key=f"space.net.{k}",
        )
    return name
