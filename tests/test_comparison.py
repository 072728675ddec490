"""Comparing two visits: AFTER lands in BEFORE's frame through the stored transforms (composed when BEFORE
is a follow-up), the ROI is carried, unaligned photos say so, access is checked, views and exports are
audited, and the exported PNG carries no metadata."""

from __future__ import annotations

import datetime as dt
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tests.conftest import SAMPLES
from tracker.errors import NotFound, PermissionDenied
from tracker.imaging.decode import decode_image, encode_clean
from tracker.imaging.geometry import image_corners, transform_points
from tracker.imaging.roi import default_roi
from tracker.services import Actor, analyse_photo, create_patient, ingest_photo, open_visit
from tracker.services.comparison import (
    MODES,
    compare_photos,
    export_comparison_png,
    framed_pair,
    render_comparison,
)
from tracker.store import Analysis, AuditEvent

CLINICIAN = Actor(username="dr.compare", role="clinician", user_id=7)
SIZE = (800, 600)  # working size of the synthetic series (W, H)


def _rotation(deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    matrix = np.eye(3)
    matrix[:2] = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), deg, scale)
    matrix[:2, 2] += shift
    return matrix


#: Known warps of the baseline: follow-up k is ``warp(baseline, WARPS[k])``.
WARPS = {
    "rotated": _rotation(8.0, 1.06, (12.0, -9.0)),
    "perspective": _rotation(-5.0, 0.95, (-15.0, 10.0)) @ np.array([[1, 0.02, 0], [0.01, 1, 0], [2e-5, -3e-5, 1]]),
}
ROI = default_roi("vertex", (SIZE[1], SIZE[0]))


def _add_photo(store, patient_id: int, day: int, pixels: np.ndarray, view: str = "vertex"):
    visit = open_visit(store, patient_id, actor=CLINICIAN, visit_date=dt.date(2026, 1, day), session_number=day)
    data, _ = encode_clean(pixels, lossy=False)  # PNG: lossless, so pixel checks are exact
    return ingest_photo(store, visit.id, data, actor=CLINICIAN, name=f"{view}-{day}.png", kind="global",
                        view_or_site=view).photo


def _add_analysis(store, photo, baseline, transform, *, ok: bool = True, roi=None, coverage: float = 0.5):
    """A stored analysis with a KNOWN transform to the baseline (what the pipeline would have found)."""
    quality = {"retake": False, "flags": [], "reasons": []}
    if photo.id != baseline.id:
        quality["alignment"] = {"ok": ok, "inliers": 300 if ok else 4, "reason": None if ok else "too few matches",
                                "quality": {}}
    analysis = Analysis(photo_id=photo.id, pipeline_version="test", metrics={"hair_coverage": coverage},
                        uncertainty={"hair_coverage_sd": 0.02}, quality=quality,
                        parameters={} if roi is None else {"view": "vertex", "roi": np.asarray(roi).tolist()},
                        transform=np.asarray(transform, float).tolist(), baseline_photo_id=baseline.id)
    with store.session() as session:
        session.add(analysis)
        session.commit()


@pytest.fixture(scope="module")
def series_store(tmp_path_factory):
    """One store for the module: tests only add photos of their own or read."""
    from tracker.config import Settings
    from tracker.store import Store

    return Store(Settings.from_env(tmp_path_factory.mktemp("comparison") / "home"))


@pytest.fixture(scope="module")
def series(series_store):
    """Baseline (day 1) and two follow-ups that are known warps of it; ROI stored in each photo's frame."""
    store = series_store
    patient = create_patient(store, actor=CLINICIAN, code="C-1", display_name="Casey Compare")
    raw = decode_image((SAMPLES / "DEMO-001" / "visit-1_2026-01-12" / "vertex.jpg").read_bytes(), name="v").pixels
    base_pixels = cv2.resize(raw, SIZE, interpolation=cv2.INTER_AREA)
    base = _add_photo(store, patient.id, 1, base_pixels)
    _add_analysis(store, base, base, np.eye(3), roi=ROI, coverage=0.60)
    photos = {"base": base}
    for day, (name, warp) in enumerate(WARPS.items(), start=2):
        pixels = cv2.warpPerspective(base_pixels, warp, SIZE, flags=cv2.INTER_LINEAR)
        photos[name] = _add_photo(store, patient.id, day, pixels)
        roi = transform_points(ROI, warp) if name == "rotated" else None  # "perspective" stored no ROI
        _add_analysis(store, photos[name], base, np.linalg.inv(warp), roi=roi, coverage=0.6 + 0.05 * day)
    return patient, photos, base_pixels


def _mapping(name: str) -> np.ndarray:
    """Pixels of photo NAME -> baseline pixels."""
    return np.eye(3) if name == "base" else np.linalg.inv(WARPS[name])


