"""The hybrid latency predictor: analytical per-kind features and their calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from cosearch.errors import ConfigError
from cosearch.hwmodels import LAYER_KINDS, extract_layers, get_cost_model
from cosearch.predictors.hybrid import (
    DEFAULT_ACCELERATOR,
    HYBRID_FEATURE_NAMES,
    HybridLatencyPredictor,
    analytical_features,
)
from cosearch.spaces import parse_accelerator
from cosearch.spaces.nb201 import NB201Space


@pytest.fixture(scope="module")
def archs():
    space = NB201Space(channels=4, cells_per_stage=1, input_size=8)
    rng = np.random.default_rng(0)
    seen = {}
    while len(seen) < 24:
        a = space.build(space.sample(rng))
        seen.setdefault(a.digest, a)
    return list(seen.values())


def _column(name: str) -> int:
    return HYBRID_FEATURE_NAMES.index(name)


def test_features_add_up_to_the_cost_model(archs) -> None:
    f = analytical_features(archs[:5])
    assert f.shape == (5, 4 * len(LAYER_KINDS)) and np.all(f >= 0)
    cm = get_cost_model("roofline")
    acc = parse_accelerator(DEFAULT_ACCELERATOR)
    for row, arch in zip(f, archs[:5]):
        layers = extract_layers(arch.onnx())
        cost = cm.evaluate(layers, acc)
        lat = sum(row[_column(f"{k}.latency_ms")] for k in LAYER_KINDS)
        assert lat == pytest.approx(cost.latency_ms)
        assert sum(row[_column(f"{k}.layers")] for k in LAYER_KINDS) == len(layers)
        assert sum(row[_column(f"{k}.macs_m")] for k in LAYER_KINDS) * 1e6 == pytest.approx(
            cost.macs
        )
    # ONNX models give the same as their Architectures
    np.testing.assert_array_equal(analytical_features([a.onnx() for a in archs[:5]]), f)


def test_recovers_a_device_that_is_linear_in_the_features(archs) -> None:
    f = analytical_features(archs)
    device = (
        3.0 * f[:, _column("conv.latency_ms")]
        + 0.002 * f[:, _column("conv.layers")]
        + 0.5 * f[:, _column("pool.latency_ms")]
        + 0.05
    )
    est = HybridLatencyPredictor().fit(archs[:12], device[:12])
    pred = est.predict(archs[12:])
    np.testing.assert_allclose(pred, device[12:], rtol=1e-3)
    assert est.train_mape_ < 0.1
    assert set(est.weights()) <= {*HYBRID_FEATURE_NAMES, "intercept"}
    assert np.all(est.coef_ >= 0) and est.intercept_ >= 0
    # a precomputed feature matrix is the same input
    same = HybridLatencyPredictor().fit(f[:12], device[:12])
    np.testing.assert_allclose(same.predict(f[12:]), pred)


def test_options(archs) -> None:
    f = analytical_features(archs)
    y = 0.2 + f[:, _column("conv.macs_m")] * 0.02
    ridge = HybridLatencyPredictor(alpha=1e-2).fit(f, y)
    assert ridge.predict(f).shape == (len(archs),)
    boosted = HybridLatencyPredictor(residual="gbrt").fit(f, y * (1 + 0.1 * (f[:, 0] > 0)))
    assert np.all(boosted.predict(f) > 0)
    systolic = analytical_features(archs[:3], "systolic", "systolic")
    assert systolic.shape == (3, len(HYBRID_FEATURE_NAMES))


def test_errors(archs) -> None:
    f = analytical_features(archs[:6])
    y = np.linspace(1, 2, 6)
    with pytest.raises(NotFittedError):
        HybridLatencyPredictor().predict(f)
    with pytest.raises(ValueError, match="> 0"):
        HybridLatencyPredictor().fit(f, -y)
    with pytest.raises(ValueError, match="analytical features"):
        HybridLatencyPredictor().fit(f[:, :5], y)
    with pytest.raises(ValueError, match="residual"):
        HybridLatencyPredictor(residual="mlp").fit(f, y)
    with pytest.raises(ValueError, match="alpha"):
        HybridLatencyPredictor(alpha=-1).fit(f, y)
    with pytest.raises(ConfigError, match="analytical cost model"):
        HybridLatencyPredictor(cost_model="measured").fit(archs[:6], y)
    with pytest.raises(ConfigError, match="cannot price"):
        analytical_features(archs[:1], "roofline", "systolic")


def test_real_measurements_end_to_end(archs) -> None:
    """A few quick onnxruntime timings of tiny networks: fit and predict run (the accuracy
    of the hybrid on a real device is the benchmark's job)."""
    from cosearch.hwmodels.measured import MeasuredCostModel

    timer = MeasuredCostModel(warmup=1, repeats=5)
    y = np.array([timer.measure(a.onnx()).min_ms for a in archs[:8]])
    est = HybridLatencyPredictor().fit(archs[:6], y[:6])
    pred = est.predict(archs[6:8])
    assert pred.shape == (2,) and np.all(np.isfinite(pred)) and np.all(pred > 0)
