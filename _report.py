"""Read-side views of a campaign shared by the CLI and the Python API: status and front rows."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from cosearch.store import Store
from cosearch.store.queries import (
    load_trials,
    objective_table,
    pareto_front_ids,
    pareto_mask,
    rdb_engine,
    state_counts,
    study_id_of,
)

__all__ = [
    "campaign_status",
    "front_rows",
    "format_table",
    "load_campaign",
    "pareto_trials",
    "is_feasible",
    "CONSTRAINTS_KEY",
]

#: Optuna's system attribute for constraint values (<= 0 feasible); samplers with a
#: ``constraints_func``, ``study.best_trials`` and optuna-dashboard all read it.
CONSTRAINTS_KEY = "constraints"


def load_campaign(store: Store, name: str) -> tuple[dict[str, Any], optuna.Study]:
    """The campaign row and its study, without needing the spaces to be importable."""
    row = store.require_campaign(name)
    study = optuna.load_study(study_name=row["study_name"], storage=store.optuna_storage)
    return row, study


def is_feasible(t: FrozenTrial) -> bool:
    """True when every constraint value of ``t`` is <= 0 (or it has none)."""
    return all(v <= 0 for v in t.constraints.values())


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE, feasible trials that no other such trial dominates, best first objective
    first (ties in trial-number order).

    On an RDB storage this reads the objective and constraint values with SQL and builds
    FrozenTrials for the front only (store/queries.py), instead of every trial of the study.
    """
    dirs = [d.name.lower() for d in study.directions]
    engine = rdb_engine(study)
    if engine is None:  # e.g. an in-memory Optuna storage
        front = _pareto_trials_loaded(study, dirs)
    else:
        with engine.connect() as conn:
            study_id = study_id_of(conn, study.study_name)
        ids, _ = pareto_front_ids(engine, study_id, dirs)
        front = load_trials(engine, ids)
    front.sort(key=lambda t: t.values[0], reverse=dirs[0] == "maximize")
    return front


def _pareto_trials_loaded(study: optuna.Study, dirs: list[str]) -> list[FrozenTrial]:
    trials = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)
    ]
    if not trials:
        return []
    mask = pareto_mask(np.array([t.values for t in trials], dtype=float), dirs)
    return [t for t, keep in zip(trials, mask) if keep]


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
    feasible_values = table.values[table.feasible]
    return {
        "name": name,
        "study": row["study_name"],
        "created": str(row["created_at"])[:19],
        "trials": {s.name: counts.get(s.name, 0) for s in TrialState},
        "feasible": int(table.feasible.sum()),
        "front_size": int(pareto_mask(feasible_values, dirs).sum()),
        "objectives": config["objectives"],
        "constraints": config["constraints"],
        "network": config["network"],
        "hardware": config["hardware"],
        "strategy": config["strategy"],
    }


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
        rows.append(row)
    cols += ["architecture", "accelerator"]
    return cols, rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(cols: list[str], rows: list[dict[str, Any]], *, max_width: int = 60) -> str:
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cols, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)