@pytest.mark.parametrize("before, after", [("base", "rotated"), ("base", "perspective"),
                                           ("rotated", "perspective"), ("perspective", "rotated"),
                                           ("rotated", "base")])
def test_after_lands_in_the_before_frame(series_store, series, before, after):
    store = series_store
    _, photos, base_pixels = series
    comparison = compare_photos(store, photos[before].id, photos[after].id, actor=CLINICIAN, match_colours=False)
    expected = np.linalg.inv(_mapping(before)) @ _mapping(after)
    corners = image_corners(comparison.after.shape)
    np.testing.assert_allclose(transform_points(corners, comparison.matrix), transform_points(corners, expected),
                               atol=1e-6)
    assert comparison.aligned and not comparison.warnings
    assert comparison.before.shape == comparison.after.shape
    x, y, w, h = comparison.crop
    assert w > 0.5 * SIZE[0] and h > 0.5 * SIZE[1]
    error = np.abs(comparison.before[y : y + h, x : x + w].astype(float) - comparison.after[y : y + h, x : x + w])
    assert error.mean() < 6.0  # two resamplings of one photo; a wrong composition gives tens of levels


def test_roi_is_carried_into_the_before_frame(series_store, series):
    store = series_store
    _, photos, _ = series
    stored = compare_photos(store, photos["rotated"].id, photos["base"].id, actor=CLINICIAN)
    np.testing.assert_allclose(stored.roi, transform_points(ROI, WARPS["rotated"]), atol=0.01)  # its own ROI
    carried = compare_photos(store, photos["perspective"].id, photos["base"].id, actor=CLINICIAN)
    np.testing.assert_allclose(carried.roi, transform_points(ROI, WARPS["perspective"]), atol=1e-6)
    zoomed = carried.box(zoom_to_roi=True)
    lo, hi = carried.roi.min(axis=0), carried.roi.max(axis=0)
    assert zoomed[0] <= lo[0] and zoomed[1] <= lo[1] and zoomed[2] < carried.crop[2]
    assert zoomed[0] + zoomed[2] >= min(hi[0], carried.crop[0] + carried.crop[2]) - 1


def test_unaligned_follow_up_is_shown_unaligned_and_says_so(series_store, series):
    store = series_store
    patient, photos, base_pixels = series
    moved = cv2.resize(base_pixels, (640, 480), interpolation=cv2.INTER_AREA)  # another camera size
    failed = _add_photo(store, patient.id, 9, moved)
    _add_analysis(store, failed, photos["base"], np.eye(3), ok=False)
    comparison = compare_photos(store, photos["base"].id, failed.id, actor=CLINICIAN)
    assert not comparison.aligned
    assert comparison.warnings[0].startswith("Not aligned: shown unaligned")
    assert "too few matches" in comparison.warnings[0]
    assert comparison.after.shape == comparison.before.shape  # resized, not warped
    assert comparison.before_mask is None and comparison.after_mask is None
    with pytest.raises(ValueError, match="not aligned"):
        render_comparison(comparison, mode="difference")
    assert render_comparison(comparison, mode="side_by_side").ndim == 3


def test_access_is_checked_for_both_photos(series_store, series):
    store = series_store
    patient, photos, base_pixels = series
    other = create_patient(store, actor=CLINICIAN, code="C-2", display_name="Other Person")
    foreign = _add_photo(store, other.id, 3, base_pixels[::-1].copy())
    own = Actor(username="casey", role="patient", patient_id=patient.id)
    stranger = Actor(username="other", role="patient", patient_id=other.id)
    assert compare_photos(store, photos["base"].id, photos["rotated"].id, actor=own).aligned
    with pytest.raises(PermissionDenied):
        compare_photos(store, photos["base"].id, photos["rotated"].id, actor=stranger)
    with pytest.raises(PermissionDenied):  # one of the two photos is someone else's
        compare_photos(store, photos["base"].id, foreign.id, actor=own)
    with pytest.raises(PermissionDenied):
        export_comparison_png(store, photos["base"].id, photos["rotated"].id, mode="wipe", actor=stranger)
    with pytest.raises(ValueError, match="different patients"):
        compare_photos(store, photos["base"].id, foreign.id, actor=CLINICIAN)
    with pytest.raises(NotFound):
        compare_photos(store, photos["base"].id, 99999, actor=CLINICIAN)
    with pytest.raises(PermissionDenied):  # no probing which ids exist
        compare_photos(store, photos["base"].id, 99999, actor=own)


def test_different_views_and_the_same_photo_are_refused(series_store, series):
    store = series_store
    patient, photos, base_pixels = series
    frontal = _add_photo(store, patient.id, 5, base_pixels[:, ::-1].copy(), view="frontal")
    with pytest.raises(ValueError, match="different views"):
        compare_photos(store, photos["base"].id, frontal.id, actor=CLINICIAN)
    with pytest.raises(ValueError, match="two different photos"):
        compare_photos(store, photos["base"].id, photos["base"].id, actor=CLINICIAN)


