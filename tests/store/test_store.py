"""The store: Optuna's schema plus ours, on a file and in memory; read-only queries."""

from __future__ import annotations

import sqlite3

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from cosearch import Campaign, load_config, open_store
from cosearch.errors import QueryError, StoreInputError
from cosearch.store import migrations, schema

from ..conftest import run_cli


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_campaign_writes_every_table(kind, make_config, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}" if kind == "file" else "sqlite://"
    cfg = load_config(make_config(trials=12))
    campaign = Campaign.from_config(cfg, storage=url)
    summary = campaign.run()
    assert summary.completed == 12
    store = campaign.store
    counts = store.query(
        "SELECT (SELECT COUNT(*) FROM evaluations) AS ev, "
        "(SELECT COUNT(*) FROM measurements) AS ms, "
        "(SELECT COUNT(*) FROM architectures) AS ar, "
        "(SELECT COUNT(*) FROM accelerators) AS ac, "
        "(SELECT COUNT(*) FROM campaigns) AS ca"
    ).iloc[0]
    assert counts.ev == 12 and counts.ca == 1
    assert 1 <= counts.ar <= 12 and 1 <= counts.ac <= 12
    # every metric of every trial is stored with its source
    df = store.query(
        "SELECT metric, source FROM measurements WHERE trial_id = "
        "(SELECT MIN(trial_id) FROM evaluations)"
    )
    sources = dict(zip(df.metric, df.source))
    assert sources["accuracy"] == "benchmark:nb201/cifar10"
    assert sources["latency_ms"].startswith("analytical:systolic/")
    # architectures carry a loadable, structure-only ONNX graph
    from cosearch.spaces.onnx_io import model_from_bytes

    blob = store.query("SELECT onnx FROM architectures LIMIT 1").onnx[0]
    model = model_from_bytes(blob)
    assert len(model.graph.initializer) == 0 and len(blob) < 200_000
    # the same database is a plain Optuna study
    study = optuna.load_study(study_name=cfg.name, storage=store.optuna_storage)
    assert len(study.trials) == 12


def test_schema_version_recorded_and_idempotent(db_url):
    store = open_store(db_url)
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
    assert migrations.upgrade(store.engine) == migrations.LATEST  # second run: nothing to do
    store.close()


def test_migration_4_masks_the_passwords_older_cosearch_stored(tmp_path):
    """Configs stored before 2026-12-07 kept the storage URL's password in plain text; opening
    the store with this cosearch masks them, and the schema version it adds keeps an older
    cosearch (which stored passwords and mixed cost-model versions) out of the store."""
    import tomllib

    url = f"sqlite:///{tmp_path / 'old.db'}"
    pg = "postgresql+psycopg://cosearch:s3cret%2Fpw@db.example:5432/runs"
    texts = {
        "plain": f'name = "a"\nstorage = "{pg}"\n[space]\nnetwork = "nb201"\n',
        "escaped": 'name = "b"\nstorage = "postgresql://u:p\\u0040ss@h/db"\n',  # unmaskable
        "none": 'name = "c"\nstorage = "sqlite:///x.db"\n',
        "query": 'name = "d"\nstorage = "postgresql://u@h/db?sslmode=require&password=hunter2"\n',
        "multiline": 'name = "e"\nstorage = """postgresql://u:longsecret@h/\\\n  db"""\nseed = 1\n',
    }
    store = open_store(url)
    for name, text in texts.items():
        store.add_campaign(name, name, text, {}, {})
    with store.engine.begin() as conn:
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version == 4))
    store.close()
    store = open_store(url)
    got = {
        r["name"]: r["config_toml"]
        for r in store.query("SELECT * FROM campaigns").to_dict("records")
    }
    store.close()
    assert "s3cret" not in got["plain"]
    assert tomllib.loads(got["plain"])["storage"] == pg.replace("s3cret%2Fpw", "***")
    assert "p@ss" not in got["escaped"] and "p\\u0040ss" not in got["escaped"]
    assert got["none"] == texts["none"]
    assert "hunter2" not in got["query"] and "password=***" in got["query"]
    # the whole multi-line value goes: the copy still parses (workers and export read it)
    assert "longsecret" not in got["multiline"]
    assert tomllib.loads(got["multiline"]) == {"name": "e", "seed": 1}


