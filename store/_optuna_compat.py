"""The one place cosearch reaches into Optuna internals.

``optuna.create_study(storage=RDBStorage(...))`` wraps the storage in a private write-through
cache and keeps it as ``study._storage``. Trial writes that bypass that object (for example
creating a trial with its worker already recorded, or marking a dead worker's trial FAIL)
must go through the same cache, or the cache raises KeyError for trials it has not seen.
Optuna offers no public accessor, so this reads the private attribute here and nowhere else.
"""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage


def study_storage(study: optuna.Study) -> BaseStorage:
    storage = getattr(study, "_storage", None)
    if not isinstance(storage, BaseStorage):  # pragma: no cover - guards an Optuna change
        raise RuntimeError(
            "this Optuna version keeps no storage on the study; cosearch needs "
            "a version that does (optuna>=4)"
        )
    return storage
