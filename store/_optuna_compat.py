"""The one place cosearch reaches into Optuna internals.

``optuna.create_study(storage=RDBStorage(...))`` wraps the storage in a private write-through
cache and keeps it as ``study._storage``. Trial writes that bypass that object (for example
creating a trial with its worker already recorded, or marking a dead worker's trial FAIL)
must go through the same cache, or the cache raises KeyError for trials it has not seen.
Optuna offers no public accessor, so this reads the private attribute here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState


def study_storage(study: optuna.Study) -> BaseStorage:
    storage = getattr(study, "_storage", None)
    if not isinstance(storage, BaseStorage):  # pragma: no cover - guards an Optuna change
        raise RuntimeError(
            "this Optuna version keeps no storage on the study; cosearch needs "
            "a version that does (optuna>=4)"
        )
    return storage


def create_running_trial(
    storage: BaseStorage,
    study_id: int,
    *,
    user_attrs: Mapping[str, Any],
    system_attrs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    distributions: Mapping[str, BaseDistribution] | None = None,
) -> int:
    """Create a RUNNING trial with its attributes (the worker, for one) in the same insert,
    so no reader ever sees it without them; returns its trial id."""
    return _create_trial(
        storage, study_id, TrialState.RUNNING, user_attrs, system_attrs, params, distributions
    )


def create_waiting_trial(
    storage: BaseStorage,
    study_id: int,
    *,
    user_attrs: Mapping[str, Any],
    fixed_params: Mapping[str, Any],
) -> int:
    """Queue a WAITING trial whose parameters are fixed (Optuna's ``enqueue_trial`` form, with
    the user attributes in the same insert); returns its trial id."""
    return _create_trial(
        storage,
        study_id,
        TrialState.WAITING,
        user_attrs,
        {"fixed_params": dict(fixed_params)},
        None,
        None,
    )


def _create_trial(
    storage: BaseStorage,
    study_id: int,
    state: TrialState,
    user_attrs: Mapping[str, Any],
    system_attrs: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    distributions: Mapping[str, BaseDistribution] | None,
) -> int:
    template = FrozenTrial(
        number=-1,
        state=state,
        value=None,
        datetime_start=dt.datetime.now() if state == TrialState.RUNNING else None,
        datetime_complete=None,
        params=dict(params or {}),
        distributions=dict(distributions or {}),
        user_attrs=dict(user_attrs),
        system_attrs=dict(system_attrs or {}),
        intermediate_values={},
        trial_id=-1,
    )
    return storage.create_new_trial(study_id, template_trial=template)


def know_trial(storage: BaseStorage, study_id: int, trial_id: int) -> None:
    """Make the storage's per-process cache know ``trial_id`` before this process writes to it.

    The cache raises KeyError writing a parameter of a trial it has never read. A queued
    trial another process created (a retry, a screened candidate) is one, when this process
    claims it without having read every trial of the study first (which it no longer does:
    that cost O(trials) a claim). Optuna's own incremental read brings it in: the trials
    created or unfinished since this process last read, not the whole study."""
    known = getattr(storage, "_trial_id_to_study_id_and_number", None)
    read = getattr(storage, "_read_trials_from_remote_storage", None)
    if known is None or read is None or trial_id in known:
        return  # not Optuna's cache (a plain RDBStorage reads the database on every call)
    read(study_id)
