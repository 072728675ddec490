"""Storage: the database (SQLAlchemy; SQLite by default) and the content-addressed image blob store.

>>> store = Store.open("/tmp/tracker-demo")          # doctest: +SKIP
>>> with store.session() as s, s.begin():             # doctest: +SKIP
...     s.add(Patient(code="DEMO-001", display_name="Demo"))

Services use :class:`Store` and the model classes re-exported here; SQL stays inside this package and
the services.
"""

from __future__ import annotations

import os

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tracker.config import Settings
from tracker.store.blobs import BlobStore, LocalBlobStore, open_blob_store
from tracker.store.database import create_schema, make_engine
from tracker.store.models import (
    Analysis,
    AuditEvent,
    Base,
    BaselineCache,
    Correction,
    DeviceProfile,
    Patient,
    Photo,
    Treatment,
    User,
    Visit,
)

__all__ = [
    "Analysis",
    "AuditEvent",
    "Base",
    "BaselineCache",
    "BlobStore",
    "Correction",
    "DeviceProfile",
    "LocalBlobStore",
    "Patient",
    "Photo",
    "Store",
    "Treatment",
    "User",
    "Visit",
]


class Store:
    """Database + blob store opened from :class:`~tracker.config.Settings`.

    Creating it makes the home folder, the engine (with the SQLite pragmas), any missing tables, and
    opens the blob store.

    Attributes
    ----------
    settings : Settings
    engine : sqlalchemy.Engine
    blobs : BlobStore
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.database_url)
        create_schema(self.engine)
        self.blobs: BlobStore = open_blob_store(settings.storage_url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None) -> Store:
        """Open the store of ``home`` (or of ``TRACKER_HOME``): ``Store(Settings.from_env(home))``."""
        return cls(Settings.from_env(home))

    def session(self) -> Session:
        """A new ORM session (``expire_on_commit=False``); use it as a context manager."""
        return self._sessions()

    def close(self) -> None:
        """Release the database connections (the store can be reopened later)."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(home={str(self.settings.home)!r})"
