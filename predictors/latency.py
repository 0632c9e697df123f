"""Latency predictors for any space: gradient-boosted trees and a graph neural network.

- :class:`GBRTLatencyPredictor`: scikit-learn's ``HistGradientBoostingRegressor`` over a
  feature matrix (a table encoding from :mod:`cosearch.predictors.tables`, or
  :func:`~cosearch.spaces.encoding.onnx_features` rows, which it computes itself when given
  Architectures or ONNX models).
- :class:`GNNLatencyPredictor`: a small graph convolutional network (torch, CPU) over the layer
  graphs of :func:`~cosearch.spaces.encoding.graph_tensors`, in the spirit of BRP-NAS's GCN
  latency predictor (Dudziak et al., NeurIPS 2020), with separate weights for messages along
  and against the data flow.

Both fit ``log(latency)`` by default (``log_target="auto"``: when every target is positive),
because latency errors are relative and tables span an order of magnitude; predictions are
returned in the unit of ``y`` (ms for the tables).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from cosearch.predictors._base import PredictorBase, feature_matrix, graph_list

__all__ = ["GBRTLatencyPredictor", "GNNLatencyPredictor"]


def _use_log(log_target: bool | str, y: np.ndarray) -> bool:
    if log_target == "auto":
        return bool(np.all(y > 0))
    if log_target is True and not np.all(y > 0):
        raise ValueError("log_target=True needs every target > 0; use log_target='auto' or False")
    return bool(log_target)


def _check_log_target(value: Any) -> None:
    if value not in ("auto", True, False):
        raise ValueError(f"log_target must be 'auto', True or False; got {value!r}")


class GBRTLatencyPredictor(PredictorBase):
    """Gradient-boosted regression trees (``HistGradientBoostingRegressor``) over features.

    Parameters: ``max_iter`` boosting rounds, ``learning_rate``, ``max_leaf_nodes``,
    ``min_samples_leaf`` (None: ``clip(n_samples // 10, 1, 20)``, so a fit on 10 rows can
    still split; scikit-learn's fixed default of 20 would give a constant model),
    ``l2_regularization``, ``log_target`` ('auto', True, False: fit ``log(y)``),
    ``random_state`` (int; the trees are deterministic without early stopping, it seeds the
    binning subsample on more than 200,000 rows).

    ``fit(X, y)``: ``X`` an ``n x F`` float array or a sequence of Architectures / ONNX models
    (encoded with ``onnx_features``); ``y`` the latencies (any unit; predictions come back in
    it). Learned: ``model_`` (the fitted ``HistGradientBoostingRegressor``), ``log_target_``,
    ``n_iter_`` (boosting rounds run), ``n_features_in_``.
    """

    def __init__(
        self,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int | None = None,
        l2_regularization: float = 0.0,
        log_target: bool | str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.log_target = log_target
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> GBRTLatencyPredictor:
        """Fit on ``X`` (see the class docstring) and latencies ``y``; returns ``self``.

        Raises ValueError on malformed input (scikit-learn's validation) or, with
        ``log_target=True``, a non-positive target.
        """
        from sklearn.ensemble import HistGradientBoostingRegressor

        _check_log_target(self.log_target)
        X, y = validate_data(self, feature_matrix(X), y, y_numeric=True, dtype=np.float64)
        self.log_target_ = _use_log(self.log_target, y)
        target = np.log(y) if self.log_target_ else y
        leaf = self.min_samples_leaf
        if leaf is None:
            leaf = int(np.clip(len(y) // 10, 1, 20))
        self.model_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(X, target)
        self.n_iter_ = self.model_.n_iter_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latencies (the unit of the ``y`` given to ``fit``), shape ``(n,)``."""
        check_is_fitted(self)
        X = validate_data(self, feature_matrix(X), reset=False, dtype=np.float64)
        out = self.model_.predict(X)
        return np.exp(out) if self.log_target_ else out


class GNNLatencyPredictor(PredictorBase):
    """A graph convolutional network over layer graphs (torch on the CPU).

    Each layer ``l`` of ``hidden`` units updates every node from itself, the mean of its
    predecessors and the mean of its successors (three weight matrices: data flow has a
    direction), then ReLU; a sum and a mean over the nodes feed a two-layer head that gives
    one number per graph. Node features are standardized with the training graphs' statistics.
    Minibatches stack the graphs block-diagonally (sparse adjacency).

    Parameters: ``hidden``, ``layers``, ``epochs``, ``batch_size``, ``lr`` (Adam),
    ``weight_decay``, ``log_target`` (as for :class:`GBRTLatencyPredictor`), ``random_state``
    (seeds initialization and batch order; torch's global RNG is left as it was).

    ``fit(X, y)``: ``X`` a sequence of Architectures, ONNX models or ``(X, A)`` pairs of
    :func:`~cosearch.spaces.encoding.graph_tensors`. Learned: ``state_dict_`` (torch tensors),
    ``x_mean_``, ``x_std_``, ``y_mean_``, ``y_std_``, ``log_target_``, ``n_features_in_`` (node
    features), ``loss_curve_`` (mean training loss per epoch, standardized units).
    """

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 3,
        epochs: int = 150,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        log_target: bool | str = "auto",
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.log_target = log_target
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> GNNLatencyPredictor:
        """Train on graphs ``X`` and latencies ``y``; returns ``self``. Raises ValueError when
        ``X`` and ``y`` differ in length or the input is malformed (see ``graph_list``)."""
        import torch

        from cosearch.predictors._gnn import GraphNet, collate, train_graph_net

        _check_log_target(self.log_target)
        graphs = graph_list(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != len(graphs):
            raise ValueError(f"X has {len(graphs)} graphs but y has {len(y)} targets")
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite")
        self.log_target_ = _use_log(self.log_target, y)
        target = np.log(y) if self.log_target_ else y
        nodes = np.vstack([x for x, _ in graphs])
        self.n_features_in_ = nodes.shape[1]
        self.x_mean_ = nodes.mean(axis=0)
        self.x_std_ = np.where(nodes.std(axis=0) > 1e-12, nodes.std(axis=0), 1.0)
        self.y_mean_ = float(target.mean())
        self.y_std_ = float(target.std()) if target.std() > 1e-12 else 1.0
        z = (target - self.y_mean_) / self.y_std_
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            net = GraphNet(self.n_features_in_, self.hidden, self.layers)
            self.loss_curve_ = train_graph_net(
                net,
                collate(graphs, self.x_mean_, self.x_std_),
                z,
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                seed=self.random_state,
            )
        self.state_dict_ = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latencies (unit of the training ``y``), shape ``(n,)``."""
        check_is_fitted(self)
        import torch

        from cosearch.predictors._gnn import GraphNet, collate, predict_graph_net

        graphs = graph_list(X)
        if graphs[0][0].shape[1] != self.n_features_in_:
            raise ValueError(
                f"graphs have {graphs[0][0].shape[1]} node features; the predictor was fitted "
                f"on {self.n_features_in_}"
            )
        # building the module draws initial weights from torch's global generator; they are
        # overwritten at once, and the user's seeded stream must not move
        with torch.random.fork_rng(devices=[]):
            net = GraphNet(self.n_features_in_, self.hidden, self.layers)
        net.load_state_dict(self.state_dict_)
        z = predict_graph_net(net, collate(graphs, self.x_mean_, self.x_std_))
        out = z * self.y_std_ + self.y_mean_
        return np.exp(out) if self.log_target_ else out
