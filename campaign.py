"""Campaign: config -> Optuna study + spaces + evaluator + strategy + store; run and resume."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from cosearch._interrupt import latched_interrupts, raise_if_interrupted
from cosearch._pareto import IncrementalFront, nondominated_mask
from cosearch._report import (
    CONSTRAINTS_KEY,
    FidelityFront,
    fidelity_fronts,
    is_feasible,
    least_violating_trials,
    pareto_trials,
)
from cosearch._workers import (
    DEFAULT_GRACE_S,
    DEFAULT_INTERVAL_S,
    DEFAULT_RECONNECT_S,
    INTERRUPTED,
    LOST,
    SCREENED_FROM,
    Claim,
    Heartbeat,
    Outage,
    claim_trial,
    recover_stale,
    start_ordinal,
    unstarted_claims,
)
from cosearch.config import CampaignConfig, load_config
from cosearch.errors import ConfigError, CosearchError, CosearchInputError
from cosearch.evaluate import Evaluator, Measurement
from cosearch.search import SamplerStrategy, WeightSharingStrategy, get_strategy
from cosearch.spaces import get_hardware_space, get_space
from cosearch.spaces.onnx_io import model_to_bytes, strip_weights
from cosearch.store import Store, open_store, worker_id
from cosearch.store._locks import store_lock
from cosearch.store._optuna_compat import study_storage
from cosearch.store.layer_cache import LayerCostCache

__all__ = ["Campaign", "RunSummary", "CONSTRAINTS_KEY"]

if TYPE_CHECKING:
    from cosearch._screening import PromoteSummary, Screener, ScreenSummary

#: how many trials in a row may fail before a run gives up
MAX_CONSECUTIVE_FAILURES = 20

_PACKAGES = ("optuna", "onnx", "onnxruntime", "sqlalchemy", "numpy", "torch", "scikit-learn")


def _versions() -> dict[str, str]:
    out = {"cosearch": _own_version(), "python": sys.version.split()[0]}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _own_version() -> str:
    from cosearch import __version__

    return __version__


@dataclass(frozen=True)
class RunSummary:
    """What one ``Campaign.run`` call did."""

    completed: int  # COMPLETE trials in the campaign at the end
    ran: int  # trials this call completed
    failed: int  # trials this call failed
    interrupted_marked: int  # stale trials of dead workers marked FAIL at start
    seconds: float


#: study attribute: the folder of the TOML file the campaign was started from
CONFIG_DIR_KEY = "cosearch.config_dir"
#: study attribute: the exact models behind the campaign's sources (Evaluator.model_versions)
MODELS_KEY = "cosearch.models"


class Campaign:
    """One co-design campaign: a named Optuna study in a store, plus what scores its trials.

    Build it with :meth:`from_toml` or :meth:`from_config`. ``run`` creates the study on first
    use and resumes it afterwards; a campaign whose stored configuration differs (other
    spaces, objectives, sources or strategy) is refused rather than mixed.
    """

    def __init__(
        self,
        config: CampaignConfig,
        store: Store,
        *,
        heartbeat_s: float = DEFAULT_INTERVAL_S,
        grace_s: float = DEFAULT_GRACE_S,
        poll_s: float = 0.5,
        reconnect_s: float = DEFAULT_RECONNECT_S,
    ) -> None:
        self.config = config
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.grace_s = grace_s
        self.reconnect_s = reconnect_s
        self.poll_s = poll_s
        self.network = get_space(config.network, **config.space_options())
        self.hardware = get_hardware_space(config.hardware, **config.hardware_ranges)
        self.evaluator = Evaluator(
            self.network,
            self.hardware,
            accuracy=config.accuracy_source,
            cost=config.cost_source,
            latency=config.latency_source,
            store=store,
            seed=config.seed,
            trusted=not config.stored,
        )
        if self.evaluator.trained is not None:
            self.evaluator.trained.lookup = self.trained_before
        if "accuracy_std" in {*config.metric_names, *(c.metric for c in config.constraints)}:
            if "accuracy_std" not in self.evaluator.metric_names():
                raise ConfigError(
                    f"accuracy_std needs an accuracy predictor that gives one (kinds gp, "
                    f"ensemble); {config.accuracy_source!r} gives none",
                    key="evaluate.accuracy",
                    path=config.path,
                )
        persist = config.layer_cache == "store" or (
            config.layer_cache == "auto" and self.evaluator.cost_model.persist_layer_costs
        )
        if persist:
            self.evaluator.cost_cache = LayerCostCache(store)
        self.strategy = get_strategy(config.strategy, **config.strategy_options)
        self.distributions = {**self.network.distributions(), **self.hardware.distributions()}
        self._study: optuna.Study | None = None
        self._campaign_id: int | None = None
        self._known_archs: set[str] = set()
        self._screener: Screener | None = None
        self._created = False  # this object created the campaign (see run)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<Campaign {c.name!r}: {c.network} x {c.hardware}, strategy {c.strategy}, "
            f"{c.trials} trials, storage {self.store.display_url}>"
        )

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, config: CampaignConfig, storage: str | None = None, **options: float
    ) -> Campaign:
        """``storage`` wins over the config's ``storage`` key, which wins over
        ``$COSEARCH_STORAGE``, which wins over ``sqlite:///cosearch.db``. ``options`` are
        ``heartbeat_s``, ``grace_s``, ``poll_s`` and ``reconnect_s`` (how long the run and
        worker loops wait for a PostgreSQL server that went away; 0 ends them at once)."""
        url = storage or config.storage
        return cls(config, open_store(url), **options)

    @classmethod
    def from_toml(cls, path: str | Path, storage: str | None = None, **options: float) -> Campaign:
        return cls.from_config(load_config(path), storage=storage, **options)

    @classmethod
    def from_store(cls, name: str, storage: str | None = None, **options: float) -> Campaign:
        """Join an existing campaign: its configuration is read back from the store."""
        store = open_store(storage, create=False)
        return cls(stored_config(store, store.require_campaign(name)), store, **options)

    @property
    def name(self) -> str:
        return self.config.name

    # -- the study --------------------------------------------------------------------------
    @property
    def study(self) -> optuna.Study:
        """The campaign's Optuna study, created (with its campaign row) on first access."""
        if self._study is None:
            self._study = self._open_study()
        return self._study

    def _open_study(self) -> optuna.Study:
        # under a store lock: workers started together on an empty store (`cosearch worker
        # --config`) must not both take the campaign for new, nor see its study half made
        with store_lock(self.store.engine, self.store.url, f"cosearch-open:{self.name}"):
            return self._open_study_locked()

    def _open_study_locked(self) -> optuna.Study:
        existing = self.store.campaign(self.name)
        self._created = existing is None
        mine = self._identity()
        if existing is not None:
            import json

            stored = json.loads(existing["config_json"])
            if "network_model" not in stored:  # stored before the model's digest was kept
                mine.pop("network_model", None)
            diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
            if diff == ["network_model"]:
                raise ConfigError(
                    f"the model file {self.config.network_options.get('path')!r} is not the "
                    f"network campaign {self.name!r} was started with (its structure "
                    "differs); use a new name to search the new model",
                    key="space.net.path",
                    path=self.config.path,
                )
            if diff:
                raise ConfigError(
                    f"campaign {self.name!r} already exists in {self.store.display_url} with a "
                    f"different {', '.join(diff)}; use a new name to start another campaign "
                    f"(or `cosearch delete {self.name} --yes` to start this one over)",
                    key=diff[0],
                    path=self.config.path,
                )
        study = optuna.create_study(
            storage=self.store.optuna_storage,
            study_name=self.name,
            directions=self.config.directions,
            load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=0),  # replaced in run()
        )
        if existing is None:
            with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.config.metric_names)
            study.set_user_attr("cosearch.campaign", self.name)
            study.set_user_attr("cosearch.constraints", [str(c) for c in self.config.constraints])
            study.set_user_attr(
                "cosearch.sources",
                {
                    "accuracy": self.config.accuracy_source,
                    "cost": self.evaluator.cost_source,
                    "latency": self.config.latency_source,
                },
            )
            study.set_user_attr(MODELS_KEY, self.evaluator.model_versions())
            if self.config.base_dir is not None:
                study.set_user_attr(CONFIG_DIR_KEY, self.config.base_dir)
        self._campaign_id = self.store.add_campaign(
            self.name, self.name, self.config.text_to_store(), mine, _versions()
        )
        return study

    def _check_models(self, study: optuna.Study) -> None:
        """Refuse to add trials priced by another cost model version, or scored by another
        predictor of the same id, than the campaign's first trials: its front would compare
        the two kinds of numbers as one. Then load the datasets of ``train:`` sources, so
        that a bad one is refused before any trial starts."""
        self._check_versions(study)
        trained = [("evaluate.accuracy", self.evaluator.trained)]
        screen = self.config.screen
        if screen is not None and (screen.accuracy or "").startswith("train:"):
            trained.append(("screen.accuracy", self.screener.evaluator.trained))
        for key, source in trained:
            if source is None:
                continue
            try:
                source.prepare()
            except ConfigError as exc:
                raise ConfigError(str(exc.args[0]), key=key, path=self.config.path) from exc

    def _check_versions(self, study: optuna.Study) -> None:
        stored = study.user_attrs.get(MODELS_KEY)
        now = self.evaluator.model_versions()
        if stored is None:  # campaigns made before this attribute kept only the cost source
            cost = (study.user_attrs.get("cosearch.sources") or {}).get("cost")
            stored = {} if cost is None else {"cost": cost}
            stored.update(self._predictors_replaced_since_the_start(now))
        for key, then in sorted(stored.items()):
            if key not in now or now[key] == then:
                continue
            if key == "cost" and self.evaluator.measured:
                if " on " not in then or " on " not in now[key]:
                    continue  # recorded before the timing machine was (2026-12-07)
                raise ConfigError(
                    f"campaign {self.name!r} was timed with {then}; here it would be "
                    f"{now[key]}: new trials would mix two machines' timings in one front. "
                    "Use a new name to measure on this machine",
                    key="cost",
                    path=self.config.path,
                )
            if key == "cost":
                raise ConfigError(
                    f"campaign {self.name!r} was priced by {then}, and this cosearch prices "
                    f"with {now[key]}; new trials would mix the two models' numbers in one "
                    "front. Use a new name to search with the new model",
                    key="cost",
                    path=self.config.path,
                )
            if key == "train":
                raise ConfigError(
                    f"campaign {self.name!r} trained its candidates with {then}, and this "
                    f"cosearch trains with {now[key]}; new trials would mix the two recipes' "
                    "accuracies in one front. Use a new name to search with the new recipe",
                    key="accuracy",
                    path=self.config.path,
                )
            pid = key.split(":", 1)[1]
            role = "accuracy" if self.config.accuracy_source == key else "latency"
            raise ConfigError(
                f"predictor {pid!r} was replaced (the stored one was made {now[key]}; campaign "
                f"{self.name!r} started with the one made {then}); new trials would mix the two "
                "predictors' values. Use a new campaign name, or store the new predictor under "
                "another id",
                key=role,
                path=self.config.path,
            )

    def _predictors_replaced_since_the_start(self, now: dict[str, str]) -> dict[str, str]:
        """For a campaign made before ``MODELS_KEY``: its predictor sources whose stored
        predictor was made after the campaign began (replaced with ``--replace`` since),
        each as ``{source: "before <campaign start>"}``. Both times are the store's UTC."""
        row = self.store.campaign(self.name)
        if row is None or row.get("created_at") is None:
            return {}
        began = row["created_at"].replace(tzinfo=None)
        out = {}
        for key, made in now.items():
            if key.startswith("predictor:") and made:
                if dt.datetime.fromisoformat(made).replace(tzinfo=None) > began:
                    out[key] = f"before {began.isoformat(timespec='seconds')} UTC"
        return out

    def _identity(self) -> dict[str, Any]:
        """The config's identity, plus the structure digest of a network read from a file
        (``onnx_file``): the same path with another model in it is another campaign."""
        out = dict(self.config.identity())
        model = getattr(self.network, "model_digest", None)
        if model:
            out["network_model"] = model
        return out

    @property
    def campaign_id(self) -> int:
        self.study  # noqa: B018 - creates the campaign row
        assert self._campaign_id is not None
        return self._campaign_id

    def trained_before(self, digest: str, source: str, fidelity: float) -> float | None:
        """The accuracy from ``source`` (a ``train:`` source) at ``fidelity`` or above (not
        stopped early) that a finished trial of this campaign recorded for architecture
        ``digest``, or None (also when the store cannot be read now: the candidate is then
        trained, which gives the same value)."""
        from cosearch.store.queries import measured_value

        try:
            return measured_value(
                self.store.engine, self.campaign_id, digest, "accuracy", source, fidelity
            )
        except sa.exc.DBAPIError:
            return None

    def early_stop_rule(self) -> Callable[[Mapping[str, Measurement], int, float], bool]:
        """The ``early_stop = "dominated"`` rule for one candidate (``[evaluate]``).

        A candidate's costs are known before it trains. After epoch ``e`` (not the last) with
        test accuracy ``a``, its training stops when
        - it violates a constraint on a metric already known (it cannot reach the feasible
          front whatever its accuracy), or
        - from the middle epoch on (``e >= epochs / 2``; earlier accuracies rank the final
          ones poorly), it would end dominated even if it closed as large a share of its
          remaining error, from epoch ``e`` to the end, as any candidate trained to the end
          with the same source has closed: ``a + g (100 - a) < A``, where ``g`` is the largest
          ``(final - a_e) / (100 - a_e)`` of those candidates and ``A`` the final accuracy of
          a finished feasible trial at least as good on every other objective. ``g`` needs
          at least :data:`EARLY_STOP_MIN_CURVES` such candidates; with fewer, only the
          first rule applies.
        The stopped trial is COMPLETE with the accuracy it had, at fidelity ``e / epochs``,
        so it leaves the campaign's default front (the highest fidelity) but still tells the
        sampler that the region is poor. The finished trials are read from the store once per
        candidate, at its first epoch.
        """
        trained = self.evaluator.trained
        assert trained is not None
        others = [o for o in self.config.objectives if o.metric != "accuracy"]
        known = [c for c in self.config.constraints if c.metric != "accuracy"]
        finished: _FullyTrained | None = None

        def at_least_as_good(ref: list[float], mine: list[float]) -> bool:
            for o, r, m in zip(others, ref, mine):
                if (r > m) if o.direction == "minimize" else (r < m):
                    return False
            return True

        def rule(metrics: Mapping[str, Measurement], epoch: int, accuracy: float) -> bool:
            nonlocal finished
            if any(c.metric in metrics and c.violation(metrics[c.metric].value) > 0 for c in known):
                return True
            if any(o.metric not in metrics for o in others):
                return False
            if finished is None:
                finished = self._fully_trained(trained.source, trained.epochs, others)
            if 2 * epoch < trained.epochs or finished.curves < EARLY_STOP_MIN_CURVES:
                return False
            best = accuracy + finished.max_gain[epoch - 1] * max(100.0 - accuracy, 0.0)
            mine = [metrics[o.metric].value for o in others]
            return any(
                final > best and at_least_as_good(values, mine)
                for final, values in finished.feasible
            )

        return rule

    def _fully_trained(self, source: str, epochs: int, others: list[Any]) -> _FullyTrained:
        """What :meth:`early_stop_rule` needs of the campaign's COMPLETE trials trained for all
        ``epochs`` with ``source``."""
        from cosearch.store.queries import objective_table, user_attr_values

        engine, study_id = self.store.engine, self._study_id()
        done = TrialState.COMPLETE
        curves = user_attr_values(engine, study_id, "learning_curve", state=done)
        stopped = user_attr_values(engine, study_id, "stopped_at_epoch", state=done)
        sources = user_attr_values(engine, study_id, "sources", state=done)
        table = objective_table(engine, study_id, len(self.config.objectives))
        names = self.config.metric_names
        columns = [names.index(o.metric) for o in others]
        full = {
            tid: [float(v) for v in curve]
            for tid, curve in curves.items()
            if isinstance(curve, list)
            and len(curve) == epochs
            and tid not in stopped
            and (sources.get(tid) or {}).get("accuracy") == source
        }
        gains = np.array(
            [[(c[-1] - v) / max(100.0 - v, 1e-9) for v in c] for c in full.values()]
        ).reshape(-1, epochs)
        feasible = [
            (full[int(tid)][-1], [float(values[c]) for c in columns])
            for tid, values, ok in zip(table.trial_ids, table.values, table.feasible)
            if ok and int(tid) in full
        ]
        max_gain = gains.max(axis=0).tolist() if len(gains) else [0.0] * epochs
        return _FullyTrained(len(full), max_gain, feasible)

    def _study_id(self) -> int:
        return self.store.optuna_storage.get_study_id_from_name(self.name)

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def count(self, state: TrialState = TrialState.COMPLETE) -> int:
        """Trials of the campaign's study in ``state`` (one SQL count on an RDB store)."""
        from cosearch.store.queries import rdb_engine, state_counts, study_id_of

        engine = rdb_engine(self.study)
        if engine is None:
            return len(self.trials((state,)))
        with engine.connect() as conn:
            sid = study_id_of(conn, self.name)
        return state_counts(engine, sid)[state.name]

    def _history(self, study: optuna.Study) -> tuple[int, int, np.ndarray]:
        """How many trials the study holds (any state), how many are COMPLETE, and the
        objective values of the feasible COMPLETE ones that no other dominates (one row each).

        With SQL on an RDB store: building every trial as a FrozenTrial made a resume (and
        each worker's start) take about 1 ms a trial, 12 s at 12,000 trials."""
        from cosearch.store.queries import objective_table, rdb_engine, state_counts, study_id_of

        dirs = self.config.directions
        engine = rdb_engine(study)
        if engine is None:
            trials = self.trials()
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            values = np.array([t.values for t in complete if is_feasible(t)], dtype=float)
            values = values.reshape(len(values), len(dirs))
            return len(trials), len(complete), values[nondominated_mask(values, dirs)]
        with engine.connect() as conn:
            sid = study_id_of(conn, study.study_name)
        counts = state_counts(engine, sid)
        table = objective_table(engine, sid, len(dirs))
        values = table.values[table.feasible]
        return (
            sum(counts.values()),
            counts[TrialState.COMPLETE.name],
            values[nondominated_mask(values, dirs)],
        )

    # -- recovery ---------------------------------------------------------------------------
    def mark_interrupted(self) -> int:
        """Mark stale RUNNING trials FAIL, drop their cosearch rows and queue one retry each.

        Stale means: the worker's ``host:pid`` is on this host and the pid is gone, or its
        heartbeat is older than the grace period (see _workers.py). Returns how many.
        """
        study = self.study  # opened first: opening takes a store lock of its own
        with store_lock(self.store.engine, self.store.url, f"cosearch-claim:{self.name}"):
            return recover_stale(study, self.store, grace_s=self.grace_s)

    # -- running ----------------------------------------------------------------------------
    def run(
        self,
        n_trials: int | None = None,
        *,
        progress: bool = False,
        callback: Callable[[FrozenTrial], None] | None = None,
    ) -> RunSummary:
        """Run until the campaign has ``n_trials`` COMPLETE trials (default: the config's).

        Resuming is the same call, and so is joining as one of many workers: each trial slot
        is claimed under a store lock, so all workers together stop at exactly ``n_trials``
        COMPLETE trials. Stale trials of dead workers are marked FAIL (and retried once) and
        do not count. Raises CosearchError after MAX_CONSECUTIVE_FAILURES failures in a row.

        Bad input the strategy finds only when it starts (an OFA supernet for a dataset of
        other channels; a marl group that matches no parameter is refused with the config)
        removes the campaign again
        when this call created it and it holds no COMPLETE trial, so the corrected file runs
        under the same name instead of being refused as a different campaign.
        """
        target = _trial_count(self.config.trials if n_trials is None else n_trials)
        try:
            with latched_interrupts():
                return self._run(target, progress=progress, callback=callback)
        except CosearchInputError:
            self._forget_if_empty()
            raise

    def _forget_if_empty(self) -> None:
        """Delete the campaign if this object created it and nothing COMPLETE came of it."""
        if not self._created or self._study is None:
            return
        # a COMPLETE trial is data; a RUNNING one may be a worker that joined meanwhile
        if self._study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            return
        try:
            self.store.delete_campaign(self.name)
        except CosearchError:  # keep it: the error being raised still says what is wrong
            return
        self._study, self._campaign_id, self._created = None, None, False

    def _run(
        self,
        target: int,
        *,
        progress: bool,
        callback: Callable[[FrozenTrial], None] | None,
    ) -> RunSummary:
        t0 = time.perf_counter()
        study = self.study
        self._check_models(study)
        history, done, feasible = self._history(study)
        # seeded by the campaign seed and the history length: a resumed run continues the
        # sequence instead of replaying the first trials; a run that starts from the same
        # length as another (workers started together) also gets its ordinal, or both would
        # propose the same candidates. A run with nothing left to do (the target reached)
        # takes no ordinal: it would change what the next real start from this length draws
        again = (
            start_ordinal(self.store, study, "cosearch.run_starts", history) if done < target else 0
        )
        entropy = [self.config.seed, history] + ([again] if again else [])
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        if isinstance(self.strategy, WeightSharingStrategy):
            from cosearch._context import SearchContext
            from cosearch.store._locks import LockHeld

            ctx = SearchContext(self, target, seed, progress=progress, callback=callback)
            outage = Outage(self.store, self.reconnect_s)
            recovered: list[int] = []  # per pass: the RUNNING trials failed before it ran
            while True:
                try:
                    self._run_weight_sharing(study, ctx, recovered)
                    break
                except LockHeld:
                    raise CosearchInputError(
                        f"campaign {self.name!r} ({self.config.strategy}) is already running "
                        "in another process; a weight-sharing search runs in one process (run "
                        "it again when that one ends to resume)"
                    ) from None
                except Exception as exc:
                    if not outage.wait(exc):
                        raise
                    # the database is back: resume from the last checkpoint as a new run
                    # would (the trial being reported is failed); the search lost at most
                    # the work since that checkpoint
                    outage.ok()
            marked = recovered[0]  # a killed run's; later passes fail the trials we lost
            ctx.failed += sum(recovered[1:])
            self.attach_artifacts()
            return ctx.summary(time.perf_counter() - t0, interrupted_marked=marked)
        assert isinstance(self.strategy, SamplerStrategy)
        attach = getattr(self.strategy, "attach", None)
        if attach is not None:  # strategies that checkpoint learned state (search/marl.py)
            attach(self.store, self.campaign_id)
        study.sampler = self.strategy.sampler(seed=seed)
        front = IncrementalFront(self.config.directions)
        for values in feasible:
            front.add(values)
        bar = self._progress(done, target) if progress else None
        me = worker_id()
        heartbeat = Heartbeat(self.store, me, self.heartbeat_s)
        ran = failed = streak = marked = 0
        outage = Outage(self.store, self.reconnect_s)

        try:
            while True:
                raise_if_interrupted()
                try:
                    if outage.pending:
                        failed += self._fail_own(study, me, outage)
                    claim = self._claim(study, target, me)
                    marked += claim.recovered
                    if bar is not None and claim.complete != bar.n:
                        bar.update(claim.complete - bar.n)
                    if claim.state == "done":
                        done = claim.complete
                        break
                    if claim.state == "wait":  # the remaining slots are running elsewhere
                        outage.ok()
                        time.sleep(self.poll_s)
                        continue
                    assert claim.trial_id is not None
                    trial = self._run_claimed(study, claim.trial_id, heartbeat)
                except Exception as exc:
                    if outage.wait(exc):
                        continue
                    raise
                outage.ok()
                if trial.state == TrialState.COMPLETE:
                    ran += 1
                    streak = 0
                    if is_feasible(trial):
                        front.add(trial.values)
                    if bar is not None:
                        bar.update(1)
                else:
                    failed += 1
                    streak += 1
                    if streak >= MAX_CONSECUTIVE_FAILURES:
                        reason = trial.user_attrs.get("fail_reason", "unknown")
                        raise CosearchError(f"{streak} trials in a row failed; last: {reason}")
                if callback is not None:
                    callback(trial)
                if bar is not None:
                    bar.set_postfix_str(self._postfix(front, failed), refresh=False)
        finally:
            heartbeat.close()
            if bar is not None:
                bar.close()
        self.attach_artifacts()
        return RunSummary(done, ran, failed, marked, time.perf_counter() - t0)

    def attach_artifacts(self) -> int:
        """Dashboard artifacts for the trials the config's ``artifacts`` setting selects."""
        from cosearch._artifacts import front_artifacts

        if self.config.artifacts == "none":
            return 0
        return front_artifacts(self, self.pareto())

    def _progress(self, done: int, target: int) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=target,
            initial=done,
            desc=self.name,
            unit="trial",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.25,
        )

    def _postfix(self, front: IncrementalFront, failed: int) -> str:
        best = front.best()
        parts = [f"front={len(front)}"]
        if best is not None:
            parts += [f"{m}={v:.4g}" for m, v in zip(self.config.metric_names, best)]
        if failed:
            parts.append(f"failed={failed}")
        return " ".join(parts)

    def _claim(self, study: optuna.Study, target: int, me: str, create: bool = True) -> Claim:
        """:func:`claim_trial`; a Ctrl-C that cuts it short fails the trial it had claimed,
        which would otherwise stay RUNNING until a later start found this process dead."""
        stop: BaseException
        try:
            return claim_trial(study, self.store, target, me, grace_s=self.grace_s, create=create)
        except (KeyboardInterrupt, SystemExit) as exc:
            stop = _detached(exc)
        _release_connections(study_storage(study))
        for trial_id in unstarted_claims(study, self.store, me):
            self._fail(study, None, trial_id, INTERRUPTED)
        raise stop

    def _run_weight_sharing(self, study: optuna.Study, ctx: Any, recovered: list[int]) -> None:
        """One pass of a weight-sharing strategy's run; appends to ``recovered`` how many
        RUNNING trials a killed run (or a lost connection) had left, failed first."""
        from cosearch.store._locks import try_store_lock

        # one process trains the supernet: a second would run the same search again and add
        # its trials on top (a worker joining a darts campaign ended it at 9/8)
        with try_store_lock(self.store.engine, self.store.url, f"cosearch-ws:{self.name}"):
            # holding it, no other process runs this search: a RUNNING trial is one a killed
            # run left (SIGTERM, SIGKILL) or one whose report the database lost
            with store_lock(self.store.engine, self.store.url, f"cosearch-claim:{self.name}"):
                recovered.append(recover_stale(study, self.store, grace_s=0.0, retry=False))
            self.strategy.run(ctx)

    def _fail_own(self, study: optuna.Study, me: str, outage: Outage) -> int:
        """Fail the trials this process left RUNNING when the database went away (their
        results, if any, were lost with the connection; the loop runs no trial meanwhile) and
        queue each for a retry, as a dead worker's are (see recover_stale). Returns how many."""
        reason = f"{LOST}: {outage.reason}"
        n = 0
        # under the claim lock: another worker's claim may judge the same trials stale (their
        # heartbeat stopped with the database) and fail and requeue them; interleaved, the two
        # ended this worker (a write to a trial the other had just finished) or requeued none
        with store_lock(self.store.engine, self.store.url, f"cosearch-claim:{study.study_name}"):
            for trial_id in unstarted_claims(study, self.store, me):
                frozen = self._fail(study, None, trial_id, reason)
                if frozen.user_attrs.get("fail_reason") != reason:
                    continue  # finished before the outage, or failed and requeued by a judge
                n += 1
                if not {"retry_of", SCREENED_FROM} & set(frozen.user_attrs) and frozen.params:
                    study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})
        return n

    def _run_claimed(self, study: optuna.Study, trial_id: int, heartbeat: Heartbeat) -> FrozenTrial:
        """:meth:`_run_one` on a trial this process claimed, with its heartbeat running; a
        Ctrl-C fails it rather than leave it RUNNING for a later start."""
        stop: BaseException
        reason = INTERRUPTED
        try:
            raise_if_interrupted()
            heartbeat.begin(trial_id)
            return self._run_one(study, trial_id)
        except (KeyboardInterrupt, SystemExit) as exc:
            stop = _detached(exc)
        except Exception as exc:  # e.g. the heartbeat's first write: no RUNNING trial left
            reason, stop = f"{type(exc).__name__}: {exc}", exc
        finally:
            heartbeat.end(trial_id)
        _release_connections(study_storage(study))
        self._fail(study, None, trial_id, reason)
        raise stop

    def _run_one(
        self,
        study: optuna.Study,
        trial_id: int,
        given: Mapping[str, Measurement] | None = None,
        user_attrs: Mapping[str, Any] | None = None,
    ) -> FrozenTrial:
        """Suggest (or read back fixed) parameters, evaluate, record, tell. ``given`` holds
        metrics measured by the strategy itself (weight-sharing strategies)."""
        storage = study_storage(study)
        # None until optuna.Trial exists: building it runs the sampler's before_trial (where
        # marl learns from the finished trials), which can fail or be interrupted too
        trial: optuna.Trial | None = None
        stop: BaseException
        try:
            trial = optuna.Trial(study, trial_id)
            params = {
                name: _suggest(trial, name, dist) for name, dist in self.distributions.items()
            }
            arch = self.network.build(params)
            acc = self.hardware.build(params)
            early_stop = None
            if self.config.early_stop == "dominated" and self.evaluator.trained is not None:
                early_stop = self.early_stop_rule()
            ev = self.evaluator.evaluate(arch, acc, given=given, early_stop=early_stop)
            for key, value in {**ev.notes, **(user_attrs or {})}.items():
                storage.set_trial_user_attr(trial_id, key, value)
            onnx_bytes = None
            if arch.digest not in self._known_archs:
                if not self.store.has_architecture(arch.digest):
                    onnx_bytes = model_to_bytes(strip_weights(arch.onnx()))
            self.store.record_evaluation(
                trial_id, self.campaign_id, arch, onnx_bytes, acc, ev.metrics
            )
            self._known_archs.add(arch.digest)
            values = ev.metrics.values_of(self.config.metric_names)
            violations = [c.violation(ev.metrics[c.metric].value) for c in self.config.constraints]
            violations.append(float(len(ev.cost.violations)))
            storage.set_trial_user_attr(
                trial_id, "metrics", {k: m.value for k, m in ev.metrics.items()}
            )
            storage.set_trial_user_attr(
                trial_id, "sources", {k: m.source for k, m in ev.metrics.items()}
            )
            storage.set_trial_user_attr(
                trial_id,
                "architecture",
                {"digest": arch.digest, "string": self._arch_string(arch.genotype)},
            )
            storage.set_trial_user_attr(trial_id, "accelerator", acc.spec())
            if ev.cost.violations:
                storage.set_trial_user_attr(trial_id, "hw_violations", list(ev.cost.violations))
            # the list form under "constraints": Optuna >= 5 samplers and best_trials read it as
            # trial.constraints, and optuna-dashboard (0.21) reads only this form
            storage.set_trial_system_attr(trial_id, CONSTRAINTS_KEY, violations)
            if self.config.artifacts == "all":
                from cosearch._artifacts import trial_artifacts

                data = onnx_bytes or model_to_bytes(strip_weights(arch.onnx()))
                ids = trial_artifacts(
                    self, trial, data, acc, None if self.evaluator.measured else ev.cost
                )
                storage.set_trial_user_attr(trial_id, "artifacts", ids)
            return study.tell(trial, values)
        except CosearchInputError:
            self._fail(study, trial, trial_id, "bad input")
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            stop = _detached(exc)
        except Exception as exc:  # a failing candidate must not end the campaign
            return self._fail(study, trial, trial_id, f"{type(exc).__name__}: {exc}")
        _release_connections(storage)
        self._fail(study, trial, trial_id, INTERRUPTED)
        raise stop

    def _fail(
        self, study: optuna.Study, trial: optuna.Trial | None, trial_id: int, reason: str
    ) -> FrozenTrial:
        """Tell the trial FAIL with ``reason`` and drop its cosearch rows; a trial already
        finished (Ctrl-C landing just after its tell) stays as it was told. ``trial`` is None
        when the interrupt came before optuna.Trial existed."""
        storage = study_storage(study)
        frozen = storage.get_trial(trial_id)
        if frozen.state.is_finished():
            if frozen.state != TrialState.COMPLETE:  # failed under us by another worker: the
                self._discard(trial_id)  # rows we wrote describe no trial
            return frozen
        storage.set_trial_user_attr(trial_id, "fail_reason", reason[:500])
        self._discard(trial_id)
        return study.tell(trial if trial is not None else frozen.number, state=TrialState.FAIL)

    def _discard(self, trial_id: int) -> None:
        """Drop the trial's cosearch rows. That can delete its architecture row too (no
        other trial uses it), so this process must store the graph again next time."""
        self.store.discard_evaluations([trial_id])
        self._known_archs.clear()

    def _arch_string(self, genotype: Mapping[str, Any]) -> str:
        try:
            return self.network.to_string(genotype)
        except TypeError:
            return ""

    # -- multi-fidelity (cosearch._screening) ------------------------------------------------
    @property
    def screener(self) -> Screener:
        """The ``[screen]`` half of the campaign; ConfigError without a ``[screen]`` table."""
        if self._screener is None:
            from cosearch._screening import Screener

            if self.config.screen is None:
                raise ConfigError(
                    f"campaign {self.name!r} has no [screen] table; add one (cheap sources, "
                    "candidates, promote) to screen and promote",
                    key="screen",
                    path=self.config.path,
                )
            self._screener = Screener(self, self.config.screen)
        return self._screener

    @property
    def screen_study(self) -> optuna.Study:
        """The study of screened trials (``<name>:screen``), created on first access."""
        return self.screener.study

    def screen(
        self, n: int | None = None, *, batch_size: int | None = None, progress: bool = False
    ) -> ScreenSummary:
        """Score ``n`` (default ``[screen] candidates``) random candidates with the
        ``[screen]`` sources and write them, ``batch_size`` per transaction, as COMPLETE
        trials of the screen study (user attribute ``fidelity``; per-metric fidelities in
        the measurements). Candidates whose evaluation fails are skipped and counted.
        Raises ConfigError without a ``[screen]`` table."""
        self._check_models(self.study)
        with latched_interrupts():
            return self.screener.screen(
                self.config.screen.candidates if n is None else int(n),  # type: ignore[union-attr]
                batch_size=batch_size,
                progress=progress,
            )

    def promote(self, k: int | None = None, *, progress: bool = False) -> PromoteSummary:
        """Score the ``k`` (default ``[screen] promote``) most promising screened candidates
        never promoted before with the ``[evaluate]`` sources, as new trials of the campaign's
        study (user attribute ``screened_from``: the screen trial number), queued as WAITING
        trials first so that a Ctrl-C leaves the unstarted ones for the next run. Most promising:
        feasible first, by non-dominated rank on the screened objectives, then crowding
        distance; infeasible ones by total violation. Fewer than ``k`` when the screen runs
        out. Raises ConfigError without a ``[screen]`` table."""
        self._check_models(self.study)
        with latched_interrupts():
            return self.screener.promote(
                self.config.screen.promote if k is None else int(k),  # type: ignore[union-attr]
                progress=progress,
            )

    def run_screened(self, n_trials: int | None = None, *, progress: bool = False) -> RunSummary:
        """Screen and promote until the campaign's study has ``n_trials`` (default: the
        config's ``trials``) COMPLETE trials: measure a queued (WAITING) trial when there is
        one, else screen a round of ``[screen] candidates`` and queue its ``promote`` best.
        Workers may run it side by side: queueing stops at ``n_trials`` counting the trials
        running and queued, promoted trials of dead workers are marked FAIL (their candidates
        go back to the pool), and concurrent rounds draw different candidates. Raises
        CosearchError when three screening rounds in a row complete no trial and start none
        elsewhere (their promoted trials fail)."""
        from cosearch.store import worker_id

        target = _trial_count(self.config.trials if n_trials is None else n_trials)
        scr = self.screener
        assert self.config.screen is not None
        t0 = time.perf_counter()
        study = self.study
        self._check_models(study)
        me = worker_id()
        heartbeat = Heartbeat(self.store, me, self.heartbeat_s)
        bar = self._progress(self.count(), target) if progress else None
        ran = failed = marked = rounds = 0
        last = (-1, -1)  # the most (COMPLETE, COMPLETE + RUNNING) trials seen
        outage = Outage(self.store, self.reconnect_s)

        with latched_interrupts():
            try:
                while True:
                    raise_if_interrupted()
                    counted = rounds  # a round the database's outage cut short does not count
                    try:
                        if outage.pending:
                            failed += self._fail_own(study, me, outage)
                        claim = self._claim(study, target, me, create=False)
                        marked += claim.recovered
                        # progress: a trial completed, or other workers took the rounds' trials
                        # (running counts the one this claim just took: not progress by others)
                        mine = 1 if claim.state == "run" else 0
                        seen = (claim.complete, claim.complete + claim.running - mine)
                        if seen[0] > last[0] or seen[1] > last[1]:
                            last, rounds = (max(seen[0], last[0]), max(seen[1], last[1])), 0
                        if bar is not None and claim.complete != bar.n:
                            bar.update(claim.complete - bar.n)
                        if claim.state == "done":
                            break
                        if claim.state == "wait":  # the remaining slots are running elsewhere
                            outage.ok()
                            time.sleep(self.poll_s)
                            continue
                        if claim.state == "run":
                            assert claim.trial_id is not None
                            trial = self._run_claimed(study, claim.trial_id, heartbeat)
                            outage.ok()
                            if trial.state == TrialState.COMPLETE:
                                ran += 1
                                if bar is not None:
                                    bar.update(1)
                            else:
                                failed += 1
                            continue
                        if rounds >= 3:
                            raise CosearchError(
                                f"three screening rounds in a row completed no trial ({failed} "
                                "promoted trials failed)"
                            )
                        rounds += 1
                        scr.screen(self.config.screen.candidates, progress=progress)
                        scr.queue(self.config.screen.promote, target=target)
                        outage.ok()
                    except Exception as exc:
                        if outage.wait(exc):
                            rounds = counted
                            continue
                        raise
            finally:
                heartbeat.close()
                if bar is not None:
                    bar.close()
        self.attach_artifacts()
        return RunSummary(self.count(), ran, failed, marked, time.perf_counter() - t0)

    # -- results ----------------------------------------------------------------------------
    def pareto(self) -> list[FrozenTrial]:
        """COMPLETE, feasible trials of the campaign's study that no other such trial
        dominates, by first objective. When the study holds several fidelities (a DARTS
        campaign's epoch proxies and its finals), only the trials at the highest one take
        part. Screened trials (their own study) never enter it; see :meth:`fronts` for the
        front of each fidelity. Empty when no trial is feasible: :meth:`least_violating` then
        gives the nearest misses."""
        return pareto_trials(self.study)

    def fronts(self) -> list[FidelityFront]:
        """The front of every (study, fidelity) group: the campaign's study ("main") and
        the screen study ("screen"), each split by trial fidelity (the lowest fidelity of a
        trial's objective measurements; 0.0 when one objective was not measured)."""
        studies = [("main", self.study)]
        if self.config.screen is not None:
            studies.append(("screen", self.screen_study))
        return fidelity_fronts(studies, self.config.metric_names)

    def least_violating(self, k: int = 10) -> list[tuple[FrozenTrial, list[float]]]:
        """The ``k`` COMPLETE trials of the campaign's study with the smallest total
        constraint violation, smallest first, each with its per-constraint violations
        (``max(0, value)`` per entry of ``trial.constraints``: the config's constraints,
        then the hardware-violation count). Feasible trials (violation 0) come first."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k must be an int >= 1; got {k!r}")
        return least_violating_trials(self.study, int(k))


def _trial_count(n: Any) -> int:
    """``n_trials`` of :meth:`Campaign.run`: an int in the config's bounds (a float was cut
    to an int, a string of digits taken, NaN raised deep inside)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ConfigError(f"n_trials must be an int; got {n!r}", key="trials")
    if not 1 <= n <= 10_000_000:
        raise ConfigError(f"n_trials must be an int in [1, 10000000]; got {n}", key="trials")
    return int(n)


