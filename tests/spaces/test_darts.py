"""The darts space: options, genotype strings, canonical forms, ONNX and torch forms."""

from __future__ import annotations

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
from cosearch.hwmodels import extract_layers
from cosearch.spaces.darts import (
    DARTS_V2,
    DEFAULT_OPTIONS,
    OPS,
    PARAM_NAMES,
    DartsSpace,
    darts_onnx_from_torch,
)

SMALL = {"channels": 2, "layers": 4, "input_size": 8, "batch": 2, "stem_multiplier": 1}
# The paper code's repr of DARTS_V2 (genotypes.py), pasted as published.
DARTS_V2_REPR = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def _cells(normal: str, reduce: str) -> str:
    return f"normal=[{normal}] reduce=[{reduce}]"


def _run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    # Untrained He-normal networks reach large logits, so 1e-4 is relative to the largest.
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
            elif name.endswith(("running_mean", "classifier.bias")) or ".bn" in name:
                t.copy_(torch.from_numpy(rng.normal(0.0, 0.5, t.shape).astype(np.float32)))


def _check_onnx_against_torch(space: DartsSpace, params: dict, seed: int) -> None:
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
    _randomize(module, rng)  # trained-looking weights exported back into the same graph
    exported = darts_onnx_from_torch(module)
    onnx.checker.check_model(exported, full_check=True)
    with torch.no_grad():
        _assert_close(_run_onnx(exported, x), module(torch.from_numpy(x)).numpy())


# -- registry, options, parameters --------------------------------------------------------------
def test_registered_with_defaults() -> None:
    space = cosearch.get_space("darts")
    assert isinstance(space, DartsSpace)
    assert "darts" in cosearch.list_spaces()
    assert space.options == DEFAULT_OPTIONS
    assert list(space.distributions()) == [f"net.{n}" for n in PARAM_NAMES]
    assert len(PARAM_NAMES) == 32
    assert space.params["normal_node0_in1"].choices == (0, 1)
    assert space.params["reduce_node3_in0"].choices == (0, 1, 2, 3, 4)
    assert space.params["reduce_node2_op1"].choices == OPS
    assert "none" not in OPS and len(OPS) == 7
    assert space.size == pytest.approx((7**8 * (2 * 3 * 4 * 5) ** 2) ** 2)  # ~6.9e21
    params = space.sample(np.random.default_rng(0))
    assert set(params) == {f"net.{n}" for n in PARAM_NAMES}


def test_option_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^The 'channels' option of darts must be an int in \[1, 512\]\. Got 0 instead\.$",
    ):
        DartsSpace(channels=0)
    with pytest.raises(ConfigError, match="'input_size'.*multiple of 4. Got 30"):
        DartsSpace(input_size=30)
    with pytest.raises(ConfigError, match="'layers'"):
        DartsSpace(layers=True)
    with pytest.raises(ConfigError, match="'stem_multiplier'.*Got 2.5"):
        DartsSpace(stem_multiplier=2.5)
    with pytest.raises(ConfigError, match="no option 'cells'.*channels, layers, num_classes"):
        DartsSpace(cells=3)


def test_bad_params() -> None:
    space = DartsSpace()
    params = space.from_string(DARTS_V2)
    with pytest.raises(ConfigError, match="normal_node0_op0"):
        space.build({**params, "net.normal_node0_op0": "none"})
    with pytest.raises(ConfigError, match="reduce_node1_in0"):
        space.build({**params, "net.reduce_node1_in0": 4})  # node 1 reads 0..2
    missing = dict(params)
    del missing["net.reduce_node3_in1"]
    with pytest.raises(ConfigError, match="reduce_node3_in1"):
        space.build(missing)


# -- genotype strings -----------------------------------------------------------------------------
def test_darts_v2_parses_and_round_trips() -> None:
    space = DartsSpace()
    params = space.from_string(DARTS_V2)
    assert params["net.normal_node3_op1"] == "dil_conv_3x3"
    assert params["net.normal_node3_in1"] == 2
    assert params["net.reduce_node1_in0"] == 2
    assert space.to_string(params) == DARTS_V2
    assert space.from_string(DARTS_V2_REPR) == params
    assert space.from_string(DARTS_V2.replace(" reduce", ", reduce").replace(",(", ", (")) == params


def test_random_strings_round_trip() -> None:
    space = DartsSpace()
    rng = np.random.default_rng(3)
    for _ in range(20):
        params = space.sample(rng)
        assert space.from_string(space.to_string(params)) == params


