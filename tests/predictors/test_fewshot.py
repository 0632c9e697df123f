"""The few-shot latency predictor: meta-learning beats fitting the shots alone; API; errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from cosearch.predictors import (
    AdaptedLatencyPredictor,
    FewShotLatencyPredictor,
    GBRTLatencyPredictor,
    spearman,
)


def _family(n: int = 800, devices: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Architectures as 8 features; each device's latency is its own positive mix of four
    non-linear cost terms (a squared sum, a product, a hinge, a cube), with 1% noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 8))
    terms = np.c_[
        (x[:, 0] + x[:, 1]) ** 2,
        4 * x[:, 2] * x[:, 3],
        4 * np.maximum(x[:, 4] - 0.5, 0),
        x[:, 5] + x[:, 6] ** 3,
    ]
    mix = np.exp(rng.normal(0, 0.6, (devices, 4)))
    y = (1 + terms @ mix.T) * np.exp(rng.normal(0, 0.01, (n, devices)))
    return x, y


def _ridge_scores(x, y, idx, rest) -> float:
    from sklearn.linear_model import Ridge

    return spearman(y[rest], Ridge(alpha=1e-3).fit(x[idx], y[idx]).predict(x[rest]))


@pytest.mark.slow
def test_meta_learning_beats_shots_alone() -> None:
    x, latency = _family()
    meta = FewShotLatencyPredictor(embedding="mlp", hidden=32, embed_dim=8, epochs=30)
    meta.fit(x, latency[:, :15])
    linear = FewShotLatencyPredictor().fit(x, latency[:, :15])
    y = latency[:, 15]  # a device never seen in meta-training
    few, few_linear, gbrt, ridge = [], [], [], []
    for seed in range(3):
        idx = np.random.default_rng(seed).choice(len(y), 10, replace=False)
        rest = np.setdiff1d(np.arange(len(y)), idx)
        few.append(spearman(y[rest], meta.adapt(x[idx], y[idx]).predict(x[rest])))
        few_linear.append(spearman(y[rest], linear.adapt(x[idx], y[idx]).predict(x[rest])))
        gbrt.append(spearman(y[rest], GBRTLatencyPredictor().fit(x[idx], y[idx]).predict(x[rest])))
        ridge.append(_ridge_scores(x, y, idx, rest))
    # measured: few 0.93, few_linear 0.87, gbrt 0.40, ridge 0.75
    baseline = max(np.mean(gbrt), np.mean(ridge))
    assert np.mean(few) > 0.9
    assert np.mean(few) > baseline + 0.12
    assert np.mean(few_linear) > np.mean(ridge) + 0.05
    assert np.mean(few) > np.mean(few_linear)  # the learned features carry the non-linearity


def test_api_and_determinism() -> None:
    x, latency = _family(n=300, devices=6, seed=1)
    est = FewShotLatencyPredictor(embedding="mlp", hidden=16, embed_dim=4, epochs=3)
    assert est.fit(x, latency[:, :5]) is est
    learned = {k for k in vars(est) if k not in est.get_params()}
    assert learned and all(k.endswith("_") for k in learned)
    assert est.n_devices_ == 5 and est.n_features_in_ == 8
    assert est.predict(x).shape == (300, 5)
    assert est.shrinkage_ in (0.0, 1e-3, 1e-2, 1e-1) and est.noise_ in (1e-4, 1e-3, 1e-2)
    assert len(est.meta_scores_) == 12
    # the meta-training devices are fitted closely
    for j in range(5):
        assert spearman(latency[:, j], est.predict(x)[:, j]) > 0.9

    adapted = est.adapt(x[:10], latency[:10, 5])
    assert isinstance(adapted, AdaptedLatencyPredictor)
    mean, std = adapted.predict(x, return_std=True)
    assert mean.shape == std.shape == (300,) and (std > 0).all()
    np.testing.assert_array_equal(mean, adapted.predict(x))
    assert adapted.embedding_.shape == (4,)
    np.testing.assert_array_equal(est.device_embedding(x[:10], latency[:10, 5]), adapted.embedding_)
    # uncertainty shrinks where shots were taken
    assert std[:10].mean() < std[10:].mean()

    again = clone(est).fit(x, latency[:, :5])
    np.testing.assert_array_equal(again.coef_, est.coef_)
    np.testing.assert_array_equal(
        again.adapt(x[:10], latency[:10, 5]).predict(x), adapted.predict(x)
    )


def test_missing_values_and_fixed_hyperparameters() -> None:
    x, latency = _family(n=200, devices=4, seed=2)
    y = latency[:, :3].copy()
    y[:50, 0] = np.nan  # device 0 measured only the last 150 rows
    est = FewShotLatencyPredictor(shrinkage=0.01, noise=1e-3).fit(x, y)
    assert est.meta_scores_ == {} and est.shrinkage_ == 0.01 and est.noise_ == 1e-3
    assert np.isfinite(est.coef_).all()
    assert spearman(latency[50:, 0], est.predict(x[50:])[:, 0]) > 0.9


def test_errors() -> None:
    x, latency = _family(n=60, devices=3, seed=3)
    with pytest.raises(NotFittedError):
        FewShotLatencyPredictor().adapt(x[:5], latency[:5, 0])
    with pytest.raises(ValueError, match="at least 2 devices"):
        FewShotLatencyPredictor().fit(x, latency[:, :1])
    with pytest.raises(ValueError, match="latencies must be > 0"):
        FewShotLatencyPredictor().fit(x, -latency)
    with pytest.raises(ValueError, match="X has 60 rows but Y has 59"):
        FewShotLatencyPredictor().fit(x, latency[:59])
    with pytest.raises(ValueError, match="embedding must be"):
        FewShotLatencyPredictor(embedding="gnn").fit(x, latency)
    y = latency.copy()
    y[1:, 1] = np.nan
    with pytest.raises(ValueError, match="at least 2 measured rows"):
        FewShotLatencyPredictor().fit(x, y)
    est = FewShotLatencyPredictor().fit(x, latency[:, :2])
    with pytest.raises(ValueError, match="finite and > 0"):
        est.adapt(x[:3], [1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        est.adapt(x[:3], [1.0, 2.0])
    with pytest.raises(ValueError, match="X has 5 features"):
        est.adapt(x[:3, :5], [1.0, 2.0, 3.0])
