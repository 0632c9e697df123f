"""Read-only SQL for ``cosearch query`` and ``Store.query``.

Three locks, so a statement that would write is refused before it changes anything:
SQLite files are opened a second time in read-only mode (``mode=ro``); every SQLite
connection also gets ``PRAGMA query_only`` and an authorizer that allows reading only;
PostgreSQL runs exactly one statement (a ``COMMIT`` inside it would end the protection) in a
``READ ONLY`` transaction that is always rolled back. Other databases are refused: nothing
there makes sure a statement only reads.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cosearch.errors import QueryError

if TYPE_CHECKING:
    import pandas as pd

_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
# pragmas whose argument names a table or index: they report on it and set nothing
_TABLE_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
}
# pragmas that only report; any other pragma with an argument (a setter) is refused
_READ_PRAGMAS = _TABLE_PRAGMAS | {
    "database_list",
    "user_version",
    "schema_version",
    "page_count",
    "page_size",
    "compile_options",
    "collation_list",
    "function_list",
    "pragma_list",
}


def _authorizer(action: int, arg1: Any, arg2: Any, dbname: Any, source: Any) -> int:
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = str(arg1).lower()
        if name in _READ_PRAGMAS and (arg2 is None or name in _TABLE_PRAGMAS):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _frame(result: sa.CursorResult[Any]) -> pd.DataFrame:
    import pandas as pd

    if not result.returns_rows:
        return pd.DataFrame()
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _postgresql(conn: sa.Connection, sql: str) -> pd.DataFrame:
    """Run ``sql`` as exactly one statement in the connection's READ ONLY transaction.

    One statement, or ``COMMIT; DELETE ...`` ends the read-only transaction and runs the
    rest read-write (psycopg sends a statement without parameters as a simple query, which
    may hold several). Prepared, it goes through the extended protocol, which refuses more
    than one. Other drivers get a plainer rule: no ``;`` but at the end."""
    import pandas as pd

    raw: Any = conn.connection.dbapi_connection
    if type(raw).__module__.split(".")[0] == "psycopg":
        cur = raw.cursor()
        try:
            cur.execute(sql, prepare=True)
            if cur.description is None:
                return pd.DataFrame()
            return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        finally:
            cur.close()
    if ";" in sql.strip().rstrip(";"):
        raise QueryError(
            "cosearch query runs one statement; with this PostgreSQL driver a ';' is refused "
            "anywhere but at the end (use postgresql+psycopg:// for statements that hold one)"
        )
    return _frame(conn.exec_driver_sql(sql))


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _sqlite(raw: sqlite3.Connection, sql: str) -> pd.DataFrame:
    import pandas as pd

    raw.execute("PRAGMA query_only = 1")
    raw.set_authorizer(_authorizer)
    try:
        cur = raw.execute(sql)
        if cur.description is None:
            return pd.DataFrame()
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)
    except sqlite3.DatabaseError as exc:
        msg = str(exc)
        if (
            "not authorized" in msg
            or "readonly" in msg
            or "query_only" in msg
            or "read-only" in msg
        ):
            raise QueryError(
                f"cosearch query is read-only; the statement was refused ({msg}) "
                "and nothing was changed"
            ) from exc
        raise QueryError(f"SQL error: {msg}") from exc
    except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
        raise QueryError(f"SQL error: {exc}") from exc
    finally:
        raw.set_authorizer(None)
        if raw.in_transaction:
            raw.rollback()
        raw.execute("PRAGMA query_only = 0")


def _without_comments(sql: str) -> str:
    """``sql`` without ``--`` and ``/* */`` comments (only used to spot an empty statement: a
    comment marker inside a string literal leaves the rest of the statement, never nothing)."""
    import re

    return re.sub(r"--[^\n]*|/\*.*?(\*/|$)", " ", sql, flags=re.S)


def run_readonly_query(url: str, engine: sa.Engine, sql: str) -> pd.DataFrame:
    if not isinstance(sql, str) or not _without_comments(sql).strip(" \t\r\n;"):
        raise QueryError("empty SQL statement")
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        db = u.database
        if db and db != ":memory:" and not db.startswith("file:"):
            import pathlib

            uri = pathlib.Path(db).resolve().as_uri() + "?mode=ro"
            raw = sqlite3.connect(uri, uri=True, timeout=30)
            try:
                return _sqlite(raw, sql)
            finally:
                raw.close()
        # in-memory: the one shared connection, locked down for the statement
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert isinstance(dbapi, sqlite3.Connection)
            return _sqlite(dbapi, sql)
    if backend != "postgresql":
        raise QueryError(
            f"cosearch query runs on SQLite and PostgreSQL stores; on {backend} it cannot "
            "make sure a statement only reads"
        )
    if _without_comments(sql).split(None, 1)[0].upper() == "COPY":
        raise QueryError(
            "cosearch query does not run COPY (it waits for a reader cosearch does not give "
            "it); SELECT the rows instead, with --format csv for CSV"
        )
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            return _postgresql(conn, sql)
        except (sa.exc.DBAPIError, conn.dialect.loaded_dbapi.Error) as exc:
            msg = _reason(exc)
            if "multiple commands" in msg:
                raise QueryError(
                    "cosearch query runs one statement; this holds several, so it was refused "
                    "and nothing was changed"
                ) from exc
            if "read-only" in msg or "read only" in msg:
                raise QueryError(
                    f"cosearch query is read-only; the statement was refused "
                    f"({msg}) and nothing was changed"
                ) from exc
            raise QueryError(f"SQL error: {msg}") from exc
        finally:
            # closed, not rolled back into the pool: a statement may leave the session holding
            # state a rollback keeps (pg_advisory_lock, LISTEN) or in a state a rollback
            # cannot leave (COPY ... TO STDOUT waits for its reader; the rollback raised)
            conn.invalidate()
