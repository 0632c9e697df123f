"""Fast read paths over Optuna's tables and cosearch's, for campaigns of 100,000 trials.

``study.get_trials()`` builds a FrozenTrial (params, values, attributes) for every trial; at
100,000 trials that takes minutes. The views that ``cosearch status`` and ``cosearch pareto``
show need much less: trial counts by state (one GROUP BY), the objective values and constraint
values of COMPLETE trials (one SELECT, one row per trial, read into numpy), a non-dominated
filter over those arrays, and FrozenTrials for the front trials only.

Everything here reads. Table objects come from Optuna's own SQLAlchemy models, so column types
(the ``TrialState`` and ``TrialValueType`` enums, naive-UTC datetimes) bind and load exactly as
Optuna's RDB storage does on every dialect.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from cosearch.store import schema

__all__ = [
    "OptunaTables",
    "ObjectiveTable",
    "optuna_tables",
    "rdb_engine",
    "study_id_of",
    "state_counts",
    "objective_table",
    "pareto_mask",
    "pareto_front_ids",
    "load_trials",
    "metric_values",
    "trial_fidelities",
    "constraint_values",
    "user_attr_values",
    "param_keys",
    "trial_numbers",
]

#: Optuna's system attribute for constraint values (<= 0 feasible); ``constraints:<name>``
#: keys are the newer per-constraint form (optuna.study._constrained_optimization).
_CONSTRAINTS_KEY = "constraints"

# IN lists are cut to this length: far under SQLite's and PostgreSQL's parameter limits
_IN_CHUNK = 500


class OptunaTables(NamedTuple):
    studies: sa.Table
    study_directions: sa.Table
    trials: sa.Table
    trial_params: sa.Table
    trial_values: sa.Table
    trial_user_attributes: sa.Table
    trial_system_attributes: sa.Table
    trial_intermediate_values: sa.Table


@lru_cache(maxsize=1)
def _optuna_models() -> Any:
    # The one place cosearch imports Optuna's private RDB models (the batched writer and these
    # readers need the exact table definitions). Optuna's alembic history keeps these tables
    # stable across releases; the tests read back through Optuna's public API to catch a change.
    from optuna.storages._rdb import models

    return models


def optuna_tables() -> OptunaTables:
    """Optuna's RDB tables as SQLAlchemy Core ``Table`` objects (its own definitions)."""
    m = _optuna_models()
    return OptunaTables(
        studies=m.StudyModel.__table__,
        study_directions=m.StudyDirectionModel.__table__,
        trials=m.TrialModel.__table__,
        trial_params=m.TrialParamModel.__table__,
        trial_values=m.TrialValueModel.__table__,
        trial_user_attributes=m.TrialUserAttributeModel.__table__,
        trial_system_attributes=m.TrialSystemAttributeModel.__table__,
        trial_intermediate_values=m.TrialIntermediateValueModel.__table__,
    )


def rdb_engine(study: optuna.Study) -> sa.Engine | None:
    """The SQLAlchemy engine under ``study``'s storage, or None when it is not an RDB one."""
    from cosearch.store._optuna_compat import study_storage

    storage = study_storage(study)
    # optuna.create_study wraps RDBStorage in its private _CachedStorage (``_backend``); the
    # cache writes through, so the database holds everything the study has seen
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, optuna.storages.RDBStorage):
        return backend.engine
    return None


def study_id_of(conn: sa.Connection, study_name: str) -> int:
    """The ``studies.study_id`` of ``study_name``; KeyError when there is none."""
    t = optuna_tables().studies
    sid = conn.execute(sa.select(t.c.study_id).where(t.c.study_name == study_name)).scalar()
    if sid is None:
        raise KeyError(f"no study named {study_name!r}")
    return int(sid)


def state_counts(engine: sa.Engine, study_id: int) -> dict[str, int]:
    """``{state name: trial count}`` for every :class:`TrialState` (zeros included)."""
    t = optuna_tables().trials
    q = sa.select(t.c.state, sa.func.count()).where(t.c.study_id == study_id).group_by(t.c.state)
    with engine.connect() as conn:
        found = {_state_name(s): int(n) for s, n in conn.execute(q)}
    return {s.name: found.get(s.name, 0) for s in TrialState}


def _state_name(state: Any) -> str:
    return state.name if isinstance(state, TrialState) else str(state).rsplit(".", 1)[-1]


