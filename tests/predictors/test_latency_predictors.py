"""GBRT and GNN latency predictors: scikit-learn conventions, inputs, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

import cosearch
from cosearch.predictors import (
    AdaptedLatencyPredictor,
    FewShotLatencyPredictor,
    GBRTLatencyPredictor,
    GNNLatencyPredictor,
    spearman,
)
from cosearch.spaces.encoding import graph_tensors, onnx_features


def _learned(est) -> set[str]:
    return {k for k in vars(est) if k not in est.get_params(deep=False)}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_gbrt_check_estimator() -> None:
    # every scikit-learn estimator check (small max_iter keeps it fast)
    check_estimator(GBRTLatencyPredictor(max_iter=10))


def _synthetic(n: int = 200, f: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(n, f))
    y = 1.0 + 3 * x[:, 0] + 2 * x[:, 1] ** 2 + x[:, 2] * x[:, 3]
    return x, y


@pytest.mark.parametrize(
    "est",
    [
        GBRTLatencyPredictor(max_iter=20),
        GNNLatencyPredictor(epochs=2, hidden=8),
        FewShotLatencyPredictor(),
    ],
    ids=["gbrt", "gnn", "fewshot"],
)
def test_estimator_conventions(est) -> None:
    params = est.get_params()
    assert set(vars(est)) == set(params), "__init__ must only store its arguments"
    assert clone(est).get_params() == params
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((2, 6)))


def test_gbrt_fit_predict() -> None:
    x, y = _synthetic()
    est = GBRTLatencyPredictor(max_iter=100)
    assert est.fit(x[:150], y[:150]) is est
    assert _learned(est) and all(k.endswith("_") for k in _learned(est))
    assert est.log_target_ and est.n_features_in_ == 6
    pred = est.predict(x[150:])
    assert pred.shape == (50,) and (pred > 0).all()
    assert spearman(y[150:], pred) > 0.9
    # 10 rows still split (min_samples_leaf adapts): the fit is not a constant
    assert np.ptp(GBRTLatencyPredictor().fit(x[:10], y[:10]).predict(x)) > 0
    # deterministic
    np.testing.assert_array_equal(pred, clone(est).fit(x[:150], y[:150]).predict(x[150:]))
    # log_target: auto falls back to raw values for non-positive targets; True refuses them
    assert not GBRTLatencyPredictor(max_iter=5).fit(x, y - 3).log_target_
    with pytest.raises(ValueError, match="log_target=True needs every target > 0"):
        GBRTLatencyPredictor(log_target=True).fit(x, y - 3)
    with pytest.raises(ValueError, match="log_target must be"):
        GBRTLatencyPredictor(log_target="yes").fit(x, y)


def _tiny_archs(n: int) -> list:
    space = cosearch.get_space("nb201", channels=4, cells_per_stage=1, input_size=8)
    rng = np.random.default_rng(3)
    return [space.build(space.sample(rng)) for _ in range(n)]


def test_gbrt_on_architectures() -> None:
    archs = _tiny_archs(12)
    y = np.arange(1.0, 13.0)
    a = GBRTLatencyPredictor(max_iter=10).fit(archs, y)
    feats = np.vstack([onnx_features(arch.onnx()) for arch in archs])
    b = GBRTLatencyPredictor(max_iter=10).fit(feats, y)
    np.testing.assert_allclose(a.predict(archs), b.predict(feats))
    np.testing.assert_allclose(a.predict([arch.onnx() for arch in archs]), a.predict(feats))


def _chain_graphs(n: int, seed: int) -> tuple[list, np.ndarray]:
    """Random layer chains; latency = sum over nodes of a node-feature-dependent cost."""
    rng = np.random.default_rng(seed)
    graphs, y = [], []
    for _ in range(n):
        size = int(rng.integers(3, 12))
        x = rng.uniform(0, 1, size=(size, 4))
        a = np.eye(size, k=1)
        graphs.append((x, a))
        y.append(1.0 + (x[:, 0] * 2 + x[:, 1] ** 2).sum())
    return graphs, np.array(y)


@pytest.mark.slow
def test_gnn_learns_and_is_deterministic() -> None:
    import torch

    graphs, y = _chain_graphs(200, 0)
    state = torch.random.get_rng_state()
    est = GNNLatencyPredictor(hidden=16, layers=2, epochs=60, batch_size=16, random_state=1)
    assert est.fit(graphs[:150], y[:150]) is est
    assert torch.equal(state, torch.random.get_rng_state()), "global torch RNG must be untouched"
    assert all(k.endswith("_") for k in _learned(est))
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    pred = est.predict(graphs[150:])
    assert pred.shape == (50,)
    assert spearman(y[150:], pred) > 0.9
    again = clone(est).fit(graphs[:150], y[:150])
    np.testing.assert_allclose(again.predict(graphs[150:]), pred)


def test_gnn_inputs() -> None:
    archs = _tiny_archs(4)
    y = np.array([1.0, 2.0, 3.0, 4.0])
    est = GNNLatencyPredictor(hidden=8, epochs=2).fit(archs, y)
    tensors = [graph_tensors(arch.onnx()) for arch in archs]
    np.testing.assert_allclose(est.predict(archs), est.predict(tensors), rtol=1e-6)
    np.testing.assert_allclose(est.predict([a.onnx() for a in archs]), est.predict(tensors))
    with pytest.raises(ValueError, match="X has 4 graphs but y has 3"):
        GNNLatencyPredictor(epochs=1).fit(archs, y[:3])
    with pytest.raises(TypeError, match="item 0 must be an Architecture"):
        GNNLatencyPredictor(epochs=1).fit(["x"], [1.0])
    with pytest.raises(ValueError, match="non-empty sequence"):
        GNNLatencyPredictor(epochs=1).fit(np.zeros((2, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="node features"):
        est.predict([(np.zeros((2, 3)), np.zeros((2, 2)))])


def test_adapted_needs_meta() -> None:
    with pytest.raises(ValueError, match="needs a meta-trained"):
        AdaptedLatencyPredictor().fit(np.zeros((2, 3)), [1.0, 2.0])
    with pytest.raises(NotFittedError):
        AdaptedLatencyPredictor(meta=FewShotLatencyPredictor()).fit(np.zeros((2, 3)), [1.0, 2.0])
