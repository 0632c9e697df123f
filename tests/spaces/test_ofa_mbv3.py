"""The ofa_mbv3 space: options, string and table forms, canonical forms, ONNX and torch forms."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
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
from cosearch.spaces.ofa_mbv3 import (
    DEFAULT_OPTIONS,
    DEFAULT_RESOLUTIONS,
    PARAM_NAMES,
    OFAMBv3Space,
    ofa_mbv3_onnx_from_torch,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TABLE = DATA / "ofa_mbv3" / "ofa_latency.csv"

SMALL_RES = [8, 16, 32]
SMALL: dict[str, Any] = {
    "width_mult": 0.25,
    "num_classes": 10,
    "resolutions": SMALL_RES,
    "batch": 2,
}
DIGITS: dict[str, Any] = {"width_mult": 0.25, "num_classes": 10, "in_channels": 1, "stem_stride": 1}
KS0 = "7-5-5-5-7-7-5-7-5-7-3-7-5-3-7-3-5-3-5-3"
E0 = "6-4-4-6-6-3-4-3-3-6-3-3-3-6-3-4-6-4-3-6"
ROW0: dict[str, Any] = {"ks": KS0, "e": E0, "d": "2-2-2-2-3", "r": 204}
ROW0_STR = f"ks={KS0};e={E0};d=2-2-2-2-3;r=204"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One torch thread: the tiny test networks run faster without thread hand-offs on a
    shared machine. Restored afterwards, so other test modules see the default."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _params(ks: list[int], e: list[int], d: list[int], r: int) -> dict[str, int]:
    out = {f"net.ks_{i}": k for i, k in enumerate(ks)}
    out.update({f"net.e_{i}": v for i, v in enumerate(e)})
    out.update({f"net.d_{s}": v for s, v in enumerate(d)})
    out["net.r"] = r
    return out


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
            elif name.endswith(("bn.weight", "bias", "running_mean")):
                t.copy_(torch.from_numpy(rng.normal(0.0, 0.5, t.shape).astype(np.float32)))


def _check_onnx_against_torch(space: OFAMBv3Space, params: dict, seed: int) -> None:
    import torch

    arch = space.build(params)
    model = arch.onnx()
    onnx.checker.check_model(model, full_check=True)
    assert extract_layers(model)
    rng = np.random.default_rng(seed)
    o, r = space.options, params["net.r"]
    x = rng.standard_normal((o["batch"], o["in_channels"], r, r)).astype(np.float32)
    module = arch.to_torch()
    assert not module.training
    with torch.no_grad():
        _assert_close(_run_onnx(model, x), module(torch.from_numpy(x)).numpy())
    # Trained-looking weights exported back into the same graph.
    _randomize(module, rng)
    exported = ofa_mbv3_onnx_from_torch(module)
    onnx.checker.check_model(exported, full_check=True)
    with torch.no_grad():
        _assert_close(_run_onnx(exported, x), module(torch.from_numpy(x)).numpy())


# -- registry, options, parameters --------------------------------------------------------------
def test_registered_with_defaults() -> None:
    space = cosearch.get_space("ofa_mbv3")
    assert isinstance(space, OFAMBv3Space)
    assert "ofa_mbv3" in cosearch.list_spaces()
    assert space.options == DEFAULT_OPTIONS
    assert list(space.distributions()) == [f"net.{n}" for n in PARAM_NAMES]
    assert len(PARAM_NAMES) == 20 + 20 + 5 + 1
    assert space.size == pytest.approx(3**20 * 3**20 * 3**5 * 25)  # inactive blocks included
    params = space.sample(np.random.default_rng(0))
    assert set(params) == {f"net.{n}" for n in PARAM_NAMES}
    assert params["net.r"] in DEFAULT_RESOLUTIONS
    assert all(params[f"net.ks_{i}"] in (3, 5, 7) for i in range(20))
    assert all(params[f"net.e_{i}"] in (3, 4, 6) for i in range(20))


def test_option_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^The 'num_classes' option of ofa_mbv3 must be an int in "
        r"\[1, 100000\]\. Got 0 instead\.$",
    ):
        OFAMBv3Space(num_classes=0)
    with pytest.raises(ConfigError, match=r"'stem_stride' option .* \[1, 2\]\. Got 3"):
        OFAMBv3Space(stem_stride=3)
    with pytest.raises(ConfigError, match=r"'batch' option .* Got True instead"):
        OFAMBv3Space(batch=True)
    with pytest.raises(ConfigError, match=r"'width_mult' option .* a float in \[0\.1, 4\.0\]"):
        OFAMBv3Space(width_mult=0.0)
    with pytest.raises(ConfigError, match=r"'width_mult'.*Got '1' instead"):
        OFAMBv3Space(width_mult="1")
    for bad in ([], [0], [8, 4096], 224, [8.5], ["8"]):
        with pytest.raises(ConfigError, match=r"'resolutions' option .* non-empty list of ints"):
            OFAMBv3Space(resolutions=bad)
    with pytest.raises(ConfigError, match="no option 'depth'.*width_mult, num_classes"):
        OFAMBv3Space(depth=3)


def test_resolution_parameter_kinds() -> None:
    p = OFAMBv3Space().params["r"]
    assert (p.kind, p.low, p.high, p.step) == ("int", 128, 224, 4)
    p = OFAMBv3Space(resolutions=[32, 16, 24, 24]).params["r"]
    assert (p.kind, p.low, p.high, p.step) == ("int", 16, 32, 8)
    assert OFAMBv3Space(resolutions=[16, 24, 32]).options["resolutions"] == [16, 24, 32]
    p = OFAMBv3Space(resolutions=[8]).params["r"]
    assert (p.kind, p.low, p.high, p.size) == ("int", 8, 8, 1)
    p = OFAMBv3Space(resolutions=[8, 12, 32]).params["r"]
    assert (p.kind, p.choices) == ("categorical", (8, 12, 32))


def test_bad_params() -> None:
    space = OFAMBv3Space()
    params = space.from_string(ROW0_STR)
    with pytest.raises(ConfigError, match="ks_3"):
        space.build({**params, "net.ks_3": 4})
    with pytest.raises(ConfigError, match="e_0"):
        space.build({**params, "net.e_0": 5})
    with pytest.raises(ConfigError, match="d_4"):
        space.build({**params, "net.d_4": 1})
    with pytest.raises(ConfigError, match=r"'r' parameter.*\[128, 224\] in steps of 4"):
        space.build({**params, "net.r": 226})
    missing = dict(params)
    del missing["net.d_2"]
    with pytest.raises(ConfigError, match="d_2"):
        space.build(missing)


# -- strings and table rows -----------------------------------------------------------------------
def test_string_and_row_round_trip() -> None:
    space = OFAMBv3Space()
    params = space.from_string(ROW0_STR)
    assert params["net.ks_0"] == 7 and params["net.e_19"] == 6 and params["net.d_4"] == 3
    assert params["net.r"] == 204
    assert space.to_string(params) == ROW0_STR
    assert space.to_row(params) == ROW0
    assert space.from_row({**ROW0, "idx": "0", "lat_2080ti_1": "12.1"}) == params
    # fields in another order, with spaces
    text = f" r=204; d={ROW0['d']};e={ROW0['e']} ;ks={ROW0['ks']}"
    assert space.from_string(text) == params


def test_from_row_reads_ofa_config_dicts() -> None:
    space = OFAMBv3Space()
    config = {
        "ks": [int(v) for v in KS0.split("-")],
        "e": [int(v) for v in E0.split("-")],
        "d": [2, 2, 2, 2, 3],
        "r": [204],
    }
    assert space.from_row(config) == space.from_string(ROW0_STR)


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "expected fields"),
        ("ks=3;e=3;d=2;r=128", "'ks' must be 20 ints"),
        (ROW0_STR.replace(";r=204", ""), "lacks the field 'r'"),
        (ROW0_STR + ";r=204", "given twice"),
        (ROW0_STR.replace("d=2-2-2-2-3", "d=2-2-2-2"), "'d' must be 5 ints"),
        (ROW0_STR.replace("d=2-2-2-2-3", "d=2-2-x-2-3"), "'d' must be 5 ints"),
        (ROW0_STR.replace("r=204", "r=20-4"), "'r' must be an int"),
        (ROW0_STR.replace("r=204", "r=206"), "'r' parameter"),
        (ROW0_STR.replace("ks=7-5", "ks=4-5"), "'ks_0' parameter"),
        (ROW0_STR.replace(";e=", ";x="), "expected fields"),
        (None, "must be a str"),
    ],
)
def test_bad_strings(text: object, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        OFAMBv3Space().from_string(text)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not TABLE.exists(), reason=f"reference data not found at {TABLE}")
def test_every_table_row_parses_and_builds() -> None:
    space = OFAMBv3Space()
    with TABLE.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5000
    digests = set()
    for row in rows:
        params = space.from_row(row)
        assert space.to_row(params) == {k: (int(row[k]) if k == "r" else row[k]) for k in ROW0}
        digests.add(space.build(params).digest)  # digest only: ONNX is built lazily
    assert len(digests) > 4900  # random subnets: (almost) all distinct


# -- canonical forms ------------------------------------------------------------------------------
def test_inactive_blocks_do_not_matter() -> None:
    space = OFAMBv3Space(**SMALL)
    base = _params([3] * 20, [3] * 20, [2, 3, 2, 4, 2], 16)
    # blocks 2, 3 (stage 0), 7 (stage 1), 10, 11 (stage 2), 18, 19 (stage 4) are inactive
    other = {**base, "net.ks_2": 7, "net.e_3": 6, "net.ks_7": 5, "net.e_11": 4, "net.ks_19": 7}
    assert space.canonical(other) == space.canonical(base) == base
    a, b = space.build(base), space.build(other)
    assert a.digest == b.digest
    assert a.onnx().SerializeToString() == b.onnx().SerializeToString()
    assert a.genotype != b.genotype  # the genotype stays as given
    names = {t.name for t in a.onnx().graph.initializer}
    assert "blocks.2.depthwise.conv.weight" in names  # block 1 of stage 0
    assert not any(n.startswith(("blocks.3.", "blocks.4.", "blocks.8.")) for n in names)


@pytest.mark.parametrize(
    "change",
    [{"net.ks_1": 5}, {"net.e_0": 4}, {"net.d_1": 3}, {"net.r": 32}, {"net.ks_15": 7}],
)
def test_active_changes_differ(change: dict) -> None:
    space = OFAMBv3Space(**SMALL)
    base = _params([3] * 20, [3] * 20, [2, 2, 2, 4, 2], 16)
    a, b = space.build(base), space.build({**base, **change})
    assert a.digest != b.digest
    assert a.onnx().SerializeToString() != b.onnx().SerializeToString()


def test_canonical_is_idempotent_and_valid() -> None:
    space = OFAMBv3Space()
    rng = np.random.default_rng(3)
    for _ in range(50):
        params = space.sample(rng)
        canon = space.canonical(params)
        assert space.canonical(canon) == canon
        assert space.build(canon).digest == space.build(params).digest


def test_options_enter_the_digest() -> None:
    params = OFAMBv3Space().from_string(ROW0_STR)
    digests = {
        OFAMBv3Space(**o).build(params).digest
        for o in (
            {},
            {"width_mult": 0.5},
            {"batch": 4},
            {"num_classes": 10},
            {"in_channels": 1},
            {"stem_stride": 1},
        )
    }
    assert len(digests) == 6
    # the allowed resolutions narrow the search, they do not change the network
    same = {
        OFAMBv3Space(**o).build(params).digest
        for o in ({}, {"resolutions": [204]}, {"width_mult": 1}, {"resolutions": [128, 204]})
    }
    assert len(same) == 1
    assert (
        OFAMBv3Space().build({**params, "net.e_0": 6.0}).digest
        == OFAMBv3Space().build({**params, "net.e_0": 6}).digest
    )


# -- ONNX and torch -------------------------------------------------------------------------------
def test_onnx_names_and_shape() -> None:
    space = OFAMBv3Space()
    model = space.build(space.from_string(ROW0_STR)).onnx()
    names = {n.name for n in model.graph.node}
    assert {
        "first_conv.conv",
        "blocks.0.depthwise.conv",
        "blocks.0.add",
        "blocks.1.expand.act",
        "blocks.5.se.gate",
        "blocks.19.add",  # stage 4 has depth 3: slots 17-19
        "final_expand.bn",
        "feature_mix.act",
        "classifier",
    } <= names
    assert "blocks.0.expand.conv" not in names  # expand ratio 1: no expansion
    assert "blocks.1.add" not in names  # stride 2 and a new width: no shortcut
    ops = {n.op_type for n in model.graph.node}
    assert ops <= cosearch.hwmodels.layers.SUPPORTED_OPS
    assert {"HardSwish", "HardSigmoid", "Relu"} <= ops
    assert model.opset_import[0].version == 17
    assert model.ir_version == 8
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [
        1,
        3,
        204,
        204,
    ]
    assert model.graph.output[0].name == "logits"
    params = space.from_string(ROW0_STR)
    assert model.doc_string == "ofa_mbv3 " + space.to_string(space.canonical(params))


def test_torch_names_match_onnx_initializers() -> None:
    space = OFAMBv3Space(**SMALL)
    arch = space.build(space.from_string(ROW0_STR.replace("r=204", "r=16")))
    inits = {t.name for t in arch.onnx().graph.initializer}
    state = {k for k in arch.to_torch().state_dict() if not k.endswith("num_batches_tracked")}
    assert inits == state


def test_build_is_deterministic() -> None:
    params = OFAMBv3Space().from_string(ROW0_STR)
    a = OFAMBv3Space().build(params).onnx()
    b = OFAMBv3Space().build(dict(params)).onnx()
    assert a.SerializeToString() == b.SerializeToString()


_KS = st.lists(st.sampled_from((3, 5, 7)), min_size=20, max_size=20)
_E = st.lists(st.sampled_from((3, 4, 6)), min_size=20, max_size=20)
_D = st.lists(st.sampled_from((2, 3, 4)), min_size=5, max_size=5)


@settings(max_examples=15, deadline=None)
@given(
    ks=_KS,
    e=_E,
    d=_D,
    r=st.sampled_from(SMALL_RES),
    stem_stride=st.sampled_from((1, 2)),
    seed=st.integers(0, 2**16),
)
def test_random_subnets_onnx_matches_torch(
    ks: list[int], e: list[int], d: list[int], r: int, stem_stride: int, seed: int
) -> None:
    space = OFAMBv3Space(**SMALL, stem_stride=stem_stride)
    _check_onnx_against_torch(space, _params(ks, e, d, r), seed)


def test_default_options_onnx_matches_torch() -> None:
    space = OFAMBv3Space()
    params = space.sample(np.random.default_rng(5))
    _check_onnx_against_torch(space, {**params, "net.r": 128}, seed=1)


@pytest.mark.parametrize("resolutions", [[8], [1], [3]])
def test_tiny_inputs(resolutions: list[int]) -> None:
    """8x8 digits with a stride-1 stem; and the smallest resolutions (shapes never reach 0)."""
    space = OFAMBv3Space(**DIGITS, resolutions=resolutions)
    params = space.sample(np.random.default_rng(resolutions[0]))
    _check_onnx_against_torch(space, params, seed=2)


def test_mac_count_by_hand() -> None:
    """All ks 3, e 3, d 2, 32x32 input, width 1.0, 10 classes: MACs per layer by hand."""
    space = OFAMBv3Space(num_classes=10, resolutions=[32])
    model = space.build(_params([3] * 20, [3] * 20, [2] * 5, 32)).onnx()
    # Spatial sizes: stem 16x16; stages 8x8, 4x4, 2x2, 2x2, 1x1. Terms: expand (cin*mid*px),
    # depthwise (mid*9*px_out), SE (2*mid*se_mid), project (mid*cout*px_out).
    # SE widths: make_divisible(mid // 4): 72 -> 24, 120 -> 32, 240 -> 64, 336 -> 88, 480 -> 120.
    expected = [
        16 * 3 * 9 * 256,  # first conv
        16 * 9 * 256 + 16 * 16 * 256,  # first block (no expansion)
        16 * 48 * 256 + 48 * 9 * 64 + 48 * 24 * 64,  # stage 0 (24), block 0, stride 2
        24 * 72 * 64 + 72 * 9 * 64 + 72 * 24 * 64,
        24 * 72 * 64 + 72 * 9 * 16 + 2 * 72 * 24 + 72 * 40 * 16,  # stage 1 (40, SE)
        40 * 120 * 16 + 120 * 9 * 16 + 2 * 120 * 32 + 120 * 40 * 16,
        40 * 120 * 16 + 120 * 9 * 4 + 120 * 80 * 4,  # stage 2 (80)
        80 * 240 * 4 + 240 * 9 * 4 + 240 * 80 * 4,
        80 * 240 * 4 + 240 * 9 * 4 + 2 * 240 * 64 + 240 * 112 * 4,  # stage 3 (112, SE), stride 1
        112 * 336 * 4 + 336 * 9 * 4 + 2 * 336 * 88 + 336 * 112 * 4,
        112 * 336 * 4 + 336 * 9 * 1 + 2 * 336 * 88 + 336 * 160 * 1,  # stage 4 (160, SE)
        160 * 480 + 480 * 9 + 2 * 480 * 120 + 480 * 160,
        160 * 960,  # final expand
        960 * 1280,  # feature mix
        1280 * 10,  # classifier
    ]
    layers = extract_layers(model)
    assert sum(lay.macs for lay in layers) == sum(expected)
    assert sum(lay.kind == "depthwise" for lay in layers) == 11


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, cosearch.spaces.ofa_mbv3 as m; s = m.OFAMBv3Space(); "
        "s.build(s.sample(__import__('numpy').random.default_rng(0))).onnx(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
