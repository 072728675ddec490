"""Manual correction of close-up analyses: marks added and removed, metrics recomputed from known truth."""

from __future__ import annotations

import datetime as dt

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sqlalchemy import select

from tests.test_hair import draw
from tracker.errors import NotFound, PermissionDenied
from tracker.imaging.hair import measure_closeup
from tracker.services import (
    Actor,
    correct_analysis,
    create_patient,
    current_marks,
    ingest_photo,
    latest_correction,
    list_corrections,
    open_visit,
    preview_correction,
    timeline,
)
from tracker.services.corrections import corrected_metrics, nearest_mark, width_at
from tracker.store import Analysis, AuditEvent, Correction

CLINICIAN = Actor(username="dr.correct", role="clinician")
SHAPE = (400, 500)
PX_PER_MM = 200.0  # 1 px = 5 um
AREA_MM2 = SHAPE[0] * SHAPE[1] / PX_PER_MM**2
# Five detected vertical shafts 8 px wide (x = 40..200) and three the pipeline "missed" (x = 300, 360, 420).
DETECTED_X = [40, 80, 120, 160, 200]
MISSED = [(300, 6), (360, 10), (420, 12)]  # (centre column, width in px)


def _bar(mask: np.ndarray, x: int, width: int) -> None:
    mask[50:350, x - width // 2: x - width // 2 + width] = 1


def _phantom_mask() -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    for x in DETECTED_X:
        _bar(mask, x, 8)
    for x, width in MISSED:
        _bar(mask, x, width)
    return mask


def _detections(weights=(1.0,) * 5) -> list[dict]:
    # Widths as the pipeline measures an 8 px binary shaft (2 * distance - 0.5 = 7.5 px).
    return [{"x": float(x), "y": 50.0, "width_px": 7.5, "width_um": 7.5 / PX_PER_MM * 1000, "weight": w}
            for x, w in zip(DETECTED_X, weights, strict=True)]


def _phantom_analysis(store, *, detections=None, flags=(), code="C-1") -> Analysis:
    """A close-up photo with a stored analysis whose marks, mask and quality are known exactly."""
    patient = create_patient(store, actor=CLINICIAN, code=code, display_name="Correction Case")
    visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 12))
    skin = np.full((*SHAPE, 3), (200, 160, 140), np.uint8)
    skin[0, 0] = len(code)  # distinct originals per patient
    ok, png = cv2.imencode(".png", skin)
    photo = ingest_photo(store, visit.id, png.tobytes(), actor=CLINICIAN, name="c.png", kind="closeup",
                         view_or_site="vertex-1", px_per_mm=PX_PER_MM).photo
    ok, mask_png = cv2.imencode(".png", _phantom_mask() * 255)
    detections = _detections() if detections is None else detections
    metrics = corrected_metrics(detections, {"hair_coverage": 0.1, "analysed_area_mm2": AREA_MM2,
                                             "px_per_mm": PX_PER_MM, "flags": list(flags)},
                                px_per_mm=PX_PER_MM, field_area_mm2=AREA_MM2)
    retake = any(f in {"blurred", "too_few_hairs"} for f in flags)
    analysis = Analysis(
        photo_id=photo.id, pipeline_version="test", parameters={"px_per_mm": PX_PER_MM, "vellus_um": 30.0,
                                                                "terminal_um": 60.0},
        metrics=metrics, uncertainty={"density_per_cm2_sd": 1.0}, transform=np.eye(3).tolist(),
        quality={"retake": retake, "flags": list(flags), "reasons": [f.replace("_", " ") for f in flags]},
        baseline_photo_id=photo.id, mask_blob_key=store.blobs.put(mask_png.tobytes()), detections=detections,
    )
    with store.session() as session:
        session.add(analysis)
        session.commit()
        return analysis


def test_three_added_marks_give_the_exact_count_and_mean_width(store):
    analysis = _phantom_analysis(store)
    assert analysis.metrics["hair_count"] == 5
    clicks = [(x + 1.0, 200.0) for x, _ in MISSED]  # on each missed shaft, a pixel off its centre line
    correction = correct_analysis(store, analysis.id, actor=CLINICIAN, add=clicks, notes=" three missed ")
    widths = [m["width_px"] for m in correction.added]
    # An even binary shaft w px wide measures w - 0.5 by the pipeline's rule (2 * distance - 0.5).
    assert widths == [width - 0.5 for _, width in MISSED]
    assert [m["width_source"] for m in correction.added] == ["mask"] * 3
    metrics = correction.metrics
    expected_px = (5 * 7.5 + sum(widths)) / 8
    assert metrics["hair_count"] == 8
    assert_allclose(metrics["mean_shaft_width_px"], expected_px)
    assert_allclose(metrics["mean_shaft_width_um"], expected_px / PX_PER_MM * 1000)
    assert_allclose(metrics["density_per_cm2"], 8 / (AREA_MM2 / 100))
    widths_um = np.array([7.5] * 5 + widths) / PX_PER_MM * 1000  # 37.5 x5, 27.5, 47.5, 57.5 um
    assert_allclose(metrics["vellus_fraction"], 1 / 8)
    assert_allclose(metrics["terminal_fraction"], 0.0)
    assert_allclose(metrics["cumulative_thickness_mm_per_cm2"], widths_um.sum() / 1000 / (AREA_MM2 / 100))
    assert metrics["hair_coverage"] == 0.1 and metrics["analysed_area_mm2"] == AREA_MM2  # kept as measured
    assert correction.notes == "three missed"
    with store.session() as session:  # the automatic figures are kept
        assert session.get(Analysis, analysis.id).metrics["hair_count"] == 5


