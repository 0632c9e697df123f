"""Datasets for strategies that train networks (DARTS, Once-for-All): real data, no download.

:func:`load_dataset` turns a dataset spec into train / validation / test splits of
``(image, label)`` pairs, images as float32 tensors ``[C, H, W]`` with ``H == W``, labels as
ints. Specs:

``digits`` (the default)
    scikit-learn's bundled handwritten digits (1,797 images, 8x8 grayscale, 10 classes; no
    download). Pixels are standardized with the mean and standard deviation of the training
    split; the split is a seeded permutation: 60 % train, 20 % validation, 20 % test.

``module:function``
    ``importlib.import_module(module).function()`` (or ``function(seed=seed)`` when the
    function takes a ``seed`` argument) returns ``(train, val)`` or ``(train, val, test)``:
    :class:`torch.utils.data.Dataset` objects whose items are ``(image, label)`` with
    ``image`` a float tensor ``[C, H, W]`` (``H == W``) and ``label`` an int (or a 0-d int
    tensor) in ``[0, num_classes)``. Without a test split the validation split stands in for
    it. ``num_classes`` is ``len(train.classes)`` when the training set has a ``classes``
    attribute (torchvision datasets do), else one more than the largest training label
    (read from ``train.targets`` when present, else by iterating the set once). The
    function decides normalization and augmentation. It is code: cosearch runs it when the
    user's own config names it, not when the spec is read back from a store (a worker
    without ``--config``, ``cosearch export``) unless ``$COSEARCH_TRUSTED_DATASETS`` lists it.

``folder:PATH``
    Image files (any format Pillow reads) in one sub-folder per class: either
    ``PATH/<class>/*`` (split here by a seeded permutation, 60/20/20) or
    ``PATH/{train,val,test}/<class>/*`` (``test`` optional). Classes are the sorted folder
    names. Every image is converted to the first image's mode (grayscale if that one is, else
    RGB) and resized to a square of the first image's shorter side, loaded into memory and
    standardized per channel with the training split's statistics. Needs Pillow.

Errors are :class:`~cosearch.errors.ConfigError` naming the spec and the problem.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from cosearch._interrupt import raise_if_interrupted
from cosearch.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

__all__ = [
    "DataSplits",
    "load_dataset",
    "check_dataset_spec",
    "dataset_name",
    "batches",
    "TRAIN_FRACTION",
    "VAL_FRACTION",
]

#: fractions of a dataset that is split here (digits, folder without split sub-folders)
TRAIN_FRACTION = 0.6
VAL_FRACTION = 0.2
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


class DataSplits(NamedTuple):
    """What :func:`load_dataset` returns; unpacks as a 6-tuple."""

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int


def dataset_name(spec: str) -> str:
    """A short name for sources such as ``train:<name>/5ep``: ``digits``, the function name
    of ``module:function``, the folder name of ``folder:PATH``."""
    if spec.startswith("folder:"):
        return Path(spec[len("folder:") :]).name or "folder"
    if ":" in spec:
        return spec.rpartition(":")[2]
    return spec


def load_dataset(spec: str = "digits", seed: int = 0, *, trusted: bool = True) -> DataSplits:
    """Train / validation / test splits of ``spec`` (see the module docstring).

    The same ``(spec, seed)`` gives the same splits. Raises ConfigError for an unknown spec, a
    module or function that cannot be imported, datasets that break the contract, a missing
    folder, or Pillow missing for ``folder:``.

    ``trusted=False``: the spec was read from a store, not handed over by the user. A
    ``module:function`` spec runs code (the module's import, then the function), and whoever
    can write a store (a shared PostgreSQL server, a database file someone sent) would choose
    it; such a spec is refused unless ``$COSEARCH_TRUSTED_DATASETS`` lists it (comma-separated).
    """
    check_dataset_spec(spec)
    if spec == "digits":
        return _digits(seed)
    if spec.startswith("folder:"):
        return _two_classes(_folder(spec, seed), spec)
    if not trusted and spec not in _trusted_specs():
        raise ConfigError(
            f"dataset {spec!r} comes from the store, and a module:function dataset runs that "
            "code; run the campaign from its TOML file (cosearch run FILE, cosearch worker NAME "
            f"--config FILE) or list it in $COSEARCH_TRUSTED_DATASETS to allow it",
            key="dataset",
        )
    return _two_classes(_user(spec, seed), spec)


def _two_classes(data: DataSplits, spec: str) -> DataSplits:
    if data.num_classes < 2:
        raise ConfigError(
            f"dataset {spec!r} has {data.num_classes} class: a classifier needs at least 2",
            key="dataset",
        )
    return data


def _trusted_specs() -> set[str]:
    return {s.strip() for s in os.environ.get("COSEARCH_TRUSTED_DATASETS", "").split(",")}


def check_dataset_spec(spec: Any) -> None:
    """Raise ConfigError unless ``spec`` has the form of a dataset spec; loads nothing (a
    config is checked with it before any campaign exists)."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"dataset must be a non-empty string; got {spec!r}", key="dataset")
    if spec != "digits" and ":" not in spec:
        raise ConfigError(
            f"unknown dataset {spec!r}; use 'digits', 'module:function' or 'folder:PATH'",
            key="dataset",
        )


# -- digits -----------------------------------------------------------------------------------
def _split_indices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a = int(round(n * TRAIN_FRACTION))
    b = a + int(round(n * VAL_FRACTION))
    return perm[:a], perm[a:b], perm[b:]


def _tensor_splits(
    x: np.ndarray, y: np.ndarray, parts: Sequence[np.ndarray], num_classes: int
) -> DataSplits:
    """Standardize per channel with the first part's statistics; TensorDatasets."""
    import torch
    from torch.utils.data import TensorDataset

    train = x[parts[0]]
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    sets = []
    for idx in parts:
        xs = torch.from_numpy(((x[idx] - mean) / std).astype(np.float32))
        sets.append(TensorDataset(xs, torch.from_numpy(y[idx].astype(np.int64))))
    return DataSplits(sets[0], sets[1], sets[2], num_classes, int(x.shape[1]), int(x.shape[2]))


def _digits(seed: int) -> DataSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None, :, :]  # [N, 1, 8, 8]
    y = np.asarray(bunch.target, dtype=np.int64)
    return _tensor_splits(x, y, _split_indices(len(y), seed), 10)


