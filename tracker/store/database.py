"""Database engine, schema creation and SQLite backup.

SQLite is the embedded default: every connection gets ``journal_mode=WAL`` (readers never block the one
writer), ``foreign_keys=ON`` (SQLite leaves them off by default, which would silently break the
``ON DELETE CASCADE`` / ``SET NULL`` rules of :mod:`tracker.store.models`), ``synchronous=FULL`` (a
committed visit survives a power cut) and ``busy_timeout=5000`` (a second writer waits up to 5 s instead
of failing at once). Other URLs, e.g. ``postgresql+psycopg://...``, are passed to SQLAlchemy untouched.

The schema is created with ``metadata.create_all`` for now; schema changes will go through Alembic
migrations (the constraint naming convention in :mod:`tracker.store.models` is ready for that).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from tracker.errors import StorageError
from tracker.store.blobs import fsync_dir
from tracker.store.models import Base

__all__ = ["SQLITE_PRAGMAS", "backup_sqlite", "create_schema", "make_engine", "sqlite_path"]

#: Pragmas run on every new SQLite connection, in this order.
SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
)


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or ``None`` (in-memory database, or not SQLite).

    Parameters
    ----------
    url : str
        A SQLAlchemy URL such as ``"sqlite:////abs/path/tracker.db"``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str) -> Engine:
    """Create the SQLAlchemy engine for ``url``.

    For SQLite, the folder of a file database is created and every connection gets the pragmas in
    :data:`SQLITE_PRAGMAS`. Any other URL is handed to :func:`sqlalchemy.create_engine` unchanged.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL, e.g. ``"sqlite:////srv/tracker/tracker.db"`` or
        ``"postgresql+psycopg://user@host/tracker"``.

    Returns
    -------
    sqlalchemy.Engine
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"database URL must be a non-empty string, got {url!r}")
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def create_schema(engine: Engine) -> None:
    """Create every missing table and index of :mod:`tracker.store.models` (existing ones are kept).

    This is ``Base.metadata.create_all``; once the schema changes after a release, migrations (Alembic)
    take over and this stays the way to initialise an empty database.
    """
    Base.metadata.create_all(engine)


def backup_sqlite(engine: Engine, target_path: str | os.PathLike[str]) -> None:
    """Copy a live SQLite database to ``target_path`` with SQLite's online backup API.

    The copy is consistent even while other connections write (never copy a live WAL database file
    by hand). It is written to a temporary file next to the target, checked with ``PRAGMA quick_check``
    and then renamed into place, so ``target_path`` is either the old file or a complete new backup.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A SQLite engine (from :func:`make_engine`).
    target_path : path-like
        The backup file to write; its folder is created. Replaced if it exists.

    Raises
    ------
    ValueError
        If ``engine`` is not SQLite, or the target is the live database itself.
    StorageError
        If the backup fails or the copy does not pass the integrity check.
    """
    if engine.dialect.name != "sqlite":
        raise ValueError(f"backup_sqlite needs a SQLite engine, got {engine.dialect.name!r}")
    target = Path(target_path).expanduser().resolve()
    source = sqlite_path(engine.url.render_as_string(hide_password=False))
    if source is not None and source.resolve() == target:
        raise ValueError(f"backup target {target} is the live database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if not isinstance(raw, sqlite3.Connection):
                raise ValueError(f"backup_sqlite needs the sqlite3 driver, got {type(raw).__name__}")
            dest = sqlite3.connect(tmp)
            try:
                raw.backup(dest)
                (result,) = dest.execute("PRAGMA quick_check").fetchone()
                if result != "ok":
                    raise StorageError(f"backup copy failed its integrity check: {result}")
                # A single self-contained file: no -wal / -shm companions to forget.
                dest.execute("PRAGMA journal_mode=DELETE")
            finally:
                dest.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except sqlite3.Error as exc:
        raise StorageError(f"backup to {target} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


