"""Many workers on one campaign: exact trial counts, no duplicates, crash recovery.

Runs on SQLite and on a real PostgreSQL server (see the pg_server fixture)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from cosearch import Campaign, load_config

from ..conftest import ROOT


def _start_workers(n, name, url, cfg, *extra):
    cmd = [
        sys.executable,
        "-m",
        "cosearch.cli",
        "worker",
        name,
        "--storage",
        url,
        "--config",
        str(cfg),
        *extra,
    ]
    return [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(n)
    ]


def _wait(procs, timeout=600):
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        outs.append((p.returncode, err.decode()))
    return outs


def _check_consistency(url, name, trials):
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        q = lambda sql: conn.execute(sa.text(sql)).all()  # noqa: E731
        states = dict(
            q(
                "SELECT t.state, COUNT(*) FROM trials t JOIN studies s USING (study_id) "
                f"WHERE s.study_name = '{name}' GROUP BY t.state"
            )
        )
        states = {str(k).split(".")[-1]: v for k, v in states.items()}
        assert states.get("COMPLETE") == trials, states
        assert states.get("RUNNING", 0) == 0 and states.get("WAITING", 0) == 0
        numbers = [r[0] for r in q("SELECT number FROM trials")]
        assert len(numbers) == len(set(numbers))
        # one architecture row per digest; every measurement tied to an existing trial
        assert q("SELECT COUNT(*) - COUNT(DISTINCT digest) FROM architectures")[0][0] == 0
        assert (
            q(
                "SELECT COUNT(*) FROM measurements m LEFT JOIN trials t "
                "ON t.trial_id = m.trial_id WHERE t.trial_id IS NULL"
            )[0][0]
            == 0
        )
        assert (
            q(
                "SELECT COUNT(*) FROM evaluations e JOIN trials t USING (trial_id) "
                "WHERE CAST(t.state AS VARCHAR) NOT LIKE '%COMPLETE'"
            )[0][0]
            == 0
        )
        assert q("SELECT COUNT(*) FROM evaluations")[0][0] == trials
        assert q("SELECT COUNT(*) FROM heartbeats")[0][0] == 0
    eng.dispose()
    return states


def _create(make_config, url, name, trials):
    cfg = make_config(name=name, trials=trials, strategy="nsga2")
    c = Campaign.from_config(load_config(cfg), storage=url)
    c.study  # noqa: B018 - creates the campaign the workers join
    c.store.close()
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_four_workers_finish_exactly(backend, make_config, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'w.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    trials = 200 if backend == "postgresql" else 80
    cfg = _create(make_config, url, "multi", trials)
    outs = _wait(_start_workers(4, "multi", url, cfg))
    assert all(rc == 0 for rc, _ in outs), outs
    ran = [int(err.split("worker done: ")[1].split()[0]) for _, err in outs]
    assert sum(ran) == trials and sum(r > 0 for r in ran) >= 2  # work really was shared
    _check_consistency(url, "multi", trials)


def _worker_running_trial(url, pid):
    # short lock timeout: the frozen victim may hold SQLite's write lock; then just retry
    kw = {"connect_args": {"timeout": 0.5}} if url.startswith("sqlite") else {}
    eng = sa.create_engine(url, **kw)
    try:
        return _running_trial_query(eng, pid)
    except sa.exc.OperationalError:
        return None
    finally:
        eng.dispose()


def _running_trial_query(eng, pid):
    with eng.connect() as conn:
        # a running trial that already has its parameters (so there is something to retry)
        row = conn.execute(
            sa.text(
                "SELECT h.trial_id FROM heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
                "WHERE h.worker LIKE :w AND t.state = 'RUNNING' AND EXISTS "
                "(SELECT 1 FROM trial_params p WHERE p.trial_id = h.trial_id)"
            ),
            {"w": f"%:{pid}"},
        ).first()
    return row[0] if row else None


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_one_worker_mid_trial(backend, make_config, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'k.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    trials = 60
    cfg = _create(make_config, url, "kill", trials)
    victim, *others = _start_workers(3, "kill", url, cfg)
    deadline = time.time() + 120
    killed_trial = None
    while killed_trial is None:
        assert time.time() < deadline, "the victim never held a running trial"
        time.sleep(0.05)
        os.kill(victim.pid, signal.SIGSTOP)  # freeze, then look: kill only mid-trial
        killed_trial = _worker_running_trial(url, victim.pid)
        if killed_trial is None:
            os.kill(victim.pid, signal.SIGCONT)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    outs = _wait(others)
    assert all(rc == 0 for rc, _ in outs), outs
    states = _check_consistency(url, "kill", trials)
    assert states.get("FAIL") == 1
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        reason = conn.execute(
            sa.text(
                "SELECT value_json FROM trial_user_attributes WHERE trial_id = :t AND "
                "key = 'fail_reason'"
            ),
            {"t": killed_trial},
        ).scalar_one()
        retried = conn.execute(
            sa.text("SELECT COUNT(*) FROM trial_user_attributes WHERE key = 'retry_of'")
        ).scalar_one()
    eng.dispose()
    assert "interrupted" in reason and str(victim.pid) in reason
    assert retried == 1  # its parameters were run again by another worker


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_workers_share_a_screened_campaign(backend, make_config, tmp_path, request):
    """Workers on a campaign with [screen] screen and promote side by side: exactly the target,
    every trial a promoted candidate, none promoted twice, no candidate screened twice."""
    url = (
        f"sqlite:///{tmp_path / 's.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    screen = '\n[screen]\ncost = "analytical:systolic"\ncandidates = 40\npromote = 2\n'
    path = make_config(name="scr", trials=12, strategy="random")
    path.write_text(path.read_text() + screen)
    c = Campaign.from_config(load_config(path), storage=url)
    c.study  # noqa: B018 - creates the campaign the workers join
    c.store.close()
    outs = _wait(_start_workers(3, "scr", url, path))
    assert all(rc == 0 for rc, _ in outs), outs
    ran = [int(err.split("worker done: ")[1].split()[0]) for _, err in outs]
    assert sum(ran) == 12
    c = Campaign.from_store("scr", storage=url)
    trials = c.study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 12 and all(t.state.name == "COMPLETE" for t in trials)
    sources = [t.user_attrs["screened_from"] for t in done]
    assert len(set(sources)) == 12
    screened = c.screen_study.get_trials(deepcopy=False)
    keys = {tuple(sorted(t.params.items())) for t in screened}
    assert len(screened) >= 40 and len(keys) == len(screened)  # rounds drew distinct candidates
    c.store.close()
