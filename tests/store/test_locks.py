"""try_store_lock: a lock a weight-sharing search holds for its whole run, refused at once to
a second process, on both backends."""

from __future__ import annotations

import pytest

from cosearch.store import open_store
from cosearch.store._locks import LockHeld, store_lock, try_store_lock


def _check(url: str) -> None:
    with open_store(url) as store:
        engine = store.engine
        with try_store_lock(engine, url, "cosearch-ws:a"):
            # held: refused at once, while another name and the ordinary store lock still work
            with pytest.raises(LockHeld), try_store_lock(engine, url, "cosearch-ws:a"):
                pass
            with try_store_lock(engine, url, "cosearch-ws:b"), store_lock(engine, url, "x"):
                pass
        with try_store_lock(engine, url, "cosearch-ws:a"):  # released
            pass


def test_try_store_lock_sqlite(db_url):
    _check(db_url)


def test_try_store_lock_memory():
    _check("sqlite://")


def test_try_store_lock_postgresql(pg_url):
    _check(pg_url)


def test_try_store_lock_leaves_no_file_beside_the_database(tmp_path):
    # one file per weight-sharing campaign used to stay beside the database for good
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(url) as store:
        before = sorted(p.name for p in tmp_path.iterdir())
        with try_store_lock(store.engine, url, "cosearch-ws:a"):
            assert len(sorted(p.name for p in tmp_path.iterdir())) == len(before) + 1
        assert sorted(p.name for p in tmp_path.iterdir()) == before
        with try_store_lock(store.engine, url, "cosearch-ws:a"):  # taken again after removal
            with pytest.raises(LockHeld), try_store_lock(store.engine, url, "cosearch-ws:a"):
                pass


def test_a_try_lock_a_cut_connection_left_on_the_server_is_taken_back(pg_url):
    """A network cut leaves the server session of a weight-sharing run's lock idle and
    holding the lock for hours (until TCP keepalive ends it): the run, resuming after the
    outage, was refused as 'already running in another process'. Its own orphaned session is
    ended; another process's holder never is."""
    import sqlalchemy as sa

    from cosearch.store import _locks

    name = "cosearch-ws:a"
    k = _locks._key64(f"try:{name}")  # as try_store_lock names it
    with open_store(pg_url) as store:
        engine = store.engine
        with engine.connect() as held:  # the session the cut left behind, holding the lock
            assert held.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": k}).scalar()
            held.commit()
            pid = held.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with pytest.raises(LockHeld):  # not known as ours: another process's
                with try_store_lock(engine, pg_url, name):
                    pass
            lost = engine.connect()
            lost.close()  # this process's connection to it, gone
            _locks._held_by_us[k] = (pid, lost)
            with try_store_lock(engine, pg_url, name):
                assert _locks._held_by_us[k][0] != pid
            assert k not in _locks._held_by_us
            with pytest.raises(sa.exc.OperationalError):  # that session was ended
                held.execute(sa.text("SELECT 1"))
