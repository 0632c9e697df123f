"""Named input encodings of stored predictors: how an Architecture becomes a predictor input.

A stored predictor (:mod:`cosearch.predictors.persist`) records the name of the encoding it was
trained on, so the evaluator can turn any candidate of a campaign into the same input:

- ``table``: the benchmark-table encoding of :func:`~cosearch.predictors.tables.encode_genotypes`
  (spaces ``nb201``, ``fbnet``, ``ofa_mbv3``; default space options assumed for MACs);
- ``paths``: ``table`` plus, for ``nb201``, the path encoding of :func:`nb201_path_features`
  (other spaces: same as ``table``). The accuracy predictors' default for nb201;
- ``onnx``: :func:`~cosearch.spaces.encoding.onnx_features` of the ONNX model (any space);
- ``graph``: the Architectures / ONNX models themselves (graph predictors encode them);
- ``analytical``: the Architectures / ONNX models themselves (the hybrid predictor prices
  their layers with its analytical cost model).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from cosearch.errors import ConfigError

__all__ = [
    "ENCODINGS",
    "nb201_path_features",
    "NB201_PATH_FEATURE_NAMES",
    "encode_genotypes_as",
    "encode_models",
]

ENCODINGS = ("table", "paths", "onnx", "graph", "analytical")

# The four input -> output paths of the NB201 cell, as (to, from) edges in path order.
_PATHS = (((3, 0),), ((1, 0), (3, 1)), ((2, 0), (3, 2)), ((1, 0), (2, 1), (3, 2)))
_LIVE_OPS = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_SEQUENCES = tuple(s for n in (1, 2, 3) for s in itertools.product(_LIVE_OPS, repeat=n))
#: names of :func:`nb201_path_features`: one count per op sequence along an input -> output
#: path (84), then live-op counts of the canonical cell (4), live paths, most convs on a path
NB201_PATH_FEATURE_NAMES: tuple[str, ...] = (
    *("path=" + ">".join(s) for s in _SEQUENCES),
    *(f"canonical.count={op}" for op in _LIVE_OPS),
    "live_paths",
    "max_convs_on_path",
)


def nb201_path_features(genotypes: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Path encoding of NB201 cells (float64, ``n x len(NB201_PATH_FEATURE_NAMES)``).

    In the spirit of BANANAS' path encoding (White et al., AAAI 2021): a cell is the set of its
    input -> output paths, each an op sequence (``none`` breaks a path); the encoding counts
    each of the 4 + 16 + 64 possible sequences. Added: the canonical cell's count of each live
    op, the number of live paths, and the most convolutions on one path (the cell's depth).
    Raises ConfigError for an invalid genotype.
    """
    from cosearch.spaces.nb201 import EDGE_NAMES, canonical_ops

    space = _nb201()
    index = {s: i for i, s in enumerate(_SEQUENCES)}
    base = len(_SEQUENCES)
    out = np.zeros((len(genotypes), len(NB201_PATH_FEATURE_NAMES)))
    edge_of = {tuple(int(c) for c in e.split("_")[1:]): e for e in EDGE_NAMES}
    for row, g in enumerate(genotypes):
        values = space.validate(g)
        ops = {edge: values[name] for edge, name in edge_of.items()}
        live = 0
        depth = 0
        for path in _PATHS:
            seq = tuple(ops[e] for e in path)
            if "none" in seq:
                continue
            out[row, index[seq]] += 1.0
            live += 1
            depth = max(depth, sum(op.startswith("nor_conv") for op in seq))
        canon = canonical_ops(tuple(values[name] for name in EDGE_NAMES))
        for j, op in enumerate(_LIVE_OPS):
            out[row, base + j] = sum(c == op for c in canon)
        out[row, -2] = live
        out[row, -1] = depth
    return out


@cache
def _nb201() -> Any:
    from cosearch.spaces.nb201 import NB201Space

    return NB201Space()


def check_encoding(encoding: str, space: str | None) -> None:
    """Raise ConfigError when ``encoding`` is unknown or needs a table space ``space`` lacks."""
    from cosearch.predictors.tables import TABLE_SPACES

    if encoding not in ENCODINGS:
        raise ConfigError(
            f"unknown predictor encoding {encoding!r}; valid: {', '.join(ENCODINGS)}",
            key="encoding",
        )
    if encoding in ("table", "paths") and space not in TABLE_SPACES:
        raise ConfigError(
            f"encoding {encoding!r} needs a table space ({', '.join(TABLE_SPACES)}); "
            f"got space {space!r}",
            key="encoding",
        )


def encode_genotypes_as(
    encoding: str, space: str, genotypes: Sequence[Mapping[str, Any]]
) -> np.ndarray:
    """The ``table`` or ``paths`` encoding of ``genotypes`` of ``space`` (float64, one row
    each). Raises ConfigError for another encoding, a space without a table encoding, or an
    invalid genotype."""
    from cosearch.predictors.tables import encode_genotypes

    check_encoding(encoding, space)
    if encoding not in ("table", "paths"):
        raise ConfigError(
            f"encoding {encoding!r} is computed from models, not genotypes", key="encoding"
        )
    x, _ = encode_genotypes(space, genotypes)
    if encoding == "paths" and space == "nb201":
        x = np.hstack([x, nb201_path_features(genotypes)])
    return x


def encode_models(encoding: str, space: str | None, archs: Sequence[Any]) -> Any:
    """Predictor input for ``archs`` (Architectures; for ``onnx``, ``graph`` and
    ``analytical`` also ``onnx.ModelProto``) under ``encoding``.

    ``table`` / ``paths`` read ``arch.genotype`` and need ``arch.space == space``; ``onnx``
    gives ``onnx_features`` rows; ``graph`` and ``analytical`` return the list itself (the
    predictor encodes it). Raises ConfigError when an Architecture is of another space than a
    table encoding's, or the encoding is unknown.
    """
    check_encoding(encoding, space)
    items = list(archs)
    if encoding in ("table", "paths"):
        for a in items:
            if getattr(a, "space", None) != space:
                raise ConfigError(
                    f"this predictor encodes {space!r} genotypes; got an architecture of "
                    f"space {getattr(a, 'space', type(a).__name__)!r}",
                    key="accuracy",
                )
        return encode_genotypes_as(encoding, str(space), [a.genotype for a in items])
    if encoding == "onnx":
        import onnx

        from cosearch.spaces.encoding import onnx_features

        rows = [onnx_features(a if isinstance(a, onnx.ModelProto) else a.onnx()) for a in items]
        return np.vstack(rows) if rows else np.zeros((0, 0))
    return items
