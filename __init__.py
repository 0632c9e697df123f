"""cosearch: joint search of neural architectures and accelerator designs.

Every trial lives in one SQL store that Optuna and optuna-dashboard open directly.

The public names below are imported on first use (see ``cosearch._lazy``): ``import cosearch``
and the ``cosearch`` command do not load onnx, torch, scipy or scikit-learn until a command
needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosearch._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "cosearch.campaign": ("Campaign", "RunSummary"),
    "cosearch.config": ("CampaignConfig", "load_config", "parse_config"),
    "cosearch.errors": (
        "ConfigError",
        "CosearchError",
        "CosearchInputError",
        "OnnxImportError",
        "QueryError",
        "StoreError",
    ),
    "cosearch.hwmodels": ("get_cost_model", "list_cost_models"),
    "cosearch.search": ("get_strategy", "list_strategies"),
    "cosearch.spaces": (
        "get_hardware_space",
        "get_space",
        "list_hardware_spaces",
        "list_spaces",
        "parse_accelerator",
    ),
    "cosearch.store": ("Store", "open_store"),
    "cosearch": ("hwmodels", "search", "spaces", "store"),
}

__all__ = [
    "Campaign",
    "RunSummary",
    "CampaignConfig",
    "load_config",
    "parse_config",
    "ConfigError",
    "CosearchError",
    "CosearchInputError",
    "OnnxImportError",
    "QueryError",
    "StoreError",
    "get_cost_model",
    "list_cost_models",
    "get_strategy",
    "list_strategies",
    "get_hardware_space",
    "get_space",
    "list_hardware_spaces",
    "list_spaces",
    "parse_accelerator",
    "Store",
    "open_store",
    "hwmodels",
    "search",
    "spaces",
    "store",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from cosearch import hwmodels, search, spaces, store
    from cosearch.campaign import Campaign, RunSummary
    from cosearch.config import CampaignConfig, load_config, parse_config
    from cosearch.errors import (
        ConfigError,
        CosearchError,
        CosearchInputError,
        OnnxImportError,
        QueryError,
        StoreError,
    )
    from cosearch.hwmodels import get_cost_model, list_cost_models
    from cosearch.search import get_strategy, list_strategies
    from cosearch.spaces import (
        get_hardware_space,
        get_space,
        list_hardware_spaces,
        list_spaces,
        parse_accelerator,
    )
    from cosearch.store import Store, open_store