_V2_NORMAL = DARTS_V2.split(" ")[0][len("normal=") :]


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "the 'normal' list is missing"),
        (f"normal={_V2_NORMAL}", "the 'reduce' list is missing"),
        (f"normal={_V2_NORMAL} reduce=[(max_pool_3x3,0)]", "reduce needs 8 .* got 1"),
        (DARTS_V2.replace("dil_conv_3x3", "none"), "unknown op 'none'"),
        (DARTS_V2.replace("(max_pool_3x3,1)]", "(max_pool_3x3,6)]"), "node 3 reads input 6"),
        (DARTS_V2.replace("(sep_conv_3x3,1)", "(sep_conv_3x3,2)", 1), "node 0 reads input 2"),
        (DARTS_V2.replace("normal=", "normal = [").replace("] reduce", "]] reduce"), "expected"),
        (DARTS_V2 + " extra=[1]", "unknown field 'extra'"),
        (DARTS_V2 + " normal_concat=[2, 3]", "normal_concat must be"),
        (DARTS_V2 + " " + DARTS_V2.split(" ")[1], "'reduce' is given twice"),
        (DARTS_V2.replace("[(sep_conv_3x3,0)", "[sep_conv_3x3 0"), "expected '\\(op, input\\)'"),
        (None, "must be a str"),
    ],
)
def test_bad_strings(text: object, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        DartsSpace().from_string(text)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


# -- the published network ----------------------------------------------------------------------
def test_darts_v2_cifar_parameter_count() -> None:
    """DARTS-V2 at the paper's CIFAR-10 setting (C=36, 20 cells): 3.3M parameters (Table 1),
    no auxiliary head. Counted here: 3,349,342 (conv/BN/classifier weights, no BN statistics).
    """
    space = DartsSpace(channels=36, layers=20)
    arch = space.build(space.from_string(DARTS_V2))
    stats = ("running_mean", "running_var")
    n_onnx = sum(
        int(np.prod(t.dims))
        for t in arch.onnx().graph.initializer
        if t.data_type == onnx.TensorProto.FLOAT and not t.name.endswith(stats)
    )
    n_torch = sum(p.numel() for p in arch.to_torch().parameters())
    assert n_onnx == n_torch == 3_349_342
    assert abs(n_onnx - 3.3e6) / 3.3e6 < 0.02


def test_darts_v2_default_options_onnx_matches_torch() -> None:
    space = DartsSpace()
    _check_onnx_against_torch(space, space.from_string(DARTS_V2), seed=1)


# -- canonical forms ------------------------------------------------------------------------------
_R = "(max_pool_3x3,0),(skip_connect,1),(sep_conv_3x3,2),(avg_pool_3x3,0),"
_R += "(dil_conv_5x5,3),(skip_connect,1),(sep_conv_5x5,4),(max_pool_3x3,2)"
_A = "(sep_conv_3x3,0),(skip_connect,1),(max_pool_3x3,0),(dil_conv_3x3,1),"


def _swap_pairs(text: str) -> str:
    """Every node's two (op, input) pairs in the other order."""
    space = DartsSpace()
    params = space.from_string(text)
    out = dict(params)
    for t in ("normal", "reduce"):
        for i in range(4):
            for what in ("op", "in"):
                a, b = f"net.{t}_node{i}_{what}0", f"net.{t}_node{i}_{what}1"
                out[a], out[b] = params[b], params[a]
    return space.to_string(out)


ISOMORPHIC = [
    # the two inputs of every node swapped
    (DARTS_V2, _swap_pairs(DARTS_V2)),
    # node 0 and node 1 (independent) relabelled, references to them renumbered
    (
        _cells(_A + "(sep_conv_5x5,2),(avg_pool_3x3,3),(skip_connect,4),(sep_conv_3x3,2)", _R),
        _cells(
            "(max_pool_3x3,0),(dil_conv_3x3,1),(sep_conv_3x3,0),(skip_connect,1),"
            "(sep_conv_5x5,3),(avg_pool_3x3,2),(skip_connect,4),(sep_conv_3x3,3)",
            _R,
        ),
    ),
]
DIFFERENT = [
    # node 1 reads node 0 instead of cell input 1 (same ops)
    (_cells(_A.replace("(dil_conv_3x3,1)", "(dil_conv_3x3,2)") + _A, _R), _cells(_A + _A, _R)),
    # one op differs
    (DARTS_V2, DARTS_V2.replace("(dil_conv_3x3,2)", "(dil_conv_5x5,2)")),
    # one input differs
    (DARTS_V2, DARTS_V2.replace("(dil_conv_3x3,2)", "(dil_conv_3x3,1)")),
]


@pytest.mark.parametrize("a, b", ISOMORPHIC)
def test_equivalent_genotypes_share_digest_and_onnx(a: str, b: str) -> None:
    space = DartsSpace(**SMALL)
    pa, pb = space.from_string(a), space.from_string(b)
    assert pa != pb
    arch_a, arch_b = space.build(pa), space.build(pb)
    assert space.canonical(pa) == space.canonical(pb)
    assert arch_a.digest == arch_b.digest
    assert arch_a.onnx().SerializeToString() == arch_b.onnx().SerializeToString()
    assert arch_a.genotype == pa and arch_b.genotype == pb  # the genotype stays as given


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_different_genotypes_differ(a: str, b: str) -> None:
    space = DartsSpace(**SMALL)
    arch_a, arch_b = space.build(space.from_string(a)), space.build(space.from_string(b))
    assert arch_a.digest != arch_b.digest
    assert arch_a.onnx().SerializeToString() != arch_b.onnx().SerializeToString()


def test_options_enter_the_digest() -> None:
    params = DartsSpace().from_string(DARTS_V2)
    digests = {
        DartsSpace(**o).build(params).digest
        for o in ({}, {"channels": 8}, {"batch": 4}, {"layers": 5}, {"stem_multiplier": 1})
    }
    assert len(digests) == 5


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), layers=st.sampled_from([1, 2, 3, 5, 8]))
def test_canonical_is_idempotent_and_valid(seed: int, layers: int) -> None:
    space = DartsSpace(layers=layers)
    params = space.sample(np.random.default_rng(seed))
    canon = space.canonical(params)
    assert space.canonical(canon) == canon
    assert space.build(canon).digest == space.build(params).digest


