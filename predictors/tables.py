"""Benchmark tables as predictor training data: encodings, latency columns, genotypes.

:func:`load_table` reads a CSV of the published tables in ``../shared/data`` (or any CSV with
the same architecture columns) for one space and returns a :class:`Table`: a float64 feature
matrix (one row per table row), every numeric column (``lat_<device>`` in ms, accuracies in
percent), the rows' genotypes, their MACs, and a mask of degenerate rows.

The encodings are computed from the architecture columns, without building ONNX models (15,625
NB201 models would take minutes); :func:`encode_genotypes` gives the same encoding for the
genotypes of a space's Architectures, so a predictor trained on a table applies to candidates
of a search. Encodings per space (the layout is in ``Table.feature_names``):

- ``nb201`` (``arch_str``): one-hot of the op of each of the 6 edges as written (30), one-hot of
  the canonical cell (30; dead edges become ``none``, see ``NB201Space.canonical``), a
  ``degenerate`` flag (the cell output is disconnected from its input) and ``macs_m`` (MACs of
  cosearch's nb201 network, in millions). Both one-hots are kept because measured
  implementations may or may not run dead edges.
- ``fbnet`` (``op_idx``, 22 layers x 9 candidate blocks): one-hot per layer (198), then each
  layer's MACs in millions (22) and the total ``macs_m``, from the FBNet macro-architecture
  (:mod:`cosearch.predictors._fbnet`).
- ``ofa_mbv3`` (``ks``, ``e``, ``d``, ``r``): per searchable block one-hot kernel (3) and expand
  ratio (3), zero when the block is inactive (120); per stage a one-hot depth (15); ``r / 224``;
  per block its MACs in millions at resolution ``r`` (20, zero when inactive) and the total
  ``macs_m``, from the space's layer plan.

Degenerate NB201 cells (341 of 15,625 in the HELP table with cosearch's canonical form) are
kept as rows: their latency is real (near zero on ``pixel3``, whose runtime removes the dead
graph; a normal network's on the others). The ``degenerate`` flag and ``Table.degenerate`` let
models and reports treat them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cosearch.errors import ConfigError

__all__ = [
    "Table",
    "load_table",
    "encode_genotypes",
    "network_options_of",
    "TABLE_SPACES",
    "ARCH_COLUMNS",
]

#: spaces whose tables this module reads
TABLE_SPACES = ("nb201", "fbnet", "ofa_mbv3")
#: the architecture columns read for each space
ARCH_COLUMNS: dict[str, tuple[str, ...]] = {
    "nb201": ("arch_str",),
    "fbnet": ("op_idx",),
    "ofa_mbv3": ("ks", "e", "d", "r"),
}


@dataclass(frozen=True, eq=False)
class Table:
    """One benchmark table read for one space.

    ``features`` (float64, ``N x len(feature_names)``) encodes row ``i``'s architecture;
    ``columns`` maps every numeric column of the CSV (``lat_*`` in ms, accuracies) to a float64
    array of length ``N`` (NaN where the cell is empty); ``genotypes`` are the rows'
    architectures (``net.*`` dicts for nb201 and ofa_mbv3, ``{"op_idx": (22 ints)}`` for fbnet);
    ``macs`` the MACs per row; ``degenerate`` marks rows whose network computes nothing
    from its input (nb201 only; all False elsewhere).
    """

    space: str
    path: str
    features: np.ndarray
    feature_names: tuple[str, ...]
    columns: Mapping[str, np.ndarray]
    genotypes: tuple[dict[str, Any], ...]
    macs: np.ndarray
    degenerate: np.ndarray

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def latency_columns(self) -> tuple[str, ...]:
        """The ``lat_*`` column names, in file order."""
        return tuple(c for c in self.columns if c.startswith("lat_"))

    def column(self, name: str) -> np.ndarray:
        """The numeric column ``name``. Raises ConfigError naming the valid columns."""
        if name not in self.columns:
            raise ConfigError(
                f"table {self.path} has no numeric column {name!r}; its columns are: "
                f"{', '.join(self.columns)}",
                key="target",
            )
        return self.columns[name]

    def latencies(self, names: Sequence[str] | None = None) -> np.ndarray:
        """``N x M`` float64 matrix of the columns ``names`` (default: every ``lat_*``)."""
        names = self.latency_columns if names is None else tuple(names)
        if not names:
            return np.zeros((len(self), 0))
        return np.column_stack([self.column(n) for n in names])


def load_table(csv_path: str | Path, space: str) -> Table:
    """Read ``csv_path`` as a table of ``space`` (one of :data:`TABLE_SPACES`).

    The architecture columns of :data:`ARCH_COLUMNS` are required; every other column that
    parses as numbers becomes ``Table.columns``. Raises ConfigError when the space is unknown,
    the file cannot be read, a required column is missing, or a row's architecture is
    malformed (the message names the row).
    """
    import pandas as pd

    if space not in TABLE_SPACES:
        raise ConfigError(
            f"no table reader for space {space!r}; valid spaces: {', '.join(TABLE_SPACES)}",
            key="space",
        )
    path = Path(csv_path)
    if path.exists() and not (path.is_file() or path.is_dir()):  # a FIFO or device would hang
        raise ConfigError(f"cannot read table {str(path)!r}: not a regular file", key="table")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read table {str(path)!r}: {exc}", key="table") from exc
    missing = [c for c in ARCH_COLUMNS[space] if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"table {str(path)!r} lacks the column {missing[0]!r} that space {space!r} needs "
            f"(it needs {', '.join(ARCH_COLUMNS[space])})",
            key="table",
        )
    records = frame[list(ARCH_COLUMNS[space])].to_dict("records")
    genotypes = tuple(_row_genotype(space, row, i, path) for i, row in enumerate(records))
    features, names, macs, degenerate = _encode(space, genotypes)
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        if name in ARCH_COLUMNS[space]:
            continue
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.notna().any() and values.notna().sum() == frame[name].notna().sum():
            columns[str(name)] = values.to_numpy(dtype=np.float64)
    return Table(
        space=space,
        path=str(path),
        features=features,
        feature_names=names,
        columns=columns,
        genotypes=genotypes,
        macs=macs,
        degenerate=degenerate,
    )


def encode_genotypes(
    space: str, genotypes: Sequence[Mapping[str, Any]]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The table encoding (see the module docstring) of ``genotypes`` and its feature names.

    ``genotypes`` are ``net.*`` dicts of the ``nb201`` / ``ofa_mbv3`` spaces (e.g.
    ``arch.genotype``; default space options are assumed for MACs) or ``{"op_idx": ...}``
    for ``fbnet``. Raises ConfigError for an unknown space or an invalid genotype.
    """
    if space not in TABLE_SPACES:
        raise ConfigError(
            f"no table encoding for space {space!r}; valid spaces: {', '.join(TABLE_SPACES)}",
            key="space",
        )
    features, names, _, _ = _encode(space, tuple(dict(g) for g in genotypes))
    return features, names