@dataclass(frozen=True)
class ObjectiveTable:
    """The COMPLETE trials of one study as arrays, in trial-number order.

    ``values`` is (n, m) in the study's own directions (not flipped); ``feasible[i]`` is True
    when every constraint value of trial ``trial_ids[i]`` is <= 0, or it has none.
    """

    trial_ids: np.ndarray  # int64, ascending (trial numbers ascend with trial ids)
    values: np.ndarray  # float64 (n, m); +-inf where Optuna stored an infinite value
    feasible: np.ndarray  # bool (n,)


# Per trial, whether its ``constraints`` list holds a value that is not <= 0: 1 yes, 0 no (or
# no list), -1 undecided in SQL (not a plain list of numbers, e.g. NaN or Infinity, which are
# not JSON; or a dialect without JSON functions): those few are parsed in Python.
_CV = "trial_system_attributes.value_json"
_VIOLATED_SQL = {
    "sqlite": (
        f"CASE WHEN {_CV} IS NULL THEN 0 WHEN json_valid({_CV}) AND json_type({_CV}) = 'array' "
        f"THEN EXISTS (SELECT 1 FROM json_each({_CV}) AS c WHERE NOT (c.value <= 0)) ELSE -1 END"
    ),
    "postgresql": (
        rf"CASE WHEN {_CV} IS NULL THEN 0 WHEN {_CV} ~ '^\[[-+0-9.eE, ]*\]$' THEN "
        f"CAST(EXISTS (SELECT 1 FROM json_array_elements_text(CAST({_CV} AS json)) AS c(v) "
        "WHERE NOT (CAST(c.v AS double precision) <= 0)) AS integer) ELSE -1 END"
    ),
}


def objective_table(engine: sa.Engine, study_id: int, n_objectives: int) -> ObjectiveTable:
    """Objective and constraint values of the COMPLETE trials of ``study_id``.

    One SELECT returns one row of numbers per trial: its id, its ``n_objectives`` values
    side by side (joined on the unique ``(trial_id, objective)`` index) and whether its
    ``constraints`` list is violated (decided in SQL on SQLite and PostgreSQL). Small
    follow-ups handle infinite values, ``constraints:<name>`` attributes and constraint
    lists SQL could not decide, which are rare. Trials that lack a value for some objective
    (Optuna never writes such COMPLETE trials) are left out.
    """
    ot = optuna_tables()
    t, tv, ts = ot.trials, ot.trial_values, ot.trial_system_attributes
    complete = sa.and_(t.c.study_id == study_id, t.c.state == TrialState.COMPLETE)
    joined: sa.FromClause = t
    value_cols = []
    for k in range(n_objectives):
        v = tv.alias(f"v{k}")
        joined = joined.join(v, sa.and_(v.c.trial_id == t.c.trial_id, v.c.objective == k))
        value_cols.append(v.c.value)
    joined = joined.outerjoin(
        ts, sa.and_(ts.c.trial_id == t.c.trial_id, ts.c.key == _CONSTRAINTS_KEY)
    )
    violated: sa.ColumnElement[Any] = sa.literal_column(
        _VIOLATED_SQL.get(engine.dialect.name, f"CASE WHEN {_CV} IS NULL THEN 0 ELSE -1 END")
    )
    q_main = sa.select(t.c.trial_id, *value_cols, violated).select_from(joined).where(complete)
    # ``constraints:<name>`` keys, as a range on the (trial_id, key) unique index
    q_named = (
        sa.select(ts.c.trial_id, ts.c.value_json)
        .select_from(t.join(ts, ts.c.trial_id == t.c.trial_id))
        .where(complete, ts.c.key > _CONSTRAINTS_KEY + ":", ts.c.key < _CONSTRAINTS_KEY + ";")
    )
    with engine.connect() as conn:
        table = _fetch_numbers(conn, q_main, 2 + n_objectives)
        named = conn.execute(q_named).all()
        ids = table[:, 0].astype(np.int64)
        values = table[:, 1 : 1 + n_objectives]  # NULL (an infinite value) came as NaN
        if np.isnan(values).any():  # Optuna stores +-inf as NULL with its value_type
            _fill_infinities(conn, ids, values)
        undecided = ids[table[:, -1] < 0]
        bad = set(ids[table[:, -1] > 0].tolist())
        if len(undecided):
            for chunk in _chunks(undecided.tolist()):
                q = sa.select(ts.c.trial_id, ts.c.value_json).where(
                    ts.c.trial_id.in_(chunk), ts.c.key == _CONSTRAINTS_KEY
                )
                bad |= _infeasible_ids(conn.execute(q).all())
    bad |= _infeasible_ids(named)
    order = np.argsort(ids, kind="stable")  # trial numbers ascend with trial ids
    feasible = ~np.isin(ids, np.fromiter(bad, dtype=np.int64, count=len(bad)))
    return ObjectiveTable(ids[order], values[order], feasible[order])


