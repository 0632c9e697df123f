"""``cosearch compare``: campaigns side by side on one hypervolume scale.

Normalization (stated in every output): objectives are turned into minimization, and each is
mapped linearly to [0, 1] between the best and the worst value seen over the feasible COMPLETE
trials of *all* compared campaigns; the reference point is 1.1 in every coordinate. So the
hypervolumes of the compared campaigns are directly comparable, and a campaign's number
changes if another campaign is added to the comparison.

A campaign measured at several fidelities (DARTS: supernet accuracy at 0.1, retrained finals
at 1.0) enters with its trials at the highest one only, as in ``cosearch pareto``: a proxy
value is not comparable with a final one. Its trials of every fidelity still count on the
trials axis (they were spent). Screened trials (their own study) never enter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from cosearch._pareto import nondominated_mask, to_minimization
from cosearch._report import load_campaign, top_fidelity
from cosearch.errors import CosearchInputError
from cosearch.search._hypervolume import hypervolume
from cosearch.store import Store, open_store
from cosearch.store.queries import ObjectiveTable, objective_table

__all__ = ["CampaignCurve", "Comparison", "compare_campaigns", "parse_target", "REF"]

REF = 1.1


def parse_target(text: str, default_storage: str | None) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@URL`` -> (name, storage URL or None for the default)."""
    name, sep, url = text.partition("@")
    if not name:
        raise CosearchInputError(f"bad campaign reference {text!r}: expected NAME or NAME@URL")
    return name, (url if sep else default_storage)


@dataclass
class CampaignCurve:
    label: str
    name: str
    storage: str
    trials: int
    feasible: int
    front_size: int
    hv_final: float
    curve: list[tuple[int, float]]  # (COMPLETE trials so far, hypervolume)
    trials_to_fraction: int | None = None
    fidelity: list[dict[str, Any]] = field(default_factory=list)
    #: the highest of several fidelities, the only one scored (None: one fidelity)
    scored_fidelity: float | None = None
    #: COMPLETE trials of lower fidelities, counted as trials but not scored
    lower_fidelity: int = 0


@dataclass
class Comparison:
    objectives: list[tuple[str, str]]
    bounds: list[tuple[float, float]]  # per objective (best, worst), original units
    fraction: float
    campaigns: list[CampaignCurve]

    def as_dict(self) -> dict[str, Any]:
        return {
            "objectives": [list(o) for o in self.objectives],
            "normalization": {
                "bounds": [list(b) for b in self.bounds],
                "reference": REF,
                "note": "min-max over all compared campaigns' feasible trials",
            },
            "fraction": self.fraction,
            "campaigns": [c.__dict__ for c in self.campaigns],
        }

    def table_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "campaign": c.label,
                "trials": c.trials,
                "feasible": c.feasible,
                "front": c.front_size,
                "hypervolume": c.hv_final,
                f"trials_to_{self.fraction * 100:g}%": "-"
                if c.trials_to_fraction is None
                else c.trials_to_fraction,
            }
            for c in self.campaigns
        ]


def _load(
    name: str, url: str | None, stores: dict[str, Store]
) -> tuple[str, optuna.Study, tuple[float, np.ndarray, int] | None, ObjectiveTable]:
    """(storage shown, study, (top fidelity, its trial ids, trials left out) or None, the
    COMPLETE trials' values)."""
    key = url or ""
    if key not in stores:
        stores[key] = open_store(url, create=False)
    store = stores[key]
    row, study = load_campaign(store, name)
    study_id = store.optuna_storage.get_study_id_from_name(row["study_name"])
    top = top_fidelity(store.engine, study_id, study.metric_names)
    # the curve needs each COMPLETE trial's values and feasibility, read with SQL: building
    # every trial as a FrozenTrial took 17 of compare's 21 s on a 12,000-trial campaign
    table = objective_table(store.engine, study_id, len(study.directions))
    return store.display_url, study, top, table


def _fidelity(store: Store, name: str) -> list[dict[str, Any]]:
    """Measurements of the campaign's own trials (not its screened ones) by metric, source
    and fidelity."""
    quoted = name.replace(chr(39), chr(39) * 2)
    df = store.query(
        "SELECT m.metric AS metric, m.source AS source, m.fidelity AS fidelity, "
        "COUNT(*) AS n FROM measurements m JOIN trials t ON t.trial_id = m.trial_id "
        "JOIN studies s ON s.study_id = t.study_id "
        "JOIN campaigns c ON c.study_name = s.study_name "
        f"WHERE c.name = '{quoted}' "
        "GROUP BY m.metric, m.source, m.fidelity ORDER BY m.metric, m.source"
    )
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]


