"""Use cases on a real SQLite store and blob folder: patients, visits, ingest, analysis, timeline."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from tracker.errors import ImageRejected, NotFound
from tracker.phantoms.closeup import render_closeup
from tracker.services import (
    Actor,
    TreatmentInput,
    analyse_photo,
    create_patient,
    export_csv,
    get_patient,
    get_visit,
    ingest_photo,
    list_patients,
    list_visits,
    open_visit,
    timeline,
)
from tracker.store import Analysis, Photo

CLINICIAN = Actor(username="dr.who", role="clinician", user_id=1)


def _jpeg(pixels: np.ndarray, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92, **save_args)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def closeups():
    """Two re-shots of the same small phantom scalp patch (the second with more hairs)."""
    first, _, truth1 = render_closeup(seed=5, density_per_cm2=150, px_per_mm=120, shape=(480, 600))
    second, _, truth2 = render_closeup(seed=5, density_per_cm2=180, px_per_mm=120, shape=(480, 600))
    return (first, truth1), (second, truth2)


def _patient_with_visit(store, code="P-1", date=dt.date(2026, 1, 10), session=1):
    patient = create_patient(store, actor=CLINICIAN, code=code, display_name="Test Person", birth_year=1980, sex="F")
    visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=date, session_number=session,
                       treatments=[TreatmentInput(type="mesotherapy", product="cocktail A", dose="2 ml")])
    return patient, visit


def test_create_and_find_patients(store):
    patient = create_patient(store, actor=CLINICIAN, code="P-7", display_name="Ana B", birth_year=1990, sex="F")
    assert get_patient(store, "P-7", actor=CLINICIAN).id == patient.id
    assert get_patient(store, patient.id, actor=CLINICIAN).display_name == "Ana B"
    listed = list_patients(store, actor=CLINICIAN)
    assert listed[0]["code"] == "P-7" and listed[0]["visits"] == 0 and listed[0]["last_visit"] is None
    assert list_patients(store, actor=CLINICIAN, search="ana")[0]["code"] == "P-7"
    assert list_patients(store, actor=CLINICIAN, search="nobody") == []
    with pytest.raises(NotFound):
        get_patient(store, "P-404", actor=CLINICIAN)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code": "", "display_name": "x"}, "code"),
        ({"code": "A" * 33, "display_name": "x"}, "code"),
        ({"code": "P-2", "display_name": "  "}, "display name"),
        ({"code": "P-2", "display_name": "x", "sex": "Q"}, "sex"),
        ({"code": "P-2", "display_name": "x", "birth_year": 1800}, "birth year"),
    ],
)
def test_create_patient_rejects_bad_input(store, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_patient(store, actor=CLINICIAN, **kwargs)


def test_duplicate_patient_code_is_refused(store):
    create_patient(store, actor=CLINICIAN, code="P-1", display_name="One")
    with pytest.raises(ValueError, match="already exists"):
        create_patient(store, actor=CLINICIAN, code="P-1", display_name="Other")


def test_visits_with_treatments_in_date_order(store):
    patient, _ = _patient_with_visit(store, date=dt.date(2026, 3, 1), session=2)
    open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 1), session_number=1)
    visits = list_visits(store, patient.id, actor=CLINICIAN)
    assert [v.visit_date for v in visits] == [dt.date(2026, 1, 1), dt.date(2026, 3, 1)]
    assert visits[1].treatments[0].product == "cocktail A"
    assert list_patients(store, actor=CLINICIAN)[0]["last_visit"] == dt.date(2026, 3, 1)
    with pytest.raises(NotFound):
        get_visit(store, 999, actor=CLINICIAN)
    with pytest.raises(NotFound):
        open_visit(store, 999, actor=CLINICIAN, visit_date=dt.date(2026, 1, 1))
    with pytest.raises(ValueError, match="treatment type"):
        TreatmentInput(type="magic")


def test_ingest_strips_metadata_and_recognises_reuploads(store, closeups):
    (pixels, _), _ = closeups
    _, visit = _patient_with_visit(store)
    exif = Image.Exif()
    exif[0x010F] = "DermoCam"  # Make
    exif[0x8769] = {0xA431: "SERIAL-12345", 0x9003: "2026:01:10 09:30:00"}  # BodySerialNumber, DateTimeOriginal
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS latitude
    data = _jpeg(pixels, exif=exif, comment=b"patient John Doe")
    first = ingest_photo(store, visit.id, data, actor=CLINICIAN, name="site.jpg", kind="closeup",
                         view_or_site="vertex-1", px_per_mm=120.0, scale_source="device")
    assert not first.duplicate
    stored = store.blobs.get(first.photo.blob_key)
    for secret in (b"SERIAL-12345", b"DermoCam", b"John Doe", b"2026:01:10", b"Exif"):
        assert secret not in stored
    assert first.photo.captured_at == dt.datetime(2026, 1, 10, 9, 30, tzinfo=dt.UTC)
    assert (first.photo.width, first.photo.height) == (600, 480)
    again = ingest_photo(store, visit.id, data, actor=CLINICIAN, name="copy.jpg", kind="closeup",
                         view_or_site="vertex-1")
    assert again.duplicate and again.photo.id == first.photo.id
    with store.session() as session:
        assert session.scalar(select(func.count(Photo.id))) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "PDF"), (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "")],
)
def test_bad_upload_is_rejected_and_nothing_is_stored(store, data, reason):
    _, visit = _patient_with_visit(store)
    with pytest.raises(ImageRejected, match=f"scan.jpg: .*{reason}"):
        ingest_photo(store, visit.id, data, actor=CLINICIAN, name="scan.jpg", kind="closeup", view_or_site="vertex-1")
    with store.session() as session:
        assert session.scalar(select(func.count(Photo.id))) == 0
    assert list(store.blobs.keys()) == []


@pytest.mark.parametrize(
    ("kind", "view", "message"),
    [("global", "nape", "unknown global view"), ("closeup", "Vertex 1", "site"), ("xray", "vertex", "kind")],
)
def test_ingest_rejects_bad_view(store, kind, view, message):
    _, visit = _patient_with_visit(store)
    with pytest.raises(ValueError, match=message):
        ingest_photo(store, visit.id, b"unused", actor=CLINICIAN, name="a.jpg", kind=kind, view_or_site=view)


def test_analysis_aligns_follow_up_and_appends_history(store, closeups):
    (first_px, truth1), (second_px, truth2) = closeups
    patient, visit1 = _patient_with_visit(store)
    visit2 = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 2, 10), session_number=2)
    photo1 = ingest_photo(store, visit1.id, _jpeg(first_px), actor=CLINICIAN, name="a.jpg", kind="closeup",
                          view_or_site="vertex-1", px_per_mm=120.0).photo
    photo2 = ingest_photo(store, visit2.id, _jpeg(second_px), actor=CLINICIAN, name="b.jpg", kind="closeup",
                          view_or_site="vertex-1", px_per_mm=120.0).photo
    base = analyse_photo(store, photo1.id, actor=CLINICIAN)
    follow = analyse_photo(store, photo2.id, actor=CLINICIAN)
    assert base.baseline_photo_id == photo1.id
    np.testing.assert_allclose(base.transform, np.eye(3))
    assert follow.baseline_photo_id == photo1.id
    assert follow.transform is not None and len(follow.transform) == 3
    assert follow.metrics["hair_count"] > 0 and follow.metrics["density_per_cm2"] > 0
    assert follow.uncertainty["density_per_cm2_sd"] > 0
    assert store.blobs.exists(follow.mask_blob_key)
    again = analyse_photo(store, photo2.id, actor=CLINICIAN)
    assert again.id != follow.id
    with store.session() as session:
        assert session.scalar(select(func.count(Analysis.id)).where(Analysis.photo_id == photo2.id)) == 2
    frame = timeline(store, patient.id, actor=CLINICIAN)
    assert len(frame) == 2  # newest analysis per photo only
    assert list(frame["analysis_id"]) == [base.id, again.id]
    assert frame.iloc[0]["change_from_baseline_pct"] == pytest.approx(0.0)
    assert frame.iloc[0]["treatments"] == "mesotherapy (cocktail A, 2 ml)"
    csv_text = export_csv(store, actor=CLINICIAN)
    assert csv_text.splitlines()[0].startswith("patient_code,visit_id,visit_date")
    assert len(csv_text.strip().splitlines()) == 3


def test_analysis_of_missing_photo(store):
    with pytest.raises(NotFound):
        analyse_photo(store, 12345, actor=CLINICIAN)
