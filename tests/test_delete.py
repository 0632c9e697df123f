"""`cosearch delete`: a campaign goes with everything it stored, and nothing else does."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy as sa

from cosearch import Campaign
from cosearch.cli import main

from .conftest import QUICK_TOML

SCREEN = '\n[screen]\ncost = "analytical:systolic"\ncandidates = 30\npromote = 3\n'


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _counts(url: str) -> dict[str, int]:
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        out = {
            t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("evaluations", "measurements", "architectures", "checkpoints", "campaigns")
        }
    eng.dispose()
    return out


def _campaign(tmp_path, url: str, name: str, strategy: str, extra: str = "") -> Campaign:
    path = tmp_path / f"{name}.toml"
    path.write_text(QUICK_TOML.format(name=name, trials=12, seed=0, strategy=strategy) + extra)
    return Campaign.from_toml(path, storage=url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_delete_removes_the_campaign_and_keeps_the_others(backend, tmp_path, capsys, request):
    sqlite = backend == "sqlite"
    url = f"sqlite:///{tmp_path / 'd.db'}" if sqlite else request.getfixturevalue("pg_url")
    if not sqlite:  # artifacts of a server store live in $COSEARCH_ARTIFACTS
        request.getfixturevalue("monkeypatch").setenv("COSEARCH_ARTIFACTS", str(tmp_path / "art"))
    gone = _campaign(tmp_path, url, "gone", "marl", SCREEN)  # marl checkpoints its policy
    gone.run(12)
    gone.screen(30)
    kept = _campaign(tmp_path, url, "kept", "random")
    kept.run(12)
    artifacts = tmp_path / ("d.db.artifacts" if sqlite else "art")
    files_before = set(artifacts.iterdir())
    before = _counts(url)
    assert before["checkpoints"] > 0 and before["campaigns"] == 2

    # without --yes: one line saying what would go, exit 2, nothing deleted
    code, _, err = _cli(capsys, "delete", "gone", "--storage", url)
    assert code == 2 and err.count("\n") == 1 and "its 12 trials" in err and "--yes" in err
    assert _counts(url) == before

    code, _, err = _cli(capsys, "delete", "gone", "--storage", url, "--yes")
    assert code == 0, err
    assert "42 trials in 2 studies" in err  # its 12 and the 30 screened, in their own study
    names = {s.study_name for s in optuna.get_all_study_summaries(url)}
    assert names == {"kept"}
    after = _counts(url)
    assert after["campaigns"] == 1 and after["checkpoints"] == 0
    assert after["evaluations"] == 12  # kept's, each with its measurements
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        kept_rows = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM measurements m JOIN trials t USING (trial_id) "
                "JOIN studies s USING (study_id) WHERE s.study_name = 'kept'"
            )
        ).scalar_one()
    eng.dispose()
    assert 0 < after["measurements"] == kept_rows < before["measurements"]
    # gone's own files went; kept's stayed
    left = set(artifacts.iterdir())
    assert left < files_before and len(left) > 0
    study = optuna.load_study(study_name="kept", storage=url)
    assert len(study.trials) == 12 and kept.pareto()
    code, _, err = _cli(capsys, "delete", "gone", "--storage", url, "--yes")
    assert code == 2 and "no campaign 'gone'" in err


def test_a_study_deleted_outside_cosearch_is_reported_and_cleaned_up(tmp_path, capsys):
    import os
    import uuid

    url = f"sqlite:///{tmp_path / 'o.db'}"
    artifacts = tmp_path / "o.db.artifacts"
    c = _campaign(tmp_path, url, "lost", "random")
    c.run(5)
    lost_files = set(artifacts.iterdir())
    _campaign(tmp_path, url, "other", "random").run(3)
    other_files = set(artifacts.iterdir()) - lost_files
    assert lost_files and other_files
    c.store.close()
    optuna.delete_study(study_name="lost", storage=url)  # as `optuna delete-study` does
    # an hour later; an upload in progress (its file written, its record not yet) and a file
    # of the user's are not the lost study's
    for f in lost_files | other_files:
        os.utime(f, (f.stat().st_atime - 7200, f.stat().st_mtime - 7200))
    uploading = artifacts / str(uuid.uuid4())
    uploading.write_bytes(b"x")
    mine = artifacts / "notes.txt"
    mine.write_text("x")
    os.utime(mine, (mine.stat().st_atime - 7200, mine.stat().st_mtime - 7200))

    code, out, err = _cli(capsys, "status", "--storage", url)
    assert code == 0 and "'lost' has lost its Optuna study" in err
    assert "other" in out and "lost" not in out  # the other campaigns still list
    code, _, err = _cli(capsys, "status", "lost", "--storage", url)
    assert code == 2 and "cosearch delete lost --yes" in err

    code, _, err = _cli(capsys, "delete", "lost", "--storage", url, "--yes")
    assert code == 0, err
    # Optuna's delete left lost's cosearch rows behind on SQLite; they are gone now
    assert _counts(url)["evaluations"] == 3
    # and its artifact files, which no study records any more
    assert set(artifacts.iterdir()) == other_files | {uploading, mine}
    # and the name is free again, for another configuration
    again = _campaign(tmp_path, url, "lost", "evolution")
    assert again.run(2).completed == 2


def test_delete_refuses_while_a_worker_is_running(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    c = _campaign(tmp_path, url, "busy", "random")
    c.run(3)
    from cosearch._workers import claim_trial
    from cosearch.store import worker_id

    # this process is a live worker holding a RUNNING trial
    claim = claim_trial(c.study, c.store, 10, worker_id())
    assert claim.state == "run"
    before = _counts(url)
    code, _, err = _cli(capsys, "delete", "busy", "--storage", url, "--yes")
    assert code == 2 and "1 trial(s) running on live workers" in err and "stop them" in err
    assert _counts(url) == before and len(c.study.get_trials()) == 4
    # once the worker is gone (its trial finished), delete goes ahead
    c.study.tell(c.study.get_trials()[-1].number, state=optuna.trial.TrialState.FAIL)
    code, _, err = _cli(capsys, "delete", "busy", "--storage", url, "--yes")
    assert code == 0, err


def test_deleting_from_an_in_memory_store_leaves_the_shared_artifact_folder_alone(
    tmp_path, monkeypatch
):
    """An in-memory SQLite store keeps its artifacts in $COSEARCH_ARTIFACTS, which other
    stores share: the orphan sweep (only beside an SQLite file) removed their files."""
    import os
    import uuid

    from cosearch import load_config
    from cosearch.store import open_store

    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("COSEARCH_ARTIFACTS", str(shared))
    theirs = shared / str(uuid.uuid4())  # another store's, two hours old
    theirs.write_bytes(b"x")
    os.utime(theirs, (theirs.stat().st_atime - 7200, theirs.stat().st_mtime - 7200))
    path = tmp_path / "m.toml"
    path.write_text(QUICK_TOML.format(name="mem", trials=2, seed=0, strategy="random"))
    c = Campaign(load_config(path), open_store("sqlite://"))
    c.run(2)
    ours = set(shared.iterdir()) - {theirs}
    assert ours  # the front's artifacts
    done = c.store.delete_campaign("mem")
    assert done["artifacts"] == len(ours) and set(shared.iterdir()) == {theirs}
