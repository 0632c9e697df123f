"""ONNX model serialization, the structure-only form the store keeps, and :func:`load_onnx`,
the one way cosearch reads a user's ``.onnx`` file.

:func:`load_onnx` checks a file in this order and refuses it with a one-line
:class:`~cosearch.errors.OnnxImportError` that names the file and the problem:

1. the path: it must exist, be a regular file, be non-empty and hold at most ``max_bytes``;
2. the protobuf: it must parse and carry an IR version, a graph with nodes and an opset import
   (a file cut between the graph and the opset import still parses, so the last check matters);
3. the size limits below, on declared shapes and initializers, before any heavy work;
4. operator domains: only the default ONNX domain (``""`` / ``"ai.onnx"``) can be costed;
5. external data: each location must be relative and stay inside the model's folder (after
   ``..`` and symlinks are resolved); files outside it are never opened. Weights are not read
   unless ``load_weights`` asks for them: cost evaluation needs shapes only;
6. the opset: default-domain opsets below :data:`MIN_OPSET`, or newer than the installed onnx
   knows, are converted to :data:`TARGET_OPSET` with ``onnx.version_converter``;
7. symbolic or unknown graph-input dimensions are fixed (batch axis to ``batch``, others to 1,
   named symbols to ``symbols[name]``), then strict shape inference runs and inferred tensor
   sizes are checked against the limits again;
8. ``cosearch.hwmodels.extract_layers``: every op must be one the cost models understand, and
   every layer's shapes must be static.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

from cosearch.errors import ConfigError, OnnxImportError

__all__ = [
    "DefaultedDimensionWarning",
    "strip_weights",
    "model_to_bytes",
    "model_from_bytes",
    "load_onnx",
    "structure_digest",
    "MAX_FILE_BYTES",
    "MAX_DIM",
    "MAX_TENSOR_BYTES",
    "MAX_NODES",
    "MIN_OPSET",
    "TARGET_OPSET",
]

#: Largest ``.onnx`` file read, in bytes: protobuf cannot hold a message over 2 GiB, so a bigger
#: model must keep its weights in external data files (which load_onnx does not read).
MAX_FILE_BYTES = 2 * 1024**3
#: Largest static dimension accepted (ONNX allows int64; no real tensor axis comes near this).
MAX_DIM = 2**31
#: Largest tensor accepted, counted at 4 bytes per element (float32) whatever its type.
MAX_TENSOR_BYTES = 64 * 1024**3
#: Most nodes accepted in the main graph (large language models have tens of thousands).
MAX_NODES = 1_000_000
#: Default-domain opsets below this are converted: the layer extractor reads opset-13+ forms
#: (Split/Squeeze/ReduceSum axes as inputs, for example).
MIN_OPSET = 13
#: The opset old (or too new) models are converted to.
TARGET_OPSET = 17

_DEFAULT_DOMAINS = ("", "ai.onnx")


# -- structure-only form and bytes ----------------------------------------------------------------


def _weights_to_inputs(graph: onnx.GraphProto, names: set[str] | None = None) -> None:
    """Turn initializers (all, or those named in ``names``) into typed graph inputs, in place.

    Each keeps its name, element type and shape (no data); a name already declared as a graph
    input (IR < 4 models list initializers there too) is not declared twice.
    """
    have = {i.name for i in graph.input}
    added = []
    keep = []
    for init in graph.initializer:
        if names is None or init.name in names:
            if init.name not in have:
                added.append(
                    helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
                )
        else:
            keep.append(init)
    keep_sparse = []
    for sparse in graph.sparse_initializer:
        if names is None or sparse.values.name in names:
            if sparse.values.name not in have:
                added.append(
                    helper.make_tensor_value_info(
                        sparse.values.name, sparse.values.data_type, list(sparse.dims)
                    )
                )
        else:
            keep_sparse.append(sparse)
    graph.input.extend(added)
    if names is None:
        del graph.initializer[:]
        del graph.sparse_initializer[:]
        return
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.sparse_initializer[:]
    graph.sparse_initializer.extend(keep_sparse)


def strip_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A structure-only copy of ``model``: every weight initializer becomes a graph input.

    Each former initializer keeps its name, element type and shape (no data), so the copy
    still passes ``onnx.checker.check_model`` and shape inference still reaches every tensor;
    a cell-network model shrinks from megabytes to a few kilobytes. Sparse initializers are
    treated the same way. Constant nodes and subgraph initializers are kept as they are.
    ``model`` is not changed.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = _weight_initializers(out.graph)
    _weights_to_inputs(out.graph, names)
    _mark_weight_inputs(out, names)
    return out


_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)
#: (op type, input position) of floating-point inputs that decide output shapes
_FLOAT_SHAPE_INPUTS = frozenset(
    {("Resize", 1), ("Resize", 2), ("Upsample", 1), ("Range", 0), ("Range", 1), ("Range", 2)}
)


def _weight_initializers(graph: onnx.GraphProto) -> set[str]:
    """Names of the initializers that are weights: floating-point ones (and sparse ones),
    except those read where a float decides a shape (Resize scales, Range bounds). Integer
    initializers (Slice bounds, Reshape shapes, Pad widths) are constants, not weights."""
    shape_inputs = {
        name
        for node in graph.node
        for i, name in enumerate(node.input)
        if (node.op_type, i) in _FLOAT_SHAPE_INPUTS
    }
    names = {
        i.name
        for i in graph.initializer
        if i.data_type in _FLOAT_TYPES and i.name not in shape_inputs
    }
    return names | {s.values.name for s in graph.sparse_initializer}


def _mark_weight_inputs(model: onnx.ModelProto, names: set[str]) -> None:
    """Record ``names`` as weights held in graph inputs (``WEIGHT_INPUTS_KEY``), so the cost
    models treat them as constants as they would the initializers they were."""
    import json

    from cosearch.hwmodels.layers import WEIGHT_INPUTS_KEY, weight_names

    if not names:
        return
    initializers = {i.name for i in model.graph.initializer}
    listed = sorted((weight_names(model) - initializers) | names)
    for prop in list(model.metadata_props):
        if prop.key == WEIGHT_INPUTS_KEY:
            model.metadata_props.remove(prop)
    model.metadata_props.add(key=WEIGHT_INPUTS_KEY, value=json.dumps(listed))


def model_to_bytes(model: onnx.ModelProto) -> bytes:
    """The serialized model (protobuf bytes, as an ``.onnx`` file holds them)."""
    return model.SerializeToString()


def model_from_bytes(data: bytes) -> onnx.ModelProto:
    """Parse serialized ONNX. Raises OnnxImportError (one line) when ``data`` is not a model.

    A model must parse as protobuf and carry an IR version and a graph with at least one node;
    arbitrary bytes often parse as an (empty) protobuf message, so parsing alone proves little.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise OnnxImportError(f"ONNX data must be bytes; got {type(data).__name__}")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(data))
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OnnxImportError(
            f"not an ONNX model ({len(data)} bytes): the protobuf does "
            f"not parse: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(
            f"not an ONNX model ({len(data)} bytes): no IR version or no graph nodes"
        )
    return model


