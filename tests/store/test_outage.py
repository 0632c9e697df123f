"""A PostgreSQL server that goes away mid-campaign (a restart, a failover) must not end the
workers: each waits for it (``reconnect_s``), fails and requeues the trial it was running,
and goes on. Before, every worker ended with an OperationalError at once and left its trial
RUNNING, so the campaign stopped until someone started workers again."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from cosearch import Campaign, load_config


def _cut_off(admin_url: str, url: str, seconds: float) -> threading.Thread:
    """Refuse new connections to ``url``'s database and drop the open ones, as a server
    restart does; let connections in again ``seconds`` later (in a thread)."""
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )

    def back() -> None:
        time.sleep(seconds)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin.dispose()

    thread = threading.Thread(target=back, daemon=True)
    thread.start()
    return thread


SCREEN = '\n[screen]\ncost = "analytical:systolic"\ncandidates = 30\npromote = 3\n'


def _campaign_cut_off_at(make_config, pg_server, pg_url, *, outage_s, screen=False, **options):
    path = make_config(trials=6)
    if screen:
        path.write_text(path.read_text() + SCREEN)
    c = Campaign.from_config(load_config(path), storage=pg_url, **options)
    real = c.evaluator.evaluate
    calls = []
    threads = []

    def evaluate(arch, acc, **kwargs):
        calls.append(arch.digest)
        if len(calls) == 3:  # the third trial's results go nowhere: the server is gone
            threads.append(_cut_off(pg_server, pg_url, outage_s))
        return real(arch, acc, **kwargs)

    c.evaluator.evaluate = evaluate
    return c, threads


@pytest.mark.parametrize("screen", [False, True], ids=["run", "run_screened"])
def test_a_run_waits_for_its_database_and_retries_the_trial_it_lost(
    make_config, pg_server, pg_url, capsys, screen
):
    c, threads = _campaign_cut_off_at(make_config, pg_server, pg_url, outage_s=3.0, screen=screen)
    summary = c.run_screened(6) if screen else c.run(6)
    threads[0].join()
    trials = c.study.trials
    assert summary.completed == 6 == c.count()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and summary.failed == 1
    assert failed[0].user_attrs["fail_reason"].startswith("database connection lost: ")
    if screen:  # its screened candidate goes back to the pool and is promoted again
        key = "screened_from"
        again = [t for t in trials if t.user_attrs.get(key) == failed[0].user_attrs[key]]
        assert [t.state for t in again] == [TrialState.FAIL, TrialState.COMPLETE]
    else:
        again = [t for t in trials if t.user_attrs.get("retry_of") == failed[0].number]
        assert len(again) == 1 and again[0].state == TrialState.COMPLETE
    assert again[-1].params == failed[0].params
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    err = capsys.readouterr().err
    assert "warning: lost the database" in err and "database back after" in err
    # the failed trial left no measurements behind; every COMPLETE trial has its own
    measured = set(c.store.query("SELECT DISTINCT trial_id FROM measurements")["trial_id"])
    complete = {t._trial_id for t in trials if t.state == TrialState.COMPLETE}
    assert measured & {t._trial_id for t in trials} == complete


def test_a_run_ends_when_its_database_stays_away_past_reconnect_s(
    make_config, pg_server, pg_url, capsys
):
    c, threads = _campaign_cut_off_at(make_config, pg_server, pg_url, outage_s=6.0, reconnect_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="not currently accepting connections"):
        c.run(6)
    assert time.monotonic() - t0 < 5.0
    assert "waiting up to 1 s" in capsys.readouterr().err
    threads[0].join()
