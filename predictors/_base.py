"""What the predictors share: the scikit-learn estimator conventions, input conversion, scores.

Conventions (scikit-learn's, see STYLE.md): ``__init__`` only stores its arguments; ``fit``
returns ``self``; learned attributes end in ``_``; ``predict`` starts with
``sklearn.utils.validation.check_is_fitted`` (so it raises ``NotFittedError`` before ``fit``).

Inputs: tabular predictors take a 2-D float array (a table encoding from
:mod:`cosearch.predictors.tables`, or :func:`~cosearch.spaces.encoding.onnx_features` rows), or a
sequence of :class:`~cosearch.spaces.Architecture` / ``onnx.ModelProto``, which
:func:`feature_matrix` turns into ``onnx_features`` rows. Graph predictors take Architectures,
ModelProtos or ``(X, A)`` pairs of :func:`~cosearch.spaces.encoding.graph_tensors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

__all__ = [
    "PredictorBase",
    "feature_matrix",
    "graph_list",
    "is_model_sequence",
    "spearman",
    "kendall",
]


class PredictorBase(RegressorMixin, BaseEstimator):
    """Base of cosearch's regressors: scikit-learn's ``BaseEstimator`` (``get_params``,
    ``set_params``, ``clone``) and ``RegressorMixin`` (``score`` is R^2). Subclasses implement
    ``fit`` and ``predict``; nothing else is required."""


def is_model_sequence(X: Any) -> bool:
    """True when ``X`` is a non-empty list/tuple of Architectures or ``onnx.ModelProto``."""
    if not isinstance(X, (list, tuple)) or not X:
        return False
    import onnx

    from cosearch.spaces._base import Architecture

    return all(isinstance(x, (Architecture, onnx.ModelProto)) for x in X)


def feature_matrix(X: Any) -> Any:
    """``X`` as tabular input: Architectures / ModelProtos become rows of
    :func:`~cosearch.spaces.encoding.onnx_features` (float64, ``len(X) x len(FEATURE_NAMES)``);
    anything else is returned unchanged for scikit-learn's validation.

    Raises OnnxImportError when a model cannot be read (see ``onnx_features``).
    """
    if not is_model_sequence(X):
        return X
    import onnx

    from cosearch.spaces.encoding import onnx_features

    rows = [onnx_features(x if isinstance(x, onnx.ModelProto) else x.onnx()) for x in X]
    return np.vstack(rows)


def graph_list(X: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``X`` as a list of ``(node_features, adjacency)`` pairs (float64, ``L x F`` and ``L x L``).

    ``X`` is a sequence whose items are Architectures, ``onnx.ModelProto`` (converted with
    :func:`~cosearch.spaces.encoding.graph_tensors`) or ``(X, A)`` pairs. Raises ValueError on
    an empty sequence, a pair whose shapes disagree, or graphs with different feature counts;
    TypeError on any other item.
    """
    import onnx

    from cosearch.spaces._base import Architecture
    from cosearch.spaces.encoding import graph_tensors

    if isinstance(X, np.ndarray) or not isinstance(X, Sequence) or len(X) == 0:
        raise ValueError(
            "graph input must be a non-empty sequence of Architectures, onnx.ModelProto or "
            f"(X, A) pairs; got {type(X).__name__}"
        )
    out = []
    for i, item in enumerate(X):
        if isinstance(item, Architecture):
            x, a = graph_tensors(item.onnx())
        elif isinstance(item, onnx.ModelProto):
            x, a = graph_tensors(item)
        elif isinstance(item, tuple) and len(item) == 2:
            x = np.asarray(item[0], dtype=np.float64)
            a = np.asarray(item[1], dtype=np.float64)
        else:
            raise TypeError(
                f"graph input item {i} must be an Architecture, an onnx.ModelProto or an "
                f"(X, A) pair; got {type(item).__name__}"
            )
        if x.ndim != 2 or a.shape != (x.shape[0], x.shape[0]):
            raise ValueError(
                f"graph input item {i}: X must be L x F and A L x L; got X {x.shape}, A {a.shape}"
            )
        out.append((x, a))
    widths = {x.shape[1] for x, _ in out}
    if len(widths) > 1:
        raise ValueError(f"graph inputs have different node feature counts: {sorted(widths)}")
    return out


def _finite_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    return t, p


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman rank correlation (ties get average ranks). 0.0 when either side is constant
    (the correlation is undefined there; a constant predictor ranks nothing)."""
    from scipy.stats import spearmanr

    t, p = _finite_pair(y_true, y_pred)
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return 0.0
    return float(spearmanr(t, p).statistic)


def kendall(y_true: Any, y_pred: Any) -> float:
    """Kendall's tau-b. 0.0 when either side is constant (see :func:`spearman`)."""
    from scipy.stats import kendalltau

    t, p = _finite_pair(y_true, y_pred)
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return 0.0
    return float(kendalltau(t, p).statistic)
