"""Isolation and audit in the service layer: a patient reaches only their own records, every way in."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tracker.errors import NotFound, PermissionDenied
from tracker.services import (
    Actor,
    analyse_photo,
    create_patient,
    export_csv,
    get_patient,
    get_visit,
    ingest_photo,
    latest_analysis,
    list_patients,
    list_visits,
    load_pixels,
    open_visit,
    timeline,
)
from tracker.store import AuditEvent
from tracker.store.audit import verify_chain

CLINICIAN = Actor(username="dr.house", role="clinician", user_id=10)
ADMIN = Actor(username="root-admin", role="admin", user_id=11)


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 200, (500, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def clinic(store):
    """Two patients, each with a visit and an analysed close-up."""
    ids = {}
    for number, code in enumerate(("P-A", "P-B")):
        patient = create_patient(store, actor=CLINICIAN, code=code, display_name=f"Person {code}")
        visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 5 + number))
        photo = ingest_photo(store, visit.id, _png(number), actor=CLINICIAN, name="c.png", kind="closeup",
                             view_or_site="vertex-1", px_per_mm=100.0).photo
        analyse_photo(store, photo.id, actor=CLINICIAN)
        ids[code] = {"patient": patient.id, "visit": visit.id, "photo": photo.id}
    return ids


def _patient_actor(ids, code):
    return Actor(username=f"user-{code}", role="patient", user_id=20, patient_id=ids[code]["patient"])


def test_patient_sees_own_records(store, clinic):
    me = _patient_actor(clinic, "P-A")
    assert [p["code"] for p in list_patients(store, actor=me)] == ["P-A"]
    assert get_patient(store, "P-A", actor=me).id == clinic["P-A"]["patient"]
    assert len(list_visits(store, clinic["P-A"]["patient"], actor=me)) == 1
    assert get_visit(store, clinic["P-A"]["visit"], actor=me).id == clinic["P-A"]["visit"]
    assert load_pixels(store, clinic["P-A"]["photo"], actor=me).shape == (500, 640, 3)
    assert latest_analysis(store, clinic["P-A"]["photo"], actor=me) is not None
    assert len(timeline(store, clinic["P-A"]["patient"], actor=me)) == 1
    assert export_csv(store, actor=me).count("P-A") == 1 and "P-B" not in export_csv(store, actor=me)


@pytest.mark.parametrize(
    "attempt",
    [
        lambda s, ids, me: get_patient(s, ids["P-B"]["patient"], actor=me),
        lambda s, ids, me: get_patient(s, "P-B", actor=me),
        lambda s, ids, me: get_patient(s, "P-NOPE", actor=me),
        lambda s, ids, me: list_visits(s, ids["P-B"]["patient"], actor=me),
        lambda s, ids, me: get_visit(s, ids["P-B"]["visit"], actor=me),
        lambda s, ids, me: get_visit(s, 9999, actor=me),
        lambda s, ids, me: load_pixels(s, ids["P-B"]["photo"], actor=me),
        lambda s, ids, me: load_pixels(s, 9999, actor=me),
        lambda s, ids, me: latest_analysis(s, ids["P-B"]["photo"], actor=me),
        lambda s, ids, me: timeline(s, ids["P-B"]["patient"], actor=me),
        lambda s, ids, me: export_csv(s, [ids["P-B"]["patient"]], actor=me),
        lambda s, ids, me: create_patient(s, actor=me, code="P-C", display_name="x"),
        lambda s, ids, me: open_visit(s, ids["P-A"]["patient"], actor=me, visit_date=dt.date(2026, 2, 1)),
        lambda s, ids, me: ingest_photo(s, ids["P-A"]["visit"], _png(5), actor=me, name="x.png", kind="closeup",
                                        view_or_site="vertex-1"),
        lambda s, ids, me: analyse_photo(s, ids["P-A"]["photo"], actor=me),
    ],
)
def test_patient_is_refused_everything_else(store, clinic, attempt):
    me = _patient_actor(clinic, "P-A")
    with pytest.raises(PermissionDenied) as info:
        attempt(store, clinic, me)
    assert "P-B" not in str(info.value) and "Person" not in str(info.value)  # nothing leaks in the message


def test_admin_sees_no_clinical_records(store, clinic):
    with pytest.raises(PermissionDenied):
        list_patients(store, actor=ADMIN)
    with pytest.raises(PermissionDenied):
        timeline(store, clinic["P-A"]["patient"], actor=ADMIN)
    with pytest.raises(PermissionDenied):
        load_pixels(store, clinic["P-A"]["photo"], actor=ADMIN)


def test_clinician_gets_not_found_for_missing_records(store, clinic):
    with pytest.raises(NotFound):
        get_patient(store, "P-NOPE", actor=CLINICIAN)
    with pytest.raises(NotFound):
        load_pixels(store, 9999, actor=CLINICIAN)


def test_patient_actor_needs_a_patient():
    with pytest.raises(ValueError):
        Actor(username="x", role="patient")
    with pytest.raises(ValueError):
        Actor(username="x", role="superuser")


def test_actions_are_audited_in_a_valid_chain(store, clinic):
    me = _patient_actor(clinic, "P-A")
    timeline(store, clinic["P-A"]["patient"], actor=me)
    load_pixels(store, clinic["P-A"]["photo"], actor=me)
    export_csv(store, actor=CLINICIAN)
    with store.session() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        ok, problem = verify_chain(session)
    actions = [(e.username, e.action) for e in events]
    for expected in [("dr.house", "patient_created"), ("dr.house", "visit_created"), ("dr.house", "upload"),
                     ("dr.house", "analyse"), ("user-P-A", "view_timeline"), ("user-P-A", "view_photo"),
                     ("dr.house", "export_csv")]:
        assert expected in actions
    assert ok, problem
