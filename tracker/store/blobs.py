"""Content-addressed blob store for image bytes (and masks, exports).

A blob's key is the SHA-256 hex digest of its bytes, so the same bytes are stored once, a key can never
name two different contents, and corruption is detected on every read. Blobs are never overwritten.

:class:`LocalBlobStore` keeps blobs in a folder as ``root/ab/cd/<sha256>``. A write goes to a temporary
file in the final folder, is flushed and fsynced, then hard-linked to its final name (``link`` fails if
the name exists, so nothing is ever overwritten) and the folder is fsynced. A crash at any point leaves
either no final file or a complete one; leftover temporary files (``.tmp-*``) are ignored by
:meth:`LocalBlobStore.keys` and can be removed with :meth:`LocalBlobStore.remove_stale_temp_files`.

S3-compatible object storage is planned behind the same :class:`BlobStore` protocol
(``TRACKER_STORAGE_URL=s3://...``); :func:`open_blob_store` rejects it clearly until then.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from tracker.errors import StorageError

__all__ = ["BlobStore", "LocalBlobStore", "open_blob_store", "scrub", "validate_key"]

_KEY_RE = re.compile(r"[0-9a-f]{64}")
_FANOUT_RE = re.compile(r"[0-9a-f]{2}")
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def validate_key(key: str) -> str:
    """Return ``key`` if it is a blob key (64 lowercase hex characters), else raise ``ValueError``.

    Keys become file names, so this is also what makes path traversal (``"../x"``) impossible.
    """
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise ValueError(f"invalid blob key {key!r}: expected 64 lowercase hex characters (sha256)")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """What the services need from a blob store (local folder now, object storage later)."""

    def put(self, data: bytes) -> str:
        """Store ``data``; return its key (sha256 hex). Idempotent; never overwrites."""
        ...

    def get(self, key: str) -> bytes:
        """Return the bytes of ``key``, verified against the key; ``StorageError`` if missing/corrupt."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob named ``key`` is stored (its content is not checked)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (erasure on request). A missing key is not an error."""
        ...

    def keys(self) -> Iterator[str]:
        """Every stored key."""
        ...

    def verify(self, key: str) -> bool:
        """Whether ``key`` is stored and its bytes still hash to ``key`` (scrub)."""
        ...


