"""The persistent layer-cost cache gives the model's own numbers and is shared across
campaigns and processes."""

from __future__ import annotations

import numpy as np
import pytest

import cosearch
from cosearch.store.layer_cache import LayerCostCache


def _pairs(n=6, seed=0):
    space, hw = cosearch.get_space("nb201"), cosearch.get_hardware_space("systolic")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        arch = space.build(space.sample(rng))
        out.append((cosearch.hwmodels.extract_layers(arch.onnx()), hw.build(hw.sample(rng))))
    return out


def test_cached_costs_equal_model_costs_and_survive_processes(db_url):
    pairs = _pairs()
    store = cosearch.open_store(db_url)
    model = cosearch.get_cost_model("systolic")
    cold = LayerCostCache(store)
    first = [cold.evaluate(model, layers, acc) for layers, acc in pairs]
    assert cold.misses > 0 and cold.hits_store == 0
    n_rows = store.query("SELECT COUNT(*) AS n FROM layer_costs").n[0]
    assert n_rows == cold.misses  # one row per distinct (layer, accelerator)
    store.close()

    store2 = cosearch.open_store(db_url)  # a new process would start like this
    warm = LayerCostCache(store2)
    again = [warm.evaluate(model, layers, acc) for layers, acc in pairs]
    assert warm.misses == 0 and warm.hits_store == n_rows
    for a, b, (layers, acc) in zip(first, again, pairs):
        direct = cosearch.get_cost_model("systolic").evaluate(layers, acc)
        for m in ("latency_cycles", "energy_mj", "dram_bytes", "utilization", "area_mm2"):
            assert getattr(a, m) == pytest.approx(getattr(direct, m), rel=1e-12)
            assert getattr(b, m) == pytest.approx(getattr(direct, m), rel=1e-12)
        assert [lc.name for lc in b.per_layer] == [layer.name for layer in layers]
    store2.close()


def test_campaign_with_store_cache(make_config, db_url):
    text = (
        make_config(trials=5)
        .read_text()
        .replace(
            'cost = "analytical:systolic"', 'cost = "analytical:systolic"\nlayer_cache = "store"'
        )
    )
    path = make_config(name="cached", text=text.replace('name = "t"', 'name = "cached"'))
    c = cosearch.Campaign.from_toml(path, storage=db_url)
    c.run()
    assert c.evaluator.cost_cache is not None and c.evaluator.cost_cache.misses > 0
    assert c.store.query("SELECT COUNT(*) AS n FROM layer_costs").n[0] > 0


def test_layer_cache_key_is_validated(make_config):
    from cosearch.errors import ConfigError

    text = (
        make_config()
        .read_text()
        .replace(
            'cost = "analytical:systolic"', 'cost = "analytical:systolic"\nlayer_cache = "disk"'
        )
    )
    with pytest.raises(ConfigError, match="layer_cache"):
        cosearch.parse_config(text)
