"""Smoke tests over every registry entry (timm tests every registered model the same way)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import cosearch
from cosearch.errors import UnknownNameError
from cosearch.hwmodels import extract_layers

# spaces that need a user-supplied option to build anything
_NEEDS_OPTIONS = {"onnx_file"}


@pytest.mark.parametrize("name", cosearch.list_spaces())
def test_every_network_space_builds_checked_onnx(name):
    if name in _NEEDS_OPTIONS:
        pytest.skip(f"{name} needs a user file; covered by its own tests")
    space = cosearch.get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(2):
        params = space.sample(rng)
        arch = space.build(params)
        assert arch.digest == space.build(dict(params)).digest  # stable
        model = arch.onnx()
        onnx.checker.check_model(model, full_check=True)
        layers = extract_layers(model)
        assert sum(layer.macs for layer in layers) > 0


@pytest.mark.parametrize("name", cosearch.list_hardware_spaces())
def test_every_hardware_space_samples_and_has_a_reference(name):
    space = cosearch.get_hardware_space(name)
    rng = np.random.default_rng(1)
    for _ in range(5):
        acc = space.build(space.sample(rng))
        assert acc.template == name
    ref = space.default()
    assert ref.template == name
    assert cosearch.parse_accelerator(name) == ref


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="nb201"):
        cosearch.get_space("nope")
    with pytest.raises(UnknownNameError, match="systolic"):
        cosearch.get_hardware_space("nope")
    with pytest.raises(UnknownNameError, match="systolic"):
        cosearch.get_cost_model("nope")
    with pytest.raises(UnknownNameError, match="nsga2"):
        cosearch.get_strategy("nope")


def test_reprs_are_short_and_say_what_the_object_is(tmp_path):
    """What a user sees when a REPL or notebook prints the core objects."""
    space = cosearch.get_space("nb201", channels=8)
    assert repr(space) == "NB201Space(channels=8)"  # only what differs from the defaults
    assert repr(cosearch.get_space("nb201")) == "NB201Space()"
    hw = cosearch.get_hardware_space("systolic", pe_rows=[8, 32])
    assert repr(hw) == "SystolicSpace(pe_rows=[8, 32])"
    model = cosearch.get_cost_model("systolic")
    assert repr(model) == "<SystolicCostModel analytical:systolic/v1>"
    arch = space.build(space.sample(np.random.default_rng(0)))
    cost = model.evaluate(extract_layers(arch.onnx()), hw.default())
    text = repr(cost)
    # one line naming the headline metrics and the layer count, not every layer's costs
    assert len(text) < 200 and "\n" not in text
    assert f"layers={len(cost.per_layer)}" in text and f"macs={cost.macs}" in text
    assert f"latency_ms={cost.latency_ms:.4g}" in text
    store = cosearch.open_store(f"sqlite:///{tmp_path / 'r.db'}")
    assert repr(store) == f"Store('sqlite:///{tmp_path / 'r.db'}')"
