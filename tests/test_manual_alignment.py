"""The manual fallback: a clinician's picked points give the transform, and a new analysis uses it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import select

from tests.conftest import SAMPLES
from tracker.errors import PermissionDenied
from tracker.imaging.geometry import transform_points
from tracker.services import (
    Actor,
    align_manually,
    analyse_photo,
    create_patient,
    ingest_photo,
    open_visit,
)
from tracker.store import Analysis, AuditEvent

CLINICIAN = Actor(username="dr.manual", role="clinician", user_id=4)
VISITS = ("visit-1_2026-01-12", "visit-3_2026-03-09")


@pytest.fixture
def follow_up(store):
    patient = create_patient(store, actor=CLINICIAN, code="M-1", display_name="Manual Case")
    photos = []
    for number, folder in enumerate(VISITS):
        visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1 + 2 * number, 12))
        data = (SAMPLES / "DEMO-001" / folder / "vertex.jpg").read_bytes()
        photos.append(ingest_photo(store, visit.id, data, actor=CLINICIAN, name="vertex.jpg", kind="global",
                                   view_or_site="vertex").photo)
    truth = np.array(json.loads((SAMPLES / "DEMO-001" / VISITS[1] / "vertex.json").read_text())
                     ["transform_to_baseline"])
    return photos, truth


def test_picked_points_give_the_transform_and_a_new_analysis(store, follow_up):
    (baseline, photo), truth = follow_up
    automatic = analyse_photo(store, photo.id, actor=CLINICIAN)
    moving = np.array([[420.0, 310.0], [1180.0, 290.0], [1210.0, 900.0], [400.0, 930.0]])  # e.g. ears, outline
    reference = transform_points(moving, truth)
    manual = align_manually(store, photo.id, actor=CLINICIAN, moving_points=moving.tolist(),
                            reference_points=reference.tolist())
    np.testing.assert_allclose(manual.transform, truth / truth[2, 2], rtol=1e-6, atol=1e-3)
    assert manual.parameters["alignment"] == "manual" and len(manual.parameters["moving_points"]) == 4
    assert manual.quality["alignment"]["ok"] and manual.quality["alignment"]["quality"]["method"] == "manual"
    assert manual.id != automatic.id and manual.baseline_photo_id == baseline.id
    with store.session() as session:
        assert len(session.scalars(select(Analysis).where(Analysis.photo_id == photo.id)).all()) == 2
        actions = [e.action for e in session.scalars(select(AuditEvent))]
    assert "align_manual" in actions


def test_unusable_points_are_refused(store, follow_up):
    (_, photo), _ = follow_up
    with pytest.raises(ValueError):  # collinear
        align_manually(store, photo.id, actor=CLINICIAN, moving_points=[[0, 0], [10, 10], [20, 20]],
                       reference_points=[[0, 0], [10, 10], [20, 20]])
    mirrored = [[100, 100], [500, 120], [480, 600], [90, 580]]
    with pytest.raises(ValueError, match="usable alignment"):
        align_manually(store, photo.id, actor=CLINICIAN, moving_points=mirrored,
                       reference_points=[[1600 - x, y] for x, y in mirrored])


def test_baseline_and_patients_cannot_be_aligned(store, follow_up):
    (baseline, photo), _ = follow_up
    points = [[100, 100], [500, 120], [480, 600], [90, 580]]
    with pytest.raises(ValueError, match="baseline"):
        align_manually(store, baseline.id, actor=CLINICIAN, moving_points=points, reference_points=points)
    with pytest.raises(PermissionDenied):
        align_manually(store, photo.id, actor=Actor(username="p", role="patient", patient_id=1),
                       moving_points=points, reference_points=points)
