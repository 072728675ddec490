"""Data model and database: round trips on a real SQLite file, constraints, cascades, pragmas, backup."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from tracker.config import Settings
from tracker.errors import StorageError
from tracker.store import (
    Analysis,
    AuditEvent,
    Correction,
    Patient,
    Photo,
    Store,
    Treatment,
    User,
    Visit,
)
from tracker.store.audit import append_event, verify_chain
from tracker.store.database import backup_sqlite, make_engine, sqlite_path
from tracker.store.models import Base

ALL_MODELS = [Patient, Visit, Treatment, Photo, Analysis, Correction, User, AuditEvent]
TRANSFORM = [[1.0, 0.01, 3.5], [-0.01, 1.0, -2.25], [1e-6, 0.0, 1.0]]


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "home")
    yield s
    s.close()


def _photo(**overrides) -> Photo:
    values = dict(
        kind="closeup",
        view_or_site="vertex-1",
        sha256_original="a" * 64,
        blob_key="b" * 64,
        media_type="image/png",
        width=640,
        height=480,
    )
    values.update(overrides)
    return Photo(**values)


def _populate(store: Store) -> dict[str, int]:
    """One row in every table, linked together; returns their ids."""
    with store.session() as s, s.begin():
        patient = Patient(code="DEMO-001", display_name="Demo Patient", birth_year=1980, sex="F", notes="n")
        visit = Visit(visit_date=dt.date(2026, 3, 14), session_number=2, notes="second session")
        visit.treatments.append(Treatment(type="prp", product="Kit A", dose="4 ml", notes="vertex"))
        baseline = _photo(kind="global", view_or_site="vertex", px_per_mm=None)
        photo = _photo(
            captured_at=dt.datetime(2026, 3, 14, 9, 30, 15, 123456, tzinfo=dt.UTC),
            px_per_mm=42.5,
            scale_source="fiducial",
        )
        visit.photos.extend([baseline, photo])
        patient.visits.append(visit)
        s.add(patient)
        user = User(username="dr.who", role="clinician", password_hash="$argon2id$x")
        patient_user = User(username="demo", role="patient", patient=patient, external_identity="oidc|1")
        s.add_all([user, patient_user])
        s.flush()
        analysis = Analysis(
            photo=photo,
            pipeline_version="0.1.0",
            parameters={"vellus_um": 30, "terminal_um": 60},
            metrics={"hair_count": 57, "density_per_cm2": 181.2, "vellus_fraction": None},
            uncertainty={"hair_count": 3.1},
            quality={"ok": True},
            transform=TRANSFORM,
            baseline_photo_id=baseline.id,
            mask_blob_key="c" * 64,
        )
        s.add(analysis)
        s.flush()
        s.add(Correction(analysis=analysis, user_id=user.id, added=[[10, 20]], removed=[[5, 6], [7, 8]],
                         metrics={"hair_count": 58}, notes="missed one"))
        event = append_event(s, action="photo.upload", username="dr.who", user_id=user.id,
                             object_type="photo", object_id=str(photo.id), details={"bytes": 1234})
        s.flush()
        return {"patient": patient.id, "visit": visit.id, "photo": photo.id, "baseline": baseline.id,
                "analysis": analysis.id, "user": user.id, "patient_user": patient_user.id, "event": event.id}


def _count(store: Store, model) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_round_trip_every_table_through_a_reopened_file(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as first:
        ids = _populate(first)
    assert (home / "tracker.db").is_file()
    with Store.open(home) as store, store.session() as s:
        patient = s.get(Patient, ids["patient"])
        assert (patient.code, patient.display_name, patient.birth_year, patient.sex, patient.notes) == (
            "DEMO-001", "Demo Patient", 1980, "F", "n")
        (visit,) = patient.visits
        assert (visit.visit_date, visit.session_number, visit.notes) == (dt.date(2026, 3, 14), 2, "second session")
        (treatment,) = visit.treatments
        assert (treatment.type, treatment.product, treatment.dose, treatment.notes) == ("prp", "Kit A", "4 ml",
                                                                                       "vertex")
        assert [p.id for p in visit.photos] == [ids["baseline"], ids["photo"]]
        photo = s.get(Photo, ids["photo"])
        assert photo.captured_at == dt.datetime(2026, 3, 14, 9, 30, 15, 123456, tzinfo=dt.UTC)
        assert (photo.px_per_mm, photo.scale_source) == (42.5, "fiducial")
        assert (photo.width, photo.height, photo.media_type, photo.blob_key) == (640, 480, "image/png", "b" * 64)
        (analysis,) = photo.analyses
        assert analysis.transform == TRANSFORM
        assert analysis.metrics == {"hair_count": 57, "density_per_cm2": 181.2, "vellus_fraction": None}
        assert analysis.parameters == {"vellus_um": 30, "terminal_um": 60}
        assert (analysis.uncertainty, analysis.quality) == ({"hair_count": 3.1}, {"ok": True})
        assert (analysis.baseline_photo_id, analysis.mask_blob_key) == (ids["baseline"], "c" * 64)
        (correction,) = analysis.corrections
        assert (correction.added, correction.removed) == ([[10, 20]], [[5, 6], [7, 8]])
        assert (correction.user_id, correction.metrics, correction.notes) == (ids["user"], {"hair_count": 58},
                                                                              "missed one")
        user = s.get(User, ids["patient_user"])
        assert (user.role, user.patient.id, user.external_identity) == ("patient", ids["patient"], "oidc|1")
        assert (user.failed_logins, user.disabled, user.locked_until, user.password_hash) == (0, False, None,
                                                                                            None)
        event = s.get(AuditEvent, ids["event"])
        assert (event.action, event.object_id, event.details, event.prev_hash) == (
            "photo.upload", str(ids["photo"]), {"bytes": 1234}, "0" * 64)
        assert verify_chain(s) == (True, None)
        for model in (Patient, Visit, Photo, Analysis, Correction, User):
            row = s.scalars(select(model)).first()
            assert row.created_at.tzinfo == dt.UTC
        assert event.at.tzinfo == dt.UTC


def test_schema_creation_is_idempotent(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        _populate(store)
    with Store.open(home) as store:  # create_all again on an existing schema keeps the rows
        assert _count(store, Patient) == 1
        assert set(Base.metadata.tables) <= set(
            store.engine.connect().execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars())


@pytest.mark.parametrize(
    "pragma, expected",
    [("journal_mode", "wal"), ("foreign_keys", 1), ("synchronous", 2), ("busy_timeout", 5000)],
)
def test_sqlite_pragmas_are_on_for_every_connection(store, pragma, expected):
    with store.engine.connect() as c1, store.engine.connect() as c2:  # two pooled connections
        assert c1.exec_driver_sql(f"PRAGMA {pragma}").scalar() == expected
        assert c2.exec_driver_sql(f"PRAGMA {pragma}").scalar() == expected


def test_make_engine_creates_the_folder_of_a_file_database(tmp_path):
    db = tmp_path / "a" / "b" / "t.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
    assert db.is_file()
    assert sqlite_path(f"sqlite:///{db}") == db
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql+psycopg://u@h/db") is None


@pytest.mark.parametrize("url", ["", "   ", None])
def test_make_engine_rejects_empty_urls(url):
    with pytest.raises(ValueError):
        make_engine(url)


def test_make_engine_passes_other_urls_through():
    pytest.importorskip("psycopg")
    engine = make_engine("postgresql+psycopg://user@localhost/tracker")
    assert engine.dialect.name == "postgresql"
    assert engine.url.render_as_string(hide_password=False) == "postgresql+psycopg://user@localhost/tracker"


def test_foreign_keys_are_enforced(store):
    with store.session() as s, pytest.raises(IntegrityError), s.begin():
        s.add(_photo(visit_id=999))
    with store.session() as s, pytest.raises(IntegrityError), s.begin():
        s.add(Visit(patient_id=12345, visit_date=dt.date(2026, 1, 1)))
    assert _count(store, Photo) == 0
    assert _count(store, Visit) == 0


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_deleting_a_patient_cascades_and_sets_null(store, how):
    ids = _populate(store)
    with store.session() as s, s.begin():
        if how == "orm":
            s.delete(s.get(Patient, ids["patient"]))
        else:  # the database's own ON DELETE rules, without the ORM's help
            s.execute(text("DELETE FROM patients WHERE id = :id"), {"id": ids["patient"]})
    for model in (Patient, Visit, Treatment, Photo, Analysis, Correction):
        assert _count(store, model) == 0, model.__name__
    with store.session() as s:
        patient_user = s.get(User, ids["patient_user"])
        assert patient_user is not None and patient_user.patient_id is None  # account kept, link cleared
    assert _count(store, AuditEvent) == 1  # the audit log is untouched


def test_deleting_referenced_rows_sets_null(store):
    ids = _populate(store)
    with store.session() as s, s.begin():
        s.execute(text("DELETE FROM photos WHERE id = :id"), {"id": ids["baseline"]})
        s.execute(text("DELETE FROM users WHERE id = :id"), {"id": ids["user"]})
    with store.session() as s:
        analysis = s.get(Analysis, ids["analysis"])
        assert analysis.baseline_photo_id is None
        assert analysis.corrections[0].user_id is None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _photo(kind="macro"), id="photo.kind"),
        pytest.param(lambda: _photo(kind="GLOBAL"), id="photo.kind-case"),
        pytest.param(lambda: _photo(scale_source="guess", px_per_mm=3.0), id="photo.scale_source"),
        pytest.param(lambda: User(username="x", role="superuser"), id="user.role"),
        pytest.param(lambda: Patient(code="P-9", display_name="x", sex="Q"), id="patient.sex"),
        pytest.param(lambda: Treatment(type="laser"), id="treatment.type"),
    ],
)
def test_check_constraints_reject_bad_values(store, make):
    ids = _populate(store)
    row = make()
    if isinstance(row, Photo | Treatment):
        row.visit_id = ids["visit"]
    with store.session() as s, pytest.raises(IntegrityError, match="CHECK constraint failed"), s.begin():
        s.add(row)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 5, 1, 12, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 5, 1, 17, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
    ],
)
def test_datetimes_round_trip_as_aware_utc(store, value):
    ids = _populate(store)
    with store.session() as s, s.begin():
        s.get(User, ids["user"]).locked_until = value
    with store.session() as s:
        got = s.get(User, ids["user"]).locked_until
        assert got == value  # same instant
        assert got.tzinfo == dt.UTC
        assert got.utcoffset() == dt.timedelta(0)
        assert got - value == dt.timedelta(0)  # aware minus aware: no naive/aware mix
        # The instant is stored as UTC text, so SQL ordering by time is correct across offsets.
        raw = s.execute(text("SELECT locked_until FROM users WHERE id = :id"), {"id": ids["user"]}).scalar()
        assert raw.startswith(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"))


def test_naive_datetimes_are_refused(store):
    ids = _populate(store)
    with store.session() as s:
        s.get(User, ids["user"]).locked_until = dt.datetime(2026, 1, 1, 12, 0)
        with pytest.raises(StatementError) as info:
            s.commit()
        assert isinstance(info.value.orig, ValueError)
        assert "naive" in str(info.value.orig)


def test_analyses_are_appended_never_overwritten(store):
    ids = _populate(store)
    with store.session() as s, s.begin():
        s.add(Analysis(photo_id=ids["photo"], pipeline_version="0.2.0", parameters={"vellus_um": 30},
                       metrics={"hair_count": 60}, quality={}))
    with store.session() as s:
        photo = s.get(Photo, ids["photo"])
        assert [(a.pipeline_version, a.metrics["hair_count"]) for a in photo.analyses] == [
            ("0.1.0", 57), ("0.2.0", 60)]
        first = photo.analyses[0]
        first.metrics = {"hair_count": 0}
        with pytest.raises(StorageError, match="append-only"):
            s.commit()
        s.rollback()
    with store.session() as s:
        assert s.get(Analysis, ids["analysis"]).metrics["hair_count"] == 57


def test_adding_a_correction_through_the_relationship_is_not_an_update(store):
    ids = _populate(store)
    with store.session() as s, s.begin():
        analysis = s.get(Analysis, ids["analysis"])
        analysis.corrections.append(Correction(metrics={"hair_count": 59}))
    with store.session() as s:
        assert [c.metrics["hair_count"] for c in s.get(Analysis, ids["analysis"]).corrections] == [58, 59]


@pytest.mark.parametrize("column, value", [("code", "DEMO-001"), ("username", "dr.who")])
def test_unique_columns(store, column, value):
    _populate(store)
    row = Patient(code=value, display_name="dup") if column == "code" else User(username=value, role="admin")
    with store.session() as s, pytest.raises(IntegrityError, match="UNIQUE"), s.begin():
        s.add(row)


def _dump(db_path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db_path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in Base.metadata.tables}
    finally:
        con.close()


def test_backup_produces_identical_rows(store, tmp_path):
    _populate(store)
    with store.session() as s, s.begin():
        append_event(s, action="backup", username="admin")
    target = tmp_path / "backups" / "tracker-backup.db"
    # An open read transaction on another connection does not stop the online backup.
    with store.engine.connect() as reader:
        reader.exec_driver_sql("SELECT count(*) FROM patients").scalar()
        backup_sqlite(store.engine, target)
    original, copy = _dump(store.settings.home / "tracker.db"), _dump(target)
    assert copy == original
    assert sum(len(rows) for rows in copy.values()) == 11
    assert not list(target.parent.glob(".*tmp*"))
    # The copy is a complete, standalone database that opens as a store.
    settings = Settings(home=tmp_path / "restored", database_url=f"sqlite:///{target}",
                        storage_url=(tmp_path / "restored" / "blobs").as_uri())
    with Store(settings) as restored, restored.session() as s:
        assert verify_chain(s) == (True, None)
        assert s.scalars(select(Patient.code)).all() == ["DEMO-001"]


def test_backup_refuses_to_overwrite_the_live_database(store):
    with pytest.raises(ValueError, match="live database"):
        backup_sqlite(store.engine, store.settings.home / "tracker.db")


def test_store_session_does_not_expire_on_commit(store):
    with store.session() as s, s.begin():
        patient = Patient(code="P-1", display_name="One")
        s.add(patient)
    assert patient.code == "P-1" and patient.id is not None  # readable after commit and close