def compare_campaigns(
    targets: Sequence[tuple[str, str | None]], *, fraction: float = 0.95, points: int = 50
) -> Comparison:
    """Hypervolume-vs-trials curves of campaigns, on one shared normalization.

    ``targets``: (campaign name, storage URL or None). Raises CosearchInputError when the
    campaigns' objectives differ (names or directions) or a campaign is missing.
    """
    if not 0 < fraction <= 1:
        raise CosearchInputError(f"--fraction must be in (0, 1]; got {fraction}")
    stores: dict[str, Store] = {}
    try:
        loaded = []
        for name, url in targets:
            storage, study, top, table = _load(name, url, stores)
            names = study.metric_names or [f"value{i}" for i in range(len(study.directions))]
            objs = [(n, d.name.lower()) for n, d in zip(names, study.directions)]
            scored = table.feasible.copy()
            if top is not None:  # only the trials measured at the top fidelity count
                scored &= np.isin(table.trial_ids, top[1])
            fid = _fidelity(stores[url or ""], name)
            loaded.append((name, storage, objs, (table.values, scored), fid, top))
    finally:
        for s in stores.values():
            s.close()
    objectives = loaded[0][2]
    for name, _, objs, *_ in loaded[1:]:
        if objs != objectives:
            raise CosearchInputError(
                f"campaign {name!r} optimizes {objs}, not {objectives}; only campaigns with "
                "the same objectives and directions can be compared"
            )
    directions = [d for _, d in objectives]

    feas_all = [values[scored] for *_, (values, scored), _, _ in loaded]
    stacked = [f for f in feas_all if len(f)]
    lo = hi = np.zeros(len(objectives))
    if stacked:  # over finite values: one infinite value made every campaign's numbers NaN
        mins = to_minimization(np.vstack(stacked), directions)
        finite = np.isfinite(mins)
        if finite.any():
            lo = np.where(finite.any(axis=0), np.where(finite, mins, np.inf).min(axis=0), 0.0)
            hi = np.where(finite.any(axis=0), np.where(finite, mins, -np.inf).max(axis=0), 0.0)
    span = np.where(hi > lo, hi - lo, 1.0)
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    bounds = [(float(a * s), float(b * s)) for a, b, s in zip(lo, hi, sign)]

    curves = []
    all_steps: list[list[tuple[int, float]]] = []
    labels = [n if sum(x[0] == n for x in loaded) == 1 else f"{n}@{u}" for n, u, *_ in loaded]
    for label, (name, storage, _, (values, scored), fid, top) in zip(labels, loaded):
        norm_rows: list[np.ndarray] = []
        marks = sorted({max(1, round(len(values) * k / points)) for k in range(1, points + 1)})
        curve: list[tuple[int, float]] = []
        steps: list[tuple[int, float]] = []  # (trial, hypervolume) wherever it grew
        front = np.empty((0, len(objectives)))
        hv = 0.0
        for i, (row, ok) in enumerate(zip(values, scored), start=1):
            if ok:
                p = (to_minimization(row[None, :], directions) - lo) / span
                p = np.maximum(p, 0.0)  # -inf (better than any finite value): at the bound
                norm_rows.append(p[0])
                front = np.vstack([front, p])
                front = front[nondominated_mask(front, ["minimize"] * len(objectives))]
                if len(front) and np.array_equal(front[-1], p[0]):  # it joined the front
                    new_hv = hypervolume(front, np.full(len(objectives), REF))
                    if new_hv > hv:
                        hv = new_hv
                        steps.append((i, hv))
            if i in marks:
                curve.append((i, hv))
        curves.append(
            CampaignCurve(
                label,
                name,
                storage,
                len(values),
                len(norm_rows),
                len(front),
                hv,
                curve,
                fidelity=fid,
                scored_fidelity=None if top is None else top[0],
                lower_fidelity=0 if top is None else top[2],
            )
        )
        all_steps.append(steps)
    best = max((c.hv_final for c in curves), default=0.0)
    goal = fraction * best
    for c, steps in zip(curves, all_steps):  # every trial counts, not only the curve's points
        c.trials_to_fraction = next((n for n, hv in steps if best > 0 and hv >= goal), None)
    return Comparison(objectives, bounds, fraction, curves)


def plot_comparison(cmp: Comparison, path: str) -> None:
    """Hypervolume vs trials, one line per campaign, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone

    fig = Figure(figsize=(7, 4.2), dpi=120)
    ax = fig.subplots()
    for c in cmp.campaigns:
        if c.curve:
            xs, ys = zip(*c.curve)
            ax.plot(xs, ys, label=f"{c.label} (final {c.hv_final:.3f})")
    ax.set_xlabel("COMPLETE trials")
    ax.set_ylabel("hypervolume (shared normalization)")
    objs = ", ".join(f"{n} ({d[:3]})" for n, d in cmp.objectives)
    ax.set_title(f"Hypervolume vs trials: {objs}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(
        0.01,
        0.01,
        f"objectives min-max normalized over all compared campaigns; reference point {REF}",
        fontsize=6,
        color="0.4",
    )
    fig.tight_layout()
    fig.savefig(path)


def to_json(cmp: Comparison) -> str:
    return json.dumps(cmp.as_dict(), indent=2, default=float)
