"""Schema migrations for cosearch's tables, numbered from 1.

Optuna keeps its own Alembic history in ``alembic_version``; ours lives in
``cosearch_schema_version`` so the two never interfere. Each migration runs in one
transaction with the version row it adds, so a crash leaves the schema at a known version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from cosearch.errors import StoreInputError
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


def _v4_masked_configs(conn: sa.Connection) -> None:
    """Mask the storage password in the configs stored before cosearch masked it (2026-12-07).

    The version itself matters too: a cosearch from before it neither masks passwords nor
    checks a campaign's model versions (one added row_stationary v1 trials to a campaign
    priced with v2), and it refuses a store whose schema is newer than it knows."""
    t = schema.campaigns
    for cid, text in conn.execute(sa.select(t.c.campaign_id, t.c.config_toml)).all():
        masked = mask_stored_config(text)
        if masked != text:
            conn.execute(sa.update(t).where(t.c.campaign_id == cid).values(config_toml=masked))


def mask_stored_config(text: str) -> str:
    """``text`` (a stored campaign TOML) with its storage URL's password masked, as
    ``user:password@`` or as a query key (``?password=``). A form
    :func:`~cosearch.config.text_to_store` cannot mask (TOML escapes in the value, a
    multi-line string; cosearch now refuses them) loses its ``storage`` value and every line
    that holds the password: the password matters more than the copy's ``storage`` key,
    which no worker reads (each is given its own)."""
    import re
    import tomllib
    from urllib.parse import parse_qsl, quote, urlsplit

    from cosearch.config import text_to_store
    from cosearch.store import display_url

    try:
        storage = tomllib.loads(text).get("storage")
    except tomllib.TOMLDecodeError:
        return text
    if not isinstance(storage, str) or display_url(storage) == storage:
        return text
    try:
        return text_to_store(text, storage)
    except ValueError:
        pass
    parts = urlsplit(storage)
    secrets = [parts.password or ""] + [
        v
        for k, v in parse_qsl(parts.query)
        if k.lower() in ("password", "passwd", "pwd", "sslpassword")
    ]
    forms = {f for v in secrets if v for f in (v, quote(v, safe=""))}
    key = re.compile(r"""^\s*["']?storage["']?\s*=(.*)""", re.S)
    kept: list[str] = []
    closing = None  # the quotes that end a multi-line value being dropped
    for line in text.splitlines(keepends=True):
        if closing is not None:
            closing = None if closing in line else closing
            continue
        found = key.match(line)
        if found:
            opened = [q for q in ('"""', "'''") if found.group(1).count(q) == 1]
            closing = opened[0] if opened else None
            continue
        if not any(f in line for f in forms):
            kept.append(line)
    return "".join(kept)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema", _v1_initial),
    (2, "worker heartbeats", _v2_heartbeats),
    (3, "indexes for 100,000-trial queries", _v3_indexes),
    (4, "storage passwords masked in stored configs", _v4_masked_configs),
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
    if before > LATEST:  # exit 2 at the command line, as the other refused stores
        raise StoreInputError(
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