def structure_digest(model: onnx.ModelProto) -> str:
    """sha256 (hex) of the model's structure: its opset imports and its main graph with every
    weight turned into a typed input (as :func:`strip_weights` does) and inferred
    ``value_info`` dropped. Weights, doc strings outside the graph, producer and metadata do
    not count; the values of the other constants (Pad widths, Reshape shapes, Resize scales)
    do, since two models that differ there are different networks.
    """
    import hashlib

    light = onnx.ModelProto()
    light.opset_import.extend(model.opset_import)
    g = light.graph
    g.CopyFrom(model.graph)
    del g.value_info[:]
    _weights_to_inputs(g, _weight_initializers(g))
    h = hashlib.sha256()
    for op in sorted((o.domain, o.version) for o in model.opset_import):
        h.update(f"{op[0]}:{op[1]};".encode())
    h.update(g.SerializeToString(deterministic=True))
    return h.hexdigest()


# -- load_onnx -----------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    """Error text of onnx/protobuf (often several lines) squeezed onto one line."""
    return " ".join(str(text).split()) or "(no message)"


def load_onnx(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_FILE_BYTES,
    allow_structure_only: bool = True,
    batch: int = 1,
    symbols: Mapping[str, int] | None = None,
    load_weights: bool = False,
    analytical: bool = True,
) -> onnx.ModelProto:
    """Read, check and prepare a user's ONNX file for cost evaluation (see the module docs).

    Args:
        path: the ``.onnx`` file.
        max_bytes: refuse files larger than this (bytes; at most :data:`MAX_FILE_BYTES`).
        allow_structure_only: when an external data file is missing, accept the model anyway
            with those initializers turned into graph inputs of the same type and shape (cost
            evaluation needs shapes only); when False, a missing file is refused.
        batch: the value given to a symbolic or unknown graph-input dimension on axis 0 (the
            batch axis); other symbolic or unknown input dimensions become 1.
        symbols: values for named symbolic dimensions (e.g. ``{"seq": 128}``); they win over
            ``batch``. Every name must occur in the model's inputs.
        load_weights: read external weights that sit inside the model's folder into the model
            (``raw_data``); by default they stay external references, relative to that folder,
            that nothing reads.
        analytical: check that the analytical cost models can read every op (the default);
            False for a model only onnxruntime will run (``measured:cpu`` times ops such as
            LSTM that the analytical models do not price).

    Returns:
        The model after opset conversion and dimension fixing, with inferred ``value_info``.

    Raises:
        OnnxImportError: the file or the model is unusable; the message starts with the path.
        ConfigError: ``max_bytes``, ``batch`` or ``symbols`` is invalid.
        TypeError: ``path`` is not a path.
    """
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"load_onnx() takes a str path; got {type(path).__name__}")
    _check_count("max_bytes", max_bytes, MAX_FILE_BYTES)
    _check_count("batch", batch, MAX_DIM)
    fixed = dict(symbols or {})
    for sym, value in fixed.items():
        _check_count(f"symbols[{sym!r}]", value, MAX_DIM)
    try:
        return _load(
            Path(name), max_bytes, allow_structure_only, batch, fixed, load_weights, analytical
        )
    except OnnxImportError as err:
        raise OnnxImportError(f"{name}: {err}") from err
    except ConfigError as err:  # a ``symbols`` name the model does not have
        raise ConfigError(str(err), key=err.key, path=name) from err


