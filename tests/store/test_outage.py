"""A PostgreSQL server that goes away mid-campaign (a restart, a failover) must not end the
workers: each waits for it (``reconnect_s``), fails and requeues the trial it was running,
and goes on. Before, every worker ended with an OperationalError at once and left its trial
RUNNING, so the campaign stopped until someone started workers again."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from cosearch import Campaign, load_config
from cosearch.campaign import _suggest


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


def test_a_worker_back_from_an_outage_and_a_judge_fail_its_trial_once(make_config, pg_url):
    """After an outage longer than the grace, another worker's claim judges the trials this
    worker lost stale while this worker fails them itself. Interleaved, the two ended this
    worker (a write to a trial the judge had just finished: UpdateFinishedTrialError) or
    requeued nothing; now this worker fails its trials under the claim lock."""
    from cosearch._workers import Outage, claim_trial
    from cosearch.store import worker_id

    cfg = load_config(make_config(trials=4))
    a = Campaign.from_config(cfg, storage=pg_url)
    study = a.study
    me = worker_id()
    claim = a._claim(study, 4, me)  # the trial A was running when the database went away
    assert claim.state == "run"
    running = optuna.Trial(study, claim.trial_id)
    for name, dist in a.distributions.items():  # as _run_one does before it evaluates
        _suggest(running, name, dist)
    time.sleep(0.2)  # its heartbeat is now older than the judge's grace below
    outage = Outage(a.store)
    outage.reason = "server closed the connection unexpectedly"
    b = Campaign.from_config(cfg, storage=pg_url)
    finished: dict[str, float] = {}

    def judge() -> None:
        claim_trial(b.study, b.store, 4, "elsewhere:1", grace_s=0.1)
        finished["judge"] = time.monotonic()

    real_fail = a._fail

    def slow_fail(*args, **kwargs):  # the judge's claim starts while A is failing the trial
        thread = threading.Thread(target=judge)
        thread.start()
        time.sleep(1.0)
        out = real_fail(*args, **kwargs)
        finished["own"] = time.monotonic()
        slow_fail.thread = thread
        return out

    a._fail = slow_fail
    assert a._fail_own(study, me, outage) == 1
    slow_fail.thread.join()
    assert finished["judge"] > finished["own"]  # it waited for the claim lock
    trials = a.study.trials
    lost = next(t for t in trials if t._trial_id == claim.trial_id)
    assert lost.state == TrialState.FAIL
    assert lost.user_attrs["fail_reason"].startswith("database connection lost: server closed")
    retries = [t for t in trials if t.user_attrs.get("retry_of") == lost.number]
    assert len(retries) == 1  # queued once, by this worker


def test_only_connection_errors_count_as_a_lost_database():
    """A deadlock, a serialization failure, a cancelled statement or a full disk are errors
    the server answered with: waiting for it to come back would only delay them."""
    from cosearch._workers import lost_database

    class Orig(Exception):
        def __init__(self, sqlstate):
            super().__init__(f"state {sqlstate}")
            self.sqlstate = sqlstate

    def err(state):
        return sa.exc.OperationalError("SELECT 1", {}, Orig(state))

    for state in (None, "08006", "57P01", "57P03"):
        assert lost_database(err(state)) is not None, state
    for state in ("40P01", "40001", "57014", "55P03", "53100"):
        assert lost_database(err(state)) is None, state
    wrapped = RuntimeError("commit failed")
    wrapped.__cause__ = err("57P01")
    assert lost_database(wrapped) is not None
    assert lost_database(sa.exc.InterfaceError("x", {}, Exception("closed"))) is not None
    assert lost_database(ValueError("x")) is None


def test_optuna_s_fallback_warning_is_not_printed_for_a_lost_connection():
    """A server restart printed Optuna's seven-line "Caught an error from sqlalchemy ...
    Falling back to a slower alternative" (SQL and parameters included) before cosearch's
    own outage line. The warning still shows for what the fallback is for."""
    import logging
    from types import SimpleNamespace

    from cosearch._workers import Outage

    logger = logging.getLogger("optuna.storages._rdb.storage")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    before = list(logger.filters)
    try:
        Outage(SimpleNamespace(is_sqlite=False), 60.0)
        lost = (
            "Caught an error from sqlalchemy: (psycopg.OperationalError) consuming input failed: "
            "server closed the connection unexpectedly\n[SQL: SELECT ...]. Falling back to a "
            "slower alternative."
        )
        logger.warning(lost)
        logger.warning("Caught an error from sqlalchemy: too many SQL variables. Falling back")
    finally:
        logger.removeHandler(handler)
        logger.filters[:] = before
    assert seen == ["Caught an error from sqlalchemy: too many SQL variables. Falling back"]


def test_ctrl_c_while_a_worker_waits_for_its_database(make_config, pg_server, pg_url, tmp_path):
    """The interrupt message counted the campaign's trials in the database that was away:
    exit 1 with an OperationalError instead of 130 and the line saying how to rejoin."""
    import signal
    import subprocess
    import sys

    cfg = make_config(trials=100000)
    err = tmp_path / "worker.err"
    with err.open("w") as fh:
        worker = subprocess.Popen(
            [sys.executable, "-m", "cosearch.cli", "worker", "t", "--config", str(cfg)]
            + ["--storage", pg_url],
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
    try:
        deadline = time.monotonic() + 120
        while "trials complete" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # some trials in
        back = _cut_off(pg_server, pg_url, 20.0)
        while "waiting up to" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 130, err.read_text()
    finally:
        worker.kill()
    text = err.read_text()
    assert "interrupted: campaign at ?/100000 trials complete" in text, text
    back.join()


def test_a_darts_search_resumes_from_its_checkpoint_when_its_database_comes_back(
    pg_server, pg_url, capsys
):
    """A DARTS or Once-for-All run ended with the connection error (run it again to resume);
    now it waits like a worker does, fails the trial whose report was lost, and resumes from
    its last checkpoint: the same epochs as a run the outage never touched."""
    import torch

    from cosearch import Campaign, open_store

    from ..search.test_darts import _config

    cfg = _config(epochs=4, retrain_epochs=0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = Campaign(cfg, open_store("sqlite://"))
        ref.run()
        c = Campaign(cfg, open_store(pg_url))
        real = c._run_one
        threads = []

        def run_one(*args, **kwargs):
            if len(threads) == 0 and len(c.study.trials) == 3:  # the third epoch's report
                threads.append(_cut_off(pg_server, pg_url, 3.0))
            return real(*args, **kwargs)

        c._run_one = run_one
        summary = c.run()
    finally:
        torch.set_num_threads(before)
    threads[0].join()
    complete = [t for t in c.study.trials if t.state == TrialState.COMPLETE]
    want = [t for t in ref.study.trials if t.state == TrialState.COMPLETE]
    assert summary.completed == len(want) >= 4
    assert [t.params for t in complete] == [t.params for t in want]
    assert [t.values for t in complete] == [t.values for t in want]
    failed = [t for t in c.study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and (summary.failed, summary.interrupted_marked) == (1, 0)
    assert not [t for t in c.study.trials if t.state == TrialState.RUNNING]
    err = capsys.readouterr().err
    assert "warning: lost the database" in err and "database back after" in err
