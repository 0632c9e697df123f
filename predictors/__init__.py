"""Learned latency and accuracy predictors (scikit-learn estimator API).

Latency: :class:`GBRTLatencyPredictor` (gradient-boosted trees over a feature matrix or
``onnx_features``), :class:`GNNLatencyPredictor` (a graph network over ``graph_tensors``),
:class:`FewShotLatencyPredictor` (meta-trained on many devices, adapted to a new one from a few
measurements; :class:`AdaptedLatencyPredictor` is the adapted one). Training data from
benchmark tables: :func:`load_table`. The ``cosearch predictor fewshot-eval`` / ``eval``
computations: :func:`fewshot_eval`, :func:`plain_eval`. torch is imported only when a torch
model is fitted or used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosearch._lazy import lazy_exports

_EXPORTS = {
    "cosearch.predictors._base": ("PredictorBase", "kendall", "spearman"),
    "cosearch.predictors.evaluation": ("fewshot_eval", "plain_eval"),
    "cosearch.predictors.fewshot": ("AdaptedLatencyPredictor", "FewShotLatencyPredictor"),
    "cosearch.predictors.latency": ("GBRTLatencyPredictor", "GNNLatencyPredictor"),
    "cosearch.predictors.tables": ("Table", "encode_genotypes", "load_table"),
}

__all__ = [
    "PredictorBase",
    "kendall",
    "spearman",
    "fewshot_eval",
    "plain_eval",
    "AdaptedLatencyPredictor",
    "FewShotLatencyPredictor",
    "GBRTLatencyPredictor",
    "GNNLatencyPredictor",
    "Table",
    "encode_genotypes",
    "load_table",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from cosearch.predictors._base import PredictorBase, kendall, spearman
    from cosearch.predictors.evaluation import fewshot_eval, plain_eval
    from cosearch.predictors.fewshot import AdaptedLatencyPredictor, FewShotLatencyPredictor
    from cosearch.predictors.latency import GBRTLatencyPredictor, GNNLatencyPredictor
    from cosearch.predictors.tables import Table, encode_genotypes, load_table