# -- rows -> genotypes ---------------------------------------------------------------------------
def _row_genotype(space: str, row: Mapping[str, Any], i: int, path: Path) -> dict[str, Any]:
    try:
        if space == "nb201":
            return _nb201_space().from_string(row["arch_str"])
        if space == "ofa_mbv3":
            return _ofa_space().from_row(row)
        return {"op_idx": _fbnet_ops(row["op_idx"])}
    except ConfigError as exc:
        raise ConfigError(f"table {str(path)!r} row {i}: {exc}", key="table") from exc


@cache
def _nb201_space() -> Any:
    from cosearch.spaces.nb201 import NB201Space

    return NB201Space()


@cache
def _ofa_space() -> Any:
    from cosearch.spaces.ofa_mbv3 import OFAMBv3Space

    return OFAMBv3Space()


def _fbnet_ops(value: Any) -> tuple[int, ...]:
    from cosearch.predictors._fbnet import N_CHOICES, N_LAYERS

    parts = value.split("-") if isinstance(value, str) else list(value)
    try:
        ops = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        ops = ()
    if len(ops) != N_LAYERS or not all(0 <= o < N_CHOICES for o in ops):
        raise ConfigError(
            f"fbnet op_idx must be {N_LAYERS} ints in [0, {N_CHOICES - 1}] joined by '-'; "
            f"got {value!r}",
            key="op_idx",
        )
    return ops