def test_unused_cell_type_does_not_matter() -> None:
    # With 2 layers both cells are reduction cells: the normal cell is never built.
    space = DartsSpace(**{**SMALL, "layers": 2})
    a = space.from_string(DARTS_V2)
    b = space.from_string(_cells(_A + _A, DARTS_V2.split("reduce=[")[1][:-1]))
    assert space.build(a).digest == space.build(b).digest
    assert space.canonical(a)["net.normal_node0_op0"] == "max_pool_3x3"  # the placeholder


# Cells that read only input 0 (cell k-2): with 5 layers the live cells are 4, 2, 0 (normal),
# so the reduction cells 1 and 3 are dead and the reduce genotype does not matter.
_ONLY0 = "(sep_conv_3x3,0),(skip_connect,0),(dil_conv_3x3,2),(max_pool_3x3,0),"
_ONLY0 += "(avg_pool_3x3,3),(sep_conv_5x5,0),(dil_conv_5x5,4),(skip_connect,2)"


def test_dead_cells_are_pruned() -> None:
    space = DartsSpace(**{**SMALL, "layers": 5})
    params = space.from_string(_cells(_ONLY0, _ONLY0))
    model = space.build(params).onnx()
    cells = {n.name.split(".")[0] for n in model.graph.node if n.name.startswith("cell")}
    assert cells == {"cell0", "cell2", "cell4"}
    assert not any(".pre1" in n.name for n in model.graph.node)  # input 1 is never read
    other = space.from_string(_cells(_ONLY0, _R))
    assert space.build(other).digest == space.build(params).digest
    _check_onnx_against_torch(space, params, seed=5)


# -- ONNX and torch -------------------------------------------------------------------------------
def test_onnx_names_and_shape() -> None:
    space = DartsSpace()
    model = space.build(space.from_string(DARTS_V2)).onnx()
    names = {n.name for n in model.graph.node}
    assert {
        "stem.conv",
        "cell0.pre0.conv",
        "cell0.node0.op1.dw1",  # canonical node 0: (skip_connect,0),(sep_conv_3x3,1)
        "cell0.node2.op1.dw",  # canonical: the dil_conv_3x3 node is relabelled 2, after skip
        "cell2.node0.op0.pool",  # reduction cell (layers // 3 = 2)
        "cell3.pre0.shift",  # FactorizedReduce after a reduction cell
        "cell7.concat",
        "classifier",
    } <= names
    assert model.opset_import[0].version == 17
    assert model.ir_version == 8
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 32, 32]
    assert model.graph.output[0].name == "logits"
    assert "normal=[" in model.doc_string


