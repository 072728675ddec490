"""Backup of the embedded store (SQLite database + local blob folder), and its verification.

A backup is a folder::

    DIR/manifest.json          what is in it: sha256 and size of every file, audit chain head, row counts
    DIR/tracker.db             a consistent copy made with SQLite's online backup API (never a file copy)
    DIR/blobs/ab/cd/<sha256>   every blob, each checked against its name while copied

:func:`backup_store` builds it in a temporary folder beside ``DIR`` and renames it into place, so ``DIR``
is either absent or a complete backup. The database is copied *before* the blobs: every blob a copied
row names was stored before that row was committed, so it is still there when the blobs are copied.
:func:`verify_backup` re-checks a backup against its manifest (hashes, database integrity, blob names,
rows pointing at blobs, the audit chain and its recorded head).

Restore lives in :mod:`tracker.store.restore` and scrub in :mod:`tracker.store.scrub`; both are
re-exported here (``RestoreResult`` and ``restore_store`` lazily, because :mod:`tracker.store.restore`
builds on this module's manifest, checks and file helpers).

Scope: the embedded layout (``$TRACKER_HOME/tracker.db`` and ``$TRACKER_HOME/blobs``). A PostgreSQL
database is backed up with its own tools (``pg_dump``); :func:`backup_store` refuses it clearly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tracker import PIPELINE_VERSION
from tracker.config import Settings
from tracker.errors import StorageError
from tracker.store import Store
from tracker.store.audit import append_event, chain_head, verify_chain
from tracker.store.blobs import LocalBlobStore, fsync_dir, validate_key
from tracker.store.database import backup_sqlite
from tracker.store.models import AuditEvent
from tracker.store.scrub import BlobReference, blob_references

__all__ = [
    "BACKUP_FORMAT",
    "BackupCheck",
    "BackupManifest",
    "backup_store",
    "verify_backup",
]

#: ``format`` field of every manifest, and the version this code writes and reads.
BACKUP_FORMAT = "tracker-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DATABASE_NAME = "tracker.db"
BLOBS_DIR = "blobs"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds (the content of ``manifest.json``).

    ``files`` maps each path relative to the backup folder to ``{"sha256": hex, "size": bytes}``.
    """

    created_at: str
    pipeline_version: str
    files: dict[str, dict[str, Any]]
    blobs: tuple[str, ...]
    audit: dict[str, Any]
    table_rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"format": BACKUP_FORMAT, "version": FORMAT_VERSION, "created_at": self.created_at,
                "pipeline_version": self.pipeline_version, "database": DATABASE_NAME, "audit": self.audit,
                "table_rows": self.table_rows, "blobs": list(self.blobs), "files": self.files}

    @classmethod
    def from_dict(cls, raw: Any) -> BackupManifest:
        """Parse a manifest; ``ValueError`` naming what is wrong when it is not one this code wrote."""
        if not isinstance(raw, dict) or raw.get("format") != BACKUP_FORMAT:
            raise ValueError(f"not a tracker backup manifest (format must be {BACKUP_FORMAT!r})")
        if raw.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported backup format version {raw.get('version')!r}")
        try:
            files = {str(k): {"sha256": str(v["sha256"]), "size": int(v["size"])} for k, v in raw["files"].items()}
            blobs = tuple(validate_key(k) for k in raw["blobs"])
            audit = {"head": str(raw["audit"]["head"]), "events": int(raw["audit"]["events"]),
                     "chain_ok": bool(raw["audit"]["chain_ok"])}
            rows = {str(k): int(v) for k, v in raw["table_rows"].items()}
            return cls(str(raw["created_at"]), str(raw["pipeline_version"]), files, blobs, audit, rows)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"backup manifest is incomplete or malformed ({exc!r})") from exc


@dataclass(frozen=True)
class BackupCheck:
    """Result of :func:`verify_backup`: ``ok`` when ``problems`` is empty."""

    problems: tuple[str, ...]
    manifest: BackupManifest | None = None

    @property
    def ok(self) -> bool:
        return not self.problems



# ------------------------------------------------------------------------------------------ helpers
def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _readonly_engine(path: Path) -> Engine:
    """An engine on a database file that can never write to it (nor create -wal / -shm files)."""
    uri = f"file:{quote(str(path))}?mode=ro&immutable=1"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool)


def _table_rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return "ok" if rows == ["ok"] else "; ".join(rows[:3])


def _snapshot_facts(path: Path) -> tuple[dict[str, Any], list[BlobReference]]:
    """Audit head, event count and chain check, plus the blob references, of a database copy."""
    engine = _readonly_engine(path)
    try:
        with Session(engine) as session:
            ok, problem = verify_chain(session)
            events = session.scalar(select(func.count()).select_from(AuditEvent))
            audit = {"head": chain_head(session), "events": events, "chain_ok": ok}
            if problem:
                audit["chain_problem"] = problem
            refs = list(blob_references(session.connection()))
    finally:
        engine.dispose()
    return audit, refs


def _staging_dir(target: Path, what: str) -> Path:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{what}-", dir=target.parent))


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _record(settings: Settings, username: str, action: str, details: dict[str, Any]) -> None:
    with Store(settings) as store, store.session() as session, session.begin():
        append_event(session, action=action, username=username, object_type="store", details=details)


