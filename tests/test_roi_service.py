"""Setting the region of interest of a global view: the baseline's ROI reaches every follow-up."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sqlalchemy import select

from tests.conftest import SAMPLES
from tracker.errors import PermissionDenied
from tracker.imaging.geometry import transform_points
from tracker.imaging.roi import carry_roi, default_roi, polygon_mask
from tracker.pipeline import analyse_global
from tracker.services import (
    Actor,
    align_manually,
    analyse_photo,
    create_patient,
    current_roi,
    ingest_photo,
    load_pixels,
    open_visit,
    set_roi,
)
from tracker.store import Analysis, AuditEvent

CLINICIAN = Actor(username="dr.roi", role="clinician")
VISITS = ("visit-1_2026-01-12", "visit-2_2026-02-09")
BASE_ROI = [[600.0, 400.0], [1000.0, 380.0], [1050.0, 800.0], [620.0, 820.0]]


@pytest.fixture
def series(store):
    """Baseline and one follow-up vertex photo, both analysed, and the follow-up's true transform."""
    patient = create_patient(store, actor=CLINICIAN, code="R-1", display_name="Roi Case")
    photos = []
    for number, folder in enumerate(VISITS):
        visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1 + number, 12))
        data = (SAMPLES / "DEMO-001" / folder / "vertex.jpg").read_bytes()
        photo = ingest_photo(store, visit.id, data, actor=CLINICIAN, name="vertex.jpg", kind="global",
                             view_or_site="vertex").photo
        analyse_photo(store, photo.id, actor=CLINICIAN)
        photos.append(photo)
    truth = np.array(json.loads((SAMPLES / "DEMO-001" / VISITS[1] / "vertex.json").read_text())
                     ["transform_to_baseline"])
    return photos, truth


@pytest.fixture
def unanalysed(store):
    """One vertex photo, not analysed (validation happens before any analysis)."""
    patient = create_patient(store, actor=CLINICIAN, code="R-2", display_name="Roi Check")
    visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 12))
    data = (SAMPLES / "DEMO-001" / VISITS[0] / "vertex.jpg").read_bytes()
    return ingest_photo(store, visit.id, data, actor=CLINICIAN, name="vertex.jpg", kind="global",
                        view_or_site="vertex").photo


def _analyses(store, photo_id):
    with store.session() as session:
        return session.scalars(select(Analysis).where(Analysis.photo_id == photo_id).order_by(Analysis.id)).all()


def _truth(folder: str) -> dict:
    return json.loads((SAMPLES / "DEMO-001" / folder / "vertex.json").read_text())


def test_baseline_roi_is_carried_to_the_follow_up(store, series):
    (baseline, follow_up), truth = series
    drawn = _truth(VISITS[0])["roi_polygon"]  # the renderer's ROI, with its true coverage
    new = set_roi(store, baseline.id, drawn, actor=CLINICIAN)
    assert [a.photo_id for a in new] == [baseline.id, follow_up.id]
    assert_allclose(new[0].parameters["roi"], drawn, atol=0.01)
    inside = polygon_mask(np.array(drawn), (baseline.height, baseline.width))
    assert new[0].metrics["roi_area_px"] == inside.sum()
    # The follow-up measures the same patch of scalp: the ROI carried through the (true) transform.
    assert_allclose(new[1].parameters["roi"], _truth(VISITS[1])["roi_polygon"], atol=3.0)
    # Coverage is measured inside that region: the same figure as the library on the photo and the polygon.
    pixels = load_pixels(store, baseline.id, actor=CLINICIAN)
    direct = analyse_global(pixels, view="vertex", roi=np.array(new[0].parameters["roi"]))
    assert_allclose(new[0].metrics["hair_coverage"], direct.metrics["hair_coverage"], rtol=1e-12)
    assert len(_analyses(store, baseline.id)) == 2 and len(_analyses(store, follow_up.id)) == 2  # appended
    assert_allclose(current_roi(store, follow_up.id, actor=CLINICIAN), new[1].parameters["roi"])
    with store.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "set_roi")).one()
    assert event.details["baseline"] and event.details["analyses"] == [a.id for a in new]


def test_a_follow_up_roi_changes_only_that_photo_and_keeps_manual_points(store, series):
    (baseline, follow_up), truth = series
    moving = np.array([[420.0, 310.0], [1180.0, 290.0], [1210.0, 900.0], [400.0, 930.0]])
    align_manually(store, follow_up.id, actor=CLINICIAN, moving_points=moving.tolist(),
                   reference_points=transform_points(moving, truth).tolist())
    own = [[500.0, 300.0], [900.0, 300.0], [900.0, 700.0], [500.0, 700.0]]
    new = set_roi(store, follow_up.id, own, actor=CLINICIAN)
    assert len(new) == 1 and len(_analyses(store, baseline.id)) == 1
    assert_allclose(new[0].parameters["roi"], own)
    # A later baseline ROI re-analyses the follow-up with the clinician's points, not a new automatic guess.
    carried = set_roi(store, baseline.id, BASE_ROI, actor=CLINICIAN)[1]
    assert carried.parameters["alignment"] == "manual"
    assert_allclose(carried.transform, truth / truth[2, 2], rtol=1e-6, atol=1e-3)
    assert_allclose(carried.parameters["roi"], carry_roi(np.array(BASE_ROI), truth), atol=0.01)


def test_none_restores_the_default_roi(store, series):
    (baseline, follow_up), _ = series
    set_roi(store, baseline.id, BASE_ROI, actor=CLINICIAN)
    new = set_roi(store, baseline.id, None, actor=CLINICIAN)
    assert_allclose(new[0].parameters["roi"], default_roi("vertex", (baseline.height, baseline.width)), atol=0.01)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [([[0, 0], [10, 10]], "at least 3"), ([[0, 0], [5, 0], [0, 5]], "pixels"),
     ([[5000, 5000], [6000, 5000], [6000, 6000]], "pixels"), ([[0, 0], [np.nan, 1], [3, 3]], "non-finite")],
)
def test_bad_polygons_are_refused(store, unanalysed, polygon, message):
    baseline = unanalysed
    with pytest.raises(ValueError, match=message):
        set_roi(store, baseline.id, polygon, actor=CLINICIAN)


def test_close_ups_and_patients_cannot_set_an_roi(store, unanalysed):
    baseline = unanalysed
    with pytest.raises(PermissionDenied):
        set_roi(store, baseline.id, BASE_ROI, actor=Actor(username="p", role="patient", patient_id=1))
    visit_id = baseline.visit_id
    data = (SAMPLES / "DEMO-001" / VISITS[0] / "closeup-vertex-1.jpg").read_bytes()
    closeup = ingest_photo(store, visit_id, data, actor=CLINICIAN, name="c.jpg", kind="closeup",
                           view_or_site="vertex-1").photo
    with pytest.raises(ValueError, match="global"):
        set_roi(store, closeup.id, BASE_ROI, actor=CLINICIAN)
