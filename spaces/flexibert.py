"""The ``flexibert`` space: heterogeneous transformer encoders, one op type per layer.

In the spirit of FlexiBERT (Tuli et al., "FlexiBERT: Are Current Transformer Architectures too
Homogeneous and Rigid?", JAIR 2023): every layer picks its token mixer (multi-head
self-attention, a depthwise-separable 1-D convolution, or a learned linear token mixing as in
FNet / MLP-Mixer), its hidden size, its number of attention heads, its feed-forward size and its
convolution kernel. Layers are post-LN (as BERT); a Gemm projection joins layers of different
hidden sizes, on the residual path too. The network is float in, float out: ``input`` is
already-embedded features ``[batch, seq_len, in_features]``, projected to the first hidden size
with a learned position embedding; the head mean-pools over the sequence and classifies.
See :mod:`cosearch.spaces._flexibert_onnx` for the exact graph.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cosearch.errors import ConfigError
from cosearch.spaces._base import Architecture, NetworkSpace, genotype_digest, register_space
from cosearch.spaces._flexibert_onnx import OPS, LayerSpec, build_flexibert_onnx
from cosearch.spaces._params import Param

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = [
    "OPS",
    "DEFAULT_OPTIONS",
    "FIELDS",
    "FlexiBERTSpace",
    "LayerSpec",
    "flexibert_onnx_from_torch",
]

#: per-layer parameter fields: ``net.<field>_<i>`` for layer i (0-based)
FIELDS = ("op", "hidden", "heads", "ffn", "kernel")

DEFAULT_OPTIONS: dict[str, Any] = {
    "layers": 4,
    "seq_len": 32,
    "in_features": 64,
    "num_classes": 2,
    "batch": 1,
    "ops": OPS,
    "hidden_sizes": (128, 256),
    "heads": (2, 4),
    "ffn_sizes": (256, 512, 1024),
    "conv_kernels": (5, 9),
}
_INT_LIMITS: dict[str, tuple[int, int]] = {
    "layers": (1, 12),
    "seq_len": (1, 2048),
    "in_features": (1, 8192),
    "num_classes": (1, 100_000),
    "batch": (1, 4096),
}
# Choice sets: (low, high) of every entry. Kernels must be odd so "same" zero padding of
# kernel // 2 on both sides keeps the sequence length.
_SET_LIMITS: dict[str, tuple[int, int]] = {
    "hidden_sizes": (1, 8192),
    "heads": (1, 256),
    "ffn_sizes": (1, 32768),
    "conv_kernels": (1, 63),
}
_FIELD_OPTION = {
    "hidden": "hidden_sizes",
    "heads": "heads",
    "ffn": "ffn_sizes",
    "kernel": "conv_kernels",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ConfigError(
            f"flexibert has no option {unknown[0]!r}; its options are: "
            f"{', '.join(DEFAULT_OPTIONS)}",
            key=unknown[0],
        )
    out = dict(DEFAULT_OPTIONS)
    for name, value in options.items():
        if name in _INT_LIMITS:
            low, high = _INT_LIMITS[name]
            if not (_is_int(value) and low <= int(value) <= high):
                raise ConfigError(
                    f"The {name!r} option of flexibert must be an int in [{low}, {high}]. "
                    f"Got {value!r} instead.",
                    key=name,
                )
            out[name] = int(value)
            continue
        items = list(value) if isinstance(value, (list, tuple)) else None
        if name == "ops":
            if not items or any(v not in OPS for v in items):
                raise ConfigError(
                    f"The 'ops' option of flexibert must be a non-empty list of {list(OPS)}. "
                    f"Got {value!r} instead.",
                    key=name,
                )
            out[name] = tuple(op for op in OPS if op in items)  # OPS order, no repeats
            continue
        low, high = _SET_LIMITS[name]
        odd = name == "conv_kernels"
        if not items or not all(
            _is_int(v) and low <= int(v) <= high and (not odd or int(v) % 2 == 1) for v in items
        ):
            rule = f"a non-empty list of {'odd ' if odd else ''}ints in [{low}, {high}]"
            raise ConfigError(
                f"The {name!r} option of flexibert must be {rule}. Got {value!r} instead.",
                key=name,
            )
        # Sorted and without repeats: the first entry is the canonical filler (see canonical).
        out[name] = tuple(sorted({int(v) for v in items}))
    bad = [n for n in out["heads"] if any(h % n for h in out["hidden_sizes"])]
    if bad:
        raise ConfigError(
            f"The 'heads' option of flexibert must hold ints that divide every hidden size "
            f"{list(out['hidden_sizes'])}. Got {list(out['heads'])} instead ({bad[0]} does not).",
            key="heads",
        )
    return out


@register_space("flexibert")
class FlexiBERTSpace(NetworkSpace):
    """Heterogeneous transformer encoders.

    Options: ``layers`` (4, in [1, 12]), ``seq_len`` (32), ``in_features`` (64, the width of
    the already-embedded input features), ``num_classes`` (2), ``batch`` (1); and the choice
    sets, lists of ints: ``hidden_sizes`` ((128, 256)), ``heads`` ((2, 4); each must divide
    every hidden size, so every sample is valid), ``ffn_sizes`` ((256, 512, 1024)),
    ``conv_kernels`` ((5, 9), odd), and ``ops`` (all of :data:`OPS`). Choice sets are stored
    sorted without repeats. Raises ConfigError on an unknown option or a bad value.

    Parameters, for each layer i: ``net.op_i`` (one of ``ops``), ``net.hidden_i``,
    ``net.heads_i`` (attention heads; ignored by conv and linear_mix layers), ``net.ffn_i``,
    ``net.kernel_i`` (conv kernel; ignored by attention and linear_mix layers).
    """

    def __init__(self, **options: Any) -> None:
        opts = _check_options(options)
        super().__init__(**opts)
        self.params: dict[str, Param] = {}
        helps = {
            "op": "token mixer of layer {i}",
            "hidden": "hidden size of layer {i}",
            "heads": "attention heads of layer {i} (attention layers only)",
            "ffn": "feed-forward inner size of layer {i}",
            "kernel": "depthwise conv kernel of layer {i} (conv layers only)",
        }
        for i in range(opts["layers"]):
            for field in FIELDS:
                choices = opts["ops"] if field == "op" else opts[_FIELD_OPTION[field]]
                name = f"{field}_{i}"
                self.params[name] = Param.categorical(name, choices, help=helps[field].format(i=i))
        self._opt_items = {f"opt.{k}": v for k, v in opts.items()}

    # -- canonical form and building ------------------------------------------------------------
    def _layers(self, params: Mapping[str, Any]) -> tuple[LayerSpec, ...]:
        """The canonical layer list of ``params`` (ConfigError when invalid)."""
        return self._layers_of(self.validate(params))

    def _layers_of(self, values: Mapping[str, Any]) -> tuple[LayerSpec, ...]:
        """The canonical layer list of validated ``{name: value}`` (no prefix)."""
        heads0, kernel0 = self.options["heads"][0], self.options["conv_kernels"][0]
        specs = []
        for i in range(self.options["layers"]):
            op = values[f"op_{i}"]
            specs.append(
                LayerSpec(
                    op=op,
                    hidden=values[f"hidden_{i}"],
                    heads=values[f"heads_{i}"] if op == "attention" else heads0,
                    ffn=values[f"ffn_{i}"],
                    kernel=values[f"kernel_{i}"] if op == "conv" else kernel0,
                )
            )
        return tuple(specs)

    @staticmethod
    def _as_params(layers: tuple[LayerSpec, ...]) -> dict[str, Any]:
        return {
            f"net.{field}_{i}": getattr(spec, field)
            for i, spec in enumerate(layers)
            for field in FIELDS
        }

    def canonical(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical ``{"net.<field>_<i>": value}`` of ``params``; a valid parameter dict.

        Parameters a layer's op does not read are set to a fixed value, the smallest of their
        choice set: ``heads_i`` unless ``op_i`` is ``attention``, ``kernel_i`` unless it is
        ``conv``. Nothing else is merged: other equal functions (e.g. a linear_mix layer whose
        matrix is the identity) are not detected, since the weights are not part of the
        genotype. Raises ConfigError when ``params`` is invalid.
        """
        return self._as_params(self._layers(params))

    def build(self, params: Mapping[str, Any]) -> Architecture:
        """The Architecture for ``params``; ONNX and torch are built lazily from the canonical
        layer list, with weights seeded by the digest. The digest covers the canonical
        parameters and every option (choice sets included, as for every space).
        Raises ConfigError when ``params`` is invalid.
        """
        values = self.validate(params)
        layers = self._layers_of(values)
        canonical = self._as_params(layers)
        digest = genotype_digest("flexibert", {**canonical, **self._opt_items})
        options = dict(self.options)
        seed = int(digest[:16], 16)
        doc = "flexibert " + _describe_layers(layers)

        def onnx_builder() -> onnx.ModelProto:
            return build_flexibert_onnx(layers, options, seed=seed, doc=doc)[0]

        def torch_builder() -> torch.nn.Module:
            return _torch_module(layers, options, canonical, seed)

        return Architecture(
            space="flexibert",
            genotype={f"net.{k}": v for k, v in values.items()},
            digest=digest,
            _onnx_builder=onnx_builder,
            _torch_builder=torch_builder,
        )