def _events(store, action: str) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_views_and_exports_are_audited(series_store, series):
    store = series_store
    _, photos, _ = series
    before, after = photos["base"].id, photos["rotated"].id
    seen = {action: len(_events(store, action)) for action in ("view_comparison", "view_photo", "export")}
    comparison = compare_photos(store, before, after, actor=CLINICIAN)
    viewed = _events(store, "view_comparison")[seen["view_comparison"]:]
    assert [(e.username, e.details) for e in viewed] == [
        (CLINICIAN.username, {"before_photo_id": before, "after_photo_id": after, "aligned": True})]
    assert len(_events(store, "view_photo")) == seen["view_photo"]  # one event for the pair, not one per photo
    export_comparison_png(store, before, after, mode="wipe", actor=CLINICIAN, position=0.3, comparison=comparison)
    exported = _events(store, "export")[seen["export"]:]
    assert [(e.details["what"], e.details["mode"]) for e in exported] == [("comparison_png", "wipe")]
    with pytest.raises(ValueError, match="other photos"):
        export_comparison_png(store, after, before, mode="wipe", actor=CLINICIAN, comparison=comparison)


@pytest.mark.parametrize("mode", MODES)
def test_exported_png_opens_and_carries_no_metadata(series_store, series, mode):
    store = series_store
    _, photos, _ = series
    data = export_comparison_png(store, photos["base"].id, photos["perspective"].id, mode=mode, actor=CLINICIAN,
                                 zoom_to_roi=True, opacity=0.4)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG" and image.mode == "RGB"
        assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
        assert not {k for k in image.info if k not in ("dpi", "gamma", "transparency")}
        pixels = np.asarray(image)
    comparison = compare_photos(store, photos["base"].id, photos["perspective"].id, actor=CLINICIAN)
    expected = render_comparison(comparison, mode=mode, zoom_to_roi=True, opacity=0.4)
    np.testing.assert_array_equal(pixels, expected)


def test_wipe_uses_the_position_and_labels_carry_no_name(series_store, series):
    store = series_store
    _, photos, _ = series
    comparison = compare_photos(store, photos["base"].id, photos["rotated"].id, actor=CLINICIAN)
    before, after = framed_pair(comparison, show_roi=False)
    image = render_comparison(comparison, mode="wipe", position=0.25, show_roi=False)
    split = round(0.25 * before.shape[1])
    row = before.shape[0] // 2
    np.testing.assert_array_equal(image[row, : split - 4], before[row, : split - 4])
    np.testing.assert_array_equal(image[row, split + 4 :], after[row, split + 4 :])
    assert comparison.labels == ("01 Jan 2026 · session 1", "02 Jan 2026 · session 2")
    assert comparison.lines[0] == ("Coverage 60.0 % ± 2.0 %",)
    assert "Casey" not in comparison.title and "C-1" not in comparison.title
    named = compare_photos(store, photos["base"].id, photos["rotated"].id, actor=CLINICIAN, include_patient=True)
    assert "Casey Compare" in named.title


def test_stored_pipeline_transforms_compose_to_the_true_warp(store):
    """The real pipeline on two sample visits: AFTER -> BEFORE matches the phantom's known transform."""
    patient = create_patient(store, actor=CLINICIAN, code="C-3", display_name="Pipeline Case")
    folders = ("visit-1_2026-01-12", "visit-3_2026-03-09")
    photos = []
    for day, folder in enumerate(folders, start=1):
        visit = open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, day, 12))
        data = (SAMPLES / "DEMO-001" / folder / "vertex.jpg").read_bytes()
        photo = ingest_photo(store, visit.id, data, actor=CLINICIAN, name="vertex.jpg", kind="global",
                             view_or_site="vertex").photo
        analyse_photo(store, photo.id, actor=CLINICIAN)
        photos.append(photo)
    truth = np.array(json.loads((SAMPLES / "DEMO-001" / folders[1] / "vertex.json").read_text())
                     ["transform_to_baseline"])
    comparison = compare_photos(store, photos[0].id, photos[1].id, actor=CLINICIAN)
    with store.session() as session:
        stored = session.scalar(select(Analysis).where(Analysis.photo_id == photos[1].id))
    alignment = stored.quality["alignment"]
    assert comparison.aligned == alignment["ok"]  # never presented as aligned when the pipeline refused
    assert comparison.roi is not None and len(comparison.roi) >= 3
    if not alignment["ok"]:
        assert alignment["reason"] in comparison.warnings[0] and comparison.after_mask is None
        return
    corners = image_corners(comparison.before.shape)
    error = np.abs(transform_points(corners, comparison.matrix) - transform_points(corners, truth)).max()
    assert error < 2.0
    assert comparison.before_mask is not None and comparison.after_mask is not None