def fsync_dir(path: Path) -> None:
    """Make a rename or new file in ``path`` durable (fsync the directory; a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs in a local folder: ``root/ab/cd/<sha256>``, written atomically and durably.

    Parameters
    ----------
    root : path-like
        The folder; created (mode 0o700) if missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file that holds (or would hold) ``key``. ``ValueError`` for an invalid key."""
        validate_key(key)
        return self.root / key[:2] / key[2:4] / key

    def _make_dirs(self, folder: Path) -> None:
        # Create ab/ and ab/cd/ and fsync each parent, so the new folder entries survive a crash too.
        for sub in (folder.parent, folder):
            if not sub.is_dir():
                sub.mkdir(mode=0o700, exist_ok=True)
                fsync_dir(sub.parent)

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its key, the sha256 hex digest.

        Storing bytes that are already present writes nothing (after checking the stored copy).

        Raises
        ------
        TypeError
            If ``data`` is not bytes-like.
        StorageError
            If the write fails, or an existing copy of the same key is corrupt (it is not replaced:
            run a scrub and delete it first).
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"blob data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        key = hashlib.sha256(data).hexdigest()
        final = self.path(key)
        if final.exists():
            self._check_existing(key)
            return key
        folder = final.parent
        try:
            self._make_dirs(folder)
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
        except OSError as exc:
            raise StorageError(f"cannot write blob {key}: {exc}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o400)
            self._publish(tmp, final, key)
            fsync_dir(folder)
        except OSError as exc:
            raise StorageError(f"cannot write blob {key}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return key

    def _publish(self, tmp: Path, final: Path, key: str) -> None:
        try:
            os.link(tmp, final)
        except FileExistsError:
            # Another writer stored the same bytes at the same time: keep theirs, after a check.
            self._check_existing(key)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # File systems without hard links: rename, after an existence check. A same-name race can
            # only put identical bytes there, since the name is the hash of the content.
            if final.exists():
                self._check_existing(key)
            else:
                os.rename(tmp, final)

    def _check_existing(self, key: str) -> None:
        if not self.verify(key):
            raise StorageError(f"blob {key} is already stored but corrupt; not overwriting it (run a scrub)")

    def get(self, key: str) -> bytes:
        """Return the bytes stored under ``key``, after checking they still hash to ``key``.

        Raises
        ------
        ValueError
            If ``key`` is not a valid key.
        StorageError
            If the blob is missing, unreadable or corrupt.
        """
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"blob {key} is missing") from exc
        except OSError as exc:
            raise StorageError(f"cannot read blob {key}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != key:
            raise StorageError(f"blob {key} is corrupt: its content no longer matches its hash")
        return data

    def exists(self, key: str) -> bool:
        """Whether a blob file for ``key`` exists (content not checked; see :meth:`verify`)."""
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the blob ``key`` (for erasure on request). A missing blob is not an error."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete blob {key}: {exc}") from exc
        fsync_dir(path.parent)

    def keys(self) -> Iterator[str]:
        """Yield every stored key in sorted order (temporary and foreign files are skipped)."""
        for first in sorted(self._subdirs(self.root)):
            for second in sorted(self._subdirs(first)):
                prefix = first.name + second.name
                names = sorted(e.name for e in os.scandir(second) if e.is_file(follow_symlinks=False))
                for name in names:
                    if _KEY_RE.fullmatch(name) and name.startswith(prefix):
                        yield name

    @staticmethod
    def _subdirs(folder: Path) -> list[Path]:
        return [
            Path(e.path)
            for e in os.scandir(folder)
            if _FANOUT_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        ]

    def verify(self, key: str) -> bool:
        """Whether ``key`` is stored and its bytes still hash to ``key`` (reads the file in chunks)."""
        path = self.path(key)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot read blob {key}: {exc}") from exc
        return digest.hexdigest() == key

    def remove_stale_temp_files(self, *, older_than_s: float = 3600.0) -> int:
        """Delete temporary files left by interrupted writes; return how many were removed.

        Only files older than ``older_than_s`` seconds are touched, so writes in progress are safe.
        """
        if older_than_s < 0:
            raise ValueError(f"older_than_s must be >= 0, got {older_than_s}")
        cutoff = time.time() - older_than_s
        removed = 0
        for first in self._subdirs(self.root):
            for second in self._subdirs(first):
                for entry in os.scandir(second):
                    if entry.name.startswith(_TMP_PREFIX) and entry.stat().st_mtime <= cutoff:
                        Path(entry.path).unlink(missing_ok=True)
                        removed += 1
        return removed


def scrub(store: BlobStore) -> list[str]:
    """Re-hash every stored blob; return the keys whose bytes no longer match (sorted).

    Nothing is deleted or repaired: restore those blobs from a backup, or delete them and re-ingest.
    """
    stored = store.keys()  # an iterator, not a dict view
    return sorted(key for key in stored if not store.verify(key))


def open_blob_store(url: str) -> BlobStore:
    """Open the blob store named by a storage URL (``TRACKER_STORAGE_URL``).

    Parameters
    ----------
    url : str
        ``"file:///absolute/path"`` (percent-encoded, as produced by :meth:`pathlib.Path.as_uri`).

    Raises
    ------
    ValueError
        For any other scheme (``s3://`` is planned, not yet supported) or a relative / remote path.
    """
    if not isinstance(url, str):
        raise ValueError(f"storage URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "file":
        shown = scheme or "(none)"
        raise ValueError(
            f"unsupported storage URL scheme {shown!r} (only file:///absolute/path is supported; "
            "S3-compatible object storage is planned)"
        )
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"storage URL {url!r} names a remote host; use file:///absolute/path")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ValueError(f"storage URL {url!r} must hold an absolute path: file:///absolute/path")
    return LocalBlobStore(path)
