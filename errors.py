"""Exception types. Each names the thing, the bad value and the rule.

The CLI maps :class:`CosearchInputError` (and its subclasses) to exit code 2 and prints the
message as one line; anything else is exit code 1.
"""

from __future__ import annotations

__all__ = [
    "CosearchError",
    "CosearchInputError",
    "ConfigError",
    "OnnxImportError",
    "MeasurementError",
    "StoreError",
    "QueryError",
    "UnknownNameError",
    "StoreInputError",
]


class CosearchError(Exception):
    """Base class of every error cosearch raises on purpose."""


class CosearchInputError(CosearchError, ValueError):
    """The user gave something unusable: a config, a file, an argument, a name."""


class ConfigError(CosearchInputError):
    """A campaign TOML (or an option given in Python) breaks a rule.

    ``key`` is the dotted key, ``line`` the 1-based line in the TOML file when known.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        path: str | None = None,
    ) -> None:
        self.key = key
        self.line = line
        self.path = path
        where = ""
        if path is not None and line is not None:
            where = f"{path}:{line}: "
        elif path is not None:
            where = f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message lists the valid names."""


class OnnxImportError(CosearchInputError):
    """An ONNX file or model cannot be used (truncated, not ONNX, unsupported, absurd)."""


class MeasurementError(CosearchError):
    """A model could not be timed: onnxruntime failed while running it (out of memory, a
    shape it refuses at run time). In a campaign the trial fails and the search goes on."""


class StoreError(CosearchError):
    """The store cannot do what was asked (schema too new, campaign missing, ...)."""


class StoreInputError(StoreError, CosearchInputError):
    """The store was asked for something that does not exist or is not allowed."""


class QueryError(StoreInputError):
    """A ``cosearch query`` statement was refused (it writes, or it is not valid SQL)."""
