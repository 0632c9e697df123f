"""A hybrid latency predictor: an analytical cost model's per-layer estimates, calibrated to a
real device with a few measurements.

In the spirit of ML-calibrated analytical models (e.g. nn-Meter, Zhang et al., MobiSys 2021,
which predicts per kernel and sums; and analytical GEMM/roofline models whose constants are
fitted to measurements): the analytical model gives the *shape* of the cost (which layers are
compute- or memory-bound, how work grows with shapes), the learned part fits the *device*
(how fast each kind of layer really runs there, per-layer overheads, what the runtime fuses
away).

Features (:func:`analytical_features`): the network's layers (``extract_layers``) are priced
by an analytical cost model (default: the roofline model on a rough single core of an AVX-512
server CPU, :data:`DEFAULT_ACCELERATOR`); per layer kind of
:data:`~cosearch.hwmodels.LAYER_KINDS` the sum of the estimated latencies (ms), the number of
layers, the MACs (millions) and the memory traffic (MB): ``4 x 9`` numbers.

Correction: latency is additive over layers, so the device latency is modelled as a
non-negative combination of the features plus a non-negative constant,
``latency = w . f + b`` with ``w, b >= 0``: the weight of a kind's estimated latency is the
device's slowdown on it, the weight of its layer count a per-layer overhead, and a kind that
the runtime fuses away (ONNX Runtime folds BatchNormalization into the convolution) gets
weight 0. The weights minimize the squared *relative* error (latencies span an order of
magnitude and nn-Meter's bar is relative) by non-negative least squares, with an optional ridge
``alpha`` on the column-normalized weights. Non-negativity is what makes 20 measurements
enough for 37 weights: the solution is sparse and cannot extrapolate with negative costs.
Optionally (``residual="gbrt"``) gradient-boosted trees fit what is left,
``log(measured / linear)``, on the log features; with few measurements this rarely helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from cosearch.errors import ConfigError
from cosearch.hwmodels import LAYER_KINDS
from cosearch.predictors._base import PredictorBase, is_model_sequence

__all__ = [
    "HybridLatencyPredictor",
    "analytical_features",
    "HYBRID_FEATURE_NAMES",
    "DEFAULT_ACCELERATOR",
]

#: the analytical stand-in for one core of an AVX-512 server CPU: 100 GMAC/s (2 FMA units x
#: 16 fp32 lanes at ~3 GHz), 20 GB/s, 50 Gop/s of vector work. The calibration learns each
#: kind's real speed, so these numbers matter only through which bound each layer hits.
DEFAULT_ACCELERATOR = "roofline:peak_gmacs=100,mem_gbps=20,vector_gops=50"
_STATS = ("latency_ms", "layers", "macs_m", "bytes_mb")
#: names of the :func:`analytical_features` columns
HYBRID_FEATURE_NAMES: tuple[str, ...] = tuple(f"{k}.{s}" for k in LAYER_KINDS for s in _STATS)


@cache
def _priced(cost_model: str, accelerator: str) -> tuple[Any, Any]:
    """The cost model and the parsed accelerator; ConfigError when either is unusable."""
    from cosearch.hwmodels import get_cost_model
    from cosearch.spaces import parse_accelerator

    if cost_model == "measured":
        raise ConfigError(
            "the hybrid predictor needs an analytical cost model, not 'measured' (it is "
            "what the predictor learns to predict)",
            key="cost_model",
        )
    model = get_cost_model(cost_model)
    acc = parse_accelerator(accelerator)
    if model.templates and acc.template not in model.templates:
        raise ConfigError(
            f"cost model {cost_model!r} cannot price accelerator {accelerator!r}; it takes "
            f"{', '.join(model.templates)}",
            key="accelerator",
        )
    return model, acc


def analytical_features(
    models: Sequence[Any],
    cost_model: str = "roofline",
    accelerator: str = DEFAULT_ACCELERATOR,
) -> np.ndarray:
    """Per layer kind, the analytical estimate of each model (float64,
    ``len(models) x len(HYBRID_FEATURE_NAMES)``): sum of estimated latency (ms), number of
    layers, MACs (millions), memory traffic (``dram_bytes``, MB). Kinds a model lacks are 0.

    ``models`` are Architectures or ``onnx.ModelProto`` (structure-only models work: only
    shapes are read). ``accelerator`` is a ``parse_accelerator`` spec for ``cost_model``.

    Raises:
        ConfigError: unknown cost model or bad accelerator spec, or ``cost_model="measured"``.
        OnnxImportError: a model uses an operator ``extract_layers`` does not know.
    """
    import onnx

    from cosearch.hwmodels import extract_layers

    model, acc = _priced(cost_model, accelerator)
    column = {k: i * len(_STATS) for i, k in enumerate(LAYER_KINDS)}
    out = np.zeros((len(models), len(HYBRID_FEATURE_NAMES)))
    for row, item in enumerate(models):
        proto = item if isinstance(item, onnx.ModelProto) else item.onnx()
        layers = extract_layers(proto)
        cost = model.evaluate(layers, acc)
        ms_per_cycle = cost.latency_ms / cost.latency_cycles if cost.latency_cycles else 0.0
        for layer, lc in zip(layers, cost.per_layer):
            c = column[layer.kind]
            out[row, c] += lc.latency_cycles * ms_per_cycle
            out[row, c + 1] += 1.0
            out[row, c + 2] += layer.macs / 1e6
            out[row, c + 3] += lc.dram_bytes / 1e6
    return out


class HybridLatencyPredictor(PredictorBase):
    """Analytical per-kind estimates, calibrated to a device by non-negative least squares.

    ``fit(X, y)``: ``X`` is a sequence of Architectures / ONNX models (priced with
    ``cost_model`` on ``accelerator``, see :func:`analytical_features`) or a precomputed
    ``n x len(HYBRID_FEATURE_NAMES)`` matrix of those features; ``y`` the measured latencies
    (ms, > 0). See the module docstring for the model.

    Parameters: ``cost_model`` (a registered analytical model), ``accelerator`` (its
    ``parse_accelerator`` spec), ``alpha`` (ridge on the weights of the max-normalized
    columns, relative to the number of rows; 0: plain NNLS), ``residual`` ('none' or 'gbrt'),
    ``random_state`` (the residual trees' seed).

    Learned: ``coef_`` (weight per feature, ms per feature unit), ``intercept_`` (ms),
    ``residual_model_`` (None or the fitted trees), ``train_mape_`` (relative error on the
    training rows, percent), ``n_features_in_``.
    """

    def __init__(
        self,
        cost_model: str = "roofline",
        accelerator: str = DEFAULT_ACCELERATOR,
        alpha: float = 0.0,
        residual: str = "none",
        random_state: int = 0,
    ) -> None:
        self.cost_model = cost_model
        self.accelerator = accelerator
        self.alpha = alpha
        self.residual = residual
        self.random_state = random_state

    def features(self, X: Any) -> Any:
        """``X`` as the feature matrix: models are priced, matrices pass through."""
        if is_model_sequence(X):
            return analytical_features(X, self.cost_model, self.accelerator)
        return X

    def fit(self, X: Any, y: Any) -> HybridLatencyPredictor:
        """Calibrate on ``X`` and measured latencies ``y`` (ms); returns ``self``.

        Raises ValueError on malformed input, a latency <= 0, a matrix of the wrong width,
        ``alpha < 0`` or an unknown ``residual``; ConfigError for a bad cost model or
        accelerator; OnnxImportError for a model the cost models cannot read.
        """
        from scipy.optimize import nnls

        if self.residual not in ("none", "gbrt"):
            raise ValueError(f"residual must be 'none' or 'gbrt'; got {self.residual!r}")
        if not float(self.alpha) >= 0:
            raise ValueError(f"alpha must be >= 0; got {self.alpha!r}")
        X, y = validate_data(self, self.features(X), y, y_numeric=True, dtype=np.float64)
        if X.shape[1] != len(HYBRID_FEATURE_NAMES):
            raise ValueError(
                f"X must have the {len(HYBRID_FEATURE_NAMES)} analytical features; got "
                f"{X.shape[1]} columns"
            )
        if not np.all(y > 0):
            raise ValueError("latencies must be > 0")
        design = np.hstack([X, np.ones((len(y), 1))])
        # Max-normalized columns make the ridge (and NNLS' conditioning) unit-free.
        norm = np.abs(design).max(axis=0)
        norm = np.where(norm > 0, norm, 1.0)
        a = design / norm / y[:, None]  # rows divided by y: relative errors
        b = np.ones(len(y))
        if self.alpha > 0:
            a = np.vstack([a, np.sqrt(float(self.alpha) * len(y)) * np.eye(a.shape[1])])
            b = np.concatenate([b, np.zeros(a.shape[1])])
        w, _ = nnls(a, b, maxiter=50 * a.shape[1])
        w = w / norm
        self.coef_ = w[:-1]
        self.intercept_ = float(w[-1])
        linear = self._linear(X)
        self.residual_model_ = None
        if self.residual == "gbrt":
            from sklearn.ensemble import HistGradientBoostingRegressor

            self.residual_model_ = HistGradientBoostingRegressor(
                max_iter=100,
                learning_rate=0.05,
                max_leaf_nodes=4,
                min_samples_leaf=max(1, len(y) // 10),
                early_stopping=False,
                random_state=self.random_state,
            ).fit(np.log1p(X), np.log(y / linear))
        pred = self._finish(X, linear)
        self.train_mape_ = float(np.mean(np.abs(pred - y) / y) * 100.0)
        return self

    def _linear(self, X: np.ndarray) -> np.ndarray:
        # a model with no layer of any weighted kind would predict 0; keep latencies positive
        return np.maximum(X @ self.coef_ + self.intercept_, 1e-9)

    def _finish(self, X: np.ndarray, linear: np.ndarray) -> np.ndarray:
        if self.residual_model_ is None:
            return linear
        return linear * np.exp(self.residual_model_.predict(np.log1p(X)))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latencies (ms), shape ``(n,)``."""
        check_is_fitted(self)
        X = validate_data(self, self.features(X), reset=False, dtype=np.float64)
        return self._finish(X, self._linear(X))

    def weights(self) -> dict[str, float]:
        """The non-zero calibration weights by feature name (``"intercept"`` in ms)."""
        check_is_fitted(self)
        out = {n: float(w) for n, w in zip(HYBRID_FEATURE_NAMES, self.coef_) if w > 0}
        if self.intercept_ > 0:
            out["intercept"] = self.intercept_
        return out
