"""Per-trial artifacts that optuna-dashboard shows: the network's ONNX graph, a per-layer
latency/energy plot, and the accelerator's configuration.

They go to Optuna's file-system artifact store beside the database (``<file>.db.artifacts/``
for SQLite, ``$COSEARCH_ARTIFACTS`` otherwise), are attached through Optuna's artifact API.
``[evaluate] artifacts = "all"`` attaches them to every trial before it is told (Optuna does
not let finished trials change); the default ``"front"`` attaches the Pareto-front trials'
artifacts to the study at the end of each run (the study's Artifacts tab; the mapping trial
number -> artifact ids is the study attribute ``cosearch.front_artifacts``), because drawing a
plot per trial costs more than the whole analytical evaluation; ``"none"`` skips them.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from cosearch.store._optuna_compat import study_storage

if TYPE_CHECKING:
    from optuna.artifacts import FileSystemArtifactStore

    from cosearch.campaign import Campaign
    from cosearch.hwmodels import Accelerator, Cost

__all__ = ["artifact_dir", "artifact_store", "front_artifacts", "plot_layers", "trial_artifacts"]


def artifact_dir(url: str) -> Path | None:
    """Where a store's artifacts live: beside an SQLite file, else ``$COSEARCH_ARTIFACTS``."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database).with_name(Path(u.database).name + ".artifacts")
    env = os.environ.get("COSEARCH_ARTIFACTS")
    return Path(env) if env else None


def artifact_store(url: str, *, create: bool = False) -> FileSystemArtifactStore | None:
    from optuna.artifacts import FileSystemArtifactStore

    path = artifact_dir(url)
    if path is None:
        return None
    if create:
        path.mkdir(parents=True, exist_ok=True)
    elif not path.is_dir():
        return None
    return FileSystemArtifactStore(str(path))


def plot_layers(cost: Cost, path: str, title: str) -> None:
    """Per-layer latency (cycles) and energy (pJ) as two stacked bar charts (PNG)."""
    # A bare Figure, not pyplot: choosing a backend here (matplotlib.use) would change the
    # user's session (a notebook's inline plots stop showing after a campaign run).
    from matplotlib.figure import Figure

    layers = cost.per_layer
    width, height = max(6.0, len(layers) * 0.12), 5.0
    fig = Figure(figsize=(width, height), dpi=100)
    # fixed margins in inches: tight_layout measured the text by drawing the whole figure once
    # more, 0.12 s of the 0.34 s each plot took
    fig.subplots_adjust(
        left=0.85 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - 0.45 / height
    )
    a1, a2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"hspace": 0.18})
    _bars(a1, [lc.latency_cycles for lc in layers], "tab:blue")
    a1.set_ylabel("latency (cycles)")
    _bars(a2, [lc.energy_pj for lc in layers], "tab:orange")
    a2.set_ylabel("energy (pJ)")
    a2.set_xlabel("layer (network order)")
    a1.set_title(textwrap.fill(title, int(width * 15)), fontsize=8)
    fig.savefig(path)


def _bars(ax: Any, heights: list[float], color: str) -> None:
    """A bar chart as one collection of rectangles: ``ax.bar`` makes an artist per bar, and a
    network of hundreds of layers then took most of a campaign's end-of-run time to draw."""
    from matplotlib.collections import PolyCollection

    verts = [
        [(i - 0.4, 0.0), (i - 0.4, h), (i + 0.4, h), (i + 0.4, 0.0)] for i, h in enumerate(heights)
    ]
    ax.add_collection(PolyCollection(verts, facecolors=color, edgecolors="none"))
    ax.set_xlim(-0.6, max(len(heights), 1) - 0.4)
    ax.set_ylim(0.0, max(max(heights, default=0.0), 1e-12) * 1.05)


def _write_files(
    tmp: Path, number: int, onnx_bytes: bytes, acc: Accelerator, cost: Cost | None
) -> dict[str, Path]:
    files = {"onnx": tmp / f"trial{number}.onnx", "accelerator": tmp / f"trial{number}_acc.json"}
    files["onnx"].write_bytes(onnx_bytes)
    files["accelerator"].write_text(
        json.dumps({"template": acc.template, **acc.params, "spec": acc.spec()}, indent=2)
    )
    if cost is not None and cost.per_layer:
        files["layers_png"] = tmp / f"trial{number}_layers.png"
        plot_layers(cost, str(files["layers_png"]), f"trial {number}: {acc.spec()[:110]}")
    return files


