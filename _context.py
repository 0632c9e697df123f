"""SearchContext: what a weight-sharing strategy (DARTS, Once-for-All) may do in a campaign.

The strategy trains its supernet however it likes, and through the context it:

- reports each evaluated subnet as an Optuna trial (``report``): the parameters are fixed,
  the strategy's own measurements (e.g. supernet accuracy, source ``supernet:darts/epoch-3``)
  are recorded as given, and the campaign's evaluator adds hardware costs, constraints and
  the store rows, exactly as for black-box trials;
- checkpoints its state in the store (``save_checkpoint`` / ``load_checkpoint``: tensors via
  ``torch.save``/``torch.load(weights_only=True)``, metadata as JSON) so a killed run resumes;
- reads what it already reported (``reported``), to skip finished steps on resume.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from cosearch._interrupt import raise_if_interrupted
from cosearch._workers import worker_attrs
from cosearch.evaluate import Measurement
from cosearch.store import worker_id
from cosearch.store._optuna_compat import create_running_trial, study_storage

if TYPE_CHECKING:
    import torch

    from cosearch.campaign import Campaign, RunSummary

__all__ = ["SearchContext"]


class SearchContext:
    """Handed to :meth:`WeightSharingStrategy.run`. ``target`` is the number of trials the
    campaign asked for; ``seed`` and ``rng`` derive from the campaign seed."""

    def __init__(
        self,
        campaign: Campaign,
        target: int,
        seed: int,
        *,
        progress: bool = False,
        callback: Callable[[FrozenTrial], None] | None = None,
    ) -> None:
        self.campaign = campaign
        self.config = campaign.config
        self.network = campaign.network
        self.hardware = campaign.hardware
        self.evaluator = campaign.evaluator
        self.store = campaign.store
        self.study = campaign.study
        self.campaign_id = campaign.campaign_id
        self.target = target
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.strategy_name = campaign.config.strategy
        self._callback = callback
        self._progress = progress
        self.ran = self.failed = 0

    # -- trials ------------------------------------------------------------------------------
    def reported(self) -> list[FrozenTrial]:
        """COMPLETE trials of this campaign, oldest first."""
        return self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def report(
        self,
        params: Mapping[str, Any],
        measured: Mapping[str, Measurement],
        *,
        user_attrs: Mapping[str, Any] | None = None,
    ) -> FrozenTrial:
        """Record one evaluated subnet (with its accelerator) as a trial.

        ``params`` must hold every ``net.*`` and ``hw.*`` parameter of the campaign's spaces;
        ``measured`` the metrics the strategy measured itself. Returns the finished trial
        (COMPLETE, or FAIL with ``fail_reason`` if evaluating its costs failed).
        """
        raise_if_interrupted()
        dists = self.campaign.distributions
        missing = [k for k in dists if k not in params]
        if missing:
            raise ValueError(f"report() needs every parameter; missing {missing[:3]}")
        storage = study_storage(self.study)
        study_id = storage.get_study_id_from_name(self.study.study_name)
        trial_id = create_running_trial(
            storage,
            study_id,
            user_attrs=worker_attrs(worker_id()),
            params={k: params[k] for k in dists},
            distributions=dists,
        )
        trial = self.campaign._run_one(self.study, trial_id, given=measured, user_attrs=user_attrs)
        if trial.state == TrialState.COMPLETE:
            self.ran += 1
        else:
            self.failed += 1
        if self._callback is not None:
            self._callback(trial)
        return trial

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(
        self,
        step: int,
        meta: Mapping[str, Any],
        tensors: Mapping[str, torch.Tensor],
        *,
        keep: int | None = 3,
    ) -> bool:
        """Store the strategy's state at ``step`` (atomically: one row, one transaction)."""
        return self.store.save_checkpoint(
            self.campaign_id, self.strategy_name, step, meta, tensors, keep=keep
        )

    def load_checkpoint(
        self, step: int | None = None
    ) -> tuple[int, dict[str, Any], dict[str, torch.Tensor]] | None:
        """``(step, meta, tensors)`` of the latest (or given) checkpoint, or None."""
        return self.store.load_checkpoint(self.campaign_id, self.strategy_name, step)

    # -- reporting to the user ---------------------------------------------------------------
    def log(self, message: str) -> None:
        """A progress line for the user (stderr when the run shows progress)."""
        if self._progress:
            print(f"[{self.config.name}] {message}", file=sys.stderr, flush=True)

    def summary(self, seconds: float, *, interrupted_marked: int = 0) -> RunSummary:
        from cosearch.campaign import RunSummary

        return RunSummary(len(self.reported()), self.ran, self.failed, interrupted_marked, seconds)