def test_a_click_off_the_mask_gets_the_median_width_and_says_so(store):
    detections = _detections()
    detections[0] = {**detections[0], "width_px": 20.0}  # median of (20, 7.5 x4) is 7.5
    analysis = _phantom_analysis(store, detections=detections)
    correction = correct_analysis(store, analysis.id, actor=CLINICIAN, add=[(250.0, 380.0)])
    assert correction.added[0]["width_source"] == "median" and correction.added[0]["width_px"] == 7.5
    assert_allclose(correction.metrics["mean_shaft_width_px"], (20 + 4 * 7.5 + 7.5) / 6)


def test_removal_takes_the_nearest_mark_within_the_radius(store):
    analysis = _phantom_analysis(store)
    correction = correct_analysis(store, analysis.id, actor=CLINICIAN, remove=[(83.0, 55.0), (38.0, 49.0)])
    assert [m["id"] for m in correction.removed] == ["d1", "d0"]
    assert correction.metrics["hair_count"] == 3
    with pytest.raises(ValueError, match="no hair mark within"):
        correct_analysis(store, analysis.id, actor=CLINICIAN, remove=[(300.0, 300.0)])


def test_corrections_stack_and_rows_are_never_updated(store):
    analysis = _phantom_analysis(store)
    first = correct_analysis(store, analysis.id, actor=CLINICIAN, add=[(300.0, 200.0), (360.0, 200.0)])
    assert [m["id"] for m in first.added] == ["m1-1", "m1-2"]
    # The second builds on the first: it removes one of its marks and a detection, adds one.
    second = correct_analysis(store, analysis.id, actor=CLINICIAN, remove=[(300.0, 201.0), (160.0, 50.0)],
                              add=[(420.0, 100.0)])
    assert [m["id"] for m in second.removed] == ["m1-1", "d3"]
    assert second.metrics["hair_count"] == 5 + 2 - 2 + 1
    marks = current_marks(store, analysis.id, actor=CLINICIAN)
    assert sorted(m["id"] for m in marks) == ["d0", "d1", "d2", "d4", "m1-2", "m2-1"]
    assert {m["source"] for m in marks if m["id"].startswith("m")} == {"manual"}
    assert [c.id for c in list_corrections(store, analysis.id, actor=CLINICIAN)] == [first.id, second.id]
    assert latest_correction(store, analysis.id, actor=CLINICIAN).id == second.id
    with store.session() as session:
        assert session.get(Correction, first.id).metrics["hair_count"] == 7
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "correct")).all()
    assert [e.details["correction_id"] for e in events] == [first.id, second.id]
    assert events[1].details["hair_count"] == 6 and events[1].details["hair_count_auto"] == 5


def test_preview_stores_nothing(store):
    analysis = _phantom_analysis(store)
    preview = preview_correction(store, analysis.id, actor=CLINICIAN, add=[(300.0, 200.0)], remove=[(40, 50)])
    assert preview.metrics["hair_count"] == 5 and len(preview.marks) == 5
    assert list_corrections(store, analysis.id, actor=CLINICIAN) == []


def test_half_weighted_marks_count_like_the_pipeline(store):
    analysis = _phantom_analysis(store, detections=_detections((1.0, 1.0, 1.0, 0.5, 0.5)))
    assert analysis.metrics["hair_count"] == 4
    correction = correct_analysis(store, analysis.id, actor=CLINICIAN, remove=[(160.0, 50.0)])
    assert correction.metrics["hair_count"] == 4  # floor(3.5 + 0.5)
    assert_allclose(correction.metrics["density_per_cm2"], 4 / (AREA_MM2 / 100))


def test_timeline_charts_the_corrected_figures(store):
    kept = _phantom_analysis(store, flags=("too_few_hairs",), code="C-1")
    blurred = _phantom_analysis(store, flags=("blurred",), code="C-22")
    before = timeline(store, 1, actor=CLINICIAN)
    assert bool(before.loc[0, "retake"]) and not bool(before.loc[0, "corrected"])
    correct_analysis(store, kept.id, actor=CLINICIAN, add=[(300.0, 200.0)])
    correct_analysis(store, blurred.id, actor=CLINICIAN, add=[(300.0, 200.0)])
    for patient_id in (1, 2):
        row = timeline(store, patient_id, actor=CLINICIAN).iloc[0]
        assert bool(row["corrected"]) and row["hair_count"] == 6
        assert_allclose(row["density_per_cm2"], 6 / (AREA_MM2 / 100))
        assert "too few hairs" in row["reasons"] or "blurred" in row["reasons"]  # flags kept as measured
    assert not bool(timeline(store, 1, actor=CLINICIAN).iloc[0]["retake"])  # count fixed by hand: charted
    assert bool(timeline(store, 2, actor=CLINICIAN).iloc[0]["retake"])  # a blurred photo stays a retake


