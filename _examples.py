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
    """The first sentence of the example's opening comment: what it searches."""
    words: list[str] = []
    for line in text.splitlines():
        body = line.lstrip("#").strip()
        if not line.startswith("#") or not body:
            if words:
                break
            continue
        words.append(body)
    paragraph = " ".join(words)
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]