def _fetch_numbers(conn: sa.Connection, stmt: sa.Select, width: int) -> np.ndarray:
    """The rows of a SELECT of numbers as an (n, width) float array (NULL -> NaN).

    Runs through the DB-API cursor: at 100,000 rows SQLAlchemy's Row objects cost about as
    much as the query itself. The statement is compiled with its parameters inline; they
    are ids and constants from this module, never user text.
    """
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return np.array(rows, dtype=float).reshape(len(rows), width)


def _fill_infinities(conn: sa.Connection, ids: np.ndarray, values: np.ndarray) -> None:
    tv = optuna_tables().trial_values
    vt = _optuna_models().TrialValueModel.TrialValueType
    rows_with_nan = np.flatnonzero(np.isnan(values).any(axis=1))
    where = {int(ids[i]): int(i) for i in rows_with_nan}
    for chunk in _chunks(list(where)):
        q = sa.select(tv.c.trial_id, tv.c.objective, tv.c.value_type).where(
            tv.c.trial_id.in_(chunk), tv.c.value.is_(None)
        )
        for tid, objective, kind in conn.execute(q):
            if objective < values.shape[1]:
                sign = {vt.INF_POS: np.inf, vt.INF_NEG: -np.inf}.get(kind, np.nan)
                values[where[tid], objective] = sign