def test_newer_schema_is_refused(db_url):
    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO cosearch_schema_version VALUES (99, '2030-01-01')")
    store.close()
    with pytest.raises(StoreInputError, match="newer than this cosearch"):
        open_store(db_url)
    r = run_cli("status", "--storage", db_url)  # one line, exit 2 (was 1)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "upgrade cosearch" in r.stderr


def test_a_store_in_rollback_journal_mode_waits_for_a_writer(tmp_path):
    """Stores made before 2026-11-27 13:31 are in rollback-journal mode; switching one to WAL
    needs the file to itself, and failed at once (`status` exited 2 within a second, 'database
    is locked') while an old worker wrote. Now it goes on in its mode and waits for the lock."""
    import threading

    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    open_store(url).close()
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    assert raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    raw.execute("BEGIN IMMEDIATE")  # a writer in the old mode
    release = threading.Timer(3.0, lambda: raw.execute("ROLLBACK"))
    release.start()
    r = run_cli("status", "--storage", url)
    release.join()
    raw.close()
    assert r.returncode == 0, r.stderr


def test_read_commands_do_not_create_databases(tmp_path):
    with pytest.raises(StoreInputError, match="no database"):
        open_store(f"sqlite:///{tmp_path / 'typo.db'}", create=False)
    assert not (tmp_path / "typo.db").exists()


def test_unwritable_location(tmp_path):
    with pytest.raises(StoreInputError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


def test_bad_url():
    with pytest.raises(StoreInputError):
        open_store("notadialect://x")


@pytest.fixture
def filled(make_config, db_url):
    campaign = Campaign.from_config(load_config(make_config(trials=5)), storage=db_url)
    campaign.run()
    campaign.store.close()
    return db_url


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM measurements",
        "UPDATE trials SET state = 'FAIL'",
        "DROP TABLE campaigns",
        "INSERT INTO campaigns (name) VALUES ('x')",
        "CREATE TABLE evil (x INTEGER)",
        "PRAGMA user_version = 7",
        "ATTACH DATABASE '/tmp/evil.db' AS evil",
        "VACUUM",
    ],
)
def test_query_refuses_writes_and_changes_nothing(filled, sql, tmp_path):
    path = filled.removeprefix("sqlite:///")
    before = open(path, "rb").read()
    store = open_store(filled, create=False)
    with pytest.raises(QueryError):
        store.query(sql)
    store.close()
    assert open(path, "rb").read() == before


def test_query_reads(filled):
    store = open_store(filled, create=False)
    df = store.query(
        "SELECT m.metric, COUNT(*) AS n FROM measurements m GROUP BY m.metric ORDER BY m.metric"
    )
    assert set(df.metric) >= {"accuracy", "latency_ms", "energy_mj", "area_mm2"}
    assert (df.n == 5).all()
    # colons and percent signs inside literals are plain SQL, not bind parameters
    df = store.query("SELECT COUNT(*) AS n FROM measurements WHERE source LIKE 'benchmark:%'")
    assert df.n[0] == 5
    with pytest.raises(QueryError, match="SQL error"):
        store.query("SELEC nonsense")
    for nothing in ("  ;  ", "-- just a comment", "/* a comment */ ;"):
        with pytest.raises(QueryError, match="empty SQL statement"):
            store.query(nothing)
    # informational pragmas about a table take its name; setters stay refused (above)
    assert "trial_id" in set(store.query("PRAGMA table_info(trials)").name)
    assert store.query("SELECT '--' || study_name AS n FROM studies").n[0].startswith("--")
    # a refused statement leaves the shared connection usable for writes by the store
    with pytest.raises(QueryError):
        store.query("DELETE FROM measurements")
    store.close()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM measurements",
        "COMMIT; DELETE FROM measurements",
        "SELECT 1; COMMIT; DELETE FROM measurements",
        "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM measurements",
        "EXPLAIN ANALYZE DELETE FROM measurements",
    ],
)
def test_query_on_postgresql_runs_one_read_only_statement(make_config, pg_url, sql):
    """On PostgreSQL a COMMIT inside the statement ended the READ ONLY transaction and the
    rest ran read-write: `COMMIT; DELETE FROM measurements` emptied the table, exit 0."""
    c = Campaign.from_config(load_config(make_config(trials=2)), storage=pg_url)
    c.run()
    count = "SELECT COUNT(*) AS n FROM measurements"
    before = int(c.store.query(count).n[0])
    with pytest.raises(QueryError):
        c.store.query(sql)
    assert int(c.store.query(count).n[0]) == before > 0
    like = "SELECT COUNT(*) AS n FROM measurements WHERE source LIKE 'benchmark:%';"
    assert int(c.store.query(like).n[0]) == 2
    c.run(3)  # the store still writes after a refused query
    c.store.close()


