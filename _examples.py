"""The example campaigns shipped inside the package (``cosearch examples``).

A repository checkout has them in ``examples/``; an installed cosearch has the same files as
package data, so ``cosearch examples quickstart > quickstart.toml`` gives a user without the
repository the README's first campaign.
"""

from __future__ import annotations

from importlib import resources

from cosearch.errors import UnknownNameError

__all__ = ["example_names", "example_summary", "example_text"]


def _folder() -> resources.abc.Traversable:
    return resources.files("cosearch") / "examples"


def example_names() -> list[str]:
    """The bundled examples, by name (the file name without ``.toml``), sorted."""
    folder = _folder()
    if not folder.is_dir():
        return []
    return sorted(f.name[: -len(".toml")] for f in folder.iterdir() if f.name.endswith(".toml"))


def example_text(name: str) -> str:
    """The TOML text of example ``name`` (``quickstart`` or ``quickstart.toml``)."""
    stem = name.removesuffix(".toml")
    if stem not in example_names():
        raise UnknownNameError(
            f"no example {name!r}; the examples are: {', '.join(example_names()) or 'none'}"
        )
    return (_folder() / f"{stem}.toml").read_text(encoding="utf-8")


def example_summary(text: str) -> str:
    """The example's first comment line: what it searches."""
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
