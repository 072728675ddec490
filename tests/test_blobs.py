"""Content-addressed blob store: round trips, no overwrite, corruption detection, crash safety."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracker.errors import StorageError
from tracker.store.blobs import BlobStore, LocalBlobStore, open_blob_store, scrub, validate_key

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _flip_byte(path: Path, index: int) -> None:
    os.chmod(path, 0o600)
    raw = bytearray(path.read_bytes())
    raw[index] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("size", [0, 1, 4096, 1_048_577])
def test_put_get_round_trip(store, size):
    data = random.Random(size).randbytes(size)
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.get(key) == data
    assert store.exists(key) and store.verify(key)
    assert store.path(key) == store.root / key[:2] / key[2:4] / key
    assert list(store.keys()) == [key]


def test_put_accepts_bytes_like_and_rejects_other_types(store):
    assert store.put(bytearray(b"abc")) == store.put(memoryview(b"abc")) == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(TypeError):
        store.put("abc")  # type: ignore[arg-type]


def test_same_data_twice_gives_one_key_and_one_file(store):
    data = b"scalp photo bytes" * 100
    first, second = store.put(data), store.put(data)
    assert first == second
    assert _files(store.root) == [store.path(first)]


def test_concurrent_puts_of_the_same_data_store_one_file(store):
    data = os.urandom(200_000)
    keys: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            keys.append(store.put(data))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(keys) == {hashlib.sha256(data).hexdigest()}
    assert _files(store.root) == [store.path(keys[0])]


def test_no_temp_files_left_and_blobs_are_read_only(store):
    keys = {store.put(os.urandom(n)) for n in (10, 1000, 100_000)}
    files = _files(store.root)
    assert {p.name for p in files} == keys
    assert all(p.stat().st_mode & 0o222 == 0 for p in files)


@pytest.mark.parametrize("index", [0, 500, -1])
def test_corrupted_blob_is_detected_and_never_overwritten(store, index):
    data = os.urandom(1000)
    key = store.put(data)
    _flip_byte(store.path(key), index)
    assert store.exists(key)
    assert store.verify(key) is False
    with pytest.raises(StorageError, match="corrupt"):
        store.get(key)
    with pytest.raises(StorageError, match="corrupt"):
        store.put(data)  # the damaged copy is reported, not silently kept or replaced
    store.delete(key)
    assert store.put(data) == key and store.get(key) == data


def test_scrub_lists_exactly_the_damaged_blobs(store):
    keys = [store.put(bytes([i]) * 100) for i in range(10)]
    assert scrub(store) == []
    damaged = sorted(keys[i] for i in (1, 4, 7))
    for key in damaged:
        _flip_byte(store.path(key), 50)
    assert scrub(store) == damaged
    assert sorted(store.keys()) == sorted(keys)  # scrub reports, it does not delete


def test_truncated_blob_is_detected(store):
    key = store.put(b"x" * 5000)
    path = store.path(key)
    os.chmod(path, 0o600)
    path.write_bytes(b"x" * 4999)
    assert not store.verify(key)
    with pytest.raises(StorageError):
        store.get(key)


def test_missing_blob(store):
    key = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(key)
    assert not store.verify(key)
    with pytest.raises(StorageError, match="missing"):
        store.get(key)
    store.delete(key)  # no error


def test_delete_removes_the_blob(store):
    keep, gone = store.put(b"keep"), store.put(b"erase me")
    store.delete(gone)
    assert not store.exists(gone)
    assert list(store.keys()) == [keep]


BAD_KEYS = [
    "../x",
    "../" + "a" * 61,
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "",
    "/etc/passwd",
    "ab/cd/" + "a" * 58,
    "a" * 63 + "\n",
    None,
    123,
]


@pytest.mark.parametrize("key", BAD_KEYS)
@pytest.mark.parametrize("method", ["get", "exists", "delete", "verify", "path"])
def test_bad_keys_raise_value_error(store, key, method):
    with pytest.raises(ValueError, match="invalid blob key"):
        getattr(store, method)(key)


def test_validate_key_accepts_a_sha256():
    key = hashlib.sha256(b"").hexdigest()
    assert validate_key(key) == key


def test_keys_ignores_temp_and_foreign_files(store):
    keys = sorted(store.put(bytes([i])) for i in range(20))
    folder = store.path(keys[0]).parent
    (folder / ".tmp-abc123").write_bytes(b"partial")
    (folder / "README").write_text("not a blob")
    (store.root / "zz").mkdir()
    (store.root / "zz" / "00").mkdir()
    misplaced = hashlib.sha256(b"misplaced").hexdigest()
    (folder / misplaced).write_bytes(b"misplaced")  # right name, wrong folder
    assert list(store.keys()) == keys


def test_remove_stale_temp_files(store):
    key = store.put(b"data")
    folder = store.path(key).parent
    old, new = folder / ".tmp-old", folder / ".tmp-new"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.remove_stale_temp_files(older_than_s=3600) == 1
    assert not old.exists() and new.exists()
    assert store.exists(key)
    with pytest.raises(ValueError):
        store.remove_stale_temp_files(older_than_s=-1)


WRITER = """
import os, random, sys
from tracker.store.blobs import LocalBlobStore
store = LocalBlobStore(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
print("ready", flush=True)
while True:
    store.put(rng.randbytes(rng.randrange(1, 400_000)))
"""


def test_killed_writer_leaves_only_complete_blobs(tmp_path):
    """SIGKILL a process that writes blobs in a loop, 5 times: whatever exists must verify."""
    root = tmp_path / "blobs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(1234)
    for trial in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(trial)], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
    store = LocalBlobStore(root)
    keys = list(store.keys())
    assert len(keys) >= 5  # the writers did get work done
    assert all(store.verify(k) for k in keys)
    blob_files = [p for p in _files(root) if not p.name.startswith(".tmp-")]
    assert sorted(p.name for p in blob_files) == sorted(keys)  # no partial file under a final name
    for key in keys[:3]:
        assert hashlib.sha256(store.get(key)).hexdigest() == key


def test_open_blob_store_file_url(tmp_path):
    folder = tmp_path / "with space" / "blobs"
    store = open_blob_store(folder.as_uri())
    assert isinstance(store, LocalBlobStore)
    assert isinstance(store, BlobStore)
    assert store.root == folder.resolve()
    assert folder.is_dir()
    assert open_blob_store(f"file://localhost{folder}").root == folder.resolve()


@pytest.mark.parametrize(
    "url, message",
    [
        ("s3://bucket/prefix", "unsupported storage URL scheme 's3'"),
        ("gs://bucket", "unsupported storage URL scheme 'gs'"),
        ("/plain/path", "unsupported storage URL scheme '(none)'"),
        ("file:relative/path", "absolute path"),
        ("file://otherhost/srv/blobs", "remote host"),
    ],
)
def test_open_blob_store_rejects_other_urls(url, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_blob_store(url)
