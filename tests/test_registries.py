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
