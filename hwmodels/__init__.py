"""ONNX -> layers, and analytical accelerator cost models."""

from cosearch.hwmodels import heterogeneous, measured, roofline, row_stationary  # noqa: F401
from cosearch.hwmodels import systolic as _systolic  # noqa: F401  (registers "systolic")
from cosearch.hwmodels._api import default_cost_model, evaluate_model
from cosearch.hwmodels._base import (
    LAYER_KINDS,
    Accelerator,
    Cost,
    CostModel,
    Layer,
    LayerCost,
    get_cost_model,
    list_cost_models,
    register_cost_model,
)
from cosearch.hwmodels.layers import extract_layers

__all__ = [
    "LAYER_KINDS",
    "Accelerator",
    "Cost",
    "CostModel",
    "Layer",
    "LayerCost",
    "default_cost_model",
    "evaluate_model",
    "extract_layers",
    "get_cost_model",
    "list_cost_models",
    "register_cost_model",
]
