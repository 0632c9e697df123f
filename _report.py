"""Read-side views of a campaign shared by the CLI and the Python API: status and front rows."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from cosearch.errors import StoreInputError
from cosearch.store import Store
from cosearch.store.queries import (
    constraint_values,
    load_trials,
    objective_table,
    pareto_front_ids,
    pareto_mask,
    rdb_engine,
    state_counts,
    study_id_of,
    trial_fidelities,
)

__all__ = [
    "campaign_status",
    "front_rows",
    "format_table",
    "WHOLE_CSV_JSON",
    "WHOLE_JSON",
    "load_campaign",
    "pareto_front",
    "pareto_trials",
    "is_feasible",
    "CONSTRAINTS_KEY",
    "FidelityFront",
    "fidelity_fronts",
    "least_violating_trials",
    "violation_rows",
]

#: Optuna's system attribute for constraint values (<= 0 feasible); samplers with a
#: ``constraints_func``, ``study.best_trials`` and optuna-dashboard all read it.
CONSTRAINTS_KEY = "constraints"


def load_campaign(store: Store, name: str) -> tuple[dict[str, Any], optuna.Study]:
    """The campaign row and its study, without needing the spaces to be importable."""
    row = store.require_campaign(name)
    try:
        study = optuna.load_study(study_name=row["study_name"], storage=store.optuna_storage)
    except KeyError:
        raise StoreInputError(
            f"campaign {name!r} has lost its Optuna study {row['study_name']!r} (deleted "
            f"outside cosearch?); `cosearch delete {name} --yes` removes what is left of it"
        ) from None
    return row, study


def is_feasible(t: FrozenTrial) -> bool:
    """True when every constraint value of ``t`` is <= 0 (or it has none)."""
    return all(v <= 0 for v in t.constraints.values())


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE, feasible trials that no other such trial dominates, best first objective
    first (ties in trial-number order).

    When the campaign's trials were measured at several fidelities (a DARTS campaign reports
    every epoch's cell with its supernet accuracy, fidelity 0.1, and the retrained final at
    1.0), the front is that of the trials at the highest fidelity: a proxy value is not
    comparable with a final one (``cosearch pareto --fidelity all`` shows every level).

    On an RDB storage this reads the objective and constraint values with SQL and builds
    FrozenTrials for the front only (store/queries.py), instead of every trial of the study.
    """
    return pareto_front(study)[0]


def pareto_front(study: optuna.Study) -> tuple[list[FrozenTrial], str]:
    """:func:`pareto_trials` and a note for its readers: ``" at fidelity F (N lower-fidelity
    trials left out)"`` when trials of lower fidelities were left out, else ``""``."""
    dirs = [d.name.lower() for d in study.directions]
    engine = rdb_engine(study)
    note = ""
    if engine is None:  # e.g. an in-memory Optuna storage
        front = _pareto_trials_loaded(study, dirs)
    else:
        with engine.connect() as conn:
            study_id = study_id_of(conn, study.study_name)
        top = top_fidelity(engine, study_id, study.metric_names)
        ids, _ = pareto_front_ids(engine, study_id, dirs, among=None if top is None else top[1])
        front = load_trials(engine, ids)
        if top is not None:
            note = f" at fidelity {top[0]:g} ({top[2]} lower-fidelity trial(s) left out)"
    front.sort(key=lambda t: t.values[0], reverse=dirs[0] == "maximize")
    return front, note


def top_fidelity(
    engine: Any, study_id: int, metrics: Sequence[str] | None
) -> tuple[float, np.ndarray, int] | None:
    """``(fidelity, trial ids, trials left out)`` of the COMPLETE trials at the highest of
    several fidelities; None when they share one (the usual case) or have none recorded."""
    if not metrics:
        return None
    ids, fid = trial_fidelities(engine, study_id, metrics)
    rounded = np.round(fid, 4)
    levels = _unique(rounded[~np.isnan(rounded)])
    if len(levels) < 2:
        return None
    keep = rounded == levels[0]
    return levels[0], ids[keep], int((~keep).sum())


def _pareto_trials_loaded(study: optuna.Study, dirs: list[str]) -> list[FrozenTrial]:
    trials = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)
    ]
    if not trials:
        return []
    mask = pareto_mask(np.array([t.values for t in trials], dtype=float), dirs)
    return [t for t, keep in zip(trials, mask) if keep]


@dataclass(frozen=True)
class FidelityFront:
    """The front of one group of COMPLETE trials: one study ("main": the campaign's own,
    "screen": its screened trials) at one trial fidelity (rounded to 4 decimals; NaN for
    trials without measurements)."""

    stage: str
    fidelity: float
    study: optuna.Study
    trials: int  # COMPLETE trials in the group
    feasible: int
    front: list[FrozenTrial]
    trial_ids: tuple[int, ...] = ()  # storage ids of the group's COMPLETE trials