# -- encodings -----------------------------------------------------------------------------------
def _encode(
    space: str, genotypes: tuple[dict[str, Any], ...]
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    if space == "nb201":
        return _encode_nb201(genotypes)
    if space == "fbnet":
        return _encode_fbnet(genotypes)
    return _encode_ofa(genotypes)


def _encode_nb201(
    genotypes: tuple[dict[str, Any], ...],
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    from cosearch.spaces.nb201 import EDGE_NAMES, OPS, canonical_ops

    space = _nb201_space()
    rank = {op: i for i, op in enumerate(OPS)}
    n_ops = len(OPS)
    names = (
        *(f"{e}={op}" for e in EDGE_NAMES for op in OPS),
        *(f"canonical.{e}={op}" for e in EDGE_NAMES for op in OPS),
        "degenerate",
        "macs_m",
    )
    zero_macs, conv_macs = _nb201_macs()
    x = np.zeros((len(genotypes), len(names)))
    macs = np.zeros(len(genotypes))
    degenerate = np.zeros(len(genotypes), dtype=bool)
    width = len(EDGE_NAMES) * n_ops
    for i, g in enumerate(genotypes):
        values = space.validate(g)
        ops = tuple(values[e] for e in EDGE_NAMES)
        canon = canonical_ops(ops)
        for j, (op, cop) in enumerate(zip(ops, canon)):
            x[i, j * n_ops + rank[op]] = 1.0
            x[i, width + j * n_ops + rank[cop]] = 1.0
        degenerate[i] = all(op == "none" for op in canon)
        macs[i] = zero_macs + sum(conv_macs.get(op, 0) for op in canon)
    x[:, -2] = degenerate
    x[:, -1] = macs / 1e6
    return x, names, macs, degenerate


@cache
def _nb201_macs() -> tuple[int, dict[str, int]]:
    """MACs of cosearch's default nb201 network: the all-``none`` cell's, and what one live
    edge of each conv op adds (every stage has the same C^2 * H * W, and MACs add over
    edges; the tests compare the sum with ``extract_layers`` of built networks)."""
    from cosearch.hwmodels.layers import extract_layers
    from cosearch.spaces.nb201 import EDGE_NAMES

    space = _nb201_space()

    def macs_of(op: str) -> int:
        params = {f"net.{e}": "none" for e in EDGE_NAMES}
        params["net.edge_3_0"] = op
        return sum(layer.macs for layer in extract_layers(space.build(params).onnx()))

    zero = macs_of("none")
    return zero, {op: macs_of(op) - zero for op in ("nor_conv_1x1", "nor_conv_3x3")}


def _encode_fbnet(
    genotypes: tuple[dict[str, Any], ...],
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    from cosearch.predictors._fbnet import BLOCK_NAMES, N_CHOICES, N_LAYERS, fixed_macs, layer_macs

    names = (
        *(f"layer_{i}={b}" for i in range(N_LAYERS) for b in BLOCK_NAMES),
        *(f"layer_{i}.macs_m" for i in range(N_LAYERS)),
        "macs_m",
    )
    table = layer_macs()  # N_LAYERS x N_CHOICES
    ops = np.array([_fbnet_ops(g.get("op_idx")) for g in genotypes], dtype=np.int64)
    ops = ops.reshape(len(genotypes), N_LAYERS)
    x = np.zeros((len(genotypes), len(names)))
    rows = np.arange(len(genotypes))
    for layer in range(N_LAYERS):
        x[rows, layer * N_CHOICES + ops[:, layer]] = 1.0
    per_layer = table[np.arange(N_LAYERS)[None, :], ops]  # N x N_LAYERS
    base = N_LAYERS * N_CHOICES
    x[:, base : base + N_LAYERS] = per_layer / 1e6
    macs = per_layer.sum(axis=1) + fixed_macs()
    x[:, -1] = macs / 1e6
    return x, names, macs, np.zeros(len(genotypes), dtype=bool)


def _encode_ofa(
    genotypes: tuple[dict[str, Any], ...],
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
    from cosearch.spaces._ofa_plan import (
        D_CHOICES,
        E_CHOICES,
        KS_CHOICES,
        MAX_DEPTH,
        N_BLOCKS,
        N_STAGES,
    )

    space = _ofa_space()
    names = (
        *(f"block_{i}.ks={k}" for i in range(N_BLOCKS) for k in KS_CHOICES),
        *(f"block_{i}.e={e}" for i in range(N_BLOCKS) for e in E_CHOICES),
        *(f"stage_{s}.d={d}" for s in range(N_STAGES) for d in D_CHOICES),
        "r_over_224",
        *(f"block_{i}.macs_m" for i in range(N_BLOCKS)),
        "macs_m",
    )
    x = np.zeros((len(genotypes), len(names)))
    macs = np.zeros(len(genotypes))
    o_e = N_BLOCKS * len(KS_CHOICES)
    o_d = o_e + N_BLOCKS * len(E_CHOICES)
    o_r = o_d + N_STAGES * len(D_CHOICES)
    for i, g in enumerate(genotypes):
        v = space.validate(g)
        d = [int(v[f"d_{s}"]) for s in range(N_STAGES)]
        r = int(v["r"])
        for s in range(N_STAGES):
            x[i, o_d + s * len(D_CHOICES) + D_CHOICES.index(d[s])] = 1.0
            for j in range(d[s]):
                b = s * MAX_DEPTH + j
                x[i, b * len(KS_CHOICES) + KS_CHOICES.index(int(v[f"ks_{b}"]))] = 1.0
                x[i, o_e + b * len(E_CHOICES) + E_CHOICES.index(int(v[f"e_{b}"]))] = 1.0
        x[i, o_r] = r / 224.0
        per_block, total = _ofa_macs(space.plan(g), r)
        x[i, o_r + 1 : o_r + 1 + N_BLOCKS] = per_block / 1e6
        macs[i] = total
    x[:, -1] = macs / 1e6
    return x, names, macs, np.zeros(len(genotypes), dtype=bool)


def _ofa_macs(plan: Any, resolution: int) -> tuple[np.ndarray, float]:
    """Per searchable block MACs (20, zero when inactive) and the whole network's, at input
    ``resolution``: convolutions, the squeeze-excite FCs and the classifier, as built by
    cosearch's ofa_mbv3 space (every conv pads k // 2, so stride s maps H to ceil(H / s))."""
    from cosearch.spaces._ofa_plan import N_BLOCKS

    def down(h: int, s: int) -> int:
        return -(-h // s)

    h = down(resolution, plan.stem_stride)
    total = h * h * plan.in_channels * plan.stem_width * 9
    per_block = np.zeros(N_BLOCKS)
    for block in plan.blocks:
        out = down(h, block.stride)
        m = h * h * block.cin * block.mid if block.expand else 0
        m += out * out * block.mid * block.kernel * block.kernel
        m += 2 * block.mid * block.se_mid
        m += out * out * block.mid * block.cout
        total += m
        slot = int(block.name.split(".")[1]) - 1
        if slot >= 0:
            per_block[slot] = m
        h = out
    last = plan.blocks[-1].cout
    total += h * h * last * plan.final_expand_width
    total += plan.final_expand_width * plan.feature_mix_width
    total += plan.feature_mix_width * plan.num_classes
    return per_block, float(total)


def network_options_of(
    space: str, target: str, base: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The options of the network whose ``target`` column a benchmark table holds: ``base``
    (default: the space's defaults), with the dataset of an NB201 accuracy column
    (``cifar100_test_acc``: 100 classes; ``imagenet16_120_test_acc``: 16 x 16 inputs, 120
    classes) and the batch of a ``lat_<device>_<batch>`` column (HELP's GPU columns: 1, 32,
    64, 256; a suffix that is no power of two names a CPU, as in ``lat_gold_6240``). None for
    a space with no network builder (fbnet)."""
    import re

    from cosearch.errors import UnknownNameError
    from cosearch.spaces import get_space

    if base is not None:
        options = dict(base)
    else:
        try:
            options = dict(get_space(space).options)
        except UnknownNameError:
            return None
    if space == "nb201":
        from cosearch.spaces.nb201 import DATASET_OPTIONS

        for name in sorted(DATASET_OPTIONS, key=len, reverse=True):  # cifar100 before cifar10
            if target == name or target.startswith(name + "_"):
                options.update(DATASET_OPTIONS[name])
                break
    batch = re.fullmatch(r"lat_.+_(\d+)", target)
    if batch is not None and "batch" in options:
        n = int(batch.group(1))
        if 0 < n <= 4096 and n & (n - 1) == 0:
            options["batch"] = n
    return options