def _detached(exc: BaseException) -> BaseException:
    """``exc`` without its traceback, to fail the trial out of the ``except`` block: the
    traceback's frames may hold a connection whose commit and close an interrupt skipped,
    with SQLite's write lock, and the FAIL would wait the 60 s busy timeout for it and end
    in "database is locked"."""
    exc.__context__ = None
    return exc.with_traceback(None)


def _release_connections(storage: Any) -> None:
    """Close this thread's Optuna session and collect the connections an interrupt left
    behind, so that their open transactions roll back (releasing an SQLite write lock)."""
    import gc

    backend = getattr(storage, "_backend", storage)
    remove = getattr(backend, "remove_session", None)
    if remove is not None:
        remove()
    gc.collect()


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")


#: ``early_stop = "dominated"`` judges by dominance only once this many candidates were
#: trained to the end (their largest gains bound what a candidate behind them can still gain)
EARLY_STOP_MIN_CURVES = 5


class _FullyTrained(NamedTuple):
    curves: int  # candidates trained to the end with the source
    max_gain: list[float]  # per epoch e (from 1): the largest share of the error closed after e
    feasible: list[tuple[float, list[float]]]  # (final accuracy, other objectives) if feasible


def stored_config(store: Store, row: Mapping[str, Any]) -> CampaignConfig:
    """The config of the stored campaign ``row``, read back from its TOML text; a relative file
    path in it (an ``onnx_file`` model) is read from the folder of the TOML file the campaign
    was started from, as it was then."""
    from cosearch.config import parse_config

    base = None
    try:
        sid = store.optuna_storage.get_study_id_from_name(row["study_name"])
        base = store.optuna_storage.get_study_user_attrs(sid).get(CONFIG_DIR_KEY)
    except KeyError:  # its study was deleted outside cosearch
        pass
    return parse_config(
        row["config_toml"],
        path=f"<campaign {row['name']} in {store.display_url}>",
        base_dir=base if isinstance(base, str) else None,
        stored=True,
    )
