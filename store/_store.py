"""The Store: Optuna's RDB storage plus cosearch's tables on one SQLAlchemy engine."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cosearch.errors import StoreInputError
from cosearch.store import migrations, schema
from cosearch.store._readonly import run_readonly_query

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from cosearch.evaluate import Metrics
    from cosearch.hwmodels import Accelerator
    from cosearch.spaces import Architecture

__all__ = ["Store", "open_store", "default_storage_url", "worker_id"]

DEFAULT_URL = "sqlite:///cosearch.db"


def default_storage_url() -> str:
    """``$COSEARCH_STORAGE`` if set, else ``sqlite:///cosearch.db`` (in the working directory)."""
    return os.environ.get("COSEARCH_STORAGE") or DEFAULT_URL


def display_url(url: str) -> str:
    """``url`` with its password shown as ``***``: what messages and logs print. That is
    ``user:password@`` and a password given as a query key (``?password=``, which psycopg
    also takes)."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # unparseable (a bad port): hide what looks
        shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)  # like user:password@ anyway
    return re.sub(r"([?&](?:password|passwd|pwd|sslpassword)=)[^&]*", r"\1***", shown, flags=re.I)


def load_tensors(blob: bytes, what: str, where: str) -> dict[str, Any]:
    """The ``{name: tensor}`` dict saved in ``blob``, read with ``torch.load(weights_only=True)``
    (nothing else is unpickled). A blob holding anything else (a tampered row) or no valid
    data raises StoreInputError: torch's own message suggests loading it with
    ``weights_only=False``, which would run whatever the blob holds."""
    import io

    import torch

    refused = StoreInputError(
        f"{what} in {where} was not loaded: it is not a plain set of tensors (the row was "
        "changed outside cosearch, or is damaged); store it again (train the predictor "
        "again, or delete the campaign's checkpoints)"
    )
    try:
        tensors = torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as exc:  # the weights-only loader runs no code; a damaged blob raises
        raise refused from exc  # KeyError, IndexError, AssertionError, ... as it comes
    if not isinstance(tensors, dict) or not all(
        isinstance(v, torch.Tensor) for v in tensors.values()
    ):
        raise refused
    return {str(k): v for k, v in tensors.items()}


def worker_id() -> str:
    """``host:pid`` of this process; recorded on every trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def memory_url(url: str) -> bool:
    """True for an in-memory SQLite URL (``sqlite://``, ``sqlite:///:memory:``): a store that
    is gone when the process ends."""
    try:
        u = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return False
    db = u.database
    return u.get_backend_name() == "sqlite" and (
        db is None or db == ":memory:" or db.startswith("file::memory:")
    )


def _sqlite_path(url: str) -> Path | None:
    """The file of a file-backed SQLite URL, None for in-memory or other databases."""
    try:
        u = make_url(url)
        u.port  # noqa: B018 - parsed lazily: a port that is not a number raises here
    except sa.exc.ArgumentError:
        raise StoreInputError(
            f"not a database URL: {display_url(url)!r} (expected dialect://user@host/db or "
            "sqlite:///PATH)"
        ) from None
    except ValueError as exc:
        raise StoreInputError(f"not a database URL: {display_url(url)!r} ({exc})") from None
    if u.get_backend_name() != "sqlite":
        return None
    db = u.database
    if db == "":
        raise StoreInputError(
            f"storage URL {url!r} names no database file: sqlite:///PATH is a file (sqlite:// "
            "alone is an in-memory database, gone when the process ends)"
        )
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    return Path(db)


