"""Erasure on request and de-identified exports."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from tracker.accounts import create_user
from tracker.errors import PermissionDenied
from tracker.services import (
    Actor,
    analyse_photo,
    create_patient,
    erase_patient,
    export_csv,
    ingest_photo,
    list_patients,
    open_visit,
)
from tracker.store import Analysis, AuditEvent, BaselineCache, Photo, User, Visit
from tracker.store.audit import verify_chain

CLINICIAN = Actor(username="dr.quinn", role="clinician", user_id=3)


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(60, 200, (480, 600, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def two_patients(store):
    ids = {}
    for number, code in enumerate(("E-1", "E-2")):
        patient = create_patient(store, actor=CLINICIAN, code=code, display_name=f"Erin Example {number}")
        for month in (1, 2):
            visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, month, 10 + number))
            photo = ingest_photo(store, visit.id, _png(10 * number + month), actor=CLINICIAN, name="c.png",
                                 kind="closeup", view_or_site="vertex-1", px_per_mm=100.0).photo
            analyse_photo(store, photo.id, actor=CLINICIAN)
        ids[code] = patient.id
    create_user(store, username="erin", role="patient", password="correct horse battery 9",
                patient_id=ids["E-1"], actor=Actor.system("test"))
    return ids


def _keys_of(session, patient_id) -> set[str]:
    photos = set(session.scalars(select(Photo.blob_key).join(Visit).where(Visit.patient_id == patient_id)))
    masks = set(session.scalars(select(Analysis.mask_blob_key).join(Photo, Analysis.photo_id == Photo.id)
                                .join(Visit).where(Visit.patient_id == patient_id)))
    references = set(session.scalars(select(BaselineCache.blob_key).join(Photo, BaselineCache.photo_id == Photo.id)
                                     .join(Visit).where(Visit.patient_id == patient_id)))
    return photos | masks | references


def test_erasure_removes_records_and_images_and_is_audited(store, two_patients):
    with store.session() as session:
        keys_before = set(store.blobs.keys())
        kept_keys = _keys_of(session, two_patients["E-2"])
        only_erased = _keys_of(session, two_patients["E-1"]) - kept_keys
    assert len(only_erased) >= 3  # at least the two photos and the prepared baseline are this patient's own
    counts = erase_patient(store, two_patients["E-1"], actor=CLINICIAN, reason="patient request of 2026-11-20")
    assert counts == {"visits": 2, "photos": 2, "analyses": 2, "blobs_deleted": len(only_erased),
                      "accounts_disabled": 1}
    assert [p["code"] for p in list_patients(store, actor=CLINICIAN)] == ["E-2"]
    with store.session() as session:
        assert session.scalar(select(func.count(Visit.id)).where(Visit.patient_id == two_patients["E-1"])) == 0
        assert session.scalar(select(func.count(Analysis.id))) == 2
        erin = session.scalar(select(User).where(User.username == "erin"))
        assert erin.disabled and erin.patient_id is None
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "patient_erased"))
        assert event.username == "dr.quinn" and event.details["reason"] == "patient request of 2026-11-20"
        assert "Erin" not in str(event.details) and "E-1" not in str(event.details)
        assert verify_chain(session)[0]
    remaining = set(store.blobs.keys())
    assert keys_before - remaining == only_erased and kept_keys <= remaining
    for key in remaining:
        assert store.blobs.verify(key)


def test_erasure_keeps_a_blob_another_patient_uses(store, two_patients):
    with store.session() as session:
        visit_id = session.scalar(select(Visit.id).where(Visit.patient_id == two_patients["E-2"]))
    shared = _png(1)  # the same image as E-1's first photo
    photo = ingest_photo(store, visit_id, shared, actor=CLINICIAN, name="same.png", kind="closeup",
                         view_or_site="vertex-2").photo
    with store.session() as session:
        before = _keys_of(session, two_patients["E-1"]) - _keys_of(session, two_patients["E-2"])
    assert photo.blob_key not in before  # now used by both patients
    counts = erase_patient(store, two_patients["E-1"], actor=CLINICIAN, reason="request")
    assert counts["blobs_deleted"] == len(before)
    assert store.blobs.exists(photo.blob_key)
    with store.session() as session:
        for key in session.scalars(select(Photo.blob_key)):
            assert store.blobs.exists(key)


def test_erasure_needs_a_clinician_and_a_reason(store, two_patients):
    patient_actor = Actor(username="erin", role="patient", patient_id=two_patients["E-1"])
    with pytest.raises(PermissionDenied):
        erase_patient(store, two_patients["E-1"], actor=patient_actor, reason="x")
    with pytest.raises(ValueError, match="reason"):
        erase_patient(store, two_patients["E-1"], actor=CLINICIAN, reason="  ")


def test_deidentified_export(store, two_patients):
    plain = export_csv(store, actor=CLINICIAN).splitlines()
    deid = export_csv(store, actor=CLINICIAN, deidentify=True).splitlines()
    header = deid[0].split(",")
    assert "visit_month" in header and "days_since_first_visit" in header
    for column in ("visit_date", "visit_id", "photo_id", "analysis_id"):
        assert column not in header
    assert "2026-01-10" in "\n".join(plain) and "2026-01-10" not in "\n".join(deid)
    rows = [dict(zip(header, line.split(","), strict=False)) for line in deid[1:]]
    assert [r["days_since_first_visit"] for r in rows if r["patient_code"] == "E-1"] == ["0", "31"]
    assert all(r["visit_month"] in ("2026-01", "2026-02") for r in rows)
    assert "Erin" not in "\n".join(deid) and "Erin" not in "\n".join(plain)
