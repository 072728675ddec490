"""Device calibration profiles and the scale of uploaded close-ups (tracker.services.devices, ingest_photo)."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tracker.errors import ImageRejected, NotFound, PermissionDenied
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.fiducial import place_sticker, render_ruler
from tracker.services import (
    Actor,
    analyse_photo,
    create_device_profile,
    create_patient,
    get_device_profile,
    ingest_photo,
    list_device_profiles,
    measure_ruler_photo,
    open_visit,
    retire_device_profile,
)
from tracker.store import AuditEvent, Photo

CLINICIAN = Actor(username="dr.scale", role="clinician", user_id=1)
PATIENT = Actor(username="pat", role="patient", user_id=2, patient_id=1)
ADMIN = Actor(username="boss", role="admin", user_id=3)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rulers() -> dict[float, bytes]:
    """Ruler photos at known scales (px/mm) and directions."""
    out = {}
    for ppm, direction in ((42.0, 8.0), (87.5, -25.0)):
        image, truth = render_ruler(seed=int(ppm), px_per_mm=ppm, shape=(480, 640), direction_deg=direction)
        assert truth.px_per_mm == ppm
        out[ppm] = _png(image)
    return out


@pytest.mark.parametrize("ppm", [42.0, 87.5])
def test_profile_from_a_ruler_photo(store, rulers, ppm):
    profile = create_device_profile(store, actor=CLINICIAN, name=f"Derm {ppm}", ruler_image=rulers[ppm],
                                    notes="clip-on, zoom 1x")
    assert profile.source == "ruler" and profile.notes == "clip-on, zoom 1x"
    np.testing.assert_allclose(profile.px_per_mm, ppm, rtol=0.002)
    with store.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "device_add")).one()
    assert event.username == CLINICIAN.username and event.details["source"] == "ruler"
    assert event.details["n_ticks"] >= 5


def test_ruler_preview_draws_the_fitted_ticks(store, rulers):
    measured = measure_ruler_photo(store, rulers[42.0], actor=CLINICIAN)
    assert measured.result.found
    assert measured.preview.shape == measured.pixels.shape and measured.preview.dtype == np.uint8
    drawn = np.all(measured.preview == (255, 0, 255), axis=2)
    assert drawn.mean() > 0.005  # the tick lines are there ...
    assert not np.all(measured.pixels == (255, 0, 255), axis=2).any()  # ... and only in the preview
    # and they are spaced by the period across the ruler: count the lines along the fitted direction
    theta = np.radians(measured.result.direction_deg)
    h, w = drawn.shape
    t = np.arange(-200, 200)
    xs = np.clip(np.rint(w / 2 + t * np.cos(theta)).astype(int), 0, w - 1)
    ys = np.clip(np.rint(h / 2 + t * np.sin(theta)).astype(int), 0, h - 1)
    runs = np.flatnonzero(np.diff(drawn[ys, xs].astype(int)) == 1)
    np.testing.assert_allclose(np.median(np.diff(runs)), 42.0, atol=1.5)


def test_entered_profile_list_and_retire(store):
    first = create_device_profile(store, actor=CLINICIAN, name="  DermLite   DL4 ", px_per_mm=250)
    second = create_device_profile(store, actor=CLINICIAN, name="Phone macro", px_per_mm=22.5)
    assert first.name == "DermLite DL4" and first.source == "entered" and first.px_per_mm == 250.0
    names = [p["name"] for p in list_device_profiles(store, actor=CLINICIAN)]
    assert names == ["Phone macro", "DermLite DL4"]
    retired = retire_device_profile(store, first.id, actor=CLINICIAN)
    assert retired.retired and get_device_profile(store, first.id, actor=CLINICIAN).retired
    listed = list_device_profiles(store, actor=CLINICIAN)
    assert [(p["name"], p["retired"]) for p in listed] == [("Phone macro", False), ("DermLite DL4", True)]
    assert [p["id"] for p in list_device_profiles(store, actor=CLINICIAN, include_retired=False)] == [second.id]
    with store.session() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("device_%"))).all()
    assert actions == ["device_add", "device_add", "device_retire"]
    with pytest.raises(NotFound):
        retire_device_profile(store, 999, actor=CLINICIAN)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "A"}, ValueError, "either"),
        ({"name": "A", "px_per_mm": 100.0, "ruler_image": b"x"}, ValueError, "either"),
        ({"name": " ", "px_per_mm": 100.0}, ValueError, "name"),
        ({"name": "A" * 121, "px_per_mm": 100.0}, ValueError, "120"),
        ({"name": "A", "px_per_mm": 0.0}, ValueError, "px/mm"),
        ({"name": "A", "px_per_mm": float("inf")}, ValueError, "px/mm"),
        ({"name": "A", "px_per_mm": "fast"}, ValueError, "number"),
        ({"name": "A", "ruler_image": b"%PDF-1.4 not an image"}, ImageRejected, "ruler photo"),
    ],
)
def test_bad_profiles_are_refused(store, kwargs, error, match):
    with pytest.raises(error, match=match):
        create_device_profile(store, actor=CLINICIAN, **kwargs)
    assert list_device_profiles(store, actor=CLINICIAN) == []


def test_a_photo_without_ruler_ticks_is_refused(store):
    skin, _, _ = render_closeup(seed=2, density_per_cm2=100, px_per_mm=100, shape=(300, 400))
    with pytest.raises(ImageRejected, match="could not measure the ruler"):
        create_device_profile(store, actor=CLINICIAN, name="A", ruler_image=_png(skin))


def test_names_are_unique(store):
    create_device_profile(store, actor=CLINICIAN, name="Derm", px_per_mm=100.0)
    with pytest.raises(ValueError, match="already exists"):
        create_device_profile(store, actor=CLINICIAN, name="Derm", px_per_mm=120.0)


@pytest.mark.parametrize("actor", [PATIENT, ADMIN])
def test_only_clinicians_manage_devices(store, actor):
    with pytest.raises(PermissionDenied):
        create_device_profile(store, actor=actor, name="Derm", px_per_mm=100.0)
    with pytest.raises(PermissionDenied):
        list_device_profiles(store, actor=actor)
    profile = create_device_profile(store, actor=CLINICIAN, name="Derm", px_per_mm=100.0)
    with pytest.raises(PermissionDenied):
        retire_device_profile(store, profile.id, actor=actor)


# --------------------------------------------------------------------------------------- scale of uploads
PPM = 100.0


@pytest.fixture(scope="module")
def closeup_photos() -> dict[str, bytes]:
    """The same phantom skin at PPM px/mm, without and with the sticker (2.54 mm marker)."""
    plain, _, _ = render_closeup(seed=6, density_per_cm2=180, px_per_mm=PPM, shape=(560, 720))
    with_sticker, _ = place_sticker(plain, px_per_mm=PPM, centre_xy=(440.0, 280.0), rotation_deg=10.0, seed=3)
    return {"plain": _png(plain), "sticker": _png(with_sticker)}


def _visit(store):
    patient = create_patient(store, actor=CLINICIAN, code="P-9", display_name="Scale Person")
    return open_visit(store, patient.id, actor=CLINICIAN, visit_date=dt.date(2026, 3, 1))


def _ingest(store, visit, data, name, **scale):
    return ingest_photo(store, visit.id, data, actor=CLINICIAN, name=name, kind="closeup", view_or_site="vertex-1",
                        **scale).photo


def test_scale_precedence_manual_device_fiducial_none(store, closeup_photos):
    visit = _visit(store)
    device = create_device_profile(store, actor=CLINICIAN, name="Derm", px_per_mm=104.0)
    # distinct bytes per upload (the same original twice would be recognised as a duplicate)
    plain, sticker = closeup_photos["plain"], closeup_photos["sticker"]
    manual = _ingest(store, visit, plain + b"\0", "a.png", px_per_mm=96.0, device_profile_id=device.id)
    by_device = _ingest(store, visit, sticker, "b.png", device_profile_id=device.id)
    found = _ingest(store, visit, sticker + b"\0", "c.png")
    none = _ingest(store, visit, plain, "d.png")
    assert (manual.px_per_mm, manual.scale_source, manual.device_profile_id) == (96.0, "manual", device.id)
    assert (by_device.px_per_mm, by_device.scale_source, by_device.device_profile_id) == (104.0, "device", device.id)
    assert (found.px_per_mm, found.scale_source) == (None, None)  # found when analysed
    assert (none.px_per_mm, none.scale_source) == (None, None)

    used = {}
    for photo in (manual, by_device, found, none):
        analysis = analyse_photo(store, photo.id, actor=CLINICIAN)
        used[photo.id] = (analysis.metrics["px_per_mm"], analysis.metrics["scale_source"], analysis.quality["flags"])
        assert analysis.parameters["scale_source"] == analysis.metrics["scale_source"]
    assert used[manual.id][:2] == (96.0, "manual")
    assert used[by_device.id][:2] == (104.0, "device") and "scale_conflict" not in used[by_device.id][2]
    assert used[found.id][1] == "fiducial" and used[found.id][0] == pytest.approx(PPM, rel=0.005)
    assert used[none.id][:2] == (None, None) and "no_scale" in used[none.id][2]
    with store.session() as session:
        rows = {p.id: (p.px_per_mm, p.scale_source) for p in session.scalars(select(Photo))}
    assert rows[found.id][1] == "fiducial" and rows[found.id][0] == pytest.approx(PPM, rel=0.005)
    assert rows[manual.id] == (96.0, "manual") and rows[none.id] == (None, None)
    # analysed again, the fiducial photo's scale is measured again rather than taken as given
    again = analyse_photo(store, found.id, actor=CLINICIAN)
    assert again.metrics["scale_source"] == "fiducial"


def test_device_scale_far_from_the_sticker_is_flagged(store, closeup_photos):
    visit = _visit(store)
    device = create_device_profile(store, actor=CLINICIAN, name="Wrong zoom", px_per_mm=125.0)
    photo = _ingest(store, visit, closeup_photos["sticker"], "s.png", device_profile_id=device.id)
    analysis = analyse_photo(store, photo.id, actor=CLINICIAN)
    assert analysis.metrics["px_per_mm"] == 125.0 and analysis.metrics["scale_source"] == "device"
    assert "scale_conflict" in analysis.quality["flags"]


def test_retired_or_unknown_device_is_refused_at_upload(store, closeup_photos):
    visit = _visit(store)
    device = create_device_profile(store, actor=CLINICIAN, name="Old", px_per_mm=100.0)
    retire_device_profile(store, device.id, actor=CLINICIAN)
    with pytest.raises(ValueError, match="retired"):
        _ingest(store, visit, closeup_photos["plain"], "a.png", device_profile_id=device.id)
    with pytest.raises(NotFound):
        _ingest(store, visit, closeup_photos["plain"], "a.png", device_profile_id=404)
    with pytest.raises(ValueError, match="fiducial"):
        _ingest(store, visit, closeup_photos["plain"], "a.png", px_per_mm=100.0, scale_source="fiducial")
    with store.session() as session:
        assert session.scalars(select(Photo)).all() == []
