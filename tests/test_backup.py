"""Backup, verified restore and scrub of the embedded store (tracker.store.backup, tracker.cli_storage).

The central proof (issue 6): back up a store, corrupt one blob AND the database of the live store,
restore: every table's rows and every blob are byte-identical to what was backed up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tracker.config import Settings
from tracker.errors import StorageError
from tracker.imaging.decode import encode_clean
from tracker.services import Actor, TreatmentInput, analyse_photo, create_patient, ingest_photo, open_visit
from tracker.store import Store, User
from tracker.store.audit import chain_head, verify_chain
from tracker.store.backup import backup_store, verify_backup
from tracker.store.restore import restore_store
from tracker.store.scrub import BlobReference, scrub_store

ACTOR = Actor.system("test")


def _picture(seed: int, shape: tuple[int, int] = (96, 128)) -> bytes:
    """A small PNG with dark hair-like strokes on skin tones (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    img = np.full((*shape, 3), (190, 150, 130), np.uint8)
    img += rng.integers(0, 12, img.shape, dtype=np.uint8)
    for _ in range(12):
        r, c = int(rng.integers(5, shape[0] - 20)), int(rng.integers(0, shape[1] - 3))
        img[r : r + 18, c : c + 2] = (40, 30, 25)
    data, _ = encode_clean(img, lossy=False)
    return data


def _populate(store: Store) -> dict:
    """Two patients, visits with treatments, three photos, one analysis (with its mask blob), a user."""
    p1 = create_patient(store, actor=ACTOR, code="P-001", display_name="Ann Example", birth_year=1980, sex="F")
    p2 = create_patient(store, actor=ACTOR, code="P-002", display_name="Bob Example")
    v1 = open_visit(store, p1.id, actor=ACTOR, visit_date=dt.date(2024, 1, 5), session_number=1,
                    treatments=[TreatmentInput("prp", product="kit A", dose="4 ml")])
    v2 = open_visit(store, p2.id, actor=ACTOR, visit_date=dt.date(2024, 2, 6))
    photos = [
        ingest_photo(store, v1.id, _picture(1), actor=ACTOR, name="a.png", kind="closeup",
                     view_or_site="vertex-1", px_per_mm=40.0).photo,
        ingest_photo(store, v1.id, _picture(2), actor=ACTOR, name="b.png", kind="closeup",
                     view_or_site="vertex-2", px_per_mm=40.0).photo,
        ingest_photo(store, v2.id, _picture(3), actor=ACTOR, name="c.png", kind="closeup",
                     view_or_site="vertex-1").photo,
    ]
    analysis = analyse_photo(store, photos[0].id, actor=ACTOR)
    with store.session() as s, s.begin():
        s.add(User(username="dr.who", role="clinician", password_hash=None))
    return {"photos": photos, "analysis": analysis}


def _dump(home: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the store's database, read with sqlite3 (no ORM conversions)."""
    conn = sqlite3.connect(f"file:{home / 'tracker.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        conn.close()


def _blob_bytes(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (home / "blobs").rglob("*") if p.is_file()}


def _flip_byte(path: Path, index: int) -> None:
    os.chmod(path, 0o600)
    raw = bytearray(path.read_bytes())
    raw[index] ^= 0xFF
    path.write_bytes(bytes(raw))


def _db_ok(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    home = tmp_path_factory.mktemp("template") / "home"
    with Store(Settings.from_env(home)) as store:
        facts = _populate(store)
    return home, facts


@pytest.fixture
def populated(_template, tmp_path):
    """(home, facts) of a closed store holding real data (a fresh copy of one built per module)."""
    template, facts = _template
    home = tmp_path / "home"
    shutil.copytree(template, home)
    return home, facts


def test_backup_corrupt_blob_and_database_then_restore_gives_identical_data(populated, tmp_path):
    home, facts = populated
    rows_before, blobs_before = _dump(home), _blob_bytes(home)
    assert len(blobs_before) == 5  # three photos, one mask and the analysed baseline's prepared reference
    assert len(rows_before["photos"]) == 3 and len(rows_before["analyses"]) == 1
    with Store(Settings.from_env(home)) as store:
        manifest = backup_store(store, tmp_path / "backup")
    assert sorted(manifest.blobs) == sorted(blobs_before)
    assert manifest.table_rows["photos"] == 3
    assert manifest.table_rows["audit_events"] == len(rows_before["audit_events"])
    assert verify_backup(tmp_path / "backup").ok

    # Damage the live store: one photo blob and the database file itself.
    victim = facts["photos"][1].blob_key
    _flip_byte(home / "blobs" / victim[:2] / victim[2:4] / victim, 100)
    with Store(Settings.from_env(home)) as store:
        report = scrub_store(store)
    assert report.corrupt == (victim,) and report.missing == () and not report.ok
    assert report.referenced_by[victim] == (BlobReference("photos", "blob_key", facts["photos"][1].id, victim),)
    db = home / "tracker.db"
    assert not (home / "tracker.db-wal").exists()
    raw = bytearray(db.read_bytes())
    raw[4096 : 4096 * 3] = bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8))
    db.write_bytes(bytes(raw))
    assert not _db_ok(db)

    result = restore_store(tmp_path / "backup", home, force=True)
    assert result.home == home.resolve() and result.blobs == 5
    assert _dump(home) == rows_before
    assert _blob_bytes(home) == blobs_before
    assert result.replaced is not None and (result.replaced / "tracker.db").read_bytes() == bytes(raw)
    with Store(Settings.from_env(home)) as store:
        assert scrub_store(store).ok
        with store.session() as s:
            assert verify_chain(s) == (True, None)


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "empty-folder"])
def test_restore_into_new_or_empty_home(populated, tmp_path, existing):
    home, _ = populated
    with Store(Settings.from_env(home)) as store:
        backup_store(store, tmp_path / "backup")
    target = tmp_path / "elsewhere" / "home2"
    if existing:
        target.mkdir(parents=True)
    result = restore_store(tmp_path / "backup", target)
    assert result.replaced is None
    assert _dump(target) == _dump(home) and _blob_bytes(target) == _blob_bytes(home)
    assert _siblings(target) == []  # no staging folder left beside it


