"""Schema migrations for cosearch's tables, numbered from 1.

Optuna keeps its own Alembic history in ``alembic_version``; ours lives in
``cosearch_schema_version`` so the two never interfere. Each migration runs in one
transaction with the version row it adds, so a crash leaves the schema at a known version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from cosearch.errors import StoreError
from cosearch.store import schema

Migration = Callable[[sa.Connection], None]


def _v1_initial(conn: sa.Connection) -> None:
    for table in schema.OWN_TABLES:  # creates each table's indexes with it
        if table not in (schema.schema_version, schema.heartbeats):
            table.create(conn, checkfirst=True)


def _v2_heartbeats(conn: sa.Connection) -> None:
    schema.heartbeats.create(conn, checkfirst=True)


def _v3_indexes(conn: sa.Connection) -> None:
    # evaluations' digest indexes already exist where v1 created the table with them
    for index in schema.V3_INDEXES:
        index.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema", _v1_initial),
    (2, "worker heartbeats", _v2_heartbeats),
    (3, "indexes for 100,000-trial queries", _v3_indexes),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    v = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(v or 0)


def upgrade(engine: sa.Engine, url: str | None = None) -> int:
    """Bring the schema to :data:`LATEST`; returns the version found before.

    Workers starting together serialize here (see store/_locks.py)."""
    if url is not None:
        from cosearch.store._locks import store_lock

        with store_lock(engine, url, "cosearch-migrations"):
            return _upgrade(engine)
    return _upgrade(engine)


def _upgrade(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
    with engine.begin() as conn:
        before = current_version(conn)
    if before > LATEST:
        raise StoreError(
            f"the store's cosearch schema is version {before}, newer than this "
            f"cosearch ({LATEST}); upgrade cosearch to open it"
        )
    for version, _desc, step in MIGRATIONS:
        if version <= before:
            continue
        with engine.begin() as conn:
            if current_version(conn) >= version:  # another worker got here first
                continue
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=version, applied_at=dt.datetime.now(dt.timezone.utc)
                )
            )
    return before
