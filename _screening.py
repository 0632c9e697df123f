"""Multi-fidelity campaigns: screen many candidates cheaply, promote the best to ``[evaluate]``.

A campaign with a ``[screen]`` table (config.py) has two Optuna studies in its store:

- the campaign's own study (its name): trials scored by the ``[evaluate]`` sources, as
  ``Campaign.run`` writes them. ``Campaign.pareto()``, ``cosearch compare``, the strategies'
  samplers and the run loop's trial target see only these.
- the screen study (``<name>:screen``; ``:`` cannot occur in a campaign name): COMPLETE
  trials scored by the ``[screen]`` sources, written in batches (store/batch.py). Its
  objectives are the campaign objectives those sources produce (same order and
  directions); its constraint values are the campaign constraints on metrics they produce,
  then the count of hardware violations, as in the main study.

Why a second study rather than a marker on trials of the first: screened values would
otherwise count toward ``trials``, feed the strategy's sampler as if they were real scores,
enter ``cosearch compare``'s hypervolume curves and mix into optuna-dashboard's front. Apart,
each study is a plain, self-consistent Optuna study; optuna-dashboard shows both.

Every trial of both studies has its measurements (value, source, fidelity) in cosearch's
``measurements`` table under the campaign. A trial's *fidelity* is the lowest fidelity of
its measurements of the campaign's objectives, 0.0 when one objective was not measured
(store.queries.trial_fidelities); screened trials also carry it as user attribute
``fidelity``. Promotion creates a trial in the main study with the screened candidate's
parameters (Optuna's ``fixed_params``) and user attribute ``screened_from`` (the screen
trial's number); candidates already promoted, or whose parameters the main study already
holds, are skipped, so repeated or resumed promotions never score a candidate twice.

Screening proposes candidates uniformly at random from the joint space (each space's
``sample``), seeded by the campaign seed and the number of candidates screened so far.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from cosearch._interrupt import raise_if_interrupted
from cosearch._pareto import promotion_order
from cosearch._workers import (
    LOST,
    SCREEN_SUFFIX,
    SCREENED_FROM,
    screen_study_name,
    start_ordinal,
)
from cosearch.errors import ConfigError, CosearchError, CosearchInputError
from cosearch.evaluate import Evaluator, Measurement
from cosearch.store._optuna_compat import create_waiting_trial, study_storage
from cosearch.store.batch import BatchWriter, evaluation_record
from cosearch.store.queries import (
    constraint_values,
    load_trials,
    objective_table,
    param_keys,
    study_id_of,
    trial_numbers,
    user_attr_values,
)

if TYPE_CHECKING:
    from cosearch.campaign import Campaign
    from cosearch.config import ScreenConfig

__all__ = [
    "SCREEN_SUFFIX",
    "ScreenSummary",
    "PromoteSummary",
    "Screener",
    "screen_study_name",
    "trial_fidelity",
]


def trial_fidelity(metrics: Mapping[str, Measurement], objectives: list[str]) -> float:
    """Lowest fidelity of the measurements of ``objectives``; 0.0 if one is missing."""
    if any(o not in metrics for o in objectives):
        return 0.0
    return float(min(metrics[o].fidelity for o in objectives))


@dataclass(frozen=True)
class ScreenSummary:
    """What one ``Campaign.screen`` call did."""

    screened: int  # candidates written as COMPLETE screen trials
    failed: int  # candidates whose cheap evaluation raised or gave NaN (not written)
    total: int  # COMPLETE screen trials at the end
    seconds: float


@dataclass(frozen=True)
class PromoteSummary:
    """What one ``Campaign.promote`` call did."""

    promoted: int  # promoted trials COMPLETE in the main study
    failed: int  # promoted trials that failed
    available: int  # screened candidates left that were never promoted
    trial_numbers: tuple[int, ...]  # main-study numbers of the trials created
    seconds: float


class Screener:
    """The screening half of a campaign: the screen evaluator and study, and promotion."""

    def __init__(self, campaign: Campaign, screen: ScreenConfig) -> None:
        self.campaign = campaign
        self.config = screen
        self.evaluator = Evaluator(
            campaign.network,
            campaign.hardware,
            accuracy=screen.accuracy,
            cost=screen.cost,
            latency=screen.latency,
            store=campaign.store,
            seed=campaign.config.seed,
            trusted=not campaign.config.stored,
        )
        mine, full = self.evaluator.trained, campaign.evaluator.trained
        if mine is not None:
            mine.lookup = campaign.trained_before
        if mine is not None and full is not None and mine.dataset == full.dataset:
            # fewer epochs than the promoted candidates get: a proxy of their accuracy
            mine.fidelity = min(1.0, mine.epochs / full.epochs)
        provided = set(self.evaluator.metric_names())
        cfg = campaign.config
        self.objectives = [o for o in cfg.objectives if o.metric in provided]
        self.constraints = [c for c in cfg.constraints if c.metric in provided]
        self._study: optuna.Study | None = None

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    # -- the study ----------------------------------------------------------------------------
    @property
    def study(self) -> optuna.Study:
        """The screen study, created on first access (after the campaign's own)."""
        if self._study is None:
            self.campaign.study  # noqa: B018 - the campaign row and its checks come first
            self._study = self._open()
        return self._study

    def _open(self) -> optuna.Study:
        """Load the screen study and check its sources, or create it with its attributes;
        under a store lock, so that workers starting together never see it half made."""
        from cosearch.store._locks import store_lock

        store = self.campaign.store
        name = screen_study_name(self.campaign.name)
        with store_lock(store.engine, store.url, f"cosearch-open:{name}"):
            return self._open_locked(name, store.optuna_storage)

    def _open_locked(self, name: str, storage: Any) -> optuna.Study:
        sources = {**self.config.sources(), "cost": self.evaluator.cost_source}
        try:
            sid = storage.get_study_id_from_name(name)
        except KeyError:
            sid = None
        if sid is not None:
            study = optuna.load_study(study_name=name, storage=storage)
            stored = study.user_attrs.get("cosearch.sources")
            if stored is None and not study.get_trials(deepcopy=False):
                # made by a process that stopped before writing its attributes: ours
                return self._describe(study, sources)
            dirs = [d.name.lower() for d in study.directions]
            if self.evaluator.measured and stored is not None:
                # before 2026-12-07 every measured campaign recorded the CPU's source here
                stored = {**stored, "cost": sources["cost"]}
            if stored != sources or dirs != self.directions:
                raise ConfigError(
                    f"campaign {self.campaign.name!r} already has screened trials from "
                    f"sources {stored} (objectives {study.metric_names}); [screen] now gives "
                    f"{sources} (objectives {self.metric_names}); use a new campaign name to "
                    "screen with other sources",
                    key="screen",
                    path=self.campaign.config.path,
                )
            return study
        wanted = [optuna.study.StudyDirection[d.upper()] for d in self.directions]
        study = optuna.create_study(
            storage=storage, study_name=name, directions=wanted, load_if_exists=True
        )
        return self._describe(study, sources)

    def _describe(self, study: optuna.Study, sources: dict[str, Any]) -> optuna.Study:
        """Write the screen study's metric names and cosearch attributes."""
        import warnings

        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(self.metric_names)
        study.set_user_attr("cosearch.campaign", self.campaign.name)
        study.set_user_attr("cosearch.role", "screen")
        study.set_user_attr("cosearch.sources", sources)
        study.set_user_attr("cosearch.constraints", [str(c) for c in self.constraints])
        return study

    def _study_id(self, name: str) -> int:
        with self.campaign.store.engine.connect() as conn:
            return study_id_of(conn, name)

    def count(self) -> int:
        """COMPLETE screen trials (one SQL count)."""
        from cosearch.store.queries import state_counts

        return state_counts(self.campaign.store.engine, self._study_id(self.study.study_name))[
            "COMPLETE"
        ]

    # -- screening ----------------------------------------------------------------------------
    def screen(
        self, n: int, *, batch_size: int | None = None, progress: bool = False
    ) -> ScreenSummary:
        """Score ``n`` random candidates with the screen sources; write them in batches."""
        if n < 1:
            raise ConfigError(f"the number of candidates to screen must be >= 1; got {n}")
        t0 = time.perf_counter()
        c = self.campaign
        study = self.study
        before = self.count()
        rng = np.random.default_rng(self._round_seed(before))
        names = c.config.metric_names
        writer = BatchWriter(
            c.store, study, c.campaign_id, batch_size=batch_size or self.config.batch_size
        )
        known: set[str] = set()
        # leave=False: between a campaign's rounds only its own bar stays on screen
        bar = _bar(n, c.name + " screen", "cand", leave=False) if progress else None
        screened = failed = 0
        try:
            for _ in range(n):
                raise_if_interrupted()
                params = {**c.network.sample(rng), **c.hardware.sample(rng)}
                try:
                    record = self._record(params, known, names)
                except (KeyboardInterrupt, SystemExit, CosearchInputError):
                    raise  # bad input (a dataset that cannot be read) ends the screen, as run()
                except Exception:  # noqa: BLE001 - a bad candidate is skipped, as run() fails it
                    record = None
                if record is None:
                    failed += 1
                else:
                    writer.add(record)
                    screened += 1
                if bar is not None:
                    bar.update(1)
            writer.flush()
        except (KeyboardInterrupt, CosearchInputError):
            # keep what was scored before the Ctrl-C (or the bad input); the write is one
            # transaction, so a second Ctrl-C during it leaves the study as it was, never half
            # a batch
            writer.flush()
            raise
        finally:
            if bar is not None:
                bar.close()
        if screened == 0 and failed:
            raise CosearchError(f"all {failed} screened candidates failed to evaluate")
        return ScreenSummary(screened, failed, before + screened, time.perf_counter() - t0)

    def _round_seed(self, before: int) -> np.random.SeedSequence:
        """A screening round's seed: the campaign seed and the number of candidates screened
        before it, so a resumed campaign continues the sequence. A round that starts from a
        count another round already started from (a second worker at the same moment, or a
        round that scored nothing) also gets that round's ordinal, so it draws other
        candidates."""
        c = self.campaign
        again = start_ordinal(c.store, self.study, "cosearch.screen_rounds", before)
        return np.random.SeedSequence([c.config.seed, 1, before] + ([again] if again else []))

    def _record(self, params: dict[str, Any], known: set[str], names: list[str]) -> Any:
        from cosearch.spaces.onnx_io import model_to_bytes, strip_weights

        c = self.campaign
        arch = c.network.build(params)
        acc = c.hardware.build(params)
        ev = self.evaluator.evaluate(arch, acc)
        values = ev.metrics.values_of(self.metric_names)
        if any(np.isnan(values)):
            return None
        onnx = None
        if arch.digest not in known and not c.store.has_architecture(arch.digest):
            onnx = model_to_bytes(strip_weights(arch.onnx()))
        known.add(arch.digest)
        violations = [x.violation(ev.metrics[x.metric].value) for x in self.constraints]
        violations.append(float(len(ev.cost.violations)))
        return evaluation_record(
            {k: params[k] for k in c.distributions},
            c.distributions,
            arch,
            onnx,
            acc,
            ev.metrics,
            values,
            violations,
            arch_string=c._arch_string(arch.genotype),
            hw_violations=ev.cost.violations,
            user_attrs={"fidelity": trial_fidelity(ev.metrics, names)},
        )

    # -- promotion ----------------------------------------------------------------------------
    def candidates(self, k: int) -> tuple[list[FrozenTrial], int]:
        """The ``k`` most promising screen trials never promoted (see
        :func:`cosearch._pareto.promotion_order`), and how many unpromoted remain in all."""
        c = self.campaign
        engine = c.store.engine
        sid = self._study_id(self.study.study_name)
        main_id = self._study_id(c.name)
        table = objective_table(engine, sid, len(self.objectives))
        if not len(table.trial_ids):
            return [], 0
        cids, cvals = constraint_values(engine, sid)
        total = dict(zip(cids.tolist(), (sum(max(v, 0.0) for v in vs) for vs in cvals)))
        viol = np.array([total.get(int(t), 0.0) for t in table.trial_ids])
        taken = param_keys(engine, main_id)
        # a promotion that measured nothing (Ctrl-C, its worker died or lost the database, or
        # it failed before it had parameters) leaves the candidate available, parameters and all
        failed = user_attr_values(engine, main_id, SCREENED_FROM, state=TrialState.FAIL)
        reasons = user_attr_values(engine, main_id, "fail_reason", state=TrialState.FAIL)
        unscored = {
            tid
            for tid in failed
            if tid not in taken or str(reasons.get(tid, "")).startswith(("interrupted", LOST))
        }
        promoted = {
            int(v)
            for tid, v in user_attr_values(engine, main_id, SCREENED_FROM).items()
            if tid not in unscored
        }
        numbers = trial_numbers(engine, sid, table.trial_ids)
        fresh = ~np.isin(numbers, np.fromiter(promoted, dtype=np.int64, count=len(promoted)))
        ids, values, viol = table.trial_ids[fresh], table.values[fresh], viol[fresh]
        available = int(fresh.sum())
        if k <= 0:
            return [], available
        taken_keys = {key for tid, key in taken.items() if tid not in unscored}
        chosen: list[int] = []
        # order a margin past k: some candidates repeat parameters already scored
        order = promotion_order(values, self.directions, viol, limit=2 * k + 16)
        for start in range(0, len(order), max(4 * k, 64)):
            chunk = [int(ids[i]) for i in order[start : start + max(4 * k, 64)]]
            keys = param_keys(engine, sid, chunk)
            for tid in chunk:
                key = keys.get(tid)
                if key in taken_keys:
                    continue
                taken_keys.add(key)  # type: ignore[arg-type]
                chosen.append(tid)
                if len(chosen) == k:
                    break
            if len(chosen) == k:
                break
        return load_trials(engine, chosen), available

    def queue(self, k: int, *, target: int | None = None) -> tuple[list[int], int]:
        """Queue the ``k`` most promising unpromoted candidates as WAITING trials of the
        campaign's study, their parameters fixed, under the claim lock (two promoting processes
        take different ones). With ``target``, no more than it leaves room for beside the
        COMPLETE, RUNNING and WAITING trials. Returns (their trial ids, candidates left)."""
        from cosearch.store._locks import store_lock
        from cosearch.store.queries import state_counts

        c = self.campaign
        storage = study_storage(c.study)
        main_id = storage.get_study_id_from_name(c.name)
        self.study  # noqa: B018 - opened before the claim lock: opening takes a lock of its own
        with store_lock(c.store.engine, c.store.url, f"cosearch-claim:{c.name}"):
            if target is not None:
                n = state_counts(c.store.engine, main_id)
                k = min(k, target - n["COMPLETE"] - n["RUNNING"] - n["WAITING"])
            picked, available = self.candidates(k)
            queued = [
                create_waiting_trial(
                    storage,
                    main_id,
                    user_attrs={
                        SCREENED_FROM: t.number,
                        "screen_values": dict(zip(self.metric_names, t.values)),
                    },
                    # Optuna's enqueue_trial mechanism: suggest_* return these values
                    fixed_params=t.params,
                )
                for t in picked
            ]
        return queued, available - len(queued)

    def _claim(self, trial_id: int, worker: str) -> bool:
        """Start the queued trial ``trial_id`` for ``worker``; False when another process
        started it first."""
        from cosearch._workers import mark_claimed
        from cosearch.store._locks import store_lock

        c = self.campaign
        storage = study_storage(c.study)
        with store_lock(c.store.engine, c.store.url, f"cosearch-claim:{c.name}"):
            if storage.get_trial(trial_id).state != TrialState.WAITING:
                return False
            if not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                return False
            mark_claimed(c.store, storage, c._study_id(), trial_id, worker, c.grace_s)
            return True

    def promote(self, k: int, *, progress: bool = False) -> PromoteSummary:
        """Queue the ``k`` most promising unpromoted screen trials (:meth:`queue`) and score
        them with ``[evaluate]``. A Ctrl-C leaves the ones not started queued: ``run``
        measures queued trials first."""
        from cosearch._workers import Heartbeat
        from cosearch.store import worker_id

        if k < 1:
            raise ConfigError(f"the number of candidates to promote must be >= 1; got {k}")
        t0 = time.perf_counter()
        c = self.campaign
        study = c.study
        me = worker_id()
        queued, left = self.queue(k)
        heartbeat = Heartbeat(c.store, me, c.heartbeat_s)
        bar = _bar(len(queued), c.name + " promote", "trial") if progress else None
        done = failed = 0
        numbers = []
        try:
            for tid in queued:
                if not self._claim(tid, me):  # another worker is measuring it
                    continue
                trial = c._run_claimed(study, tid, heartbeat)
                numbers.append(trial.number)
                if trial.state == TrialState.COMPLETE:
                    done += 1
                else:
                    failed += 1
                if bar is not None:
                    bar.update(1)
        finally:
            heartbeat.close()
            if bar is not None:
                bar.close()
        return PromoteSummary(done, failed, left, tuple(numbers), time.perf_counter() - t0)


def _bar(total: int, desc: str, unit: str, leave: bool = True) -> Any:
    import sys

    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.25,
        leave=leave,
    )
