"""The Once-for-All MobileNetV3 space (``ofa_mbv3``): kernel, expand ratio, depth, resolution.

Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
ICLR 2020. Searchable: per block (20 slots, 4 per stage) the depthwise kernel size ``ks_i`` in
{3, 5, 7} and expand ratio ``e_i`` in {3, 4, 6}; per stage the depth ``d_s`` in {2, 3, 4};
and the input resolution ``r`` (OFA's ImageNet choices 128, 132, ..., 224 by default). The
network skeleton is described in :mod:`cosearch.spaces._ofa_plan`.

The parameters match the HELP latency table ``ofa_mbv3/ofa_latency.csv`` (columns ``ks``,
``e``: 20 values joined by ``-``; ``d``: 5 values; ``r``: an int), which :meth:`from_row`
reads; :meth:`from_string` reads the one-line form ``ks=7-5-...;e=6-4-...;d=2-2-2-2-3;r=204``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cosearch.errors import ConfigError
from cosearch.spaces._base import Architecture, NetworkSpace, genotype_digest, register_space
from cosearch.spaces._ofa_onnx import build_ofa_onnx, initializer_arrays
from cosearch.spaces._ofa_plan import (
    D_CHOICES,
    E_CHOICES,
    KS_CHOICES,
    N_BLOCKS,
    N_STAGES,
    NetPlan,
    active_blocks,
    net_plan,
)
from cosearch.spaces._params import Param

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "KS_CHOICES",
    "E_CHOICES",
    "D_CHOICES",
    "DEFAULT_RESOLUTIONS",
    "DEFAULT_OPTIONS",
    "PARAM_NAMES",
    "INACTIVE_KS",
    "INACTIVE_E",
    "OFAMBv3Space",
    "ofa_mbv3_onnx_from_torch",
]

#: OFA's ImageNet resolutions: 128 to 224 in steps of 4
DEFAULT_RESOLUTIONS = tuple(range(128, 225, 4))
#: the largest resolution an option may allow
MAX_RESOLUTION = 2048

DEFAULT_OPTIONS: dict[str, Any] = {
    "width_mult": 1.0,
    "num_classes": 1000,
    "in_channels": 3,
    "batch": 1,
    "stem_stride": 2,
    "resolutions": list(DEFAULT_RESOLUTIONS),
}
_INT_LIMITS: dict[str, tuple[int, int]] = {
    "num_classes": (1, 100_000),
    "in_channels": (1, 64),
    "batch": (1, 4096),
    "stem_stride": (1, 2),
}
_WIDTH_LIMITS = (0.1, 4.0)
#: options that only narrow the search range (not the network): left out of the digest
_SEARCH_ONLY_OPTIONS = frozenset({"resolutions"})

KS_NAMES = tuple(f"ks_{i}" for i in range(N_BLOCKS))
E_NAMES = tuple(f"e_{i}" for i in range(N_BLOCKS))
D_NAMES = tuple(f"d_{s}" for s in range(N_STAGES))
#: parameter names, in the order of the HELP table's columns
PARAM_NAMES = (*KS_NAMES, *E_NAMES, *D_NAMES, "r")
#: what the canonical form writes into the ks/e of blocks beyond their stage's depth
INACTIVE_KS = 3
INACTIVE_E = 3
_ROW_FIELDS = {"ks": N_BLOCKS, "e": N_BLOCKS, "d": N_STAGES}


# -- options --------------------------------------------------------------------------------------
def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ConfigError(
            f"ofa_mbv3 has no option {unknown[0]!r}; its options are: {', '.join(DEFAULT_OPTIONS)}",
            key=unknown[0],
        )
    out = dict(DEFAULT_OPTIONS)
    for name, value in options.items():
        if name == "width_mult":
            out[name] = _check_width(value)
        elif name == "resolutions":
            out[name] = _check_resolutions(value)
        else:
            low, high = _INT_LIMITS[name]
            if not (_is_int(value) and low <= int(value) <= high):
                raise ConfigError(
                    f"The {name!r} option of ofa_mbv3 must be an int in [{low}, {high}]. "
                    f"Got {value!r} instead.",
                    key=name,
                )
            out[name] = int(value)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_width(value: Any) -> float:
    low, high = _WIDTH_LIMITS
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and low <= float(value) <= high):
        raise ConfigError(
            f"The 'width_mult' option of ofa_mbv3 must be a float in [{low}, {high}]. "
            f"Got {value!r} instead.",
            key="width_mult",
        )
    return float(value)


def _check_resolutions(value: Any) -> list[int]:
    ok = isinstance(value, (list, tuple)) and len(value) > 0
    ok = ok and all(_is_int(v) and 1 <= int(v) <= MAX_RESOLUTION for v in value)
    if not ok:
        raise ConfigError(
            f"The 'resolutions' option of ofa_mbv3 must be a non-empty list of ints in "
            f"[1, {MAX_RESOLUTION}]. Got {value!r} instead.",
            key="resolutions",
        )
    return sorted({int(v) for v in value})


def _resolution_param(resolutions: Sequence[int]) -> Param:
    # An evenly spaced set stays an ordered int range (TPE and GP samplers model its order);
    # anything else is a categorical.
    help = "input resolution (H = W, pixels)"
    limits = (1, MAX_RESOLUTION)
    lo, hi = resolutions[0], resolutions[-1]
    if len(resolutions) == 1:
        return Param.integer("r", lo, hi, limits=limits, help=help)
    step = resolutions[1] - resolutions[0]
    if list(resolutions) == list(range(lo, hi + 1, step)):
        return Param.integer("r", lo, hi, step=step if step > 1 else None, limits=limits, help=help)
    return Param.categorical("r", resolutions, help=help)


# -- the HELP table's row format ---------------------------------------------------------------
def _row_ints(row: Mapping[str, Any], key: str, n: int) -> list[int]:
    rule = f"{n} ints joined by '-'" if n > 1 else "an int"
    if key not in row:
        raise ConfigError(f"ofa_mbv3 row lacks the field {key!r} ({rule})", key=key)
    value = row[key]
    if isinstance(value, str):
        parts: Sequence[Any] = value.strip().split("-")
    elif isinstance(value, (list, tuple)):
        parts = value
    else:
        parts = [value]
    out = []
    for part in parts:
        if _is_int(part):
            out.append(int(part))
        elif isinstance(part, str) and part.strip().isdigit():
            out.append(int(part))
        else:
            out = []
            break
    if len(out) != n:
        raise ConfigError(f"ofa_mbv3 row field {key!r} must be {rule}; got {value!r}", key=key)
    return out


# -- the space -----------------------------------------------------------------------------------
@register_space("ofa_mbv3")
class OFAMBv3Space(NetworkSpace):
    """The Once-for-All MobileNetV3 space.

    Options: ``width_mult`` (1.0; channel widths are scaled, then rounded to multiples of 8),
    ``num_classes`` (1000), ``in_channels`` (3), ``batch`` (1), ``stem_stride`` (2; 1 keeps
    the first conv at full resolution, for tiny inputs), ``resolutions`` (the allowed ``r``,
    default 128-224 step 4). Any resolution >= 1 gives valid shapes: every conv pads k // 2,
    so a stride-2 layer maps H to ceil(H / 2) and never below 1; with the default stem the
    network downsamples 32x (16x with ``stem_stride=1``), so inputs up to 32 (16) pixels reach
    the head as 1x1 maps. For 8x8 digits: ``width_mult=0.25, in_channels=1, num_classes=10,
    stem_stride=1, resolutions=[8]``. Raises ConfigError on an unknown option or a bad value.

    Parameters: ``net.ks_0`` ... ``net.ks_19`` (3/5/7), ``net.e_0`` ... ``net.e_19`` (3/4/6),
    ``net.d_0`` ... ``net.d_4`` (2-4) and ``net.r``; block ``i`` belongs to stage ``i // 4`` and
    is active when ``i % 4 < d_{i // 4}``.
    """

    def __init__(self, **options: Any) -> None:
        opts = _check_options(options)
        super().__init__(**opts)
        params: dict[str, Param] = {}
        for i, name in enumerate(KS_NAMES):
            params[name] = Param.integer(
                name, 3, 7, step=2, limits=(3, 7), help=f"depthwise kernel size of block {i}"
            )
        for i, name in enumerate(E_NAMES):
            params[name] = Param.categorical(name, E_CHOICES, help=f"expand ratio of block {i}")
        for s, name in enumerate(D_NAMES):
            params[name] = Param.integer(
                name, 2, 4, limits=(2, 4), help=f"number of blocks in stage {s}"
            )
        params["r"] = _resolution_param(opts["resolutions"])
        self.params = params
        self._opt_items = {f"opt.{k}": v for k, v in opts.items() if k not in _SEARCH_ONLY_OPTIONS}

    # -- values -------------------------------------------------------------------------------
    def _values(self, params: Mapping[str, Any]) -> dict[str, int]:
        # int(): categorical checks accept 4.0 for 4, which would change the digest's JSON
        return {k: int(v) for k, v in self.validate(params).items()}

    @staticmethod
    def _canonical_values(values: Mapping[str, int]) -> dict[str, int]:
        out = dict(values)
        live = set(active_blocks([values[n] for n in D_NAMES]))
        for i in range(N_BLOCKS):
            if i not in live:
                out[KS_NAMES[i]] = INACTIVE_KS
                out[E_NAMES[i]] = INACTIVE_E
        return out

    def plan(self, params: Mapping[str, Any]) -> NetPlan:
        """The layer plan (every block's widths, kernel, stride) of ``params``.

        Raises ConfigError when ``params`` is invalid.
        """
        return self._plan(self._values(params))

    def _plan(self, values: Mapping[str, int]) -> NetPlan:
        return _plan_for(values, self.options)

    # -- strings and table rows ---------------------------------------------------------------
    def from_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``{"net.ks_0": ..., "net.r": ...}`` from a row of the HELP OFA table.

        ``row`` needs the keys ``ks`` and ``e`` (20 ints), ``d`` (5 ints) and ``r`` (one int);
        each may be the table's ``-``-joined string or a sequence of ints (OFA's own config
        dicts, whose ``r`` is a one-element list, work too). Other keys are ignored. Raises
        ConfigError when a field is missing or malformed, or a value is outside this space.
        """
        if not isinstance(row, Mapping):
            raise ConfigError(
                f"ofa_mbv3 row must be a mapping with keys ks, e, d, r; got {type(row).__name__}"
            )
        params: dict[str, Any] = {}
        for key, n in _ROW_FIELDS.items():
            for i, v in enumerate(_row_ints(row, key, n)):
                params[f"net.{key}_{i}"] = v
        params["net.r"] = _row_ints(row, "r", 1)[0]
        self.validate(params)
        return params

    def to_row(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``{"ks": "7-5-...", "e": "6-4-...", "d": "2-2-2-2-3", "r": 204}``: the HELP table's
        encoding of ``params`` as given (not canonicalized). Raises ConfigError when invalid."""
        v = self._values(params)
        row: dict[str, Any] = {
            key: "-".join(str(v[f"{key}_{i}"]) for i in range(n)) for key, n in _ROW_FIELDS.items()
        }
        row["r"] = v["r"]
        return row

    def from_string(self, text: str) -> dict[str, Any]:
        """Params from ``"ks=<20 ints>;e=<20 ints>;d=<5 ints>;r=<int>"`` (ints joined by ``-``;
        the four fields in any order). Raises ConfigError naming the problem when malformed."""
        if not isinstance(text, str):
            raise ConfigError(
                f"ofa_mbv3 string must be a str like 'ks=3-5-...;e=...;d=...;r=224'; "
                f"got {type(text).__name__}"
            )
        row: dict[str, str] = {}
        for item in text.strip().split(";"):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or key not in (*_ROW_FIELDS, "r"):
                raise ConfigError(
                    f"ofa_mbv3 string {text!r}: expected fields ks=, e=, d=, r= joined by ';'; "
                    f"got {item!r}"
                )
            if key in row:
                raise ConfigError(f"ofa_mbv3 string {text!r}: field {key!r} given twice")
            row[key] = value
        return self.from_row(row)

    def to_string(self, params: Mapping[str, Any]) -> str:
        """The one-line form of ``params`` (inverse of :meth:`from_string`)."""
        return ";".join(f"{k}={v}" for k, v in self.to_row(params).items())

    # -- canonical form and building ------------------------------------------------------------
    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical ``{"net.*": value}`` of ``params``; itself a valid parameter dict.

        Blocks beyond their stage's depth are not computed, so their ``ks_i``/``e_i`` become
        :data:`INACTIVE_KS`/:data:`INACTIVE_E`; everything else is kept. No other candidates
        coincide: widths are multiples of 8, so every expand ratio gives a distinct width.
        Raises ConfigError when ``params`` is invalid.
        """
        canon = self._canonical_values(self._values(params))
        return {f"net.{k}": v for k, v in canon.items()}

    def build(self, params: Mapping[str, Any]) -> Architecture:
        """The Architecture for ``params``; ONNX and torch are built lazily from the canonical
        form, with weights seeded by the digest. The digest covers the canonical parameters and
        every option except ``resolutions`` (which narrows the search, not the network).
        Raises ConfigError when ``params`` is invalid.
        """
        values = self._values(params)
        canon = self._canonical_values(values)
        canonical = {f"net.{k}": v for k, v in canon.items()}
        digest = genotype_digest("ofa_mbv3", {**canonical, **self._opt_items})
        options = dict(self.options)
        seed = int(digest[:16], 16)
        resolution = canon["r"]
        space = self

        def onnx_builder() -> onnx.ModelProto:
            plan = _plan_for(canon, options)
            doc = "ofa_mbv3 " + space.to_string(canonical)
            return build_ofa_onnx(
                plan, resolution=resolution, batch=options["batch"], seed=seed, doc=doc
            )

        def torch_builder() -> torch.nn.Module:
            return _torch_module(_plan_for(canon, options), options, canonical, seed, resolution)

        return Architecture(
            space="ofa_mbv3",
            genotype={f"net.{k}": v for k, v in values.items()},
            digest=digest,
            _onnx_builder=onnx_builder,
            _torch_builder=torch_builder,
        )


def _plan_for(values: Mapping[str, int], options: Mapping[str, Any]) -> NetPlan:
    return net_plan(
        [values[n] for n in KS_NAMES],
        [values[n] for n in E_NAMES],
        [values[n] for n in D_NAMES],
        width_mult=options["width_mult"],
        in_channels=options["in_channels"],
        num_classes=options["num_classes"],
        stem_stride=options["stem_stride"],
    )


def _torch_module(
    plan: NetPlan,
    options: dict[str, Any],
    canonical: dict[str, Any],
    seed: int,
    resolution: int,
) -> torch.nn.Module:
    import torch

    from cosearch.spaces._ofa_torch import OFAMBv3Net

    module = OFAMBv3Net(plan, options, canonical)
    model = build_ofa_onnx(plan, resolution=resolution, batch=options["batch"], seed=seed)
    state = {k: torch.from_numpy(a) for k, a in initializer_arrays(model).items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:  # the two builders disagree on names: a bug, not user input
        raise RuntimeError(
            f"ofa_mbv3 torch/ONNX names differ: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return module.eval()


def ofa_mbv3_onnx_from_torch(module: torch.nn.Module) -> onnx.ModelProto:
    """The ONNX graph of an ofa_mbv3 torch module (from ``arch.to_torch()``) with its weights.

    BatchNorm is exported in inference form (running statistics). The module must carry
    ``ofa_options`` (the space's options) and ``ofa_genotype`` (its ``net.*`` parameters), as
    modules from ``to_torch()`` do. Raises TypeError when it does not, and ValueError when its
    state_dict does not fit the graph of that genotype.
    """
    options = getattr(module, "ofa_options", None)
    genotype = getattr(module, "ofa_genotype", None)
    if not isinstance(options, dict) or not isinstance(genotype, dict):
        raise TypeError(
            "ofa_mbv3_onnx_from_torch takes a module from an ofa_mbv3 Architecture's to_torch()"
        )
    space = OFAMBv3Space(**options)
    canonical = space.canonical(genotype)
    values = {k.removeprefix("net."): v for k, v in canonical.items()}
    weights = {
        k: v.detach().cpu().float().numpy()
        for k, v in module.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    return build_ofa_onnx(
        space._plan(values),
        resolution=values["r"],
        batch=options["batch"],
        weights=weights,
        doc="ofa_mbv3 " + space.to_string(canonical),
    )
