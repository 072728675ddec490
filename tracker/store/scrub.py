"""Scrub of the embedded store: re-hash every blob and check every row that names one.

:func:`scrub_store` reports every blob whose bytes no longer match its name and every row that names a
missing blob; nothing is deleted or repaired (restore damaged blobs from a backup, see
:mod:`tracker.store.backup`). :func:`blob_references` lists the database cells that name blobs; backups
use it too, to check that every row of a copied database finds its blob.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from tracker.store import Store
from tracker.store.blobs import scrub
from tracker.store.models import Base

__all__ = ["BlobReference", "ScrubReport", "blob_references", "scrub_store"]


@dataclass(frozen=True)
class BlobReference:
    """A database cell that names a blob: ``table.column`` of the row ``row_id`` holds ``key``."""

    table: str
    column: str
    row_id: int
    key: str

    def __str__(self) -> str:
        return f"{self.table} id={self.row_id} ({self.column} {self.key})"


@dataclass(frozen=True)
class ScrubReport:
    """Result of :func:`scrub_store`.

    ``corrupt`` are keys whose bytes no longer hash to the key; ``missing`` are rows naming a blob that
    is not stored; ``referenced_by`` maps each corrupt key to the rows that name it.
    """

    checked: int
    corrupt: tuple[str, ...]
    missing: tuple[BlobReference, ...]
    referenced_by: dict[str, tuple[BlobReference, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


def blob_references(conn: Connection) -> Iterator[BlobReference]:
    """Every non-null ``*blob_key`` cell of every table of the schema."""
    for table in Base.metadata.sorted_tables:
        ids = list(table.primary_key.columns)
        for column in table.columns:
            if column.name.endswith("blob_key") and len(ids) == 1:
                rows = conn.execute(select(ids[0], column).where(column.is_not(None)).order_by(ids[0]))
                for row_id, key in rows:
                    yield BlobReference(table.name, column.name, int(row_id), str(key))


def scrub_store(store: Store) -> ScrubReport:
    """Re-hash every blob of ``store`` and check every row that names a blob.

    Nothing is deleted or repaired: restore the damaged blobs from a backup.

    Returns
    -------
    ScrubReport
        Corrupt keys (sorted), rows naming a missing blob, and the rows naming each corrupt key.
    """
    keys = list(store.blobs.keys())
    corrupt = tuple(scrub(store.blobs))
    with store.engine.connect() as conn:
        refs = list(blob_references(conn))
    missing = tuple(ref for ref in refs if ref.key not in corrupt and not store.blobs.exists(ref.key))
    by_key = {key: tuple(ref for ref in refs if ref.key == key) for key in corrupt}
    return ScrubReport(checked=len(keys), corrupt=corrupt, missing=missing, referenced_by=by_key)
