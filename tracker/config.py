"""Settings read from the environment, with the embedded defaults (SQLite plus a local folder).

=========================  ==========================================  ===============================
variable                   meaning                                     default
=========================  ==========================================  ===============================
``TRACKER_HOME``           folder of the embedded store                ``./tracker-data``
``TRACKER_DATABASE_URL``   SQLAlchemy URL of the database              ``sqlite:///$TRACKER_HOME/tracker.db``
``TRACKER_STORAGE_URL``    where image blobs live (``file://`` URL)    ``file://$TRACKER_HOME/blobs``
``TRACKER_MAX_PIXELS``     largest accepted image, in pixels           ``100000000`` (100 MP)
``TRACKER_MAX_BYTES``      largest accepted upload, in bytes           ``62914560`` (60 MiB)
=========================  ==========================================  ===============================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 60 * 1024 * 1024


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Where the store lives and the limits applied to uploads.

    Build it with :meth:`from_env` (the usual way) or directly in tests.
    """

    home: Path
    database_url: str
    storage_url: str
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Read the settings from ``TRACKER_*`` environment variables.

        Parameters
        ----------
        home : path-like, optional
            Overrides ``TRACKER_HOME``; the database and blob defaults follow it.
        """
        home_path = Path(home if home is not None else os.environ.get("TRACKER_HOME", "tracker-data"))
        home_path = home_path.expanduser().resolve()
        database_url = os.environ.get("TRACKER_DATABASE_URL") or f"sqlite:///{home_path / 'tracker.db'}"
        storage_url = os.environ.get("TRACKER_STORAGE_URL") or (home_path / "blobs").as_uri()
        if home is not None:
            # An explicit home wins over URLs inherited from the environment.
            database_url = f"sqlite:///{home_path / 'tracker.db'}"
            storage_url = (home_path / "blobs").as_uri()
        return cls(
            home=home_path,
            database_url=database_url,
            storage_url=storage_url,
            max_pixels=_int_env("TRACKER_MAX_PIXELS", DEFAULT_MAX_PIXELS),
            max_bytes=_int_env("TRACKER_MAX_BYTES", DEFAULT_MAX_BYTES),
        )