def test_audit_events_record_backup_and_restore_and_chain_head_is_anchored(populated, tmp_path):
    home, _ = populated
    with Store(Settings.from_env(home)) as store:
        manifest = backup_store(store, tmp_path / "backup", username="cli:admin")
        with store.session() as s:
            live_head = chain_head(s)
    assert manifest.audit["head"] == live_head and manifest.audit["chain_ok"]
    backed_up = _dump(tmp_path / "backup")["audit_events"]
    assert backed_up[-1][4] == "backup"  # the backup event is inside the copy
    restore_store(tmp_path / "backup", tmp_path / "restored", username="cli:admin")
    with Store(Settings.from_env(tmp_path / "restored")) as store, store.session() as s:
        assert verify_chain(s) == (True, None)
        events = _dump(tmp_path / "restored")["audit_events"]
    assert events[:-1] == backed_up and events[-1][4] == "restore"


def _tamper_blob(root: Path) -> None:
    _flip_byte(next(p for p in (root / "blobs").rglob("*") if p.is_file()), 10)


def _tamper_db(root: Path) -> None:
    _flip_byte(root / "tracker.db", 5000)


def _delete_blob(root: Path) -> None:
    next(p for p in (root / "blobs").rglob("*") if p.is_file()).unlink()


def _extra_file(root: Path) -> None:
    (root / "blobs" / "notes.txt").write_text("x")


def _edit_manifest(root: Path, change) -> None:
    path = root / "manifest.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def _forge_head(root: Path) -> None:
    _edit_manifest(root, lambda m: m["audit"].update(head="f" * 64))


def _forge_db_hash(root: Path) -> None:
    _edit_manifest(root, lambda m: m["files"]["tracker.db"].update(sha256="0" * 64))


def _drop_manifest(root: Path) -> None:
    (root / "manifest.json").unlink()


def _truncate_db(root: Path) -> None:
    db = root / "tracker.db"
    db.write_bytes(db.read_bytes()[:8192])