def test_query_leaves_no_session_state_on_postgresql(make_config, pg_url):
    """`COPY ... TO STDOUT` left the connection waiting for a reader: the rollback raised and
    `cosearch query` printed three tracebacks, exit 1. A session advisory lock outlived the
    statement on the pooled connection."""
    c = Campaign.from_config(load_config(make_config(trials=1)), storage=pg_url)
    c.run()
    for copy in ("COPY trials TO STDOUT", "/* rows */ copy (SELECT 1) TO STDOUT"):
        with pytest.raises(QueryError, match="does not run COPY"):
            c.store.query(copy)
    c.store.query("SELECT pg_advisory_lock(424242)")
    held = "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242"
    assert int(c.store.query(held).n[0]) == 0
    c.run(2)
    c.store.close()
    r = run_cli("query", "COPY trials TO STDOUT", "--storage", pg_url)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "COPY" in r.stderr, r.stderr


def test_query_on_memory_store_is_read_only(make_config):
    campaign = Campaign.from_config(load_config(make_config(trials=3)), storage="sqlite://")
    campaign.run()
    with pytest.raises(QueryError):
        campaign.store.query("DELETE FROM measurements")
    assert campaign.store.query("SELECT COUNT(*) AS n FROM measurements").n[0] > 0
    campaign.run(5)  # the store still writes after a refused query
    assert campaign.count() == 5


def test_measurements_reference_existing_trials(filled):
    path = filled.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    orphans = con.execute(
        "SELECT COUNT(*) FROM measurements m LEFT JOIN trials t "
        "ON t.trial_id = m.trial_id WHERE t.trial_id IS NULL"
    ).fetchone()[0]
    fk = con.execute("PRAGMA foreign_key_check").fetchall()
    con.close()
    assert orphans == 0 and fk == []


def test_insert_ignore_by_digest(filled):
    store = open_store(filled, create=False)
    n = store.query("SELECT COUNT(*) AS n, COUNT(DISTINCT digest) AS d FROM architectures")
    assert n.n[0] == n.d[0]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT digest FROM accelerators")).fetchall()
    assert len(rows) == len({r[0] for r in rows})
    store.close()


def test_determinism_same_seed_same_trials(make_config, tmp_path):
    def params(url):
        c = Campaign.from_config(load_config(make_config(trials=8, strategy="nsga2")), storage=url)
        c.run()
        return [t.params for t in c.trials()], np.array([t.values for t in c.trials()])

    p1, v1 = params(f"sqlite:///{tmp_path / 'a.db'}")
    p2, v2 = params(f"sqlite:///{tmp_path / 'b.db'}")
    assert p1 == p2 and np.array_equal(v1, v2)


def test_a_tampered_checkpoint_is_refused_in_one_line(make_config, db_url, tmp_path):
    """A checkpoint row holding a pickled object was refused by torch with its own message,
    which advises loading it with weights_only=False (running the object), and exit 1."""
    import io
    import pickle

    import torch

    from cosearch.errors import StoreInputError
    from cosearch.store import schema

    c = Campaign.from_config(load_config(make_config(trials=1)), storage=db_url)
    cid = c.campaign_id
    c.store.save_checkpoint(cid, "marl", 1, {"k": 1}, {"w": torch.ones(2)})
    step, meta, tensors = c.store.load_checkpoint(cid, "marl")
    assert (step, meta) == (1, {"k": 1}) and torch.equal(tensors["w"], torch.ones(2))
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with c.store.engine.begin() as conn:
        conn.execute(schema.checkpoints.update().values(payload=pickle.dumps(Evil(), protocol=2)))
    with pytest.raises(StoreInputError, match="marl checkpoint .* not a plain set") as err:
        c.store.load_checkpoint(cid, "marl")
    assert not marker.exists() and "weights_only" not in str(err.value)
    for kept in ({"w": 5}, [torch.ones(2)]):  # loadable, but not named tensors: refused now,
        buf = io.BytesIO()  # not a failure later
        torch.save(kept, buf)
        with c.store.engine.begin() as conn:
            conn.execute(schema.checkpoints.update().values(payload=buf.getvalue()))
        with pytest.raises(StoreInputError, match="not a plain set"):
            c.store.load_checkpoint(cid, "marl")
    c.store.close()
