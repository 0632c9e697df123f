"""cosearch: joint search of neural architectures and accelerator designs.

Every trial lives in one SQL store that Optuna and optuna-dashboard open directly.
"""

from __future__ import annotations

__version__ = "0.1.0"

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

__all__ = [
    "Campaign",
    "CampaignConfig",
    "RunSummary",
    "Store",
    "load_config",
    "open_store",
    "parse_config",
    "get_strategy",
    "list_strategies",
    "search",
    "store",
    "ConfigError",
    "CosearchError",
    "CosearchInputError",
    "OnnxImportError",
    "QueryError",
    "StoreError",
    "get_cost_model",
    "get_hardware_space",
    "get_space",
    "hwmodels",
    "list_cost_models",
    "list_hardware_spaces",
    "list_spaces",
    "parse_accelerator",
    "spaces",
]
