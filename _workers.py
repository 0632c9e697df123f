"""What lets many workers share one campaign: slot claims, heartbeats, stale-trial recovery.

A worker claims a trial slot under a store lock (store/_locks.py): it counts COMPLETE and
RUNNING trials and only starts a trial while their sum is below the campaign's target, so N
workers end with exactly the target number of COMPLETE trials. A queued retry (WAITING) is
taken before a new trial is created.

Each RUNNING trial has a heartbeat row that its worker's thread refreshes every
``interval_s`` using the database clock. A RUNNING trial is stale when its worker is on this
host and its pid is gone (seen at once), or its heartbeat is older than ``grace_s`` (any
host), or it has no heartbeat and started more than ``grace_s`` ago. The grace is the longer
of the judge's and the one the trial's own worker recorded when it claimed the trial (a worker
beating every 120 s is not judged dead by one whose grace is 60 s). Stale trials are marked
FAIL with a reason, their cosearch rows are dropped, and their parameters are queued once for
another worker to retry (Optuna's ``enqueue_trial``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from cosearch._interrupt import raise_if_interrupted
from cosearch.store import Store, schema, worker_id
from cosearch.store._locks import store_lock
from cosearch.store._optuna_compat import create_running_trial, know_trial, study_storage
from cosearch.store.queries import _optuna_models, load_trials, optuna_tables, state_counts

__all__ = ["Heartbeat", "Claim", "claim_trial", "recover_stale", "pid_alive"]

#: the start of the fail reason of a trial cut short by Ctrl-C (it measured nothing); the
#: reasons of trials whose worker died start with "interrupted:" (see _stale_reasons)
INTERRUPTED = "interrupted by the user"
#: the start of the fail reason of a trial whose worker lost the database while running it
#: (Outage); like an interrupted one, it measured nothing and is run again
LOST = "database connection lost"
#: user attribute of promoted trials (_screening.py): the number of the screen trial they came
#: from. A stale one is not retried here: its candidate goes back to the screened pool
SCREENED_FROM = "screened_from"
#: user attribute: the grace period of the worker that claimed the trial; judges wait at least
#: this long for its heartbeat, whatever their own grace
WORKER_GRACE = "worker_grace_s"
#: a campaign's screen study is named after it with this suffix (_screening.py)
SCREEN_SUFFIX = ":screen"
DEFAULT_INTERVAL_S = 10.0
DEFAULT_GRACE_S = 60.0
#: how long a worker waits for a server database that went away before it gives up
DEFAULT_RECONNECT_S = 300.0


def screen_study_name(campaign: str) -> str:
    """The name of ``campaign``'s screen study."""
    return campaign + SCREEN_SUFFIX


