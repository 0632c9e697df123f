"""Lazy package attributes (PEP 562), so ``import cosearch`` and the CLI start quickly.

onnx (through ml_dtypes), scipy.stats, scikit-learn and torch each take 0.3-1 s to import. A
package ``__init__`` that imports them eagerly makes ``cosearch --help`` and ``cosearch status``
pay for all of them. Packages list their exports as ``name -> module`` instead; each module is
imported the first time one of its names is used. The same names are imported under
``TYPE_CHECKING`` in each ``__init__``, so type checkers and IDEs see the real objects.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    ``modules`` maps each module to the public names it defines; the module ``package`` itself
    lists the submodules it exports (``{"cosearch": ("hwmodels", ...)}``). A resolved name is
    stored in ``namespace`` so later lookups do not come back here.
    """
    exports = {
        name: f"{package}.{name}" if module == package else module
        for module, names in modules.items()
        for name in names
    }

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name)
        value = module if module_name == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
