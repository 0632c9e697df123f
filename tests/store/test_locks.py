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