def start_ordinal(store: Store, study: optuna.Study, key: str, count: int) -> int:
    """How many earlier starts (runs, screening rounds) of ``study`` began from ``count``
    trials, recording this one under the study attribute ``key``. A seed made from the count
    alone repeats when two workers start at the same moment, or a round adds nothing: they
    would draw the same candidates. The first start from a count gets 0, so a single process
    draws what it always drew."""
    storage = study_storage(study)
    sid = storage.get_study_id_from_name(study.study_name)
    with store_lock(store.engine, store.url, f"cosearch-claim:{study.study_name}"):
        started = dict(storage.get_study_user_attrs(sid).get(key, {}))
        again = int(started.get(str(count), 0))
        started[str(count)] = again + 1
        recent = sorted(started, key=int)[-32:]  # counts only grow: older ones never recur
        storage.set_study_user_attr(sid, key, {k: started[k] for k in recent})
    return again


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of Linux's /proc/<pid>/stat after the command name (``[0]`` is the state);
    None elsewhere or when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host (and pid namespace) still runs: a zombie (killed,
    not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    return not (fields and fields[0] in ("Z", "X"))


def process_started(pid: int, fields: list[str] | None = None) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (Linux's /proc: boot time plus
    the process's start in clock ticks; no time zone involved); None elsewhere or unreadable.
    Two processes computing it for one pid get the same number. ``fields``: its
    :func:`_proc_stat`, when already read."""
    fields = _proc_stat(pid) if fields is None else fields
    try:
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        ticks = int(fields[19]) if fields else None  # field 22 of the whole line
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None if ticks is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def pid_namespace() -> str | None:
    """This process's pid namespace (Linux), e.g. ``pid:[4026531836]``: containers that share
    a host name (host networking) have their own, where the same pid is another process."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def worker_attrs(worker: str, grace_s: float | None = None) -> dict[str, Any]:
    """The user attributes naming the worker of a trial: ``worker`` (``host:pid``) and, for
    this process on Linux, ``worker_started`` (:func:`process_started`), by which a judge on
    the same host tells the live worker from a later process that took its pid, and
    ``worker_pids`` (:func:`pid_namespace`), without which pids say nothing across
    containers with one host name; with ``grace_s``, :data:`WORKER_GRACE`."""
    attrs: dict[str, Any] = {"worker": worker}
    if worker == worker_id():
        attrs.update(_own_identity(os.getpid()))
    if grace_s is not None:
        attrs[WORKER_GRACE] = grace_s
    return attrs


@functools.lru_cache(maxsize=4)
def _own_identity(pid: int) -> dict[str, Any]:
    """This process's ``worker_started`` and ``worker_pids``, read once per pid (a fork
    gets its own)."""
    out: dict[str, Any] = {}
    started, space = process_started(pid), pid_namespace()
    if started is not None:
        out["worker_started"] = started
    if space is not None:
        out["worker_pids"] = space
    return out


def mark_claimed(
    store: Store,
    storage: Any,
    study_id: int,
    trial_id: int,
    worker: str,
    grace_s: float | None = None,
) -> None:
    """Record ``worker`` (and its grace) on a queued trial it just set RUNNING, and write the
    claim's first heartbeat (database clock); call it under the claim lock."""
    know_trial(storage, study_id, trial_id)  # another process may have queued it
    for key, value in worker_attrs(worker, grace_s).items():
        storage.set_trial_user_attr(trial_id, key, value)
    beat(store, trial_id, worker)


def _owner_stopped(pid: int, trial: FrozenTrial) -> bool:
    """True when ``pid`` (alive, on this host) is the very process that claimed ``trial`` and
    is stopped (Ctrl-Z, SIGSTOP): it cannot beat, and will go on with the trial when it is
    continued. A running owner beats; when its heartbeat is old it is not running the trial."""
    recorded = trial.user_attrs.get("worker_started")
    fields = _proc_stat(pid)
    started = process_started(pid, fields)
    if not (isinstance(recorded, float | int) and started is not None and fields):
        return False
    return abs(started - recorded) < 1e-3 and fields[0] in ("T", "t")


#: (store URL, trial id) of the trials whose heartbeat this process has begun and not ended
_BEGUN: set[tuple[str, int]] = set()
_BEGUN_LOCK = threading.Lock()


def beat(store: Store, trial_id: int, worker: str) -> None:
    """Write the trial's heartbeat row with the database's clock (insert, or refresh the one
    its claim wrote)."""
    hb = schema.heartbeats
    refresh = (
        hb.update()
        .where(hb.c.trial_id == trial_id)
        .values(worker=worker, beat_at=sa.func.current_timestamp())
    )
    try:
        with store.engine.begin() as conn:
            if not conn.execute(refresh).rowcount:
                conn.execute(hb.insert().values(trial_id=trial_id, worker=worker))
    except sa.exc.IntegrityError:  # a judge wrote a first-seen row in between
        with store.engine.begin() as conn:
            conn.execute(refresh)


class Heartbeat:
    """A daemon thread refreshing ``heartbeats.beat_at`` for the current trial."""

    def __init__(self, store: Store, worker: str, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.store = store
        self.worker = worker
        self.interval_s = interval_s
        self._trial_id: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def begin(self, trial_id: int) -> None:
        beat(self.store, trial_id, self.worker)
        with _BEGUN_LOCK:
            _BEGUN.add((self.store.url, trial_id))
        with self._lock:
            self._trial_id = trial_id
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="cosearch-heartbeat", daemon=True
            )
            self._thread.start()

    def end(self, trial_id: int) -> None:
        with _BEGUN_LOCK:
            _BEGUN.discard((self.store.url, trial_id))
        with self._lock:
            self._trial_id = None
        with self.store.engine.begin() as conn:
            conn.execute(schema.heartbeats.delete().where(schema.heartbeats.c.trial_id == trial_id))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                tid = self._trial_id
            if tid is None:
                continue
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(
                        schema.heartbeats.update()
                        .where(schema.heartbeats.c.trial_id == tid)
                        .values(beat_at=sa.func.current_timestamp())
                    )
            except sa.exc.OperationalError:
                pass  # a busy database: the next beat comes in interval_s

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)


def live_workers(store: Store, study_id: int, grace_s: float = DEFAULT_GRACE_S) -> list[str]:
    """The workers of the study's RUNNING trials that are not stale (alive on this host, or
    with a heartbeat younger than ``grace_s``), one entry per trial."""
    running, ids = _running(store, study_id)
    stale = _stale_reasons(store, running, ids, grace_s)
    return [str(t.user_attrs.get("worker", "?")) for t in running if t.number not in stale]


def _stale_reasons(
    store: Store, running: list[FrozenTrial], ids: dict[int, int], grace_s: float
) -> dict[int, str]:
    """trial number -> why it is stale, for the RUNNING trials given."""
    if not running:
        return {}
    host = socket.gethostname()
    hb = schema.heartbeats
    with store.engine.connect() as conn:
        now = conn.execute(sa.select(sa.func.current_timestamp())).scalar_one()
        beats = dict(
            conn.execute(
                sa.select(hb.c.trial_id, hb.c.beat_at).where(
                    hb.c.trial_id.in_([ids[t.number] for t in running])
                )
            ).all()
        )
    if isinstance(now, str):  # SQLite returns text
        now = dt.datetime.fromisoformat(now)
    now = now.replace(tzinfo=None)
    out: dict[int, str] = {}
    pids = pid_namespace()
    for t in running:
        who = str(t.user_attrs.get("worker", ""))
        w_host, _, w_pid = who.rpartition(":")
        last = beats.get(ids[t.number])
        # its pid means something here: this host, and (when both are known) this pid namespace
        here = w_host == host and t.user_attrs.get("worker_pids", pids) == pids
        if here and w_pid.isdigit():
            if not pid_alive(int(w_pid)):
                out[t.number] = f"interrupted: worker {who} died before the trial finished"
                continue
            if _owner_stopped(int(w_pid), t):
                continue  # its worker will go on with it when continued
        if isinstance(last, str):
            last = dt.datetime.fromisoformat(last)
        grace = _trial_grace(t, grace_s)
        if last is not None:
            age = (now - last.replace(tzinfo=None)).total_seconds()
            if age > grace:
                out[t.number] = (
                    f"interrupted: worker {who or '?'} sent no heartbeat for "
                    f"{age:.0f} s (grace {grace:.0f} s)"
                )
        elif grace <= 0:  # no grace: every trial nobody is seen running is stale
            out[t.number] = "interrupted: trial has no heartbeat"
        elif t.datetime_start is not None:  # read-only callers (status): by its start time
            age = (dt.datetime.now() - t.datetime_start).total_seconds()
            if age > grace:
                out[t.number] = f"interrupted: trial has no heartbeat and started {age:.0f} s ago"
    return out


def _trial_grace(trial: FrozenTrial, grace_s: float) -> float:
    """How long a judge with ``grace_s`` waits for the trial's heartbeat: at least its own
    worker's grace (``grace_s <= 0``, no process can be running it, stays as it is)."""
    own = trial.user_attrs.get(WORKER_GRACE)
    if grace_s <= 0 or not isinstance(own, float | int) or not math.isfinite(own):
        return grace_s
    return max(grace_s, float(own))


def recover_stale(
    study: optuna.Study, store: Store, *, grace_s: float = DEFAULT_GRACE_S, retry: bool = True
) -> int:
    """Mark stale RUNNING trials FAIL (with a reason), drop their rows, queue one retry each.

    Returns how many trials were marked. Call it under the claim lock.
    """
    storage = study_storage(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    running, ids = _running(store, study_id)
    if grace_s > 0:
        _first_seen(store, list(ids.values()))
    reasons = _stale_reasons(store, running, ids, grace_s)
    marked = []
    for t in running:
        if t.number not in reasons:
            continue
        tid = ids[t.number]
        # read it again: the list above was read before the liveness check, and a worker that
        # died in between may have written more parameters (the ones a retry needs) meanwhile
        t = storage.get_trial(tid)
        if t.state != TrialState.RUNNING:
            continue
        # its worker may still finish it now (it was alive after all): Optuna then refuses
        # either write, and a reason written before the refused FAIL is taken back
        try:
            storage.set_trial_user_attr(tid, "fail_reason", reasons[t.number])
        except UpdateFinishedTrialError:
            continue
        try:
            failed = storage.set_trial_state_values(tid, TrialState.FAIL)
        except UpdateFinishedTrialError:
            failed = False
        if not failed:
            if storage.get_trial(tid).state == TrialState.COMPLETE:
                _drop_user_attr(store, tid, "fail_reason")  # else the worker's own reason
            continue
        marked.append(tid)
        if retry and not {"retry_of", SCREENED_FROM} & set(t.user_attrs) and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    store.discard_evaluations(marked)
    # and the rows of finished trials: a worker killed between telling its trial and removing
    # the row left one behind for good (its trial needs no recovery). Driven from the few
    # heartbeat rows (a primary-key lookup each), not a scan of the trials: this runs per claim
    hb = schema.heartbeats
    trials = _optuna_models().TrialModel.__table__
    finished = sa.exists().where(
        trials.c.trial_id == hb.c.trial_id, trials.c.state != TrialState.RUNNING
    )
    with store.engine.connect() as conn:
        drop = set(marked) | set(conn.execute(sa.select(hb.c.trial_id).where(finished)).scalars())
    if drop:
        with store.engine.begin() as conn:
            conn.execute(hb.delete().where(hb.c.trial_id.in_(sorted(drop))))
    return len(marked)


def trial_ids_in(store: Store, study_id: int, state: TrialState) -> list[int]:
    """Ids of the study's trials in ``state``, in trial-number order: one SELECT on the
    (study_id, state) index, where Optuna's ``get_all_trials`` builds every trial of the
    study to filter them (a campaign has a few RUNNING or WAITING trials and maybe 10,000
    others)."""
    t = optuna_tables().trials
    q = (
        sa.select(t.c.trial_id)
        .where(t.c.study_id == study_id, t.c.state == state)
        .order_by(t.c.number)
    )
    with store.engine.connect() as conn:
        return [int(tid) for tid in conn.execute(q).scalars()]


def _running(store: Store, study_id: int) -> tuple[list[FrozenTrial], dict[int, int]]:
    """The study's RUNNING trials, and their ids by trial number: read in one batch (a
    query per table), not one trial at a time, which held the claim lock 0.23 s a claim
    with 64 workers on PostgreSQL."""
    tids = trial_ids_in(store, study_id, TrialState.RUNNING)
    found = zip(tids, load_trials(store.engine, tids))
    running = [(tid, t) for tid, t in found if t.state == TrialState.RUNNING]  # not since ended
    return [t for _, t in running], {t.number: tid for tid, t in running}


def _first_seen(store: Store, trial_ids: list[int]) -> None:
    """Give each RUNNING trial without a heartbeat row one, with the database's clock: a
    worker killed between creating its trial and writing the claim's heartbeat left none, and
    the trial's start time is its own clock's (an hour fast kept it RUNNING for the hour). It
    is then stale one grace period after a judge first saw it."""
    if not trial_ids:
        return
    hb = schema.heartbeats
    with store.engine.begin() as conn:
        have = set(
            conn.execute(sa.select(hb.c.trial_id).where(hb.c.trial_id.in_(trial_ids))).scalars()
        )
        for tid in trial_ids:
            if tid not in have:
                conn.execute(hb.insert().values(trial_id=tid, worker="(first seen by a judge)"))


def _drop_user_attr(store: Store, trial_id: int, key: str) -> None:
    """Delete a user attribute of a finished trial (Optuna allows no change to those)."""
    attrs = _optuna_models().TrialUserAttributeModel.__table__
    with store.engine.begin() as conn:
        conn.execute(attrs.delete().where(attrs.c.trial_id == trial_id, attrs.c.key == key))


def unstarted_claims(study: optuna.Study, store: Store, worker: str) -> list[int]:
    """Ids of the study's RUNNING trials that ``worker`` (this process) claimed and has not
    begun running: what a claim cut short by Ctrl-C leaves behind."""
    storage = study_storage(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    running, ids = _running(store, study_id)
    mine = [ids[t.number] for t in running if t.user_attrs.get("worker") == worker]
    with _BEGUN_LOCK:
        return [tid for tid in mine if (store.url, tid) not in _BEGUN]


def lost_database(exc: BaseException) -> BaseException | None:
    """The database connection error (SQLAlchemy's OperationalError, InterfaceError or
    DisconnectionError: the server went away, dropped the connection or refused a new one)
    that ``exc`` is, or was raised from or while handling; None when there is none. An
    OperationalError the server answered with a state of another class (a deadlock, a
    serialization failure, a cancelled statement, a full disk) is not one."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, sa.exc.InterfaceError | sa.exc.DisconnectionError):
            return e
        if isinstance(e, sa.exc.OperationalError):
            orig = getattr(e, "orig", None)
            state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            # no state: the client could not reach the server; 08: connection exception;
            # 57P: the server is shutting down, restarting or was told to end the session
            if e.connection_invalidated or state is None or str(state).startswith(("08", "57P")):
                return e
        e = e.__cause__ or e.__context__
    return None


class Outage:
    """Lets a worker loop ride out a server database that went away (a restart, a failover, a
    network cut) instead of ending, which ended every worker of a campaign at once.

    The loop hands :meth:`wait` each exception of one of its steps. A connection error on a
    server database starts an outage (one warning line); :meth:`wait` returns True once the
    database answers again, and the loop first fails the trials it left RUNNING
    (:meth:`pending`), then goes on. It returns False (the loop re-raises) for any other
    error, on SQLite (its errors are a locked or broken file, not an outage), and once
    ``limit_s`` have passed since the outage began without a step completing (a database
    that answers but keeps failing writes, such as a full disk, ends the loop too).
    :meth:`ok` after each completed step ends the outage."""

    def __init__(self, store: Store, limit_s: float = DEFAULT_RECONNECT_S) -> None:
        self.store = store
        self.limit_s = limit_s
        if not store.is_sqlite and limit_s > 0:
            _quiet_optuna_fallback()
        self._since: float | None = None
        self.reason = ""

    @property
    def pending(self) -> bool:
        """An outage began and no step has completed since."""
        return self._since is not None

    def ok(self) -> None:
        if self._since is not None:
            lasted = time.monotonic() - self._since
            print(f"database back after {lasted:.0f} s; going on", file=sys.stderr)
        self._since = None

    def wait(self, exc: BaseException) -> bool:
        lost = None if self.store.is_sqlite or self.limit_s <= 0 else lost_database(exc)
        if lost is None:
            return False
        if self._since is None:
            self._since = time.monotonic()
            first = str(getattr(lost, "orig", None) or lost).strip().splitlines()
            self.reason = first[0] if first else type(lost).__name__
            print(
                f"warning: lost the database {self.store.display_url} ({self.reason}); "
                f"waiting up to {self.limit_s:.0f} s for it",
                file=sys.stderr,
            )
        delay = 0.5
        while True:
            left = self.limit_s - (time.monotonic() - self._since)
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            raise_if_interrupted()
            delay = min(2 * delay, 10.0)
            try:
                with self.store.engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except sa.exc.DBAPIError:
                continue
            return True


class _LostConnectionFallback(logging.Filter):
    """Drops Optuna's warning that it "caught an error from sqlalchemy" and falls back to a
    slower query when the error is a lost connection: a server restart printed it (seven
    lines, SQL and parameters included) before the outage line cosearch prints itself. The
    fallback exists for too many query variables, and that warning stays."""

    LOST = (
        "server closed the connection",
        "connection failed",
        "terminating connection",
        "the database system is shutting down",
        "could not receive data from server",
        "connection is closed",
        "consuming input failed",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (
            msg.startswith("Caught an error from sqlalchemy") and any(s in msg for s in self.LOST)
        )


def _quiet_optuna_fallback() -> None:
    logger = logging.getLogger("optuna.storages._rdb.storage")
    if not any(isinstance(f, _LostConnectionFallback) for f in logger.filters):
        logger.addFilter(_LostConnectionFallback())


@dataclass(frozen=True)
class Claim:
    """Outcome of a claim: a trial to run, or why not (``done``, ``wait``, or ``idle``: no
    queued trial and room for more, when the caller creates its own)."""

    trial_id: int | None
    complete: int
    running: int
    state: str  # "run", "done", "wait", "idle"
    recovered: int = 0  # stale trials of dead workers this claim marked FAIL


def claim_trial(
    study: optuna.Study,
    store: Store,
    target: int,
    worker: str,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    create: bool = True,
) -> Claim:
    """Start a trial (RUNNING, with ``worker`` recorded) if the campaign needs one more: the
    oldest WAITING (queued) trial, else a new one; with ``create=False`` only a queued one."""
    storage = study_storage(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    with store_lock(store.engine, store.url, f"cosearch-claim:{study.study_name}"):
        n = recover_stale(study, store, grace_s=grace_s)
        # counts and ids with SQL on the (study_id, state) index: reading every trial of the
        # study here made each claim O(n log n) in Python, under the lock all workers share
        counts = state_counts(store.engine, study_id)
        complete, running = counts[TrialState.COMPLETE.name], counts[TrialState.RUNNING.name]
        if complete >= target:
            return Claim(None, complete, running, "done", n)
        if complete + running >= target:
            return Claim(None, complete, running, "wait", n)
        trial_id = None
        for tid in trial_ids_in(store, study_id, TrialState.WAITING):
            if storage.set_trial_state_values(tid, TrialState.RUNNING):
                mark_claimed(store, storage, study_id, tid, worker, grace_s)
                trial_id = tid
                break
        if trial_id is None:
            if not create:
                return Claim(None, complete, running, "idle", n)
            trial_id = create_running_trial(
                storage, study_id, user_attrs=worker_attrs(worker, grace_s)
            )
            # its first heartbeat now, in the database's clock: a judge never ages a claimed
            # trial by its start time, which the worker's own clock wrote
            beat(store, trial_id, worker)
        return Claim(trial_id, complete, running + 1, "run", n)