# -- module:function --------------------------------------------------------------------------
def _user(spec: str, seed: int) -> DataSplits:
    module_name, _, func_name = spec.rpartition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"dataset {spec!r}: cannot import module {module_name!r} ({exc})", key="dataset"
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(
            f"dataset {spec!r}: module {module_name!r} has no function {func_name!r}",
            key="dataset",
        )
    try:
        takes_seed = "seed" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        takes_seed = False
    try:
        out = func(seed=seed) if takes_seed else func()
    except Exception as exc:  # the user's code: its failure is bad input, named once
        raise ConfigError(
            f"dataset {spec!r}: {func_name}() raised {type(exc).__name__}: {exc}", key="dataset"
        ) from exc
    if not isinstance(out, tuple | list) or len(out) not in (2, 3):
        raise ConfigError(
            f"dataset {spec!r}: the function must return (train, val) or (train, val, test) "
            f"datasets; got {type(out).__name__}",
            key="dataset",
        )
    train, val = out[0], out[1]
    test = out[2] if len(out) == 3 else val
    for part, ds in zip(("train", "val", "test"), (train, val, test)):
        if not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__") or len(ds) == 0:
            raise ConfigError(
                f"dataset {spec!r}: the {part} split must be a non-empty torch Dataset "
                "with __len__",
                key="dataset",
            )
    image, _ = train[0]
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(
            f"dataset {spec!r}: images must be tensors [C, H, W] with H == W; got shape {shape}",
            key="dataset",
        )
    dtype = getattr(image, "dtype", None)
    if not getattr(dtype, "is_floating_point", False):
        raise ConfigError(
            f"dataset {spec!r}: images must be float tensors (scaled, e.g. to [0, 1]); got {dtype}",
            key="dataset",
        )
    return DataSplits(train, val, test, _num_classes(train, spec), int(shape[0]), int(shape[1]))


def _num_classes(ds: Any, spec: str) -> int:
    classes = getattr(ds, "classes", None)
    if classes is not None:
        return len(classes)
    targets = getattr(ds, "targets", None)
    labels = (
        np.asarray(targets).reshape(-1)
        if targets is not None
        else np.asarray([int(ds[i][1]) for i in range(len(ds))])
    )
    if labels.size == 0 or labels.min() < 0:
        raise ConfigError(f"dataset {spec!r}: labels must be ints >= 0", key="dataset")
    return int(labels.max()) + 1