@pytest.mark.parametrize(
    ("tamper", "phrase"),
    [
        (_tamper_blob, "content does not match"),
        (_tamper_db, "tracker.db: content does not match"),
        (_delete_blob, "missing"),
        (_extra_file, "not listed in the manifest"),
        (_forge_head, "audit chain head"),
        (_forge_db_hash, "tracker.db: content does not match"),
        (_drop_manifest, "not a tracker backup"),
        (_truncate_db, "tracker.db"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "",
)
def test_damaged_backup_fails_verification_and_restore_touches_nothing(populated, tmp_path, tamper, phrase):
    home, _ = populated
    with Store(Settings.from_env(home)) as store:
        backup_store(store, tmp_path / "backup")
    tamper(tmp_path / "backup")
    check = verify_backup(tmp_path / "backup")
    assert not check.ok
    assert any(phrase in p for p in check.problems), check.problems
    rows, blobs, before = _dump(home), _blob_bytes(home), _siblings(home)
    with pytest.raises(StorageError, match="failed verification"):
        restore_store(tmp_path / "backup", home, force=True)
    assert _dump(home) == rows and _blob_bytes(home) == blobs
    assert _siblings(home) == before  # no staging or replaced folder


def test_restore_refuses_a_non_empty_home_without_force(populated, tmp_path):
    home, _ = populated
    with Store(Settings.from_env(home)) as store:
        backup_store(store, tmp_path / "backup")
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        restore_store(tmp_path / "backup", other)
    assert [p.name for p in other.iterdir()] == ["keep.txt"] and _siblings(other) == sorted(["backup", "home"])


def test_backup_refuses_non_empty_target_and_corrupt_store(populated, tmp_path):
    home, facts = populated
    target = tmp_path / "backup"
    target.mkdir()
    (target / "old").write_text("x")
    with Store(Settings.from_env(home)) as store, pytest.raises(ValueError, match="not empty"):
        backup_store(store, target)
    key = facts["analysis"].mask_blob_key
    _flip_byte(home / "blobs" / key[:2] / key[2:4] / key, 3)
    with Store(Settings.from_env(home)) as store, pytest.raises(StorageError, match="1 corrupt blob"):
        backup_store(store, tmp_path / "backup2")
    assert not (tmp_path / "backup2").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "home"]  # no staging left


def test_scrub_reports_rows_naming_missing_blobs(populated):
    home, facts = populated
    for key in (facts["photos"][2].blob_key, facts["analysis"].mask_blob_key):
        (home / "blobs" / key[:2] / key[2:4] / key).unlink()
    with Store(Settings.from_env(home)) as store:
        report = scrub_store(store)
    assert report.corrupt == () and report.checked == 3
    assert set(report.missing) == {
        BlobReference("photos", "blob_key", facts["photos"][2].id, facts["photos"][2].blob_key),
        BlobReference("analyses", "mask_blob_key", facts["analysis"].id, facts["analysis"].mask_blob_key),
    }


# ---------------------------------------------------------------------------------------------- CLI
def _run(argv: list[str]) -> int:
    from tracker.cli_storage import register

    parser = argparse.ArgumentParser(prog="tracker")
    register(parser.add_subparsers(dest="command", required=True), "store folder")
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_backup_scrub_restore_end_to_end(populated, tmp_path, capsys):
    home, facts = populated
    rows, blobs = _dump(home), _blob_bytes(home)
    assert _run(["scrub", "--home", str(home)]) == 0
    assert "scrub ok: 5 blobs verified" in capsys.readouterr().out

    assert _run(["backup", str(tmp_path / "bk"), "--home", str(home)]) == 0
    assert "5 blobs" in capsys.readouterr().out
    assert verify_backup(tmp_path / "bk").ok

    key = facts["photos"][0].blob_key
    _flip_byte(home / "blobs" / key[:2] / key[2:4] / key, 50)
    assert _run(["scrub", "--home", str(home)]) == 1
    out, err = capsys.readouterr()
    assert f"corrupt blob {key}" in out and f"photos id={facts['photos'][0].id}" in out
    assert err.count("\n") == 1 and err.startswith("tracker: scrub found 1 corrupt blob")

    assert _run(["restore", str(tmp_path / "bk"), "--home", str(home)]) == 1  # not empty, no --force
    out, err = capsys.readouterr()
    assert "--force" in err and err.count("\n") == 1 and "Traceback" not in err
    assert _run(["restore", str(tmp_path / "bk"), "--home", str(home), "--force"]) == 0
    assert "the replaced store is kept in" in capsys.readouterr().out
    restored = _dump(home)
    assert restored["audit_events"][-1][4] == "restore"
    assert {k: v for k, v in restored.items() if k != "audit_events"} == {
        k: v for k, v in rows.items() if k != "audit_events"}
    assert _blob_bytes(home) == blobs
    assert _run(["scrub", "--home", str(home)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv_tail",
    [["backup", "{tmp}/home"], ["restore", "{tmp}/nowhere"], ["restore", "{tmp}/home"]],
    ids=["backup-into-non-empty", "restore-missing-backup", "restore-non-backup"],
)
def test_cli_errors_are_one_line(populated, tmp_path, capsys, argv_tail):
    home, _ = populated
    argv = [a.format(tmp=tmp_path) for a in argv_tail] + ["--home", str(tmp_path / "target")]
    if argv[0] == "backup":
        argv[-1] = str(home)
    assert _run(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tracker: ") and err.count("\n") == 1
    assert not (tmp_path / "target").exists() or not any((tmp_path / "target").iterdir())
    shutil.rmtree(tmp_path / "target", ignore_errors=True)
