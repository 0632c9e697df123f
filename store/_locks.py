"""Cross-process mutual exclusion for the few store operations that must not interleave.

Used around schema migrations and around claiming a trial slot (so that N workers never
start more trials than a campaign needs). The lock lives where the database lives:

- SQLite file: ``fcntl.flock`` on ``<db>.lock`` beside the database (SQLite is one machine);
- in-memory SQLite: a process-wide ``threading.Lock`` (the database is one process);
- PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on a dedicated connection,
  held across the statements other connections run meanwhile;
- anything else: no lock (documented: use SQLite or PostgreSQL for several workers).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.engine import make_url

_memory_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _key64(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LockHeld(Exception):
    """Raised by :func:`try_store_lock` when another process holds the lock."""


@contextlib.contextmanager
def store_lock(engine: sa.Engine, url: str, name: str) -> Iterator[None]:
    """Hold the lock called ``name`` for this store while the block runs. Not reentrant, and
    on an SQLite file every name shares one file lock: never take one inside another (open
    a campaign's studies before taking a lock, since opening them takes one)."""
    with _held(engine, url, name, wait=True, suffix=".lock"):
        yield


@contextlib.contextmanager
def try_store_lock(engine: sa.Engine, url: str, name: str) -> Iterator[None]:
    """Hold the lock called ``name`` for as long as the block runs, or raise :class:`LockHeld`
    at once when someone else holds it. Unlike :func:`store_lock` it has a file (or advisory
    key) of its own, so it may be held for a long time, around other store locks."""
    suffix = f".{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock"
    with _held(engine, url, f"try:{name}", wait=False, suffix=suffix):
        yield


def _same_file(fh: IO[bytes], path: Path) -> bool:
    """Whether the open ``fh`` is still the file at ``path`` (not removed or replaced)."""
    try:
        return os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def _held(engine: sa.Engine, url: str, key: str, *, wait: bool, suffix: str) -> Iterator[None]:
    """The lock ``key``: waiting for it, or raising LockHeld (``wait=False``); on an SQLite
    file it is the file ``<db><suffix>``."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database
        if not db or db == ":memory:" or db.startswith("file::memory:"):
            with _guard:
                lock = _memory_locks.setdefault(f"{id(engine)}:{key}", threading.Lock())
            if not lock.acquire(blocking=wait):
                raise LockHeld(key)
            try:
                yield
            finally:
                lock.release()
            return
        import fcntl

        path = Path(db).with_name(Path(db).name + suffix)
        while True:
            with open(path, "a+b") as fh:
                try:
                    flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
                    fcntl.flock(fh.fileno(), flags)
                except BlockingIOError:
                    raise LockHeld(key) from None
                if not wait and not _same_file(fh, path):
                    continue  # its holder removed it on release: take the current file
                try:
                    yield
                finally:
                    if not wait:  # a try-lock's file is its own: leave no file per name
                        path.unlink(missing_ok=True)
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return
    if engine.dialect.name == "postgresql":
        take = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        k = _key64(key)
        with engine.connect() as conn:
            got = conn.execute(sa.text(f"SELECT {take}(:k)"), {"k": k}).scalar()
            conn.commit()
            if got is False and _end_own_orphan(conn, k):
                got = conn.execute(sa.text(f"SELECT {take}(:k)"), {"k": k}).scalar()
                conn.commit()
            if got is False:  # pg_advisory_lock returns void (None)
                raise LockHeld(key)
            if not wait:
                pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
                conn.commit()
                _held_by_us[k] = (pid, conn)
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": k})
                conn.commit()
                _held_by_us.pop(k, None)  # not reached when the connection was lost
        return
    yield


#: PostgreSQL try-locks this process took: key -> (server process, connection) holding it
_held_by_us: dict[int, tuple[int, sa.Connection]] = {}


def _end_own_orphan(conn: sa.Connection, k: int) -> bool:
    """End the server session that still holds try-lock ``k`` for this process after the
    connection to it was cut (a network cut leaves the session idle on the server, holding its
    locks, until TCP keepalive ends it: hours); True when one was ended and the lock is free.
    Only a session this process took the lock on is ended, and only while it holds ``k``."""
    import time

    pid, ours = _held_by_us.get(k, (None, None))
    if pid is None or ours is None or not ours.closed:
        return False  # a block of this process still holds it: that is no orphan
    holds = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = :pid "
        "AND classid = :hi AND objid = :lo AND objsubid = 1 AND granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    args = {"pid": pid, "hi": (k >> 32) & 0xFFFFFFFF, "lo": k & 0xFFFFFFFF}
    if not conn.execute(holds, args).scalar():
        conn.commit()
        return False
    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    conn.commit()
    for _ in range(50):  # the session ends, and its locks go, shortly after the signal
        if not conn.execute(holds, args).scalar():
            conn.commit()
            _held_by_us.pop(k, None)
            return True
        conn.commit()
        time.sleep(0.1)
    return False