# -- folder:PATH ------------------------------------------------------------------------------
def _folder(spec: str, seed: int) -> DataSplits:
    root = Path(spec[len("folder:") :]).expanduser()
    if not root.is_dir():
        raise ConfigError(f"dataset {spec!r}: folder {str(root)!r} does not exist", key="dataset")
    try:
        from PIL import Image
    except ImportError as exc:
        raise ConfigError(
            f"dataset {spec!r} reads image files and needs Pillow; install it (pip install pillow)",
            key="dataset",
        ) from exc
    has_splits = (root / "train").is_dir() and (root / "val").is_dir()
    if not has_splits and ((root / "train").is_dir() or (root / "test").is_dir()):
        raise ConfigError(
            f"dataset {spec!r}: {str(root)!r} has "
            f"{' and '.join(n + '/' for n in ('train', 'test') if (root / n).is_dir())} but no "
            "val/: split folders need PATH/train and PATH/val (PATH/test optional), or put "
            "the class folders in PATH itself to be split 60/20/20",
            key="dataset",
        )
    tops = [root / "train", root / "val"] if has_splits else [root]
    if has_splits and (root / "test").is_dir():
        tops.append(root / "test")
    classes = sorted(d.name for d in tops[0].iterdir() if d.is_dir())
    if not classes:
        raise ConfigError(
            f"dataset {spec!r}: {str(tops[0])!r} holds no class sub-folders", key="dataset"
        )
    files: list[list[tuple[Path, int]]] = []
    for top in tops:
        part = [
            (f, c)
            for c, name in enumerate(classes)
            if (top / name).is_dir()
            for f in sorted((top / name).iterdir())
            if f.suffix.lower() in _IMAGE_SUFFIXES
        ]
        if not part:
            raise ConfigError(f"dataset {spec!r}: no images under {str(top)!r}", key="dataset")
        files.append(part)
    flat = [item for part in files for item in part]
    try:
        with Image.open(files[0][0][0]) as first:
            mode = "L" if first.mode in ("L", "1", "I", "I;16", "F") else "RGB"
            size = min(first.size)
        x = np.stack([_read_image(Image, f, mode, size) for f, _ in flat])
    except _ImageError as exc:
        raise ConfigError(f"dataset {spec!r}: {exc}", key="dataset") from exc
    except (OSError, ValueError) as exc:  # the first file, opened for its mode and size
        raise ConfigError(
            f"dataset {spec!r}: cannot read image {str(files[0][0][0])!r}: {exc}", key="dataset"
        ) from exc
    y = np.asarray([c for _, c in flat], dtype=np.int64)
    if has_splits:
        bounds = np.cumsum([0, *(len(p) for p in files)])
        parts = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(files))]
        if len(parts) == 2:
            parts.append(parts[1])
    else:
        parts = list(_split_indices(len(y), seed))
    return _tensor_splits(x, y, parts, len(classes))


class _ImageError(Exception):
    """An image file of a ``folder:`` dataset that Pillow cannot read."""


def _read_image(image_module: Any, path: Path, mode: str, size: int) -> np.ndarray:
    try:
        with image_module.open(path) as img:
            img = img.convert(mode)
            if img.size != (size, size):
                img = img.resize((size, size), image_module.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise _ImageError(f"cannot read image {str(path)!r}: {exc}") from exc
    return arr[None, :, :] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def batches(ds: Dataset, batch_size: int, *, generator: torch.Generator | None = None) -> Any:
    """Iterate ``(x, y)`` batches of ``ds``, shuffled with ``generator`` when given.

    TensorDatasets are indexed directly (no per-item collation: ~10x faster for small images);
    anything else goes through a DataLoader in the calling process.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    n = len(ds)  # type: ignore[arg-type]
    if isinstance(ds, TensorDataset):
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        xs, ys = ds.tensors[0], ds.tensors[1]
        for i in range(0, n, batch_size):
            raise_if_interrupted()
            idx = order[i : i + batch_size]
            yield xs[idx], ys[idx]
        return
    loader = DataLoader(
        ds, batch_size=batch_size, shuffle=generator is not None, generator=generator
    )
    for x, y in loader:
        raise_if_interrupted()
        yield x, torch.as_tensor(y, dtype=torch.long)