def test_torch_names_match_onnx_initializers() -> None:
    space = DartsSpace(**SMALL)
    arch = space.build(space.from_string(DARTS_V2))
    inits = {t.name for t in arch.onnx().graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    state = {k for k in arch.to_torch().state_dict() if not k.endswith("num_batches_tracked")}
    assert inits == state


def test_build_is_deterministic() -> None:
    a = DartsSpace(**SMALL).build(DartsSpace().from_string(DARTS_V2)).onnx()
    b = DartsSpace(**SMALL).build(DartsSpace().from_string(DARTS_V2)).onnx()
    assert a.SerializeToString() == b.SerializeToString()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    layers=st.sampled_from([1, 2, 3, 4, 6]),
    channels=st.sampled_from([1, 2, 3]),
)
def test_random_samples_onnx_matches_torch(seed: int, layers: int, channels: int) -> None:
    space = DartsSpace(**{**SMALL, "layers": layers, "channels": channels})
    params = space.sample(np.random.default_rng(seed))
    _check_onnx_against_torch(space, params, seed)
    assert sum(layer.macs for layer in extract_layers(space.build(params).onnx())) > 0


def test_mac_count_by_hand() -> None:
    """3 cells (normal, reduce, reduce), C=4, stem 12 channels, 8x8x3 input, 10 classes."""
    space = DartsSpace(
        channels=4, layers=3, input_size=8, in_channels=3, num_classes=10, stem_multiplier=3
    )
    normal = "(sep_conv_3x3,0),(skip_connect,1),(dil_conv_3x3,2),(max_pool_3x3,0),"
    normal += "(avg_pool_3x3,1),(skip_connect,3),(sep_conv_5x5,1),(dil_conv_5x5,4)"
    reduce = "(skip_connect,0),(max_pool_3x3,1),(sep_conv_3x3,0),(skip_connect,2),"
    reduce += "(dil_conv_3x3,1),(avg_pool_3x3,3),(sep_conv_5x5,4),(skip_connect,1)"
    model = space.build(space.from_string(_cells(normal, reduce))).onnx()
    stem = 12 * 3 * 9 * 64  # 3x3 conv 3 -> 12 at 8x8
    # cell 0, normal, C=4 at 8x8 (64 px): two 1x1 preprocess convs 12 -> 4
    cell0 = 2 * (4 * 12 * 64)
    cell0 += 2 * (4 * 9 * 64 + 4 * 4 * 64)  # node 0: sep_conv_3x3 (dw + pw, twice); skip free
    cell0 += 4 * 9 * 64 + 4 * 4 * 64  # node 1: dil_conv_3x3; max pool has no MACs
    cell0 += 0  # node 2: avg pool + skip
    cell0 += 2 * (4 * 25 * 64 + 4 * 4 * 64) + (4 * 25 * 64 + 4 * 4 * 64)  # sep5 + dil5
    # cell 1, reduce, C=8, inputs stem (12 ch) and cell 0 (16 ch) at 8x8, output 4x4 (16 px)
    fr8 = 2 * (4 * 8 * 16)  # skip_connect at stride 2: FactorizedReduce, two 1x1 8 -> 4
    cell1 = 8 * 12 * 64 + 8 * 16 * 64  # preprocess 1x1 convs at 8x8
    cell1 += fr8  # node 0: FR + max pool
    cell1 += 2 * (8 * 9 * 16 + 8 * 8 * 16)  # node 1: sep_conv_3x3 stride 2; skip (stride 1) free
    cell1 += 8 * 9 * 16 + 8 * 8 * 16  # node 2: dil_conv_3x3 stride 2; avg pool
    cell1 += 2 * (8 * 25 * 16 + 8 * 8 * 16) + fr8  # node 3: sep_conv_5x5 on node 2; FR on s1
    # cell 2, reduce, C=16, inputs cell 0 (16 ch, 8x8: FR) and cell 1 (32 ch, 4x4), out 2x2
    fr16 = 2 * (8 * 16 * 4)
    cell2 = 2 * (8 * 16 * 16) + 16 * 32 * 16  # FR preprocess (out 4x4) and 1x1 32 -> 16
    cell2 += fr16
    cell2 += 2 * (16 * 9 * 4 + 16 * 16 * 4)
    cell2 += 16 * 9 * 4 + 16 * 16 * 4
    cell2 += 2 * (16 * 25 * 4 + 16 * 16 * 4) + fr16
    head = 64 * 10
    expected = stem + cell0 + cell1 + cell2 + head
    assert expected == 115_520
    assert sum(layer.macs for layer in extract_layers(model)) == expected


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, cosearch.spaces.darts as m; s = m.DartsSpace(); "
        "s.build(s.sample(__import__('numpy').random.default_rng(0))).onnx(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
