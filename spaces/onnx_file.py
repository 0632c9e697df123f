"""The ``onnx_file`` network space: one fixed user model, read with :func:`load_onnx`.

It has no knobs: a campaign over it searches the hardware side only (the network is given), so
``params`` is empty, ``sample`` returns ``{}`` and every build returns the same Architecture.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

import onnx

from cosearch.errors import ConfigError
from cosearch.spaces._base import Architecture, NetworkSpace, genotype_digest, register_space
from cosearch.spaces._params import Param
from cosearch.spaces.onnx_io import MAX_DIM, load_onnx, structure_digest

__all__ = ["OnnxFileSpace"]

_OPTIONS = ("path", "batch", "symbols")


@register_space("onnx_file")
class OnnxFileSpace(NetworkSpace):
    """A fixed ONNX model from a file; in a campaign TOML a relative ``path`` is read from the
    TOML file's folder.

    Options: ``path`` (str, the ``.onnx`` file; here relative paths are taken from the working
    directory: :meth:`CampaignConfig.space_options <cosearch.config.CampaignConfig.space_options>`
    resolves a TOML's), ``batch`` (int >= 1, default 1: the value of a symbolic or unknown
    batch axis of the model's inputs) and ``symbols`` (``{name: int}``, values of other named
    symbolic input dimensions such as a sequence length). See
    :func:`~cosearch.spaces.onnx_io.load_onnx` for what is checked; the file is read once, here.

    ``path`` may be left out only to describe the space (``cosearch spaces`` lists every space
    without options): :meth:`build` then raises ConfigError.

    The Architecture's digest is a sha256 of the model's structure (see
    :func:`~cosearch.spaces.onnx_io.structure_digest`: opsets and the graph with initializers
    reduced to their types and shapes) plus ``batch`` and ``symbols``; weights, the file's path
    and its metadata do not count, so re-trained weights of one network share a digest.

    Raises:
        ConfigError: an unknown option, or an invalid ``path``, ``batch`` or ``symbols``.
        OnnxImportError: the file cannot be used (its message names the file and the problem).
    """

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"onnx_file has no option {unknown[0]!r}; its options are: {', '.join(_OPTIONS)}",
                key=unknown[0],
            )
        path = options.get("path")
        if path is not None and (not isinstance(path, (str, os.PathLike)) or not os.fspath(path)):
            raise ConfigError(
                f"The 'path' option of onnx_file must be a non-empty path to an .onnx file. "
                f"Got {path!r} instead.",
                key="path",
            )
        batch = options.get("batch", 1)
        if not _is_count(batch):
            raise ConfigError(
                f"The 'batch' option of onnx_file must be an int in [1, {MAX_DIM}]. "
                f"Got {batch!r} instead.",
                key="batch",
            )
        symbols = options.get("symbols") or {}
        if not isinstance(symbols, Mapping) or not all(
            isinstance(k, str) and _is_count(v) for k, v in symbols.items()
        ):
            raise ConfigError(
                f"The 'symbols' option of onnx_file must map dimension names to ints in "
                f"[1, {MAX_DIM}]. Got {symbols!r} instead.",
                key="symbols",
            )
        symbols = {k: int(v) for k, v in symbols.items()}
        path_str = os.fspath(path) if path is not None else None
        super().__init__(path=path_str, batch=int(batch), symbols=symbols)
        self.params: dict[str, Param] = {}
        self._model: onnx.ModelProto | None = None
        self._digest = ""
        if path_str is not None:
            self._model = load_onnx(path_str, batch=int(batch), symbols=symbols)
            self._digest = genotype_digest(
                "onnx_file",
                {
                    "structure": structure_digest(self._model),
                    "opt.batch": int(batch),
                    "opt.symbols": symbols,
                },
            )

    @property
    def model_digest(self) -> str:
        """The digest of the file's network (every Architecture of this space has it); empty
        without a ``path``."""
        return self._digest

    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Always ``{}`` (no knobs). Raises ConfigError on any ``net.*`` key."""
        self.validate(params)
        return {}

    def build(self, params: Mapping[str, Any]) -> Architecture:
        """The Architecture of the file's model; ``arch.onnx()`` is a copy of the model as
        :func:`load_onnx` returned it (each Architecture gets its own copy).

        Raises ConfigError when the space has no ``path`` or ``params`` has a ``net.*`` key.
        """
        model = self._model
        if model is None:
            raise ConfigError("the onnx_file space needs the 'path' option", key="path")
        self.validate(params)

        def onnx_builder() -> onnx.ModelProto:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            return copy

        return Architecture(
            space="onnx_file", genotype={}, digest=self._digest, _onnx_builder=onnx_builder
        )

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self._model is not None:
            out["nodes"] = len(self._model.graph.node)
        return out


def _is_count(value: object) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and 1 <= int(value) <= MAX_DIM
    )
