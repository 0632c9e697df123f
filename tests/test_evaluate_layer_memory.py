"""The evaluator keeps the layers of recent networks (one network is priced on many
accelerators in a joint search), within a bound on memory."""

from __future__ import annotations

import numpy as np

import cosearch
from cosearch.evaluate import Evaluator


def test_held_layers_stay_within_the_bound_and_costs_do_not_change():
    """Capped at 4,096 networks, a long nb201 campaign held about 260 MB of layer lists; the
    cap counts layers now, and a network evicted and extracted again prices the same."""
    net, hw = cosearch.get_space("nb201"), cosearch.get_hardware_space("systolic")
    rng = np.random.default_rng(0)
    archs = [net.build(net.sample(rng)) for _ in range(12)]
    acc = hw.build(hw.sample(rng))
    one = len(Evaluator(net, hw, accuracy=None, cost="analytical:systolic").layers(archs[0]))
    ev = Evaluator(net, hw, accuracy=None, cost="analytical:systolic", layer_cache_layers=3 * one)
    first = ev.evaluate(archs[0], acc)
    for arch in archs[1:]:
        ev.evaluate(arch, acc)
        held = sum(len(layers) for layers in ev._layers.values())
        assert held <= 3 * one or len(ev._layers) == 1
    assert archs[0].digest not in ev._layers  # evicted: the oldest went first
    again = ev.evaluate(archs[0], acc)
    values = lambda e: {k: m.value for k, m in e.metrics.items()}  # noqa: E731
    assert values(again) == values(first) and again.cost.per_layer == first.cost.per_layer
