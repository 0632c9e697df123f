"""What the ONNX builders of the network spaces share: a graph written in place into a
``ModelProto`` (``helper.make_graph``/``make_model`` copy every message, megabytes of weights,
which tripled build times), initializers that come from given weights or from He-normal
placeholders, and nodes whose output tensor is named after the node.

Placeholder weights: generating fresh normals per candidate costs more than the rest of a
build, so each tensor takes a slice of one fixed pool of standard normals (one pool per space,
drawn once) at an offset drawn from the candidate's own Generator, scaled to its He-normal
std. Slices of different tensors may overlap; these are weights for structure and latency work.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import TensorProto, helper

POOL_SIZE = 1 << 22


@cache
def normal_pool(seed: int) -> np.ndarray:
    """``POOL_SIZE`` standard normals (float32, read-only) from ``seed``."""
    pool = np.random.default_rng(seed).standard_normal(POOL_SIZE, dtype=np.float32)
    pool.flags.writeable = False
    return pool


@cache
def attributes(items: tuple[tuple[str, Any], ...]) -> tuple[onnx.AttributeProto, ...]:
    """ONNX attributes of a node (cached; callers pass tuples for list-valued ones)."""
    return tuple(helper.make_attribute(k, list(v) if isinstance(v, tuple) else v) for k, v in items)


class OnnxWriter:
    """Collects nodes and initializers of one graph. Subclasses set :attr:`space` (for error
    messages) and :attr:`pool_seed`, and add their layer helpers (conv, bn, ...)."""

    space: ClassVar[str]
    pool_seed: ClassVar[int]

    def __init__(
        self, rng: np.random.Generator | None, weights: Mapping[str, np.ndarray] | None
    ) -> None:
        self.rng = rng
        self.weights = weights
        self.model = onnx.ModelProto()
        self.graph = self.model.graph
        self.names: set[str] = set()

    # -- initializers -------------------------------------------------------------------------
    def _keep(self, name: str, arr: np.ndarray) -> None:
        self.names.add(name)

    def _add(self, name: str, arr: np.ndarray, dtype: int = TensorProto.FLOAT) -> str:
        self._keep(name, arr)
        t = self.graph.initializer.add()
        t.name = name
        t.data_type = dtype
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()
        return name

    def _given(self, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
        if self.weights is None:
            return None
        if name not in self.weights:
            raise ValueError(f"weights for the {self.space} graph lack {name!r}")
        arr = np.asarray(self.weights[name], dtype=np.float32)
        if arr.shape != shape:
            raise ValueError(f"weight {name!r} has shape {arr.shape}; the graph needs {shape}")
        return np.ascontiguousarray(arr)

    def _scaled(self, off: int, n: int, std: np.float32) -> np.ndarray:
        """``n`` pool values from ``off`` times ``std`` (a new array; a subclass may reuse a
        buffer when it keeps only the bytes)."""
        return normal_pool(self.pool_seed)[off : off + n] * std

    def he_normal(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        arr = self._given(name, shape)
        if arr is None:
            assert self.rng is not None
            n = int(np.prod(shape))
            std = np.float32(np.sqrt(2.0 / fan_in))
            if n <= POOL_SIZE:
                off = int(self.rng.integers(0, POOL_SIZE - n + 1))
                arr = self._scaled(off, n, std).reshape(shape)
            else:  # a huge layer (wide options): draw it directly
                arr = (self.rng.standard_normal(n, dtype=np.float32) * std).reshape(shape)
        return self._add(name, arr)

    def const(self, name: str, value: np.ndarray) -> str:
        arr = self._given(name, value.shape)
        return self._add(name, value if arr is None else arr)

    # -- nodes ----------------------------------------------------------------------------------
    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        n = self.graph.node.add()
        n.op_type = op
        n.name = name
        n.input.extend(inputs)
        n.output.append(name)
        if attrs:
            n.attribute.extend(attributes(tuple(sorted(attrs.items()))))
        return name
