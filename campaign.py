"""Campaign: config -> Optuna study + spaces + evaluator + strategy + store; run and resume."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from cosearch._pareto import IncrementalFront
from cosearch._report import CONSTRAINTS_KEY, is_feasible, pareto_trials
from cosearch.config import CampaignConfig, load_config
from cosearch.errors import ConfigError, CosearchError, CosearchInputError
from cosearch.evaluate import Evaluator
from cosearch.search import get_strategy
from cosearch.spaces import get_hardware_space, get_space
from cosearch.spaces.onnx_io import model_to_bytes, strip_weights
from cosearch.store import Store, open_store, worker_id
from cosearch.store._optuna_compat import study_storage
from cosearch.store.layer_cache import LayerCostCache

__all__ = ["Campaign", "RunSummary", "CONSTRAINTS_KEY"]

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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Campaign:
    """One co-design campaign: a named Optuna study in a store, plus what scores its trials.

    Build it with :meth:`from_toml` or :meth:`from_config`. ``run`` creates the study on first
    use and resumes it afterwards; a campaign whose stored configuration differs (other
    spaces, objectives, sources or strategy) is refused rather than mixed.
    """

    def __init__(self, config: CampaignConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.network = get_space(config.network, **config.network_options)
        self.hardware = get_hardware_space(config.hardware, **config.hardware_ranges)
        self.evaluator = Evaluator(
            self.network, self.hardware, accuracy=config.accuracy_source, cost=config.cost_source
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

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: CampaignConfig, storage: str | None = None) -> Campaign:
        """``storage`` wins over the config's ``storage`` key, which wins over
        ``$COSEARCH_STORAGE``, which wins over ``sqlite:///cosearch.db``."""
        url = storage or config.storage
        return cls(config, open_store(url))

    @classmethod
    def from_toml(cls, path: str | Path, storage: str | None = None) -> Campaign:
        return cls.from_config(load_config(path), storage=storage)

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
        existing = self.store.campaign(self.name)
        if existing is not None:
            import json

            stored = json.loads(existing["config_json"])
            mine = self.config.identity()
            diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
            if diff:
                raise ConfigError(
                    f"campaign {self.name!r} already exists in {self.store.url} with a different "
                    f"{', '.join(diff)}; use a new name to start another campaign",
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
                {"accuracy": self.config.accuracy_source, "cost": self.evaluator.cost_model.source},
            )
        self._campaign_id = self.store.add_campaign(
            self.name, self.name, self.config.text, self.config.identity(), _versions()
        )
        return study

    @property
    def campaign_id(self) -> int:
        self.study  # noqa: B018 - creates the campaign row
        assert self._campaign_id is not None
        return self._campaign_id

    def _study_id(self) -> int:
        return self.store.optuna_storage.get_study_id_from_name(self.name)

    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def count(self, state: TrialState = TrialState.COMPLETE) -> int:
        return len(self.trials((state,)))

    # -- recovery ---------------------------------------------------------------------------
    def mark_interrupted(self) -> int:
        """Mark RUNNING trials of dead workers on this host FAIL and drop their cosearch rows.

        A worker is dead when its recorded ``host:pid`` is this host and that pid no longer
        exists. Trials of other hosts are left to their own workers (or to heartbeats).
        Returns the number of trials marked.
        """
        host = socket.gethostname()
        storage = study_storage(self.study)
        stale: list[FrozenTrial] = []
        for t in self.trials((TrialState.RUNNING,)):
            w = str(t.user_attrs.get("worker", ""))
            w_host, _, w_pid = w.rpartition(":")
            if w_host == host and w_pid.isdigit() and not _pid_alive(int(w_pid)):
                stale.append(t)
        study_id = self._study_id()
        ids = []
        for t in stale:
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            who = t.user_attrs["worker"]
            storage.set_trial_user_attr(
                tid, "fail_reason", f"interrupted: worker {who} died before the trial finished"
            )
            storage.set_trial_state_values(tid, TrialState.FAIL)
            ids.append(tid)
        self.store.discard_evaluations(ids)
        return len(ids)

    # -- running ----------------------------------------------------------------------------
    def run(
        self,
        n_trials: int | None = None,
        *,
        progress: bool = False,
        callback: Callable[[FrozenTrial], None] | None = None,
    ) -> RunSummary:
        """Run until the campaign has ``n_trials`` COMPLETE trials (default: the config's).

        Resuming is the same call: interrupted trials of dead workers are marked FAIL first
        and do not count. Raises CosearchError after MAX_CONSECUTIVE_FAILURES failures in a
        row.
        """
        target = self.config.trials if n_trials is None else int(n_trials)
        if target < 1:
            raise ConfigError(f"--trials must be >= 1; got {target}", key="trials")
        t0 = time.perf_counter()
        study = self.study
        marked = self.mark_interrupted()
        all_trials = self.trials()
        done = sum(t.state == TrialState.COMPLETE for t in all_trials)
        # seeded by the campaign seed and the history length: a resumed run continues the
        # sequence instead of replaying the first trials
        seed = int(np.random.SeedSequence([self.config.seed, len(all_trials)]).generate_state(1)[0])
        study.sampler = self.strategy.sampler(seed=seed)
        front = IncrementalFront(self.config.directions)
        for t in all_trials:
            if t.state == TrialState.COMPLETE and is_feasible(t):
                front.add(t.values)
        bar = self._progress(done, target) if progress else None
        ran = failed = streak = 0
        try:
            while done < target:
                trial = self._run_one(study)
                if trial.state == TrialState.COMPLETE:
                    done += 1
                    ran += 1
                    streak = 0
                    if is_feasible(trial):
                        front.add(trial.values)
                else:
                    failed += 1
                    streak += 1
                    if streak >= MAX_CONSECUTIVE_FAILURES:
                        reason = trial.user_attrs.get("fail_reason", "unknown")
                        raise CosearchError(f"{streak} trials in a row failed; last: {reason}")
                if callback is not None:
                    callback(trial)
                if bar is not None:
                    bar.update(1 if trial.state == TrialState.COMPLETE else 0)
                    bar.set_postfix_str(self._postfix(front, failed), refresh=False)
        finally:
            if bar is not None:
                bar.close()
        return RunSummary(done, ran, failed, marked, time.perf_counter() - t0)

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

    def _new_trial(self, study: optuna.Study) -> tuple[optuna.Trial, int]:
        # The trial row is created with its worker already recorded (one transaction), so a
        # kill at any later point leaves a RUNNING trial that resume can attribute.
        storage = study_storage(study)
        template = FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=dt.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={"worker": worker_id()},
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )
        trial_id = storage.create_new_trial(self._study_id(), template_trial=template)
        return optuna.Trial(study, trial_id), trial_id

    def _run_one(self, study: optuna.Study) -> FrozenTrial:
        storage = study_storage(study)
        trial, trial_id = self._new_trial(study)
        try:
            params = {
                name: _suggest(trial, name, dist) for name, dist in self.distributions.items()
            }
            arch = self.network.build(params)
            acc = self.hardware.build(params)
            ev = self.evaluator.evaluate(arch, acc)
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
            return study.tell(trial, values)
        except CosearchInputError:
            self._fail(study, trial, trial_id, "bad input")
            raise
        except (KeyboardInterrupt, SystemExit):
            self._fail(study, trial, trial_id, "interrupted by the user")
            raise
        except Exception as exc:  # a failing candidate must not end the campaign
            return self._fail(study, trial, trial_id, f"{type(exc).__name__}: {exc}")

    def _fail(
        self, study: optuna.Study, trial: optuna.Trial, trial_id: int, reason: str
    ) -> FrozenTrial:
        study_storage(study).set_trial_user_attr(trial_id, "fail_reason", reason[:500])
        self.store.discard_evaluations([trial_id])
        return study.tell(trial, state=TrialState.FAIL)

    def _arch_string(self, genotype: Mapping[str, Any]) -> str:
        try:
            return self.network.to_string(genotype)
        except TypeError:
            return ""

    # -- results ----------------------------------------------------------------------------
    def pareto(self) -> list[FrozenTrial]:
        """COMPLETE, feasible trials that no other such trial dominates, by first objective."""
        return pareto_trials(self.study)


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")
