"""The SQL store: Optuna's RDB schema plus cosearch's tables (DESIGN.md section 5)."""

from cosearch.store._store import (
    Store,
    default_storage_url,
    display_url,
    memory_url,
    open_store,
    worker_id,
)

__all__ = ["Store", "default_storage_url", "display_url", "memory_url", "open_store", "worker_id"]