# -------------------------------------------------------------------------------------------- backup
def backup_store(store: Store, target_dir: str | os.PathLike[str], *, username: str | None = None) -> BackupManifest:
    """Write a verified backup of ``store`` (a :class:`tracker.store.Store`) to the folder ``target_dir``.

    Parameters
    ----------
    store : tracker.store.Store
        An embedded store (SQLite database); may be in use, the copy is consistent.
    target_dir : path-like
        The backup folder: must not exist yet, or be empty. It appears complete or not at all.
    username : str, optional
        When given, a ``backup`` audit event by this user is appended first (so the copy contains it).

    Returns
    -------
    BackupManifest
        What was written to ``target_dir/manifest.json``.

    Raises
    ------
    ValueError
        Not a SQLite store, or ``target_dir`` exists and is not an empty folder.
    StorageError
        A stored blob is corrupt or a row names a missing blob (run ``tracker scrub``; nothing is
        written), or a copy failed.
    """
    if store.engine.dialect.name != "sqlite":
        raise ValueError("backup_store copies the embedded SQLite store; back up PostgreSQL with pg_dump")
    target = Path(target_dir).expanduser().resolve()
    if target.exists() and not _is_empty_dir(target):
        raise ValueError(f"backup folder {target} already exists and is not empty")
    if username is not None:
        _record(store.settings, username, "backup", {"target": str(target)})
    staging = _staging_dir(target, "backup")
    try:
        db_path = staging / DATABASE_NAME
        backup_sqlite(store.engine, db_path)  # first the rows, then the blobs they name
        audit, refs = _snapshot_facts(db_path)
        copies = LocalBlobStore(staging / BLOBS_DIR)
        files: dict[str, dict[str, Any]] = {}
        corrupt: list[str] = []
        stored = store.blobs.keys()  # an iterator, not a dict view
        for key in stored:
            try:
                data = store.blobs.get(key)
            except StorageError:
                corrupt.append(key)
                continue
            copies.put(data)
            files[copies.path(key).relative_to(staging).as_posix()] = {"sha256": key, "size": len(data)}
        copied = {Path(name).name for name in files}
        missing = [ref for ref in refs if ref.key not in copied and ref.key not in corrupt]
        if corrupt or missing:
            first = f"blob {corrupt[0]} is corrupt" if corrupt else f"{missing[0]} names a missing blob"
            raise StorageError(f"backup not written: {len(corrupt)} corrupt blob(s), {len(missing)} row(s) "
                               f"naming a missing blob, e.g. {first}; run `tracker scrub`")
        sha, size = _sha256_file(db_path)
        files = {DATABASE_NAME: {"sha256": sha, "size": size}, **dict(sorted(files.items()))}
        manifest = BackupManifest(
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            pipeline_version=PIPELINE_VERSION,
            files=files,
            blobs=tuple(sorted(copied)),
            audit=audit,
            table_rows=_table_rows(db_path),
        )
        _write_durably(staging / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=1).encode())
        fsync_dir(staging)
        os.rename(staging, target)  # replaces an empty target folder atomically
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def verify_backup(backup_dir: str | os.PathLike[str]) -> BackupCheck:
    """Check a backup folder against its manifest; never raises for a damaged backup.

    Checks: the manifest parses; every listed file exists with its size and sha256 and no other file
    is there; every blob file is named by its own hash; the database passes ``PRAGMA integrity_check``
    and has the recorded row counts; every row naming a blob finds it; the audit chain verifies as it
    did at backup time and ends at the recorded head.

    Returns
    -------
    BackupCheck
        ``ok`` and a list of one-line ``problems`` (empty when the backup is sound).
    """
    root = Path(backup_dir).expanduser().resolve()
    try:
        manifest = BackupManifest.from_dict(json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return BackupCheck((f"{root}: no {MANIFEST_NAME} (not a tracker backup)",))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        return BackupCheck((f"{root / MANIFEST_NAME}: {exc}",))
    problems: list[str] = []
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    for name in sorted(present - set(manifest.files) - {MANIFEST_NAME}):
        problems.append(f"{name}: not listed in the manifest")
    for name, entry in manifest.files.items():
        path = root / name
        if name not in present or path.is_symlink() or not path.resolve().is_relative_to(root):
            problems.append(f"{name}: missing")
            continue
        sha, size = _sha256_file(path)
        if (sha, size) != (entry["sha256"], entry["size"]):
            problems.append(f"{name}: content does not match the manifest (sha256 or size changed)")
        elif name != DATABASE_NAME and Path(name).name != sha:
            problems.append(f"{name}: blob file is not named by its sha256")
    blob_names = {Path(n).name for n in manifest.files if n != DATABASE_NAME}
    if blob_names != set(manifest.blobs):
        problems.append("the manifest's blob list and file list disagree")
    if DATABASE_NAME not in manifest.files or not (root / DATABASE_NAME).is_file():
        problems.append(f"{DATABASE_NAME}: missing")
        return BackupCheck(tuple(problems), manifest)
    db_path = root / DATABASE_NAME
    integrity = _integrity(db_path)
    if integrity != "ok":
        problems.append(f"{DATABASE_NAME}: integrity check failed ({integrity})")
        return BackupCheck(tuple(problems), manifest)
    try:
        if _table_rows(db_path) != manifest.table_rows:
            problems.append(f"{DATABASE_NAME}: row counts differ from the manifest")
        audit, refs = _snapshot_facts(db_path)
    except Exception as exc:  # noqa: BLE001 - a damaged database can fail in many ways
        problems.append(f"{DATABASE_NAME}: unreadable ({type(exc).__name__}: {exc})")
        return BackupCheck(tuple(problems), manifest)
    problems += [f"{ref} names a blob that is not in the backup" for ref in refs if ref.key not in blob_names]
    if manifest.audit["chain_ok"] and not audit["chain_ok"]:
        problems.append(f"audit chain broken: {audit.get('chain_problem')}")
    if (audit["head"], audit["events"]) != (manifest.audit["head"], manifest.audit["events"]):
        problems.append("audit chain head or length differs from the manifest")
    return BackupCheck(tuple(problems), manifest)


# ------------------------------------------------------------------------------------------ re-exports
_FROM_RESTORE = frozenset({"RestoreResult", "restore_store"})
