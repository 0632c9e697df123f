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
    # relative uncertainty shrinks where shots were taken
    assert (std / mean)[:10].mean() < (std / mean)[10:].mean()

    # cloning an adapted predictor keeps its meta-trained prior, so cross-validation works
    refit = clone(adapted)
    assert refit.meta is est and not hasattr(refit, "coef_")
    np.testing.assert_array_equal(refit.fit(x[:10], latency[:10, 5]).predict(x), mean)

    again = clone(est).fit(x, latency[:, :5])
    np.testing.assert_array_equal(again.coef_, est.coef_)
    np.testing.assert_array_equal(
        again.adapt(x[:10], latency[:10, 5]).predict(x), adapted.predict(x)
    )


def test_missing_values_and_fixed_hyperparameters() -> None:
    x, latency = _family(n=200, devices=4, seed=2)
    y = latency[:, :3].copy()
    y[:50, 0] = np.nan  # device 0 measured only the last 150 rows
    est = FewShotLatencyPredictor(transform="relative", shrinkage=0.01, noise=1e-3).fit(x, y)
    assert est.meta_scores_ == {} and est.shrinkage_ == 0.01 and est.noise_ == 1e-3
    assert est.transform_ == "relative" and est.transform_scores_ == {}
    # with transform="auto" the episodes still run, to choose the transform
    auto = FewShotLatencyPredictor(shrinkage=0.01, noise=1e-3).fit(x, y)
    assert set(auto.transform_scores_) == {"relative", "log"}
    assert list(auto.meta_scores_) == [(0.01, 1e-3)]
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


def _multiplicative(n: int = 400, devices: int = 9, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Devices whose per-feature costs act as factors: log-latency is linear in x."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, 10)).astype(float)
    speed = rng.normal(0.5, 0.25, (devices, 10))
    return x, np.exp(x @ speed.T + rng.normal(0, 0.01, (n, devices)))


def test_transform_auto_picks_the_better_normalization() -> None:
    x, latency = _multiplicative()
    est = FewShotLatencyPredictor(random_state=0).fit(x, latency[:, :8])
    scores = est.transform_scores_
    assert set(scores) == {"relative", "log"}
    assert est.transform_ == max(scores, key=lambda k: scores[k]) == "log"
    log = FewShotLatencyPredictor(transform="log").fit(x, latency[:, :8])
    rel = FewShotLatencyPredictor(transform="relative").fit(x, latency[:, :8])
    assert log.transform_scores_ == {} and log.transform_ == "log"
    # meta-training devices are reproduced in ms under either transform
    for model in (log, rel):
        assert spearman(latency[:, 0], model.predict(x)[:, 0]) > 0.95
    y = latency[:, 8]  # unseen
    gaps = []
    for seed in range(3):
        idx = np.random.default_rng(seed).choice(len(y), 10, replace=False)
        rest = np.setdiff1d(np.arange(len(y)), idx)
        a = log.adapt(x[idx], y[idx])
        pred, std = a.predict(x[rest], return_std=True)
        assert (pred > 0).all() and (std > 0).all()
        # the level is right too: median relative error of the ms predictions
        assert np.median(np.abs(pred / y[rest] - 1)) < 0.3
        r = rel.adapt(x[idx], y[idx]).predict(x[rest])
        gaps.append(spearman(y[rest], pred) - spearman(y[rest], r))
    assert np.mean(gaps) > 0  # on multiplicative devices the log transform ranks better


def test_log_transform_survives_the_store(db_url) -> None:
    from cosearch.predictors.persist import load_predictor, save_predictor
    from cosearch.store import open_store

    x, latency = _multiplicative(n=120, devices=5)
    meta = FewShotLatencyPredictor(transform="log", meta_episodes=1).fit(x, latency[:, :4])
    adapted = meta.adapt(x[:10], latency[:10, 4])
    with open_store(db_url) as store:
        for pid, est in (("meta", meta), ("dev4", adapted)):
            save_predictor(
                store, pid, est, encoding="onnx", space=None, target="t", training_ref={}
            )
            back = load_predictor(store, pid).estimator
            np.testing.assert_allclose(back.predict(x), est.predict(x))
        back = load_predictor(store, "dev4").estimator
    assert back.meta.transform_ == "log"
    np.testing.assert_allclose(
        back.predict(x, return_std=True)[1], adapted.predict(x, return_std=True)[1]
    )


def test_transform_error() -> None:
    x, latency = _family(n=60, devices=3, seed=3)
    with pytest.raises(ValueError, match="transform must be"):
        FewShotLatencyPredictor(transform="sqrt").fit(x, latency)