def _describe_layers(layers: tuple[LayerSpec, ...]) -> str:
    """A one-line summary, e.g. ``attention(h=128,heads=2,ffn=256) | conv(h=256,k=5,ffn=512)``."""
    parts = []
    for spec in layers:
        extra = {"attention": f",heads={spec.heads}", "conv": f",k={spec.kernel}"}.get(spec.op, "")
        parts.append(f"{spec.op}(h={spec.hidden}{extra},ffn={spec.ffn})")
    return " | ".join(parts)


def _torch_module(
    layers: tuple[LayerSpec, ...], options: dict[str, Any], canonical: dict[str, Any], seed: int
) -> torch.nn.Module:
    import torch

    from cosearch.spaces._flexibert_torch import FlexiBERTNet

    module = FlexiBERTNet(layers, options, canonical)
    _, arrays = build_flexibert_onnx(layers, options, seed=seed)
    state = {k: torch.from_numpy(a.copy()) for k, a in arrays.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:  # the two builders disagree on names: a bug, not user input
        raise RuntimeError(
            f"flexibert torch/ONNX names differ: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return module.eval()


def flexibert_onnx_from_torch(module: torch.nn.Module) -> onnx.ModelProto:
    """The ONNX graph of a flexibert torch module (from ``arch.to_torch()``) with its weights.

    Raises TypeError when ``module`` was not built by the flexibert space.
    """
    options = getattr(module, "flexibert_options", None)
    genotype = getattr(module, "flexibert_genotype", None)
    if not isinstance(options, dict) or not isinstance(genotype, dict):
        raise TypeError(
            "flexibert_onnx_from_torch takes a module from a flexibert Architecture's to_torch()"
        )
    layers = FlexiBERTSpace(**options)._layers(genotype)
    weights = {k: v.detach().cpu().float().numpy() for k, v in module.state_dict().items()}
    return build_flexibert_onnx(
        layers, options, weights=weights, doc="flexibert " + _describe_layers(layers)
    )[0]