def _fidelity_groups(engine: Any, study_id: int, metrics: Sequence[str]) -> dict[float, Any]:
    ids, fid = trial_fidelities(engine, study_id, metrics)
    rounded = np.round(fid, 4)
    return {
        float(f): ids[(rounded == f) | (np.isnan(rounded) & np.isnan(f))] for f in _unique(rounded)
    }


def _unique(a: np.ndarray) -> list[float]:
    out = sorted({float(x) for x in a if not np.isnan(x)}, reverse=True)
    return out + ([float("nan")] if np.isnan(a).any() else [])


def fidelity_fronts(
    studies: Sequence[tuple[str, optuna.Study]], metrics: Sequence[str]
) -> list[FidelityFront]:
    """Per study and per trial fidelity (highest first), the feasible non-dominated trials
    (by the study's own objectives). ``metrics`` are the campaign objectives that define a
    trial's fidelity (store.queries.trial_fidelities). RDB storages only."""
    out = []
    for stage, study in studies:
        engine = rdb_engine(study)
        if engine is None:
            raise TypeError("per-fidelity fronts need a study in an RDB storage")
        dirs = [d.name.lower() for d in study.directions]
        with engine.connect() as conn:
            sid = study_id_of(conn, study.study_name)
        table = objective_table(engine, sid, len(dirs))
        for f, ids in _fidelity_groups(engine, sid, metrics).items():
            sel = np.isin(table.trial_ids, ids)
            ok = sel & table.feasible
            mask = pareto_mask(table.values[ok], dirs)
            front = load_trials(engine, table.trial_ids[ok][mask])
            front.sort(key=lambda t: t.values[0], reverse=dirs[0] == "maximize")
            ids_here = tuple(int(i) for i in table.trial_ids[sel])
            out.append(
                FidelityFront(stage, f, study, int(sel.sum()), int(ok.sum()), front, ids_here)
            )
    return out


def least_violating_trials(
    study: optuna.Study, k: int, trial_ids: Sequence[int] | np.ndarray | None = None
) -> list[tuple[FrozenTrial, list[float]]]:
    """The ``k`` COMPLETE trials with the smallest total constraint violation (sum of the
    positive constraint values; a NaN constraint counts as violated without bound), smallest
    first (ties by trial number), each with its per-constraint violations. Trials without
    constraint values count as violation 0. ``trial_ids`` (storage ids, RDB storages only)
    restricts the choice to those trials, e.g. one fidelity's; by default they are those
    :func:`pareto_trials` draws the front from (the highest of several fidelities)."""
    engine = rdb_engine(study)
    if engine is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        pairs = [(t, [_violation(c) for c in _constraint_list(t)]) for t in trials]
        pairs.sort(key=lambda p: (sum(p[1]), p[0].number))
        return pairs[:k]
    with engine.connect() as conn:
        sid = study_id_of(conn, study.study_name)
    table = objective_table(engine, sid, len(study.directions))
    ids = table.trial_ids
    if trial_ids is None:  # the trials the default front is drawn from (pareto_trials)
        top = top_fidelity(engine, sid, study.metric_names)
        trial_ids = None if top is None else top[1]
    if trial_ids is not None:
        ids = ids[np.isin(ids, np.asarray(trial_ids, dtype=ids.dtype))]
    cids, cvals = constraint_values(engine, sid)
    per = dict(zip(cids.tolist(), ([_violation(c) for c in v] for v in cvals)))
    total = np.array([sum(per.get(int(t), [])) for t in ids])
    order = np.argsort(total, kind="stable")[:k]  # trial ids ascend with numbers
    chosen = ids[order]
    trials = load_trials(engine, chosen)
    return [(t, per.get(int(tid), [])) for t, tid in zip(trials, chosen)]


def _violation(c: Any) -> float:
    """A constraint value's violation: its positive part; NaN (unknown) is infinite."""
    c = float(c)
    return math.inf if math.isnan(c) else max(0.0, c)


def _constraint_list(t: FrozenTrial) -> list[float]:
    # Optuna 5 hands trial.constraints out as {"0": v0, "1": v1, ...}; older ones as a list
    c = t.constraints
    return [c[k] for k in sorted(c, key=int)] if isinstance(c, dict) else list(c or [])


def violation_rows(
    study: optuna.Study, pairs: list[tuple[FrozenTrial, list[float]]]
) -> tuple[list[str], list[dict]]:
    """``front_rows`` for least-violating trials, plus ``violation`` (the total) and one
    ``violation[<constraint>]`` column per constraint (the last: hardware violations)."""
    labels = list(study.user_attrs.get("cosearch.constraints", [])) + ["hw_violations"]
    cols, rows = front_rows(study, [t for t, _ in pairs])
    width = max((len(v) for _, v in pairs), default=0)
    if len(labels) != width:  # a study not written by cosearch: number the constraints
        labels = [f"c{i}" for i in range(width)]
    names = [f"violation[{lab}]" for lab in labels]
    for row, (_, v) in zip(rows, pairs):
        row["feasible"] = not any(x > 0 for x in v)
        row["violation"] = float(sum(v))
        row.update(dict(zip(names, v)))
    at = cols.index("architecture")
    return cols[:at] + ["violation", *names] + cols[at:], rows


