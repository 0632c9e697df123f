"""Persist many finished trials per transaction: standard Optuna rows plus cosearch's rows.

A screening campaign scores thousands of candidates per second with predictors and analytical
costs; Optuna's per-trial path (``study.tell`` after one write per parameter and attribute)
persists a few dozen per second on SQLite. :class:`BatchWriter` writes a batch of COMPLETE
trials with SQLAlchemy Core ``executemany``, in one transaction:

- Optuna's ``trials``, ``trial_params``, ``trial_values``, ``trial_user_attributes`` and
  ``trial_system_attributes`` rows, in the formats its RDB storage writes (distribution JSON
  from ``distribution_to_json``, internal parameter values from ``to_internal_repr``, values
  with their FINITE / INF_POS / INF_NEG type, attributes as ``json.dumps``, naive-UTC
  datetimes), so ``optuna.load_study``, samplers and optuna-dashboard read them unchanged;
- cosearch's ``architectures`` and ``accelerators`` (insert-or-ignore by digest),
  ``evaluations`` and ``measurements`` rows.

Trial numbers. Optuna numbers a trial by counting the study's trials with a smaller
``trial_id`` (``TrialModel.count_past_trials``) while it holds the study row ``FOR UPDATE``
(PostgreSQL) or SQLite's write lock. A batch takes the same database lock (``SELECT ... FOR
UPDATE`` on the study row; ``BEGIN IMMEDIATE`` on SQLite) and cosearch's claim lock
(store/_locks.py), counts the study's trials once, and numbers its trials from there in
trial-id order. Batches, Optuna's own ``create_new_trial`` and cosearch workers' claims thus
serialize per study, and numbers stay unique and gapless whoever writes them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import optuna
import sqlalchemy as sa
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import TrialState

from cosearch.errors import StoreError, StoreInputError
from cosearch.store import schema
from cosearch.store._locks import store_lock
from cosearch.store.queries import _optuna_models, optuna_tables, study_id_of

if TYPE_CHECKING:
    from cosearch.campaign import Campaign
    from cosearch.hwmodels import Accelerator
    from cosearch.spaces import Architecture
    from cosearch.store import Store

__all__ = [
    "ArchitectureRow",
    "AcceleratorRow",
    "TrialRecord",
    "BatchWriter",
    "evaluation_record",
    "campaign_record",
]


class _MeasurementLike(Protocol):
    """What a measurement row needs (cosearch.evaluate.Measurement has it)."""

    @property
    def value(self) -> float: ...
    @property
    def source(self) -> str: ...
    @property
    def fidelity(self) -> float: ...
    @property
    def seconds(self) -> float: ...


@dataclass(frozen=True)
class ArchitectureRow:
    """An ``architectures`` row. ``onnx`` is the structure-only ONNX bytes, or None when the
    caller knows the row is already stored (then it is not written)."""

    digest: str
    space: str
    genotype: Mapping[str, Any]
    onnx: bytes | None

    @classmethod
    def of(cls, arch: Architecture, onnx: bytes | None) -> ArchitectureRow:
        return cls(arch.digest, arch.space, dict(arch.genotype), onnx)


@dataclass(frozen=True)
class AcceleratorRow:
    """An ``accelerators`` row."""

    digest: str
    template: str
    config: Mapping[str, Any]

    @classmethod
    def of(cls, acc: Accelerator) -> AcceleratorRow:
        return cls(acc.digest, acc.template, acc.params)


@dataclass(frozen=True)
class TrialRecord:
    """One finished (COMPLETE) trial to persist.

    ``params`` are external values (what ``trial.params`` returns) with one distribution
    each; ``values`` one per study objective (finite or +-inf; NaN is refused, as Optuna
    marks such trials FAIL). ``system_attrs`` carries the constraint values under
    ``"constraints"`` (a list, <= 0 feasible). ``architecture``, ``accelerator`` and
    ``measurements`` give cosearch's rows; measurements need both of the other two (the
    evaluation row links them). Datetimes may be naive local time (as ``datetime.now()``)
    or aware; both default to the time of the write.
    """

    params: Mapping[str, Any]
    distributions: Mapping[str, BaseDistribution]
    values: Sequence[float]
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    system_attrs: Mapping[str, Any] = field(default_factory=dict)
    architecture: ArchitectureRow | None = None
    accelerator: AcceleratorRow | None = None
    measurements: Mapping[str, _MeasurementLike] = field(default_factory=dict)
    datetime_start: dt.datetime | None = None
    datetime_complete: dt.datetime | None = None


def evaluation_record(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    arch: Architecture,
    onnx: bytes | None,
    acc: Accelerator,
    metrics: Mapping[str, _MeasurementLike],
    values: Sequence[float],
    constraints: Sequence[float],
    *,
    arch_string: str = "",
    hw_violations: Sequence[str] = (),
    worker: str | None = None,
    datetime_start: dt.datetime | None = None,
    user_attrs: Mapping[str, Any] | None = None,
) -> TrialRecord:
    """A record with the attributes ``Campaign._run_one`` writes for an evaluated trial:
    user attributes ``metrics``, ``sources``, ``architecture``, ``accelerator`` (and
    ``worker``, ``hw_violations`` when given, then ``user_attrs``), system attribute
    ``constraints``, and the architecture / accelerator / measurement rows."""
    user: dict[str, Any] = {}
    if worker is not None:
        user["worker"] = worker
    user["metrics"] = {k: m.value for k, m in metrics.items()}
    user["sources"] = {k: m.source for k, m in metrics.items()}
    user["architecture"] = {"digest": arch.digest, "string": arch_string}
    user["accelerator"] = acc.spec()
    if hw_violations:
        user["hw_violations"] = list(hw_violations)
    user.update(user_attrs or {})
    return TrialRecord(
        params=params,
        distributions=distributions,
        values=list(values),
        user_attrs=user,
        system_attrs={"constraints": [float(c) for c in constraints]},
        architecture=ArchitectureRow.of(arch, onnx),
        accelerator=AcceleratorRow.of(acc),
        measurements=metrics,
        datetime_start=datetime_start,
    )


def campaign_record(
    campaign: Campaign,
    params: Mapping[str, Any],
    *,
    known_archs: set[str] | None = None,
    worker: str | None = None,
) -> TrialRecord:
    """Evaluate ``params`` (``net.*`` and ``hw.*`` values) as ``Campaign._run_one`` does and
    return the record the batched path writes for it: same values, constraint values
    (the campaign's constraints, then the count of hardware violations) and attributes.

    ``known_archs`` (digests already stored or already in a pending record) is updated; ONNX
    bytes are built only for digests not in it and not in the store. Errors of the spaces
    and the evaluator propagate (a screening loop decides whether to skip the candidate).
    """
    from cosearch.spaces.onnx_io import model_to_bytes, strip_weights

    arch = campaign.network.build(params)
    acc = campaign.hardware.build(params)
    ev = campaign.evaluator.evaluate(arch, acc)
    known = known_archs if known_archs is not None else set()
    onnx = None
    if arch.digest not in known and not campaign.store.has_architecture(arch.digest):
        onnx = model_to_bytes(strip_weights(arch.onnx()))
    known.add(arch.digest)
    cfg = campaign.config
    violations = [c.violation(ev.metrics[c.metric].value) for c in cfg.constraints]
    violations.append(float(len(ev.cost.violations)))
    try:
        arch_string = campaign.network.to_string(arch.genotype)
    except TypeError:  # spaces without a string form (as Campaign._arch_string)
        arch_string = ""
    return evaluation_record(
        {k: params[k] for k in campaign.distributions},
        campaign.distributions,
        arch,
        onnx,
        acc,
        ev.metrics,
        ev.metrics.values_of(cfg.metric_names),
        violations,
        arch_string=arch_string,
        hw_violations=ev.cost.violations,
        worker=worker,
    )


def _utc_naive(value: dt.datetime | None, default: dt.datetime) -> dt.datetime:
    # TrialModel stores naive UTC; a naive input is local time, as Optuna's datetime.now()
    if value is None:
        return default
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


class BatchWriter:
    """Writes batches of COMPLETE trials into ``study`` (a study in ``store``).

    ``campaign_id`` (the ``campaigns`` row) is needed for records with cosearch rows. Use
    :meth:`write` for one batch (one transaction), or :meth:`add` and :meth:`flush` to
    buffer up to ``batch_size`` records. Raises StoreInputError for a record Optuna would
    refuse (missing distribution, value outside its distribution, wrong number of values,
    NaN, incompatible distribution), before anything is written.
    """

    def __init__(
        self,
        store: Store,
        study: optuna.Study | str,
        campaign_id: int | None = None,
        *,
        batch_size: int = 1000,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.store = store
        self.study_name = study if isinstance(study, str) else study.study_name
        self.campaign_id = campaign_id
        self.batch_size = batch_size
        with store.engine.connect() as conn:
            try:
                self.study_id = study_id_of(conn, self.study_name)
            except KeyError:
                raise StoreInputError(
                    f"no study {self.study_name!r} in {store.display_url}; create it first"
                ) from None
            d = optuna_tables().study_directions
            self.n_objectives = int(
                conn.execute(
                    sa.select(sa.func.count()).where(d.c.study_id == self.study_id)
                ).scalar_one()
            )
        self._dists: dict[str, BaseDistribution] = {}  # first seen in the study, per name
        # distribution objects already checked / serialized, by id (the object is kept in the
        # value so its id cannot be reused); records of one campaign share these objects
        self._checked: dict[tuple[str, int], BaseDistribution] = {}
        self._json: dict[int, tuple[BaseDistribution, str]] = {}
        self._buffer: list[TrialRecord] = []
        self.written = 0

    # -- buffering ----------------------------------------------------------------------------
    def add(self, record: TrialRecord) -> list[int]:
        """Buffer ``record``; writes the buffer when it holds ``batch_size`` records.
        Returns the trial numbers written by this call (often none)."""
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            return self.flush()
        return []

    def flush(self) -> list[int]:
        """Write the buffered records (one transaction); returns their trial numbers. On an
        error nothing is written and the records stay buffered (call again to retry)."""
        numbers = self.write(self._buffer) if self._buffer else []
        self._buffer = []
        return numbers

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.flush()

    # -- the write ----------------------------------------------------------------------------
    def write(self, records: Sequence[TrialRecord]) -> list[int]:
        """Persist ``records`` as COMPLETE trials in one transaction; returns their trial
        numbers, one per record in the order given (together a consecutive range, after
        every trial already in the study). All or nothing."""
        records = list(records)
        if not records:
            return []
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        prepared = [self._prepare(r, now) for r in records]
        self._check_distributions(records)
        self._check_known_architectures(records)
        lock = f"cosearch-claim:{self.study_name}"
        with store_lock(self.store.engine, self.store.url, lock):
            conn = self.store.engine.connect()
            try:
                numbers = self._write_locked(conn, records, prepared)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                conn.close()
        self.written += len(records)
        return numbers

    def _prepare(self, r: TrialRecord, now: dt.datetime) -> dict[str, Any]:
        vt = _optuna_models().TrialValueModel
        if len(r.values) != self.n_objectives:
            raise StoreInputError(
                f"a trial of study {self.study_name!r} needs {self.n_objectives} values; "
                f"got {len(r.values)}"
            )
        values = []
        for i, v in enumerate(r.values):
            v = float(v)
            if math.isnan(v):
                raise StoreInputError(
                    f"value {i} of a trial is NaN; Optuna records such trials as FAIL, "
                    "so the batched path (COMPLETE trials only) refuses them"
                )
            values.append((i, *vt.value_to_stored_repr(v)))
        params = []
        for name, value in r.params.items():
            dist = r.distributions.get(name)
            if dist is None:
                raise StoreInputError(f"parameter {name!r} has no distribution")
            try:
                internal = dist.to_internal_repr(value)
                # the range / step / choice check FrozenTrial._validate runs (Optuna has no
                # public one short of building a FrozenTrial, which costs more than the write)
                ok = dist._contains(internal)
            except (ValueError, TypeError) as exc:
                raise StoreInputError(f"parameter {name}={value!r} is invalid: {exc}") from None
            if not ok:
                raise StoreInputError(f"parameter {name}={value!r} is outside {dist}")
            params.append((name, float(internal), self._dist_json(dist)))
        if (r.architecture is None) != (r.accelerator is None):
            raise StoreInputError(
                "a record needs both an architecture and an accelerator, or neither"
            )
        if r.measurements and r.architecture is None:
            raise StoreInputError("measurements need the record's architecture and accelerator")
        if r.architecture is not None and self.campaign_id is None:
            raise StoreInputError("records with cosearch rows need the BatchWriter's campaign_id")
        start = _utc_naive(r.datetime_start, now)
        return {
            "start": start,
            "complete": _utc_naive(r.datetime_complete, max(now, start)),
            "values": values,
            "params": params,
            "user": [(k, json.dumps(v)) for k, v in r.user_attrs.items()],
            "system": [(k, json.dumps(v)) for k, v in r.system_attrs.items()],
        }

    def _dist_json(self, dist: BaseDistribution) -> str:
        hit = self._json.get(id(dist))
        if hit is None:
            hit = self._json[id(dist)] = (dist, distribution_to_json(dist))
        return hit[1]

    def _check_distributions(self, records: Iterable[TrialRecord]) -> None:
        """Refuse a distribution incompatible with the study's first one of the same name
        (Optuna's ``check_distribution_compatibility``), read once per name per writer."""
        tp, t = optuna_tables().trial_params, optuna_tables().trials
        for r in records:
            for name, dist in r.distributions.items():
                if name not in r.params or (name, id(dist)) in self._checked:
                    continue
                known = self._dists.get(name)
                if known is None:
                    with self.store.engine.connect() as conn:
                        text = conn.execute(
                            sa.select(tp.c.distribution_json)
                            .join(t, t.c.trial_id == tp.c.trial_id)
                            .where(t.c.study_id == self.study_id, tp.c.param_name == name)
                            .limit(1)
                        ).scalar()
                    known = json_to_distribution(text) if text is not None else dist
                    self._dists[name] = known
                try:
                    check_distribution_compatibility(known, dist)
                except ValueError as exc:
                    raise StoreInputError(f"parameter {name!r}: {exc}") from None
                self._checked[(name, id(dist))] = dist

    def _check_known_architectures(self, records: Sequence[TrialRecord]) -> None:
        missing = {
            r.architecture.digest
            for r in records
            if r.architecture is not None and r.architecture.onnx is None
        }
        missing -= {
            r.architecture.digest
            for r in records
            if r.architecture is not None and r.architecture.onnx is not None
        }
        if not missing:
            return
        ar = schema.architectures
        wanted = sorted(missing)
        with self.store.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                missing -= set(
                    conn.execute(sa.select(ar.c.digest).where(ar.c.digest.in_(chunk))).scalars()
                )
        if missing:
            raise StoreInputError(
                f"architecture {min(missing)[:12]} is not stored and its record has no ONNX "
                "bytes; pass them the first time"
            )

    def _lock_study(self, conn: sa.Connection) -> None:
        if self.store.is_sqlite:
            # per connection and outside a transaction, as Store._begin does
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
            # take SQLite's write lock now, so the count below is the one we number from
            # (a deferred transaction would count before holding the lock)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            st = optuna_tables().studies
            # the row lock Optuna's _create_new_trial takes (find_or_raise_by_id(for_update))
            conn.execute(
                sa.select(st.c.study_id).where(st.c.study_id == self.study_id).with_for_update()
            )

    def _write_locked(
        self, conn: sa.Connection, records: list[TrialRecord], prepared: list[dict[str, Any]]
    ) -> list[int]:
        ot = optuna_tables()
        t = ot.trials
        self._lock_study(conn)
        base = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.study_id == self.study_id)
            ).scalar_one()
        )
        rows = [
            {
                "number": base + i,
                "study_id": self.study_id,
                "state": TrialState.COMPLETE,
                "datetime_start": p["start"],
                "datetime_complete": p["complete"],
            }
            for i, p in enumerate(prepared)
        ]
        ids = self._insert_trials(conn, rows)
        if ids != sorted(ids):  # numbers must ascend with trial ids (count_past_trials)
            by_id = sorted(range(len(ids)), key=ids.__getitem__)
            numbers = {ids[k]: base + rank for rank, k in enumerate(by_id)}
            conn.execute(
                t.update().where(t.c.trial_id == sa.bindparam("tid")),
                [{"tid": i, "number": numbers[i]} for i in ids],
            )
        else:
            numbers = {tid: base + k for k, tid in enumerate(ids)}
        self._insert_optuna_rows(conn, ids, prepared)
        self._insert_cosearch_rows(conn, ids, records)
        return [numbers[i] for i in ids]

    def _insert_trials(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        t = optuna_tables().trials
        if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
            res = conn.execute(
                t.insert().returning(t.c.trial_id, sort_by_parameter_order=True), rows
            )
            return [int(r[0]) for r in res]
        out = []  # a dialect without executemany RETURNING: one INSERT per trial
        for row in rows:
            pk = conn.execute(t.insert().values(**row)).inserted_primary_key
            assert pk is not None
            out.append(int(pk[0]))
        return out

    def _insert_optuna_rows(
        self, conn: sa.Connection, ids: list[int], prepared: list[dict[str, Any]]
    ) -> None:
        ot = optuna_tables()
        params, values, user, system = [], [], [], []
        for tid, p in zip(ids, prepared):
            params += [
                {"trial_id": tid, "param_name": n, "param_value": v, "distribution_json": d}
                for n, v, d in p["params"]
            ]
            values += [
                {"trial_id": tid, "objective": i, "value": v, "value_type": vt}
                for i, v, vt in p["values"]
            ]
            user += [{"trial_id": tid, "key": k, "value_json": j} for k, j in p["user"]]
            system += [{"trial_id": tid, "key": k, "value_json": j} for k, j in p["system"]]
        for table, rows in (
            (ot.trial_params, params),
            (ot.trial_values, values),
            (ot.trial_user_attributes, user),
            (ot.trial_system_attributes, system),
        ):
            if rows:
                conn.execute(table.insert(), rows)

    def _insert_cosearch_rows(
        self, conn: sa.Connection, ids: list[int], records: list[TrialRecord]
    ) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        archs: dict[str, dict[str, Any]] = {}
        accs: dict[str, dict[str, Any]] = {}
        evaluations, measurements = [], []
        for tid, r in zip(ids, records):
            if r.architecture is None or r.accelerator is None:
                continue
            a, c = r.architecture, r.accelerator
            if a.onnx is not None and a.digest not in archs:
                archs[a.digest] = {
                    "digest": a.digest,
                    "space": a.space,
                    "genotype_json": json.dumps(dict(a.genotype), sort_keys=True),
                    "onnx": a.onnx,
                    "created_at": now,
                }
            if c.digest not in accs:
                accs[c.digest] = {
                    "digest": c.digest,
                    "template": c.template,
                    "config_json": json.dumps(dict(c.config), sort_keys=True),
                    "created_at": now,
                }
            evaluations.append(
                {
                    "trial_id": tid,
                    "campaign_id": self.campaign_id,
                    "architecture_digest": a.digest,
                    "accelerator_digest": c.digest,
                    "created_at": now,
                }
            )
            measurements += [
                {
                    "trial_id": tid,
                    "metric": name,
                    "value": float(m.value),
                    "source": m.source,
                    "fidelity": float(m.fidelity),
                    "seconds": float(m.seconds),
                }
                for name, m in r.measurements.items()
            ]
        # sorted: concurrent writers take the digests' row locks in one order (no deadlock)
        for table, rows in ((schema.architectures, archs), (schema.accelerators, accs)):
            if rows:
                self._insert_ignore(conn, table, [rows[k] for k in sorted(rows)])
        try:
            if evaluations:
                conn.execute(schema.evaluations.insert(), evaluations)
            if measurements:
                conn.execute(schema.measurements.insert(), measurements)
        except sa.exc.IntegrityError as exc:
            reason = str(exc.orig).strip().splitlines()[0]
            raise StoreError(f"batch of {len(ids)} trials not written: {reason}") from exc

    def _insert_ignore(
        self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
    ) -> None:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        else:  # portable fallback: skip the digests already there
            key = table.c.digest
            have = set()
            for i in range(0, len(rows), 500):
                chunk = [r["digest"] for r in rows[i : i + 500]]
                have |= set(conn.execute(sa.select(key).where(key.in_(chunk))).scalars())
            new = [r for r in rows if r["digest"] not in have]
            if new:
                conn.execute(table.insert(), new)
            return
        conn.execute(insert(table).on_conflict_do_nothing(index_elements=["digest"]), rows)