def _check_count(what: str, value: object, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ConfigError(
            f"The {what!r} option of load_onnx must be an int in [1, {high}]. "
            f"Got {value!r} instead."
        )


def _load(
    file: Path,
    max_bytes: int,
    allow_structure_only: bool,
    batch: int,
    symbols: dict[str, int],
    load_weights: bool,
    analytical: bool,
) -> onnx.ModelProto:
    model = model_from_bytes(_read_file(file, max_bytes))
    versions = [o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not model.opset_import:
        raise OnnxImportError("not a complete ONNX model: no opset_import (truncated file?)")
    if len(model.graph.node) > MAX_NODES:
        raise OnnxImportError(
            f"the graph has {len(model.graph.node)} nodes, more than the limit {MAX_NODES}"
        )
    _check_sizes(model.graph, declared=True)
    _check_domains(model.graph)
    folder = Path(os.path.abspath(file)).parent.resolve()
    _resolve_external(model, folder, allow_structure_only, load_weights)
    if versions and (versions[0] < MIN_OPSET or versions[0] > onnx.defs.onnx_opset_version()):
        model = _convert(model, versions[0])
    _fix_input_dims(model.graph, batch, symbols)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (
        onnx.shape_inference.InferenceError,
        onnx.checker.ValidationError,
        RuntimeError,
        ValueError,
    ) as err:
        raise OnnxImportError(f"ONNX shape inference failed: {_one_line(err)}") from err
    _check_sizes(inferred.graph, declared=False)
    try:  # structural validity against the operator schemas (found by fuzzing: a corrupted
        # file can parse and infer while a node has lost its outputs); on the structure-only
        # form, so the checker never opens external data files
        onnx.checker.check_model(strip_weights(inferred))
    except (onnx.checker.ValidationError, ValueError) as err:
        raise OnnxImportError(f"not a valid ONNX model: {_one_line(err)}") from err

    if analytical:
        from cosearch.hwmodels.layers import extract_layers

        extract_layers(inferred)  # raises OnnxImportError naming unsupported ops / shapes
    return inferred


def _read_file(file: Path, max_bytes: int) -> bytes:
    try:
        st = file.stat()
    except FileNotFoundError:
        where = "" if file.is_absolute() else f" (relative paths start at {Path.cwd()})"
        raise OnnxImportError(f"no such file{where}") from None
    except OSError as err:
        raise OnnxImportError(f"cannot be read: {err.strerror or err}") from err
    if stat.S_ISDIR(st.st_mode):
        raise OnnxImportError("is a directory, not an ONNX file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise OnnxImportError("is not a regular file")
    if st.st_size == 0:
        raise OnnxImportError("is empty (0 bytes)")
    if st.st_size > max_bytes:
        raise OnnxImportError(
            f"is {st.st_size} bytes, more than the {max_bytes}-byte limit (max_bytes); models "
            "over 2 GiB must keep their weights in external data files"
        )
    try:
        with open(file, "rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as err:
        raise OnnxImportError(f"cannot be read: {err.strerror or err}") from err


def _check_sizes(graph: onnx.GraphProto, *, declared: bool) -> None:
    """Refuse absurd static shapes. Graph inputs and outputs need dims in [1, MAX_DIM]; other
    tensors may have 0-sized axes (an unused Resize ``roi`` is an empty initializer)."""

    def check(name: str, dims: list[int], low: int) -> None:
        for axis, d in enumerate(dims):
            if not low <= d <= MAX_DIM:
                raise OnnxImportError(
                    f"tensor {name!r} has dimension {d} on axis {axis}; static dimensions must "
                    f"be in [{low}, 2**31]"
                )
        if math.prod(dims) * 4 > MAX_TENSOR_BYTES:
            raise OnnxImportError(
                f"tensor {name!r} of shape {dims} holds {math.prod(dims)} elements, over the "
                f"limit of {MAX_TENSOR_BYTES // 4} (64 GiB at 4 bytes per element)"
            )

    def static(vi: onnx.ValueInfoProto) -> list[int]:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            return []
        return [d.dim_value for d in t.shape.dim if d.HasField("dim_value")]

    ends = (*graph.input, *graph.output) if declared else graph.output
    for vi in ends:
        check(vi.name, static(vi), 1)
    for vi in graph.value_info:
        check(vi.name, static(vi), 0)
    if declared:
        for init in graph.initializer:
            check(init.name, list(init.dims), 0)
        for sparse in graph.sparse_initializer:
            check(sparse.values.name, list(sparse.dims), 0)


def _check_domains(graph: onnx.GraphProto) -> None:
    custom: dict[str, list[str]] = {}
    for node in graph.node:
        if node.domain not in _DEFAULT_DOMAINS:
            custom.setdefault(f"{node.domain}.{node.op_type}", []).append(
                node.name or (node.output[0] if node.output else "?")
            )
    if custom:
        parts = [
            f"{op} (node {names[0]!r}{', ...' if len(names) > 1 else ''})"
            for op, names in sorted(custom.items())
        ]
        raise OnnxImportError(
            f"unsupported operator(s) outside the default ONNX domain: {'; '.join(parts)}; "
            "cost models understand standard ONNX ops only"
        )


def _tensors(graph: onnx.GraphProto, main: bool) -> Iterator[tuple[onnx.TensorProto, bool]]:
    """Every tensor that may hold external data, with True for main-graph initializers."""
    for init in graph.initializer:
        yield init, main
    for sparse in graph.sparse_initializer:
        yield sparse.values, main
        yield sparse.indices, False
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t, False
            for t in attr.tensors:
                yield t, False
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values, False
                yield attr.sparse_tensor.indices, False
            for sp in attr.sparse_tensors:
                yield sp.values, False
                yield sp.indices, False
            if attr.HasField("g"):
                yield from _tensors(attr.g, False)
            for sub in attr.graphs:
                yield from _tensors(sub, False)


def _inside(folder: Path, location: str, tensor: str) -> Path:
    """The resolved path of ``location`` if it stays inside ``folder``; else OnnxImportError.

    Nothing is opened: only ``..`` and symlinks are resolved (``Path.resolve``).
    """
    if not location or "\x00" in location:
        raise OnnxImportError(f"tensor {tensor!r} has an empty or invalid external data location")
    win = PureWindowsPath(location)
    if PurePosixPath(location).is_absolute() or win.is_absolute() or win.drive:
        raise OnnxImportError(
            f"tensor {tensor!r} has external data at the absolute path {location!r}; locations "
            "must be relative to the model's folder"
        )
    target = (folder / location).resolve()
    if not target.is_relative_to(folder):
        raise OnnxImportError(
            f"tensor {tensor!r} has external data at {location!r}, which resolves outside the "
            f"model's folder {str(folder)!r}; refused (never read)"
        )
    return target


def _resolve_external(
    model: onnx.ModelProto, folder: Path, allow_structure_only: bool, load_weights: bool
) -> None:
    """Check every external data reference, in place: turn initializers whose file is missing
    into graph inputs (when allowed), and with ``load_weights`` read the others into
    ``raw_data``. Every reference is checked before any is read."""
    missing: set[str] = set()
    present: list[tuple[onnx.TensorProto, Path, int, int | None]] = []
    for tensor, main_init in _tensors(model.graph, True):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        target = _inside(folder, info.get("location", ""), tensor.name)
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError as err:
            raise OnnxImportError(
                f"tensor {tensor.name!r} has a non-integer external data offset or length"
            ) from err
        if offset < 0 or (length is not None and length < 0):
            raise OnnxImportError(
                f"tensor {tensor.name!r} has a negative external data offset or length"
            )
        try:
            st = target.stat()
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            if not (allow_structure_only and main_init):
                rule = (
                    "the weights are needed here: allow_structure_only=False"
                    if main_init
                    else "only graph initializers may be structure-only"
                )
                raise OnnxImportError(
                    f"the external data file {info.get('location')!r} of tensor "
                    f"{tensor.name!r} is missing ({rule})"
                )
            missing.add(tensor.name)
            continue
        end = offset + (length or 0)
        if end > st.st_size:
            raise OnnxImportError(
                f"the external data file {info.get('location')!r} holds {st.st_size} bytes; "
                f"tensor {tensor.name!r} needs bytes {offset}..{end} (truncated file?)"
            )
        present.append((tensor, target, offset, length))
    if missing:
        _weights_to_inputs(model.graph, missing)
        _mark_weight_inputs(model, missing)
    if load_weights:
        for tensor, target, offset, length in present:
            _read_external(tensor, target, offset, length)


def _read_external(tensor: onnx.TensorProto, target: Path, offset: int, length: int | None) -> None:
    """Read one checked external tensor (inside the model's folder) into ``raw_data``."""
    try:
        with open(target, "rb") as fh:
            fh.seek(offset)
            raw = fh.read() if length is None else fh.read(length)
    except OSError as err:
        raise OnnxImportError(
            f"external data of tensor {tensor.name!r} cannot be read: {err.strerror or err}"
        ) from err
    tensor.raw_data = raw
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT


def _convert(model: onnx.ModelProto, version: int) -> onnx.ModelProto:
    from onnx import version_converter

    newest = onnx.defs.onnx_opset_version()
    try:
        return version_converter.convert_version(model, TARGET_OPSET)
    except (RuntimeError, ValueError, onnx.checker.ValidationError) as err:
        why = f"newer than this onnx knows ({newest})" if version > newest else "too old"
        raise OnnxImportError(
            f"opset {version} ({why}) cannot be converted to opset {TARGET_OPSET}: {_one_line(err)}"
        ) from err


class DefaultedDimensionWarning(UserWarning):
    """A symbolic input dimension that is neither named in ``symbols`` nor a batch axis was
    given the value 1 (a sequence length, an image size): the cost is that of a size-1 input."""


def _fix_input_dims(graph: onnx.GraphProto, batch: int, symbols: dict[str, int]) -> None:
    """Give every symbolic or unknown graph-input dimension a value, in place.

    A named symbol takes ``symbols[name]``, else ``batch`` when it occurs on axis 0 of some
    input, else 1; an unnamed unknown dimension takes ``batch`` on axis 0, else 1.
    """
    weights = {i.name for i in graph.initializer}
    inputs = [
        vi for vi in graph.input if vi.name not in weights and vi.type.HasField("tensor_type")
    ]
    seen: set[str] = set()
    on_batch_axis: set[str] = set()
    for vi in inputs:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            for axis, d in enumerate(t.shape.dim):
                if d.dim_param and not d.HasField("dim_value"):
                    seen.add(d.dim_param)
                    if axis == 0:
                        on_batch_axis.add(d.dim_param)
    unknown = sorted(set(symbols) - seen)
    if unknown:
        raise ConfigError(
            f"the model has no symbolic input dimension {unknown[0]!r}; its symbols are: "
            f"{', '.join(sorted(seen)) or '(none)'}",
            key="symbols",
        )
    defaulted: set[str] = set()
    from_batch: set[str] = set()
    batch_used = False
    for vi in inputs:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        for axis, d in enumerate(t.shape.dim):
            if d.HasField("dim_value"):
                continue
            batch_used = batch_used or (
                d.dim_param not in symbols and (d.dim_param in on_batch_axis or axis == 0)
            )
            sym = d.dim_param
            if sym in symbols:
                value = symbols[sym]
            elif (sym and sym in on_batch_axis) or (not sym and axis == 0):
                value = batch
                from_batch.add(f"{sym} (axis 0)" if sym else f"axis 0 of {vi.name!r}")
            else:
                value = 1
                defaulted.add(sym or f"axis {axis} of {vi.name!r}")
            d.dim_value = value  # the oneof drops dim_param
    if batch > 1 and not batch_used:  # it was silently ignored: the batch-1 numbers came out
        dims = {vi.name: vi.type.tensor_type.shape.dim for vi in inputs}
        shapes = "; ".join(
            f"{name} {[d.dim_value or d.dim_param or '?' for d in ds]}" for name, ds in dims.items()
        )
        raise ConfigError(
            f"batch {batch} given, but the model's inputs have no symbolic batch axis to set "
            f"({shapes}); export it with a dynamic batch axis, or with the batch you want",
            key="batch",
        )
    if defaulted:  # with several symbols, which one took the batch is worth saying
        took = f"; {', '.join(sorted(from_batch))} set to the batch, {batch}"
        warnings.warn(
            f"symbolic input dimension(s) {', '.join(sorted(defaulted))} set to 1"
            f"{took if from_batch else ''}",
            DefaultedDimensionWarning,
            stacklevel=2,
        )