def campaign_status(store: Store, name: str) -> dict[str, Any]:
    """The campaign's summary: trial counts by state, feasible COMPLETE trials, front size,
    objectives, constraints, spaces and strategy. Counts come from SQL (store/queries.py)."""
    row, study = load_campaign(store, name)
    config = json.loads(row["config_json"])
    dirs = [d.name.lower() for d in study.directions]
    with store.engine.connect() as conn:
        study_id = study_id_of(conn, row["study_name"])
    counts = state_counts(store.engine, study_id)
    table = objective_table(store.engine, study_id, len(dirs))
    metrics = [m for m, _ in config["objectives"]]
    groups = _fidelity_groups(store.engine, study_id, metrics)
    levels = [f for f in groups if not np.isnan(f)]  # highest first
    among = table.feasible  # the front pareto_trials gives: the highest of several fidelities
    if len(levels) > 1:
        among = among & np.isin(table.trial_ids, groups[levels[0]])
    front_size = int(pareto_mask(table.values[among], dirs).sum())
    fidelity = [
        {"stage": "main", "fidelity": _json_float(f), "complete": int(len(ids))}
        for f, ids in groups.items()
    ]
    screened = 0
    from cosearch._workers import screen_study_name

    with store.engine.connect() as conn:
        try:
            screen_id: int | None = study_id_of(conn, screen_study_name(row["study_name"]))
        except KeyError:
            screen_id = None
    if screen_id is not None:
        screened = state_counts(store.engine, screen_id)["COMPLETE"]
        fidelity += [
            {"stage": "screen", "fidelity": _json_float(f), "complete": int(len(ids))}
            for f, ids in _fidelity_groups(store.engine, screen_id, metrics).items()
        ]
    return {
        "name": name,
        "study": row["study_name"],
        "created": str(row["created_at"])[:19],
        "trials": {s.name: counts.get(s.name, 0) for s in TrialState},
        "feasible": int(table.feasible.sum()),
        "front_size": front_size,
        "objectives": config["objectives"],
        "constraints": config["constraints"],
        "network": config["network"],
        "hardware": config["hardware"],
        "strategy": config["strategy"],
        "screened": screened,
        "fidelity": fidelity,
    }


def _json_float(f: float) -> float | None:
    return None if np.isnan(f) else f


def front_rows(study: optuna.Study, front: list[FrozenTrial]) -> tuple[list[str], list[dict]]:
    """Columns and one dict per front trial: objectives, other metrics, arch, accelerator."""
    names = study.metric_names or [f"value{i}" for i in range(len(study.directions))]
    extra = ["area_mm2", "latency_ms", "energy_mj", "accuracy"]
    cols = ["trial", *names]
    rows = []
    for t in front:
        metrics = t.user_attrs.get("metrics", {})
        row: dict[str, Any] = {"trial": t.number}
        row.update(dict(zip(names, t.values)))
        for m in extra:
            if m not in names and m in metrics:
                row[m] = metrics[m]
                if m not in cols:
                    cols.append(m)
        arch = t.user_attrs.get("architecture", {})
        row["architecture"] = arch.get("string") or arch.get("digest", "")[:12]
        row["accelerator"] = t.user_attrs.get("accelerator", "")
        if "screened_from" in t.user_attrs:
            row["screened_from"] = t.user_attrs["screened_from"]
        if "fidelity" in t.user_attrs:
            row["fidelity"] = t.user_attrs["fidelity"]
        rows.append(row)
    cols += [c for c in ("fidelity", "screened_from") if any(c in r for r in rows)]
    cols += ["architecture", "accelerator"]
    return cols, rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


#: ``format_table`` hints for commands whose ``--format`` prints cut cells whole
WHOLE_CSV_JSON = "--format csv or json prints them whole"
WHOLE_JSON = "--format json prints them whole"


def format_table(
    cols: list[str], rows: list[dict[str, Any]], *, max_width: int = 60, hint: str = ""
) -> str:
    """A plain-text table; cells longer than ``max_width`` end in "…". When a cell was cut and
    ``hint`` says where the whole values are, a last line says so."""
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    cut = any(len(c) > max_width for row in cells for c in row)
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cols, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    if cut and hint:
        lines.append(f"(cells over {max_width} characters are cut at …; {hint})")
    return "\n".join(line.rstrip() for line in lines)
