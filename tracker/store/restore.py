"""Verified restore of a backup written by :func:`tracker.store.backup.backup_store`.

:func:`restore_store` verifies the backup first (:func:`tracker.store.backup.verify_backup`), builds the
new home in a temporary folder beside the target, checks every blob and the database again, and only
then renames it into place; an existing home is replaced only with ``force`` and is kept, renamed to
``<home>.replaced-<UTC time>``. Stop the dashboard before a restore: a running server keeps the replaced
database open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tracker.config import Settings
from tracker.errors import StorageError
from tracker.store.backup import (
    BLOBS_DIR,
    DATABASE_NAME,
    _integrity,
    _is_empty_dir,
    _record,
    _staging_dir,
    _table_rows,
    _write_durably,
    verify_backup,
)
from tracker.store.blobs import LocalBlobStore, fsync_dir

__all__ = ["RestoreResult", "restore_store"]


@dataclass(frozen=True)
class RestoreResult:
    """Where a backup was restored, what it held, and where the replaced home was kept (if any)."""

    home: Path
    blobs: int
    table_rows: dict[str, int]
    replaced: Path | None = None


def restore_store(
    backup_dir: str | os.PathLike[str],
    home: str | os.PathLike[str],
    *,
    force: bool = False,
    username: str | None = None,
) -> RestoreResult:
    """Restore a verified backup as the store folder ``home`` (``tracker.db`` + ``blobs/``).

    Nothing is touched unless the backup verifies. The new home is built in a temporary folder beside
    ``home`` (every blob re-hashed as it is written, the database integrity-checked in place) and then
    renamed into place. A crash before that rename leaves ``home`` as it was (plus a ``.restore-``
    folder to delete); with ``force``, a crash between the two renames leaves the old store at
    ``<home>.replaced-<time>`` and the complete new one in the ``.restore-`` folder.

    Parameters
    ----------
    backup_dir : path-like
        A folder written by :func:`backup_store`.
    home : path-like
        The store folder to create. Must be absent or empty unless ``force``.
    force : bool, optional
        Replace an existing, non-empty ``home``; the old folder is kept as ``<home>.replaced-<time>``.
    username : str, optional
        When given, a ``restore`` audit event by this user is appended to the restored store.

    Raises
    ------
    StorageError
        The backup does not verify (the message gives the first problem), or a copy failed.
    ValueError
        ``home`` is not empty (without ``force``) or is not a folder.
    """
    check = verify_backup(backup_dir)
    if not check.ok or check.manifest is None:
        more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        raise StorageError(f"backup {backup_dir} failed verification: {check.problems[0]}{more}; nothing restored")
    manifest = check.manifest
    source = Path(backup_dir).expanduser().resolve()
    target = Path(home).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a folder")
    if target.exists() and not _is_empty_dir(target) and not force:
        raise ValueError(f"{target} is not empty; restore into a new folder, or replace it with --force")
    staging = _staging_dir(target, "restore")
    replaced: Path | None = None
    try:
        db_path = staging / DATABASE_NAME
        with open(source / DATABASE_NAME, "rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != manifest.files[DATABASE_NAME]["sha256"]:
            raise StorageError(f"{DATABASE_NAME} changed while being restored; nothing restored")
        _write_durably(db_path, data)
        blobs = LocalBlobStore(staging / BLOBS_DIR)
        for name in manifest.files:
            if name == DATABASE_NAME:
                continue
            key = blobs.put((source / name).read_bytes())
            if key != Path(name).name:
                raise StorageError(f"{name} changed while being restored; nothing restored")
        integrity = _integrity(db_path)
        if integrity != "ok" or _table_rows(db_path) != manifest.table_rows:
            raise StorageError(f"restored database failed its check ({integrity}); nothing restored")
        fsync_dir(staging)
        if target.exists() and not _is_empty_dir(target):
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            replaced = target.with_name(f"{target.name}.replaced-{stamp}")
            os.rename(target, replaced)
        os.rename(staging, target)
        fsync_dir(target.parent)
    except BaseException:
        if replaced is not None and not target.exists():
            os.rename(replaced, target)  # roll back: the old home goes back in place
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if username is not None:
        _record(Settings.from_env(target), username, "restore",
                {"source": str(source), "backup_audit_head": manifest.audit["head"]})
    return RestoreResult(home=target, blobs=len(manifest.blobs), table_rows=manifest.table_rows, replaced=replaced)