def trial_artifacts(
    campaign: Campaign, trial: optuna.Trial, onnx_bytes: bytes, acc: Accelerator, cost: Cost | None
) -> dict[str, str]:
    """Attach the three artifacts to a RUNNING trial (Optuna refuses finished ones)."""
    from optuna.artifacts import upload_artifact

    store = artifact_store(campaign.store.url, create=True)
    if store is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        files = _write_files(Path(tmp), trial.number, onnx_bytes, acc, cost)
        return {
            k: upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=trial)
            for k, f in files.items()
        }


def front_artifacts(campaign: Campaign, front: Iterable[FrozenTrial]) -> int:
    """Attach each front trial's artifacts to the study (finished trials cannot take
    artifacts in Optuna), recorded in the study attribute ``cosearch.front_artifacts``
    (trial number -> artifact ids). Returns how many trials were added."""
    from cosearch.store._locks import store_lock

    store = artifact_store(campaign.store.url, create=True)
    if store is None:
        return 0
    study = campaign.study  # opened before the lock (opening takes one of its own)
    # workers that finish together each read the record before the other wrote it, and both
    # uploaded the front (16 of 99 front trials had their files twice)
    with store_lock(campaign.store.engine, campaign.store.url, f"cosearch-art:{campaign.name}"):
        return _attach(campaign, study, store, front)


def _attach(
    campaign: Campaign, study: Any, store: FileSystemArtifactStore, front: Iterable[FrozenTrial]
) -> int:
    from optuna.artifacts import upload_artifact

    from cosearch.hwmodels import Accelerator, extract_layers
    from cosearch.spaces.onnx_io import model_from_bytes

    known: dict[str, dict[str, str]] = dict(study.user_attrs.get("cosearch.front_artifacts", {}))
    storage = study_storage(study)
    sid = storage.get_study_id_from_name(campaign.name)
    # a database copied without its artifacts folder: the study still lists every file and
    # the dashboard answered 500 for each; forget the lost ones (the front's are made again)
    lost = [n for n, ids in known.items() if not all(_exists(store, a) for a in ids.values())]
    if lost:
        _forget(campaign, sid, [a for n in lost for a in known.pop(n).values()])
    added = 0
    with tempfile.TemporaryDirectory() as tmp:
        for t in front:
            if str(t.number) in known or "artifacts" in t.user_attrs:
                continue
            ev = campaign.store.evaluation(
                storage.get_trial_id_from_study_id_trial_number(sid, t.number)
            )
            if ev is None:
                continue
            acc = Accelerator(ev["template"], ev["accelerator"])
            cost = None
            if not campaign.evaluator.measured:
                cost = campaign.evaluator.cost_model.evaluate(
                    extract_layers(model_from_bytes(ev["onnx"])), acc
                )
            files = _write_files(Path(tmp), t.number, ev["onnx"], acc, cost)
            known[str(t.number)] = {
                k: upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=study)
                for k, f in files.items()
            }
            added += 1
    if added or lost:
        study.set_user_attr("cosearch.front_artifacts", known)
    return added


def _exists(store: FileSystemArtifactStore, artifact_id: str) -> bool:
    try:
        store.open_reader(artifact_id).close()
    except Exception:  # noqa: BLE001 - ArtifactNotFound, or an id the store refuses
        return False
    return True


def _forget(campaign: Campaign, study_id: int, artifact_ids: list[str]) -> None:
    """Remove the study attributes through which Optuna (and the dashboard) list the
    artifacts ``artifact_ids``; Optuna has no call for this."""
    import sqlalchemy as sa
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    with campaign.store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM study_system_attributes WHERE study_id = :sid AND key IN :keys"
            ).bindparams(sa.bindparam("keys", expanding=True)),
            {"sid": study_id, "keys": [ARTIFACTS_ATTR_PREFIX + a for a in artifact_ids]},
        )