@pytest.mark.parametrize("width", [4, 6, 9, 14])
def test_width_at_a_click_matches_the_automatic_width(width):
    image, _ = draw([((150, 60), (170, 340), width), ((350, 60), (330, 340), width)])
    measured = measure_closeup(image)
    for hair in measured.hairs:
        # A click beside the shaft, half way along it, snapped onto the mask.
        x = 160 if hair["x"] < 250 else 340
        got = width_at(measured.mask, x + width / 2 + 1.5, 200.0, snap_px=4.0)
        assert_allclose(got, hair["width_px"], atol=0.6)
        assert_allclose(got, width, atol=1.2)
    assert width_at(measured.mask, 250.0, 200.0, snap_px=4.0) is None


def test_nearest_mark():
    marks = [{"x": 10.0, "y": 10.0}, {"x": 30.0, "y": 10.0}]
    assert nearest_mark(marks, 28.0, 12.0, radius_px=5.0) == 1
    assert nearest_mark(marks, 20.0, 40.0, radius_px=5.0) is None
    assert nearest_mark([], 0.0, 0.0, radius_px=5.0) is None


def test_corrected_metrics_reproduce_a_real_analysis():
    image, _ = draw([((50 + 80 * i, 60), (60 + 80 * i, 330), 6 + 2 * i) for i in range(6)])
    m = measure_closeup(image, px_per_mm=PX_PER_MM)
    marks = [{**h, "weight": h["weight"]} for h in m.hairs]
    got = corrected_metrics(marks, m.metrics(), px_per_mm=PX_PER_MM, field_area_mm2=m.analysed_area_mm2)
    for key, value in m.metrics().items():
        if isinstance(value, float):
            assert_allclose(got[key], value, rtol=1e-9, err_msg=key)
        else:
            assert got[key] == value, key


def test_bad_requests_are_refused(store):
    analysis = _phantom_analysis(store)
    patient = Actor(username="p", role="patient", patient_id=1)
    with pytest.raises(PermissionDenied):
        correct_analysis(store, analysis.id, actor=patient, add=[(300.0, 200.0)])
    with pytest.raises(ValueError, match="nothing to correct"):
        correct_analysis(store, analysis.id, actor=CLINICIAN)
    with pytest.raises(ValueError, match="outside the photo"):
        correct_analysis(store, analysis.id, actor=CLINICIAN, add=[(600.0, 10.0)])
    with pytest.raises(ValueError, match="point"):
        correct_analysis(store, analysis.id, actor=CLINICIAN, add=[("a", None)])
    with pytest.raises(NotFound):
        correct_analysis(store, 999, actor=CLINICIAN, add=[(1.0, 1.0)])
    with pytest.raises(ValueError, match="vellus"):
        corrected_metrics([], {}, px_per_mm=1.0, field_area_mm2=1.0, vellus_um=70.0, terminal_um=60.0)
    with pytest.raises(ValueError, match="2-D"):
        width_at(np.zeros((4, 4, 3)), 1.0, 1.0, snap_px=1.0)
    assert list_corrections(store, analysis.id, actor=CLINICIAN) == []


def test_a_global_photo_has_no_marks_to_correct(store, tmp_path):
    patient = create_patient(store, actor=CLINICIAN, code="G-1", display_name="Global Case")
    visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 1, 12))
    ok, png = cv2.imencode(".png", np.full((300, 400, 3), 128, np.uint8))
    photo = ingest_photo(store, visit.id, png.tobytes(), actor=CLINICIAN, name="g.png", kind="global",
                         view_or_site="vertex").photo
    analysis = Analysis(photo_id=photo.id, pipeline_version="test", parameters={}, metrics={}, quality={},
                        transform=None, detections=[])
    with store.session() as session:
        session.add(analysis)
        session.commit()
    with pytest.raises(ValueError, match="close-up"):
        correct_analysis(store, analysis.id, actor=CLINICIAN, add=[(10.0, 10.0)])


def test_the_correction_records_who_made_it(store):
    from tracker.accounts import create_user

    user = create_user(store, username="dr.who", role="clinician", actor=Actor.system("test"))
    analysis = _phantom_analysis(store)
    actor = Actor(username="dr.who", role="clinician", user_id=user.id)
    correction = correct_analysis(store, analysis.id, actor=actor, add=[(300.0, 200.0)])
    with store.session() as session:
        assert session.get(Correction, correction.id).user_id == user.id
