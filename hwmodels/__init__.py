"""ONNX -> layers, and analytical accelerator cost models."""

from typing import TYPE_CHECKING

from cosearch._lazy import lazy_exports
from cosearch.hwmodels import heterogeneous, measured, roofline, row_stationary  # noqa: F401
from cosearch.hwmodels import systolic as _systolic  # noqa: F401  (registers "systolic")
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

if TYPE_CHECKING:
    from cosearch.hwmodels import layers as layers
    from cosearch.hwmodels._api import default_cost_model, evaluate_model
    from cosearch.hwmodels.layers import extract_layers

# the ONNX readers import onnx (0.7 s): `cosearch hwmodels` and `strategies` need none of it
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "cosearch.hwmodels._api": ("default_cost_model", "evaluate_model"),
        "cosearch.hwmodels.layers": ("extract_layers",),
        "cosearch.hwmodels": ("layers",),  # the submodule, as `cosearch.hwmodels.layers`
    },
    globals(),
)

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