class Store:
    """One database holding Optuna's studies and cosearch's tables.

    ``create=False`` refuses to create a new SQLite file, so read-only commands on a mistyped
    path fail clearly instead of leaving an empty database behind.
    """

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        if not url and memory_url(default_storage_url()):
            raise StoreInputError(
                f"$COSEARCH_STORAGE {default_storage_url()!r} is an in-memory database: "
                "nothing would be kept; use sqlite:///PATH or a server database"
            )
        self.url = url or default_storage_url()
        #: the URL with its password hidden, for messages
        self.display_url = display_url(self.url)
        path = _sqlite_path(self.url)
        if path is not None:
            if not create and not path.exists():
                raise StoreInputError(
                    f"no database at {path} (storage {self.display_url}); run "
                    "`cosearch run CONFIG` first or pass --storage"
                )
            if create and not path.parent.exists():
                raise StoreInputError(
                    f"cannot create database {path}: folder {path.parent} does not exist"
                )
            if path.exists() and not os.access(path, os.R_OK):
                raise StoreInputError(f"cannot read database {path}: permission denied")
        if not create:
            self._require_cosearch_tables()
        elif path is not None and path.is_file() and path.stat().st_size > 0:
            self._refuse_foreign_file()
        try:
            self.optuna_storage = optuna.storages.RDBStorage(
                self.url, engine_kwargs=self._engine_kwargs()
            )
        except (
            sa.exc.OperationalError,
            sa.exc.ArgumentError,
            sa.exc.NoSuchModuleError,
            sa.exc.DatabaseError,
            ValueError,
            RuntimeError,
        ) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreInputError(f"cannot open storage {self.display_url}: {reason}") from exc
        except ImportError as exc:  # a dialect SQLAlchemy knows, its driver not installed
            raise StoreInputError(
                f"cannot open storage {self.display_url}: its database driver is not "
                f"installed ({exc})"
            ) from exc
        self.engine: sa.Engine = self.optuna_storage.engine
        if path is not None:
            _use_wal(self.engine)
        try:
            migrations.upgrade(self.engine, self.url)
        except sa.exc.OperationalError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreInputError(f"cannot write storage {self.display_url}: {reason}") from exc

    def _require_cosearch_tables(self) -> None:
        """Refuse a database cosearch never wrote to: opening it would add Optuna's and
        cosearch's tables (and switch an SQLite file to WAL) in someone else's database."""
        if schema.schema_version.name not in self._table_names():
            raise StoreInputError(
                f"{self.display_url} is not a cosearch store (no cosearch tables); run "
                "`cosearch run CONFIG` with it to make one, or pass another --storage"
            )

    def _refuse_foreign_file(self) -> None:
        """Refuse an SQLite file that holds tables but neither cosearch's nor Optuna's: a
        campaign would add some twenty tables (and WAL mode) to someone else's database."""
        tables = self._table_names()
        ours = schema.schema_version.name in tables or {"studies", "version_info"} <= tables
        if tables and not ours:
            shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
            raise StoreInputError(
                f"{self.display_url} is another program's database (tables {shown}; no "
                "cosearch or Optuna tables); pass another --storage"
            )

    def _table_names(self) -> set[str]:
        """The database's tables, read on a connection of its own before Optuna opens it."""
        try:
            engine = sa.create_engine(self.url, **self._engine_kwargs())
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as exc:
            raise StoreInputError(f"cannot open storage {self.display_url}: {exc}") from exc
        except ImportError as exc:
            raise StoreInputError(
                f"cannot open storage {self.display_url}: its database driver is not "
                f"installed ({exc})"
            ) from exc
        try:
            with engine.connect() as conn:
                return set(sa.inspect(conn).get_table_names())
        except sa.exc.DBAPIError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreInputError(f"cannot open storage {self.display_url}: {reason}") from exc
        finally:
            engine.dispose()

    def _engine_kwargs(self) -> dict[str, Any]:
        if make_url(self.url).get_backend_name() == "sqlite":
            # several processes may share one file: wait for locks instead of failing at once
            return {"connect_args": {"timeout": 60}}
        return {"pool_pre_ping": True}

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _begin(self) -> Any:
        conn = self.engine.connect()
        if self.is_sqlite:
            # per connection, and only outside a transaction: hence the commit right after
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
        return _Tx(conn)

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    def close(self) -> None:
        self.optuna_storage.remove_session()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- campaigns --------------------------------------------------------------------------
    def campaign(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(schema.campaigns).where(schema.campaigns.c.name == name))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def require_campaign(self, name: str) -> dict[str, Any]:
        row = self.campaign(name)
        if row is None:
            names = self.campaign_names()
            known = ", ".join(names) if names else "none yet"
            raise StoreInputError(f"no campaign {name!r} in {self.display_url}; campaigns: {known}")
        return row

    def campaign_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(schema.campaigns.c.name).order_by(schema.campaigns.c.campaign_id)
                ).scalars()
            )

    def add_campaign(
        self,
        name: str,
        study_name: str,
        config_toml: str,
        config: Mapping[str, Any],
        versions: Mapping[str, str],
    ) -> int:
        """Insert the campaign row (or return the existing one's id: creation races are fine)."""
        existing = self.campaign(name)
        if existing is not None:
            return int(existing["campaign_id"])
        try:
            with self._begin() as conn:
                res = conn.execute(
                    schema.campaigns.insert().values(
                        name=name,
                        study_name=study_name,
                        config_toml=config_toml,
                        config_json=json.dumps(config, sort_keys=True),
                        versions_json=json.dumps(versions, sort_keys=True),
                        created_at=_now(),
                    )
                )
                return int(res.inserted_primary_key[0])
        except sa.exc.IntegrityError:
            row = self.campaign(name)
            if row is None:
                raise
            return int(row["campaign_id"])

    def delete_campaign(self, name: str) -> dict[str, int]:
        """Delete campaign ``name`` for good: its Optuna study and the studies named
        ``NAME:...`` beside it (the screened trials; campaign names cannot contain ``:``), the
        cosearch rows of their trials, its checkpoints and its row, the architectures and
        accelerators no remaining trial uses, and its artifact files (with, beside an SQLite
        store, any artifact file no study refers to any more). Trained predictors and
        the layer-cost cache are shared and stay. Stop the campaign's workers first (``cosearch
        delete`` refuses while a worker of the campaign is alive).

        Returns counts: ``trials``, ``studies``, ``checkpoints``, ``artifacts``. Raises
        StoreInputError when there is no such campaign."""
        row = self.require_campaign(name)
        main = str(row["study_name"])
        from cosearch.store.queries import optuna_tables

        st = optuna_tables().studies
        tr = schema.optuna_trials
        with self.engine.connect() as conn:
            studies = {
                str(n): int(i)
                for i, n in conn.execute(
                    sa.select(st.c.study_id, st.c.study_name).where(
                        sa.or_(
                            st.c.study_name == main,
                            st.c.study_name.startswith(f"{main}:", autoescape=True),
                        )
                    )
                )
            }
            n_trials = conn.execute(
                sa.select(sa.func.count()).where(tr.c.study_id.in_(list(studies.values())))
            ).scalar_one()
            n_ckpt = conn.execute(
                sa.select(sa.func.count()).where(
                    schema.checkpoints.c.campaign_id == row["campaign_id"]
                )
            ).scalar_one()
        artifacts = self._artifact_ids(list(studies.values()))
        # the studies first: a crash between the two steps then leaves a campaign row without
        # its study, which status reports and a second delete finishes, never the reverse
        # (studies no cosearch command lists)
        for study_name in studies:
            optuna.delete_study(study_name=study_name, storage=self.optuna_storage)
        with self._begin() as conn:
            every_trial = sa.select(tr.c.trial_id)
            for t in (schema.measurements, schema.heartbeats, schema.evaluations):
                # the deleted trials' rows (PostgreSQL's cascades already took them; Optuna's
                # SQLite connections do not enforce foreign keys), and any left by a study
                # deleted outside cosearch
                conn.execute(t.delete().where(t.c.trial_id.not_in(every_trial)))
            conn.execute(
                schema.checkpoints.delete().where(
                    schema.checkpoints.c.campaign_id == row["campaign_id"]
                )
            )
            conn.execute(schema.campaigns.delete().where(schema.campaigns.c.name == name))
            self._collect_garbage(conn)
        artifacts += self._orphan_artifacts()
        removed = 0
        if artifacts:
            from cosearch._artifacts import artifact_store

            store = artifact_store(self.url)
            for aid in artifacts if store is not None else ():
                try:
                    store.remove(aid)
                    removed += 1
                except Exception:  # noqa: BLE001 - a file already gone is not an error here
                    pass
        return {
            "trials": int(n_trials),
            "studies": len(studies),
            "checkpoints": int(n_ckpt),
            "artifacts": removed,
        }

    def _orphan_artifacts(self, min_age_s: float = 3600.0) -> list[str]:
        """The artifact files beside an SQLite store that no study or trial refers to any more
        (a study deleted outside cosearch took the record of its files with it). Only files
        named as Optuna names them and older than ``min_age_s`` (an upload writes its file
        before its record); never in ``$COSEARCH_ARTIFACTS``, which other stores may share."""
        import time
        import uuid

        from cosearch._artifacts import artifact_dir
        from cosearch.store.queries import _optuna_models

        # an in-memory SQLite store's artifacts live in $COSEARCH_ARTIFACTS too
        where = artifact_dir(self.url) if self.is_sqlite and not memory_url(self.url) else None
        if where is None or not where.is_dir():
            return []
        old = time.time() - min_age_s
        files = set()
        for f in where.iterdir():
            try:
                named = str(uuid.UUID(f.name)) == f.name
                if named and f.is_file() and f.stat().st_mtime < old:
                    files.add(f.name)
            except (ValueError, OSError):
                continue
        m = _optuna_models()
        refs: set[str] = set()
        with self.engine.connect() as conn:
            for model in (m.StudySystemAttributeModel, m.TrialSystemAttributeModel):
                t = model.__table__
                keys = conn.execute(sa.select(t.c.key).where(t.c.key.startswith("artifacts:")))
                refs.update(k.removeprefix("artifacts:") for k in keys.scalars())
        return sorted(files - refs)

    def _artifact_ids(self, study_ids: list[int]) -> list[str]:
        """The artifact ids the studies' attributes record (study and trial artifacts)."""
        from cosearch.store.queries import user_attr_values

        ids: list[str] = []
        for sid in study_ids:
            attrs = self.optuna_storage.get_study_user_attrs(sid)
            for per_trial in attrs.get("cosearch.front_artifacts", {}).values():
                ids += [str(v) for v in per_trial.values()]
            for per_trial in user_attr_values(self.engine, sid, "artifacts").values():
                ids += [str(v) for v in (per_trial or {}).values()]
        return ids

    # -- trials -----------------------------------------------------------------------------
    def record_evaluation(
        self,
        trial_id: int,
        campaign_id: int,
        arch: Architecture,
        onnx_bytes: bytes | None,
        acc: Accelerator,
        metrics: Metrics,
    ) -> None:
        """Write architecture, accelerator, the trial's link and its measurements atomically.

        Architecture and accelerator rows are insert-or-ignore by digest; ``onnx_bytes`` may be
        None when the caller knows the architecture row already exists.
        """
        with self._begin() as conn:
            if onnx_bytes is not None:
                self._insert_ignore(
                    conn,
                    schema.architectures,
                    "digest",
                    {
                        "digest": arch.digest,
                        "space": arch.space,
                        "genotype_json": json.dumps(dict(arch.genotype), sort_keys=True),
                        "onnx": onnx_bytes,
                        "created_at": _now(),
                    },
                )
            self._insert_ignore(
                conn,
                schema.accelerators,
                "digest",
                {
                    "digest": acc.digest,
                    "template": acc.template,
                    "config_json": json.dumps(acc.params, sort_keys=True),
                    "created_at": _now(),
                },
            )
            conn.execute(
                schema.evaluations.insert().values(
                    trial_id=trial_id,
                    campaign_id=campaign_id,
                    architecture_digest=arch.digest,
                    accelerator_digest=acc.digest,
                    created_at=_now(),
                )
            )
            conn.execute(
                schema.measurements.insert(),
                [
                    {
                        "trial_id": trial_id,
                        "metric": name,
                        "value": m.value,
                        "source": m.source,
                        "fidelity": m.fidelity,
                        "seconds": m.seconds,
                    }
                    for name, m in metrics.items()
                ],
            )

    def put_layer_costs(self, rows: list[dict[str, Any]]) -> None:
        """Insert-or-ignore rows of the layer-cost cache (see store/layer_cache.py)."""
        t = schema.layer_costs
        keys = ["model", "model_version", "layer_digest", "accelerator_digest"]
        with self._begin() as conn:
            dialect = self.engine.dialect.name
            if dialect in ("sqlite", "postgresql"):
                if dialect == "sqlite":
                    from sqlalchemy.dialects.sqlite import insert
                else:
                    from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
                conn.execute(insert(t).on_conflict_do_nothing(index_elements=keys), rows)
            else:
                for row in rows:
                    exists = conn.execute(
                        sa.select(t.c.model).where(*[t.c[k] == row[k] for k in keys])
                    ).first()
                    if exists is None:
                        conn.execute(t.insert().values(**row))

    def has_architecture(self, digest: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(schema.architectures.c.digest).where(
                        schema.architectures.c.digest == digest
                    )
                ).first()
                is not None
            )

    def _insert_ignore(
        self, conn: sa.Connection, table: sa.Table, key: str, row: Mapping[str, Any]
    ) -> None:
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(
                sqlite_insert(table).values(**row).on_conflict_do_nothing(index_elements=[key])
            )
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(
                pg_insert(table).values(**row).on_conflict_do_nothing(index_elements=[key])
            )
        else:  # portable fallback: check, then insert (a lost race raises IntegrityError)
            exists = conn.execute(sa.select(table.c[key]).where(table.c[key] == row[key])).first()
            if exists is None:
                conn.execute(table.insert().values(**row))

    def discard_evaluations(self, trial_ids: Iterable[int]) -> int:
        """Delete the cosearch rows of trials that did not complete, then unreferenced
        architectures and accelerators. Returns the number of evaluations removed."""
        ids = list(trial_ids)
        if not ids:
            return 0
        with self._begin() as conn:
            conn.execute(
                schema.measurements.delete().where(schema.measurements.c.trial_id.in_(ids))
            )
            n = conn.execute(
                schema.evaluations.delete().where(schema.evaluations.c.trial_id.in_(ids))
            ).rowcount
            self._collect_garbage(conn)
        return int(n or 0)

    def _collect_garbage(self, conn: sa.Connection) -> None:
        ev = schema.evaluations
        conn.execute(
            schema.architectures.delete().where(
                ~sa.exists().where(ev.c.architecture_digest == schema.architectures.c.digest)
            )
        )
        conn.execute(
            schema.accelerators.delete().where(
                ~sa.exists().where(ev.c.accelerator_digest == schema.accelerators.c.digest)
            )
        )

    def evaluation(self, trial_id: int) -> dict[str, Any] | None:
        """The trial's architecture and accelerator rows and its measurements."""
        ev, ar, ac = schema.evaluations, schema.architectures, schema.accelerators
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(
                        ev.c.trial_id,
                        ev.c.campaign_id,
                        ar.c.digest.label("arch_digest"),
                        ar.c.space,
                        ar.c.genotype_json,
                        ar.c.onnx,
                        ac.c.digest.label("acc_digest"),
                        ac.c.template,
                        ac.c.config_json,
                    )
                    .join(ar, ar.c.digest == ev.c.architecture_digest)
                    .join(ac, ac.c.digest == ev.c.accelerator_digest)
                    .where(ev.c.trial_id == trial_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            ms = (
                conn.execute(
                    sa.select(schema.measurements)
                    .where(schema.measurements.c.trial_id == trial_id)
                    .order_by(schema.measurements.c.measurement_id)
                )
                .mappings()
                .all()
            )
        out = dict(row)
        out["genotype"] = json.loads(out.pop("genotype_json"))
        out["accelerator"] = json.loads(out.pop("config_json"))
        out["measurements"] = [dict(m) for m in ms]
        return out

    # -- checkpoints (learned strategy state) -------------------------------------------------
    def save_checkpoint(
        self,
        campaign_id: int,
        strategy: str,
        step: int,
        meta: Mapping[str, Any],
        tensors: Mapping[str, torch.Tensor],
        *,
        keep: int | None = None,
    ) -> bool:
        """Store ``tensors`` (``torch.save`` bytes) and ``meta`` (JSON) as checkpoint ``step``.

        Insert-or-ignore on (campaign, strategy, step): when several workers save the same
        step, the first one's stays. ``keep`` deletes all but the ``keep`` highest steps of
        this campaign and strategy. Returns True when this call inserted the row.
        """
        import io

        import torch

        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in tensors.items()}, buf)
        row = {
            "campaign_id": campaign_id,
            "strategy": strategy,
            "step": int(step),
            "meta_json": json.dumps(meta, sort_keys=True),
            "payload": buf.getvalue(),
            "created_at": _now(),
        }
        t = schema.checkpoints
        where = (t.c.campaign_id == campaign_id, t.c.strategy == strategy)
        dialect = self.engine.dialect.name
        with self._begin() as conn:
            if dialect in ("sqlite", "postgresql"):
                if dialect == "sqlite":
                    from sqlalchemy.dialects.sqlite import insert
                else:
                    from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
                res = conn.execute(
                    insert(t)
                    .values(**row)
                    .on_conflict_do_nothing(index_elements=["campaign_id", "strategy", "step"])
                )
                inserted = bool(res.rowcount)
            else:  # portable fallback: check, then insert (a lost race raises IntegrityError)
                exists = conn.execute(
                    sa.select(t.c.step).where(*where, t.c.step == int(step))
                ).first()
                inserted = exists is None
                if inserted:
                    conn.execute(t.insert().values(**row))
            if keep is not None:
                steps = conn.execute(
                    sa.select(t.c.step).where(*where).order_by(t.c.step.desc())
                ).scalars()
                old = list(steps)[keep:]
                if old:
                    conn.execute(t.delete().where(*where, t.c.step.in_(old)))
        return inserted

    def load_checkpoint(
        self, campaign_id: int, strategy: str, step: int | None = None
    ) -> tuple[int, dict[str, Any], dict[str, torch.Tensor]] | None:
        """``(step, meta, tensors)`` of the given (default: the latest) checkpoint, or None.

        Tensors are read with ``torch.load(weights_only=True)`` (:func:`load_tensors`):
        nothing else is unpickled, and a payload that is not named tensors is refused.
        """
        t = schema.checkpoints
        q = sa.select(t.c.step, t.c.meta_json, t.c.payload).where(
            t.c.campaign_id == campaign_id, t.c.strategy == strategy
        )
        q = q.where(t.c.step == int(step)) if step is not None else q
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(t.c.step.desc()).limit(1)).first()
        if row is None:
            return None
        tensors = load_tensors(row.payload, f"the {strategy} checkpoint", self.display_url)
        return int(row.step), json.loads(row.meta_json), tensors

    # -- queries ----------------------------------------------------------------------------
    def query(self, sql: str) -> pd.DataFrame:
        """Run one read-only SQL statement; a statement that writes raises QueryError and
        changes nothing."""
        return run_readonly_query(self.url, self.engine, sql)


def _use_wal(engine: sa.Engine) -> None:
    """Write-ahead logging with ``synchronous=NORMAL`` on every connection to an SQLite file.

    A trial takes ~40 small commits (Optuna writes each parameter on its own); in the default
    rollback-journal mode each one waits for an fsync, which on a busy disk made the
    quickstart 10x slower. In WAL mode a commit is an append to the log, readers (the
    dashboard, ``cosearch status``) no longer block the writer, and a killed process loses
    nothing it committed; only a power cut can lose the last transactions before a checkpoint.
    """

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                # a file still in rollback-journal mode (made before 2026-11-27) switches only
                # when no other connection writes: go on in its mode, which waits for locks
                # (it refused even `cosearch status` while an old worker wrote)
                if "locked" not in str(exc):
                    raise
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()

    sa.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener get it on reconnect


class _Tx:
    """``with store._begin() as conn``: commit on success, roll back on error, always close."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sa.Connection:
        self.conn.begin()
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (and by default create) the store at ``url``; see :class:`Store`."""
    return Store(url, create=create)
