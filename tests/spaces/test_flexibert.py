"""The flexibert space: options, canonical forms, ONNX and torch forms, layer extraction."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosearch
from cosearch.errors import ConfigError
from cosearch.hwmodels import extract_layers
from cosearch.hwmodels.layers import SUPPORTED_OPS
from cosearch.spaces.flexibert import (
    DEFAULT_OPTIONS,
    FIELDS,
    OPS,
    FlexiBERTSpace,
    flexibert_onnx_from_torch,
)

# Small enough to run fast; kernel 5 exceeds seq_len 4 (padding wider than the sequence), and
# heads 1, 2, 4 all divide hidden 4 and 8.
SMALL: dict[str, Any] = {
    "layers": 3,
    "seq_len": 4,
    "in_features": 3,
    "num_classes": 3,
    "batch": 2,
    "hidden_sizes": (4, 8),
    "heads": (1, 2, 4),
    "ffn_sizes": (4, 6),
    "conv_kernels": (1, 3, 5),
}
SMALL_SPACE = FlexiBERTSpace(**SMALL)


def _params(layers: list[dict]) -> dict:
    return {f"net.{k}_{i}": v for i, layer in enumerate(layers) for k, v in layer.items()}


def _layer(op: str, hidden: int = 4, heads: int = 1, ffn: int = 4, kernel: int = 1) -> dict:
    return {"op": op, "hidden": hidden, "heads": heads, "ffn": ffn, "kernel": kernel}


def _run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


def _randomize(module, rng: np.random.Generator) -> None:
    """Non-trivial biases and LayerNorm parameters, so the export is tested on real values."""
    import torch

    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("bias") or "norm" in name:
                t.copy_(torch.from_numpy(rng.normal(0.5, 0.5, t.shape).astype(np.float32)))


def _check_onnx_against_torch(space: FlexiBERTSpace, params: dict, seed: int) -> None:
    import torch

    arch = space.build(params)
    model = arch.onnx()
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(seed)
    o = space.options
    x = rng.standard_normal((o["batch"], o["seq_len"], o["in_features"])).astype(np.float32)
    module = arch.to_torch()
    assert not module.training
    with torch.no_grad():
        _assert_close(_run_onnx(model, x), module(torch.from_numpy(x)).numpy())
    _randomize(module, rng)
    exported = flexibert_onnx_from_torch(module)
    onnx.checker.check_model(exported, full_check=True)
    with torch.no_grad():
        _assert_close(_run_onnx(exported, x), module(torch.from_numpy(x)).numpy())


# -- registry, options, parameters --------------------------------------------------------------
def test_registered_with_defaults() -> None:
    space = cosearch.get_space("flexibert")
    assert isinstance(space, FlexiBERTSpace)
    assert "flexibert" in cosearch.list_spaces()
    assert space.options == DEFAULT_OPTIONS
    names = [f"net.{f}_{i}" for i in range(4) for f in FIELDS]
    assert list(space.distributions()) == names
    assert space.size == (3 * 2 * 2 * 3 * 2) ** 4
    params = space.sample(np.random.default_rng(0))
    assert set(params) == set(names)
    assert all(params[f"net.op_{i}"] in OPS for i in range(4))


def test_option_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^The 'layers' option of flexibert must be an int in \[1, 12\]\. Got 13 instead\.$",
    ):
        FlexiBERTSpace(layers=13)
    with pytest.raises(ConfigError, match=r"'seq_len' option .* Got True instead"):
        FlexiBERTSpace(seq_len=True)
    with pytest.raises(ConfigError, match="no option 'depth'; its options are: layers, seq_len"):
        FlexiBERTSpace(depth=3)
    with pytest.raises(
        ConfigError,
        match=r"^The 'hidden_sizes' option of flexibert must be a non-empty list of ints in "
        r"\[1, 8192\]\. Got \[\] instead\.$",
    ):
        FlexiBERTSpace(hidden_sizes=[])
    with pytest.raises(ConfigError, match="'ffn_sizes' option .* Got 512 instead"):
        FlexiBERTSpace(ffn_sizes=512)
    with pytest.raises(ConfigError, match=r"list of odd ints in \[1, 63\]\. Got \[3, 4\]"):
        FlexiBERTSpace(conv_kernels=[3, 4])
    with pytest.raises(ConfigError, match=r"divide every hidden size \[96, 128\].*64 does not"):
        FlexiBERTSpace(hidden_sizes=[96, 128], heads=[2, 64])
    with pytest.raises(ConfigError, match=r"'ops' option .* Got \['attention', 'lstm'\]"):
        FlexiBERTSpace(ops=["attention", "lstm"])


def test_choice_sets_are_normalized() -> None:
    # TOML gives lists; order and repeats do not matter.
    a = FlexiBERTSpace(hidden_sizes=[256, 128, 128], ops=["conv", "attention"])
    b = FlexiBERTSpace(hidden_sizes=(128, 256), ops=("attention", "conv"))
    assert a.options == b.options
    assert a.options["hidden_sizes"] == (128, 256)
    assert a.params["op_0"].choices == ("attention", "conv")
    params = a.sample(np.random.default_rng(1))
    assert a.build(params).digest == b.build(params).digest


def test_numbers_of_other_types_are_the_same_choice() -> None:
    # hidden_0 = 128.0 passed the check, then onnx() and to_torch() failed with a traceback,
    # and 128, 128.0 and numpy's 128 gave three digests
    space = FlexiBERTSpace()
    params = space.sample(np.random.default_rng(0))
    key = next(k for k in params if k.startswith("net.hidden_"))
    archs = [space.build({**params, key: kind(params[key])}) for kind in (int, float, np.int64)]
    assert len({a.digest for a in archs}) == 1
    checked = space.validate({**params, key: float(params[key])})
    assert type(checked[key.removeprefix("net.")]) is int
    archs[1].onnx()
    with pytest.raises(ConfigError, match="must be one of"):
        space.build({**params, key: True})


def test_bad_params() -> None:
    space = FlexiBERTSpace(**{**SMALL, "layers": 1})
    good = _params([_layer("attention")])
    with pytest.raises(ConfigError, match="heads_0.*must be one of \\[1, 2, 4\\]"):
        space.build({**good, "net.heads_0": 3})
    with pytest.raises(ConfigError, match="op_0"):
        space.build({**good, "net.op_0": "lstm"})
    missing = dict(good)
    del missing["net.kernel_0"]
    with pytest.raises(ConfigError, match="kernel_0"):
        space.build(missing)


# -- canonical forms ------------------------------------------------------------------------------
SAME = [
    # heads do not matter for conv and linear_mix layers
    (_layer("conv", heads=1, kernel=3), _layer("conv", heads=4, kernel=3)),
    (_layer("linear_mix", heads=2, kernel=5), _layer("linear_mix", heads=4, kernel=1)),
    # the kernel does not matter for attention layers
    (_layer("attention", heads=2, kernel=1), _layer("attention", heads=2, kernel=5)),
]
DIFFERENT = [
    (_layer("attention", heads=1), _layer("attention", heads=2)),
    (_layer("conv", kernel=3), _layer("conv", kernel=5)),
    (_layer("conv", kernel=1), _layer("linear_mix", kernel=1)),
    (_layer("attention", ffn=4), _layer("attention", ffn=6)),
    (_layer("attention", hidden=4), _layer("attention", hidden=8)),
]


@pytest.mark.parametrize("a, b", SAME)
def test_unused_parameters_share_digest_and_onnx(a: dict, b: dict) -> None:
    first = _layer("attention", hidden=8, heads=2)
    pa, pb = _params([first, a, first]), _params([first, b, first])
    arch_a, arch_b = SMALL_SPACE.build(pa), SMALL_SPACE.build(pb)
    assert SMALL_SPACE.canonical(pa) == SMALL_SPACE.canonical(pb)
    assert arch_a.digest == arch_b.digest
    assert arch_a.onnx().SerializeToString() == arch_b.onnx().SerializeToString()
    assert arch_a.genotype != arch_b.genotype  # the genotype stays as given


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_different_layers_differ(a: dict, b: dict) -> None:
    first = _layer("conv", hidden=8, kernel=3)
    arch_a = SMALL_SPACE.build(_params([first, a, first]))
    arch_b = SMALL_SPACE.build(_params([first, b, first]))
    assert arch_a.digest != arch_b.digest
    assert arch_a.onnx().SerializeToString() != arch_b.onnx().SerializeToString()


def test_canonical_is_idempotent_and_valid() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        params = SMALL_SPACE.sample(rng)
        canon = SMALL_SPACE.canonical(params)
        assert SMALL_SPACE.canonical(canon) == canon
        assert SMALL_SPACE.build(canon).digest == SMALL_SPACE.build(params).digest
        for i in range(SMALL["layers"]):
            if canon[f"net.op_{i}"] != "attention":
                assert canon[f"net.heads_{i}"] == 1  # the smallest choice
            if canon[f"net.op_{i}"] != "conv":
                assert canon[f"net.kernel_{i}"] == 1


def test_options_enter_the_digest() -> None:
    params = FlexiBERTSpace().sample(np.random.default_rng(0))
    digests = {
        FlexiBERTSpace(**o).build(params).digest
        for o in ({}, {"seq_len": 16}, {"batch": 4}, {"num_classes": 10}, {"in_features": 8})
    }
    assert len(digests) == 5


# -- ONNX and torch -------------------------------------------------------------------------------
def test_onnx_names_ops_and_shapes() -> None:
    space = FlexiBERTSpace()
    params = _params(
        [
            _layer("attention", hidden=128, heads=4, ffn=256, kernel=5),
            _layer("conv", hidden=256, heads=2, ffn=1024, kernel=9),
            _layer("linear_mix", hidden=256, heads=2, ffn=512, kernel=5),
            _layer("attention", hidden=128, heads=2, ffn=256, kernel=5),
        ]
    )
    model = space.build(params).onnx()
    names = {n.name for n in model.graph.node}
    assert {
        "embed.project",
        "layers.0.attn.scores",
        "layers.0.attn.softmax",
        "layers.1.proj",
        "layers.1.conv.depthwise",
        "layers.2.mix",
        "layers.3.proj",
        "layers.3.ffn.fc2",
        "head.mean",
    } <= names
    assert "layers.2.proj" not in names  # same hidden size: no projection
    assert {n.op_type for n in model.graph.node} <= SUPPORTED_OPS
    assert model.opset_import[0].version == 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 32, 64]
    assert model.graph.output[0].name == "logits"
    assert model.doc_string.startswith("flexibert attention(h=128,heads=4,ffn=256) | conv(")
    conv = next(n for n in model.graph.node if n.name == "layers.1.conv.depthwise")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["group"] == 256 and attrs["kernel_shape"] == [9] and attrs["pads"] == [4, 4]
    # every tensor's shape is static after inference
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for vi in inferred.graph.value_info:
        assert all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim), vi.name


def test_torch_names_match_onnx_initializers() -> None:
    arch = SMALL_SPACE.build(SMALL_SPACE.sample(np.random.default_rng(2)))
    inits = {t.name for t in arch.onnx().graph.initializer if not t.name.startswith("const.")}
    assert inits == set(arch.to_torch().state_dict())


def test_build_is_deterministic() -> None:
    params = FlexiBERTSpace(**SMALL).sample(np.random.default_rng(5))
    a = FlexiBERTSpace(**SMALL).build(params).onnx()
    b = FlexiBERTSpace(**SMALL).build(params).onnx()
    assert a.SerializeToString() == b.SerializeToString()


def test_export_rejects_other_modules() -> None:
    import torch

    with pytest.raises(TypeError, match="flexibert Architecture"):
        flexibert_onnx_from_torch(torch.nn.Linear(2, 2))


_LAYER_ST = st.fixed_dictionaries(
    {
        "op": st.sampled_from(OPS),
        "hidden": st.sampled_from(SMALL["hidden_sizes"]),
        "heads": st.sampled_from(SMALL["heads"]),
        "ffn": st.sampled_from(SMALL["ffn_sizes"]),
        "kernel": st.sampled_from(SMALL["conv_kernels"]),
    }
)


@settings(max_examples=15, deadline=None)
@given(layers=st.lists(_LAYER_ST, min_size=3, max_size=3), seed=st.integers(0, 2**16))
def test_random_networks_onnx_matches_torch(layers: list[dict], seed: int) -> None:
    _check_onnx_against_torch(SMALL_SPACE, _params(layers), seed)
    assert extract_layers(SMALL_SPACE.build(_params(layers)).onnx())


def test_kernel_wider_than_the_sequence() -> None:
    # kernel 5 on 4 tokens: the zero padding (2 each side) is wider than half the sequence
    layers = [_layer("conv", kernel=5), _layer("conv", hidden=8, kernel=5), _layer("linear_mix")]
    params = _params(layers)
    _check_onnx_against_torch(SMALL_SPACE, params, seed=0)


def test_default_options_onnx_matches_torch() -> None:
    space = FlexiBERTSpace()
    params = _params(
        [
            _layer("conv", hidden=128, heads=2, ffn=512, kernel=9),
            _layer("attention", hidden=256, heads=4, ffn=1024, kernel=5),
            _layer("linear_mix", hidden=256, heads=2, ffn=256, kernel=5),
            _layer("attention", hidden=128, heads=2, ffn=512, kernel=5),
        ]
    )
    _check_onnx_against_torch(space, params, seed=1)


# -- layer extraction -----------------------------------------------------------------------------
def test_extract_layers_macs_hand_checked() -> None:
    b, s, f = 2, 8, 4
    space = FlexiBERTSpace(
        layers=3,
        seq_len=s,
        in_features=f,
        num_classes=2,
        batch=b,
        hidden_sizes=(16, 32),
        heads=(2, 4),
        ffn_sizes=(32, 48, 64),
        conv_kernels=(3, 5),
    )
    params = _params(
        [
            _layer("attention", hidden=16, heads=2, ffn=32, kernel=3),
            _layer("conv", hidden=32, heads=2, ffn=64, kernel=3),
            _layer("linear_mix", hidden=32, heads=2, ffn=48, kernel=3),
        ]
    )
    layers = extract_layers(space.build(params).onnx())
    macs = {layer.name: (layer.kind, layer.macs) for layer in layers if layer.macs}
    rows = b * s  # tokens: every weight Gemm has b * s rows
    heads, d = 2, 8  # layer 0: 16 = 2 heads x 8
    want = {
        "embed.project": ("gemm", rows * f * 16),
        **{f"layers.0.attn.{n}": ("gemm", rows * 16 * 16) for n in ("query", "key", "value")},
        # QK^T: per (batch, head) an (s x d) @ (d x s) product; then probs (s x s) @ V (s x d)
        "layers.0.attn.scores": ("matmul", b * heads * s * s * d),
        "layers.0.attn.context": ("matmul", b * heads * s * s * d),
        "layers.0.attn.out": ("gemm", rows * 16 * 16),
        "layers.0.ffn.fc1": ("gemm", rows * 16 * 32),
        "layers.0.ffn.fc2": ("gemm", rows * 32 * 16),
        "layers.1.proj": ("gemm", rows * 16 * 32),
        # depthwise: one k-tap filter per channel and output position
        "layers.1.conv.depthwise": ("depthwise", b * 32 * s * 3),
        "layers.1.conv.pointwise": ("gemm", rows * 32 * 32),
        "layers.1.ffn.fc1": ("gemm", rows * 32 * 64),
        "layers.1.ffn.fc2": ("gemm", rows * 64 * 32),
        # token mixing: per batch an (s x s) @ (s x h) product
        "layers.2.mix": ("matmul", b * s * s * 32),
        "layers.2.ffn.fc1": ("gemm", rows * 32 * 48),
        "layers.2.ffn.fc2": ("gemm", rows * 48 * 32),
        "classifier": ("gemm", b * 32 * 2),
    }
    assert macs == want
    assert want["layers.0.attn.scores"][1] == 2048  # 2 x 2 x 8 x 8 x 8, by hand
    scores = next(layer for layer in layers if layer.name == "layers.0.attn.scores")
    assert (scores.n, scores.p, scores.c, scores.k) == (b * heads, s, d, s)
    kinds = {layer.kind for layer in layers}
    assert {"softmax", "norm", "eltwise", "pool", "data"} <= kinds


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, numpy, cosearch.spaces.flexibert as m; s = m.FlexiBERTSpace(); "
        "s.build(s.sample(numpy.random.default_rng(0))).onnx(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