def _infeasible_ids(rows: Sequence[Any]) -> set[int]:
    """Trial ids with a constraint value that is not <= 0 (NaN counts as violated, as
    ``all(v <= 0 ...)`` in cosearch._report.is_feasible)."""
    if not rows:
        return set()
    # one json.loads over all values: far faster than one call per trial
    parsed = json.loads("[" + ",".join(r[1] for r in rows) + "]")
    out: set[int] = set()
    for (trial_id, _), v in zip(rows, parsed):
        if isinstance(v, list):
            if not all(c <= 0 for c in v):
                out.add(int(trial_id))
        elif v is not None and not v <= 0:
            out.add(int(trial_id))
    return out


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (n x m) that no other row dominates.

    Same contract as :func:`cosearch._pareto.nondominated_mask` (duplicates are all kept;
    ``directions`` holds "minimize" / "maximize" per column). Rows are sorted
    lexicographically, so a row that dominates another comes before it: for m <= 2 one
    sweep decides every row (O(n log n)); for m >= 3 rows dominated by one of a few pivot
    rows (smallest scaled sums) are dropped first, then each block of the rest is compared
    with the front found so far and with itself (O(n * (pivots + front size) * m)).
    """
    from cosearch._pareto import to_minimization

    arr = np.asarray(values, dtype=float)
    mask = np.zeros(len(arr), dtype=bool)
    if arr.size == 0:
        return mask
    v = to_minimization(arr.reshape(len(arr), -1), directions)
    m = v.shape[1]
    rows = np.arange(len(v))
    if m >= 3 and len(v) > 1024:
        rows = rows[~_dominated_by(v, _pivots(v, 32))]
    order = rows[np.lexsort(v[rows].T[::-1])]  # primary key: column 0
    s = v[order]
    if m == 1:
        keep = s[:, 0] == s[0, 0]
    elif m == 2:
        keep = _front_2d(s)
    else:
        keep = _front_blocks(s)
    mask[order[keep]] = True
    return mask


def _pivots(v: np.ndarray, k: int) -> np.ndarray:
    """``k`` rows with the smallest sums of min-max scaled columns: they dominate most rows."""
    big = np.finfo(float).max / 4
    finite = np.nan_to_num(v, posinf=big, neginf=-big)
    lo, span = finite.min(axis=0), np.ptp(finite, axis=0)
    score = ((finite - lo) / np.where(span > 0, span, 1.0)).sum(axis=1)
    return v[np.argpartition(score, k)[:k]]


def _front_2d(s: np.ndarray) -> np.ndarray:
    """Non-dominated rows of lexicographically sorted 2-column ``s``.

    A row is dominated iff some earlier row that is not a copy of it has a second value <= its
    own (every earlier row has a first value <= its own).
    """
    n = len(s)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = np.any(s[1:] != s[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    prefix_min = np.concatenate(([np.inf], np.minimum.accumulate(s[:, 1])))
    # the first group has no earlier row (its +inf placeholder "dominated" a second value of +inf)
    return ~((group_start > 0) & (prefix_min[group_start] <= s[:, 1]))


def _front_blocks(s: np.ndarray, block: int = 256) -> np.ndarray:
    """Non-dominated rows of lexicographically sorted ``s`` (any number of columns)."""
    keep = np.zeros(len(s), dtype=bool)
    front = np.empty((0, s.shape[1]))
    for start in range(0, len(s), block):
        c = s[start : start + block]
        alive = np.arange(len(c))
        if len(front):
            alive = alive[~_dominated_by(c, front)]
        cc = c[alive]
        survivors = alive[~_dominated_by(cc, cc)]
        keep[start + survivors] = True
        front = np.vstack([front, c[survivors]])
    return keep


def _dominated_by(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each row of ``points``: does some row of ``others`` dominate it (minimization)?"""
    out = np.zeros(len(points), dtype=bool)
    m = points.shape[1]
    # bounded (rows x others) temporaries of about 1 M elements; one pass per column is
    # several times faster than reducing a (rows x others x m) array over its short last axis
    step = max(1, 1_000_000 // max(1, len(others)))
    for i in range(0, len(points), step):
        p = points[i : i + step]
        le = others[None, :, 0] <= p[:, None, 0]
        lt = others[None, :, 0] < p[:, None, 0]
        for k in range(1, m):
            le &= others[None, :, k] <= p[:, None, k]
            lt |= others[None, :, k] < p[:, None, k]
        out[i : i + step] = np.any(le & lt, axis=1)
    return out


def pareto_front_ids(
    engine: sa.Engine,
    study_id: int,
    directions: Sequence[str],
    *,
    among: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(trial_ids, values)`` of the COMPLETE, feasible, non-dominated trials (of the trial
    ids ``among``, when given), in trial-number order."""
    table = objective_table(engine, study_id, len(directions))
    ok = table.feasible if among is None else table.feasible & np.isin(table.trial_ids, among)
    ids, values = table.trial_ids[ok], table.values[ok]
    mask = pareto_mask(values, directions)
    return ids[mask], values[mask]


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    ids = [int(i) for i in ids]
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


@lru_cache(maxsize=4096)
def _distribution(text: str) -> BaseDistribution:
    return json_to_distribution(text)


def _local_naive(value: dt.datetime | None) -> dt.datetime | None:
    # Optuna stores naive UTC and hands out naive local time (TrialModel.datetime_start)
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone().replace(tzinfo=None)


def load_trials(engine: sa.Engine, trial_ids: Sequence[int]) -> list[FrozenTrial]:
    """FrozenTrials for ``trial_ids`` (in that order), built as Optuna's RDB storage builds
    them (``RDBStorage._build_frozen_trial_from_trial_model``), with one SELECT per table
    per 500 ids instead of Optuna's whole-study load. KeyError for an unknown id."""
    ot = optuna_tables()
    models = _optuna_models()
    vt, it = models.TrialValueModel, models.TrialIntermediateValueModel
    base: dict[int, Any] = {}
    values: dict[int, dict[int, float]] = {}
    params: dict[int, list[Any]] = {}
    user: dict[int, dict[str, Any]] = {}
    system: dict[int, dict[str, Any]] = {}
    inter: dict[int, dict[int, float]] = {}
    with engine.connect() as conn:
        for chunk in _chunks(trial_ids):
            t = ot.trials
            for r in conn.execute(sa.select(t).where(t.c.trial_id.in_(chunk))):
                base[r.trial_id] = r
            t = ot.trial_values
            for r in conn.execute(sa.select(t).where(t.c.trial_id.in_(chunk))):
                values.setdefault(r.trial_id, {})[r.objective] = vt.stored_repr_to_value(
                    r.value, r.value_type
                )
            t = ot.trial_params
            q = sa.select(t).where(t.c.trial_id.in_(chunk)).order_by(t.c.param_id)
            for r in conn.execute(q):
                params.setdefault(r.trial_id, []).append(r)
            for t, into in (
                (ot.trial_user_attributes, user),
                (ot.trial_system_attributes, system),
            ):
                q = sa.select(t.c.trial_id, t.c.key, t.c.value_json).where(t.c.trial_id.in_(chunk))
                for tid, key, text in conn.execute(q):
                    into.setdefault(tid, {})[key] = json.loads(text)
            t = ot.trial_intermediate_values
            for r in conn.execute(sa.select(t).where(t.c.trial_id.in_(chunk))):
                inter.setdefault(r.trial_id, {})[r.step] = it.stored_repr_to_intermediate_value(
                    r.intermediate_value, r.intermediate_value_type
                )
    out = []
    for tid in trial_ids:
        tid = int(tid)
        if tid not in base:
            raise KeyError(f"no trial with trial_id {tid}")
        row = base[tid]
        vals = values.get(tid)
        ps = params.get(tid, [])
        dists = {p.param_name: _distribution(p.distribution_json) for p in ps}
        out.append(
            FrozenTrial(
                number=row.number,
                state=row.state,
                value=None,
                values=[vals[i] for i in range(len(vals))] if vals else None,
                datetime_start=_local_naive(row.datetime_start),
                datetime_complete=_local_naive(row.datetime_complete),
                params={
                    p.param_name: dists[p.param_name].to_external_repr(p.param_value) for p in ps
                },
                distributions=dists,
                user_attrs=user.get(tid, {}),
                system_attrs=system.get(tid, {}),
                intermediate_values=inter.get(tid, {}),
                trial_id=tid,
            )
        )
    return out


def metric_values(
    engine: sa.Engine, campaign_id: int, metric: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(trial_ids, values, sources)`` of one metric over the COMPLETE trials of a campaign,
    from cosearch's ``measurements`` table, ordered by trial id (one row per source)."""
    ms, ev, t = schema.measurements, schema.evaluations, optuna_tables().trials
    q = (
        sa.select(ms.c.trial_id, ms.c.value, ms.c.source)
        .select_from(
            ms.join(ev, ev.c.trial_id == ms.c.trial_id).join(t, t.c.trial_id == ms.c.trial_id)
        )
        .where(
            ev.c.campaign_id == campaign_id,
            ms.c.metric == metric,
            t.c.state == TrialState.COMPLETE,
        )
        .order_by(ms.c.trial_id, ms.c.source)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0), []
    ids, vals, sources = zip(*rows)
    return np.asarray(ids, dtype=np.int64), np.asarray(vals, dtype=float), list(sources)


def measured_value(
    engine: sa.Engine,
    campaign_id: int,
    architecture_digest: str,
    metric: str,
    source: str,
    min_fidelity: float = 0.0,
) -> float | None:
    """A value of ``metric`` from ``source``, at ``min_fidelity`` or above, that a COMPLETE
    trial of the campaign already measured on the architecture ``architecture_digest`` (any
    accelerator), or None."""
    ms, ev, t = schema.measurements, schema.evaluations, optuna_tables().trials
    q = (
        sa.select(ms.c.value)
        .select_from(
            ms.join(ev, ev.c.trial_id == ms.c.trial_id).join(t, t.c.trial_id == ms.c.trial_id)
        )
        .where(
            ev.c.campaign_id == campaign_id,
            ev.c.architecture_digest == architecture_digest,
            ms.c.metric == metric,
            ms.c.source == source,
            ms.c.fidelity >= min_fidelity,
            t.c.state == TrialState.COMPLETE,
        )
        .limit(1)
    )
    with engine.connect() as conn:
        value = conn.execute(q).scalar()
    return None if value is None else float(value)


def trial_fidelities(
    engine: sa.Engine, study_id: int, metrics: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(trial_ids, fidelity)`` of the COMPLETE trials of ``study_id``, in trial-id order.

    A trial's fidelity is the lowest fidelity of its measurements of ``metrics`` (usually
    the campaign's objectives), from cosearch's ``measurements`` table; 0.0 when one of
    ``metrics`` was not measured (a screen that skipped accuracy says nothing about it);
    NaN for a trial without cosearch rows (written by plain Optuna). One GROUP BY query.
    """
    t, ms = optuna_tables().trials, schema.measurements
    wanted = sorted(set(metrics))
    q = (
        sa.select(
            t.c.trial_id,
            sa.func.min(ms.c.fidelity),
            sa.func.count(sa.distinct(ms.c.metric)),
        )
        .select_from(
            t.outerjoin(ms, sa.and_(ms.c.trial_id == t.c.trial_id, ms.c.metric.in_(wanted)))
        )
        .where(t.c.study_id == study_id, t.c.state == TrialState.COMPLETE)
        .group_by(t.c.trial_id)
        .order_by(t.c.trial_id)
    )
    with engine.connect() as conn:
        table = _fetch_numbers(conn, q, 3)
    ids = table[:, 0].astype(np.int64)
    fid = table[:, 1].copy()
    fid[table[:, 2] < len(wanted)] = 0.0
    fid[table[:, 2] == 0] = np.nan
    return ids, fid


def constraint_values(engine: sa.Engine, study_id: int) -> tuple[np.ndarray, list[list[float]]]:
    """``(trial_ids, values)`` of the COMPLETE trials of ``study_id`` that have a
    ``constraints`` list (Optuna's convention: <= 0 satisfied), in trial-id order."""
    ot = optuna_tables()
    t, ts = ot.trials, ot.trial_system_attributes
    q = (
        sa.select(ts.c.trial_id, ts.c.value_json)
        .select_from(t.join(ts, ts.c.trial_id == t.c.trial_id))
        .where(
            t.c.study_id == study_id,
            t.c.state == TrialState.COMPLETE,
            ts.c.key == _CONSTRAINTS_KEY,
        )
        .order_by(ts.c.trial_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), []
    parsed = json.loads("[" + ",".join(r[1] for r in rows) + "]")
    ids, out = [], []
    for (tid, _), v in zip(rows, parsed):
        if isinstance(v, list):
            ids.append(int(tid))
            out.append([float(c) for c in v])
    return np.asarray(ids, dtype=np.int64), out


def user_attr_values(
    engine: sa.Engine, study_id: int, key: str, *, state: TrialState | None = None
) -> dict[int, Any]:
    """``{trial_id: value}`` of user attribute ``key`` over the trials of ``study_id`` (in
    ``state``, or any state)."""
    ot = optuna_tables()
    t, tu = ot.trials, ot.trial_user_attributes
    q = (
        sa.select(tu.c.trial_id, tu.c.value_json)
        .select_from(t.join(tu, tu.c.trial_id == t.c.trial_id))
        .where(t.c.study_id == study_id, tu.c.key == key)
    )
    if state is not None:
        q = q.where(t.c.state == state)
    with engine.connect() as conn:
        return {int(tid): json.loads(text) for tid, text in conn.execute(q)}


def param_keys(
    engine: sa.Engine, study_id: int, trial_ids: Sequence[int] | None = None
) -> dict[int, tuple[tuple[str, float], ...]]:
    """``{trial_id: ((param name, internal value), ...)}`` sorted by name: equal keys mean
    equal parameters. All trials of ``study_id`` (any state), or only ``trial_ids``."""
    tp, t = optuna_tables().trial_params, optuna_tables().trials
    found: dict[int, list[tuple[str, float]]] = {}
    with engine.connect() as conn:
        if trial_ids is None:
            q = (
                sa.select(tp.c.trial_id, tp.c.param_name, tp.c.param_value)
                .select_from(tp.join(t, t.c.trial_id == tp.c.trial_id))
                .where(t.c.study_id == study_id)
            )
            for tid, name, value in conn.execute(q):
                found.setdefault(int(tid), []).append((name, float(value)))
        else:
            for chunk in _chunks(trial_ids):
                q = sa.select(tp.c.trial_id, tp.c.param_name, tp.c.param_value).where(
                    tp.c.trial_id.in_(chunk)
                )
                for tid, name, value in conn.execute(q):
                    found.setdefault(int(tid), []).append((name, float(value)))
    return {tid: tuple(sorted(items)) for tid, items in found.items()}


def trial_numbers(engine: sa.Engine, study_id: int, trial_ids: np.ndarray) -> np.ndarray:
    """Trial numbers of ``trial_ids`` (trials of ``study_id``), in the same order."""
    t = optuna_tables().trials
    q = sa.select(t.c.trial_id, t.c.number).where(t.c.study_id == study_id)
    with engine.connect() as conn:
        table = _fetch_numbers(conn, q, 2).astype(np.int64)
    lookup = dict(zip(table[:, 0].tolist(), table[:, 1].tolist()))
    return np.array([lookup[int(i)] for i in trial_ids], dtype=np.int64)
