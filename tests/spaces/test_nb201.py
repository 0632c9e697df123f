"""The nb201 space: options, arch strings, canonical forms, ONNX and torch forms."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosearch
from cosearch.errors import ConfigError
from cosearch.spaces.nb201 import (
    DEFAULT_OPTIONS,
    EDGE_NAMES,
    OPS,
    NB201Space,
    nb201_onnx_from_torch,
)

SMALL = {"channels": 4, "cells_per_stage": 1, "input_size": 8, "batch": 2}
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"  # noqa: E501


def _run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    # Untrained He-normal networks reach logits of 1e3-1e4, so 1e-4 is relative to the largest.
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


def _randomize(module, rng: np.random.Generator) -> None:
    """Non-trivial BatchNorm statistics and biases, so the export is tested on real values."""
    import torch

    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, t.shape).astype(np.float32)))
            elif name.endswith(("bn.weight", "bn.bias", "running_mean", "classifier.bias")):
                t.copy_(torch.from_numpy(rng.normal(0.0, 0.5, t.shape).astype(np.float32)))


def _check_onnx_against_torch(space: NB201Space, params: dict, seed: int) -> None:
    import torch

    arch = space.build(params)
    model = arch.onnx()
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(seed)
    o = space.options
    x = rng.standard_normal((o["batch"], o["in_channels"], o["input_size"], o["input_size"]))
    x = x.astype(np.float32)
    module = arch.to_torch()
    assert not module.training
    with torch.no_grad():
        _assert_close(_run_onnx(model, x), module(torch.from_numpy(x)).numpy())
    # Trained-looking weights exported back into the same graph.
    _randomize(module, rng)
    exported = nb201_onnx_from_torch(module)
    onnx.checker.check_model(exported, full_check=True)
    with torch.no_grad():
        _assert_close(_run_onnx(exported, x), module(torch.from_numpy(x)).numpy())


# -- registry, options, parameters --------------------------------------------------------------
def test_registered_with_defaults() -> None:
    space = cosearch.get_space("nb201")
    assert isinstance(space, NB201Space)
    assert "nb201" in cosearch.list_spaces()
    assert space.options == DEFAULT_OPTIONS
    assert list(space.distributions()) == [f"net.{n}" for n in EDGE_NAMES]
    assert space.size == 5**6
    params = space.sample(np.random.default_rng(0))
    assert set(params) == {f"net.{n}" for n in EDGE_NAMES}
    assert all(v in OPS for v in params.values())


def test_option_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^The 'channels' option of nb201 must be an int in "
        r"\[1, 512\]\. Got 0 instead\.$",
    ):
        NB201Space(channels=0)
    with pytest.raises(ConfigError, match="multiple of 4"):
        NB201Space(input_size=30)
    with pytest.raises(ConfigError, match="cells_per_stage"):
        NB201Space(cells_per_stage=True)
    with pytest.raises(ConfigError, match="no option 'width'.*channels, cells_per_stage"):
        NB201Space(width=3)


def test_bad_params() -> None:
    space = NB201Space()
    params = space.from_string(BEST_C10)
    with pytest.raises(ConfigError, match="edge_1_0"):
        space.build({**params, "net.edge_1_0": "conv_5x5"})
    missing = dict(params)
    del missing["net.edge_3_2"]
    with pytest.raises(ConfigError, match="edge_3_2"):
        space.build(missing)


# -- arch strings -----------------------------------------------------------------------------
def test_string_round_trip() -> None:
    space = NB201Space()
    params = space.from_string(BEST_C10)
    assert params["net.edge_3_0"] == "skip_connect"
    assert params["net.edge_3_2"] == "nor_conv_1x1"
    assert space.to_string(params) == BEST_C10


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "3 node groups"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "3 node groups"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|none~1|none~2|", "node 2 needs 2"),
        ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end with"),
        ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+||", "3 node groups"),
        (None, "must be a str"),
    ],
)
def test_bad_strings(text: object, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        NB201Space().from_string(text)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


# -- canonical forms ------------------------------------------------------------------------------
ISOMORPHIC = [
    # nodes 1 and 2 swapped (node 2 does not read node 1)
    (
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    ),
    # a dead edge into node 2, whose value never reaches the output
    (
        "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    ),
    # a dead edge out of node 1, which nothing feeds (a zero node)
    (
        "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    ),
    # two cells whose output is disconnected from the input
    (
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|skip_connect~2|",
    ),
]
DIFFERENT = [
    # node 2 reads node 1: swapping them is not a relabelling
    (
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|",
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|",
    ),
    # one op differs on a live edge
    (
        "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
    ),
    # skip-collapsing is deliberately not merged (conv(skip(x)) vs conv(x))
    (
        "|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|",
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
    ),
]


@pytest.mark.parametrize("a, b", ISOMORPHIC)
def test_isomorphic_cells_share_digest_and_onnx(a: str, b: str) -> None:
    space = NB201Space(**SMALL)
    arch_a, arch_b = space.build(space.from_string(a)), space.build(space.from_string(b))
    assert space.canonical(space.from_string(a)) == space.canonical(space.from_string(b))
    assert arch_a.digest == arch_b.digest
    assert arch_a.onnx().SerializeToString() == arch_b.onnx().SerializeToString()
    assert arch_a.genotype != arch_b.genotype  # the genotype stays as given


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_different_cells_differ(a: str, b: str) -> None:
    space = NB201Space(**SMALL)
    arch_a, arch_b = space.build(space.from_string(a)), space.build(space.from_string(b))
    assert arch_a.digest != arch_b.digest
    assert arch_a.onnx().SerializeToString() != arch_b.onnx().SerializeToString()


def test_options_enter_the_digest() -> None:
    params = NB201Space().from_string(BEST_C10)
    digests = {
        NB201Space(**o).build(params).digest
        for o in ({}, {"channels": 8}, {"batch": 4}, {"num_classes": 100})
    }
    assert len(digests) == 4


def test_canonical_is_idempotent_and_valid() -> None:
    space = NB201Space()
    for ops in itertools.product(OPS, repeat=6):
        params = {f"net.{n}": op for n, op in zip(EDGE_NAMES, ops)}
        canon = space.canonical(params)
        assert space.canonical(canon) == canon
        assert space.build(canon).digest == space.build(params).digest


def test_zero_cell_outputs_zero() -> None:
    space = NB201Space(**SMALL)
    arch = space.build(space.from_string(ISOMORPHIC[3][0]))
    assert [n.op_type for n in arch.onnx().graph.node].count("Mul") == 3  # one per cell
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    logits = _run_onnx(arch.onnx(), x)
    assert np.allclose(logits, logits[0])  # the input no longer matters


# -- ONNX and torch -------------------------------------------------------------------------------
def test_onnx_names_and_shape() -> None:
    space = NB201Space()
    model = space.build(space.from_string(BEST_C10)).onnx()
    names = {n.name for n in model.graph.node}
    assert {
        "stem.conv",
        "stage1.cell0.edge_2_1.conv",
        "stage3.cell4.edge_3_2.bn",
        "reduce1.shortcut.pool",
        "classifier",
    } <= names
    assert model.opset_import[0].version == 17
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 32, 32]
    assert model.graph.output[0].name == "logits"


def test_torch_names_match_onnx_initializers() -> None:
    space = NB201Space(**SMALL)
    arch = space.build(space.from_string(BEST_C10))
    inits = {t.name for t in arch.onnx().graph.initializer}
    state = {k for k in arch.to_torch().state_dict() if not k.endswith("num_batches_tracked")}
    assert inits == state


def test_build_is_deterministic() -> None:
    a = NB201Space(**SMALL).build(NB201Space().from_string(BEST_C10)).onnx()
    b = NB201Space(**SMALL).build(NB201Space().from_string(BEST_C10)).onnx()
    assert a.SerializeToString() == b.SerializeToString()


@settings(max_examples=20, deadline=None)
@given(ops=st.tuples(*[st.sampled_from(OPS)] * 6), seed=st.integers(0, 2**16))
def test_random_cells_onnx_matches_torch(ops: tuple[str, ...], seed: int) -> None:
    space = NB201Space(**SMALL)
    _check_onnx_against_torch(space, {f"net.{n}": op for n, op in zip(EDGE_NAMES, ops)}, seed)


def test_default_options_onnx_matches_torch() -> None:
    space = NB201Space()
    _check_onnx_against_torch(space, space.from_string(BEST_C10), seed=1)


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, cosearch.spaces.nb201 as m; s = m.NB201Space(); "
        "s.build(s.sample(__import__('numpy').random.default_rng(0))).onnx(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
