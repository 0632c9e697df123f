"""Name -> class registries (timm's ``register_model`` / ``list_models`` pattern).

Registries store classes, not instances; ``create`` builds one with options and an unknown name
raises :class:`~cosearch.errors.UnknownNameError` listing the valid names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from cosearch.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._classes[name] = cls
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return deco

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get_class(self, name: str, *, key: str | None = None) -> type[T]:
        try:
            return self._classes[name]
        except (KeyError, TypeError):
            valid = ", ".join(self.names())
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid: {valid}", key=key
            ) from None

    def create(self, name: str, /, **options: Any) -> T:
        return self.get_class(name)(**options)
