"""Fiducial sticker detection on rendered close-ups with exact truth (tracker.imaging.fiducial)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.fiducial import FiducialResult, detect_fiducial, marker_cells, marker_image
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.fiducial import place_sticker

SIZE_MM = 2.54


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    image, _, _ = render_closeup(seed=11, shape=(600, 800), px_per_mm=100.0, noise_sigma=0.0)
    return image


# px/mm, centre, rotation, tilt, tilt axis, blur, noise, jpeg quality
CASES = [
    (100.0, (400, 300), 0.0, 0.0, 0.0, 0.0, 0.0, None),
    (100.0, (380, 320), 37.0, 0.0, 0.0, 1.0, 3.0, 85),
    (60.0, (300, 250), -120.0, 12.0, 30.0, 1.5, 4.0, 70),
    (120.0, (400, 300), 170.0, 18.0, 100.0, 2.0, 3.0, 75),
    (35.0, (550, 200), 75.0, 8.0, 60.0, 0.8, 3.0, 60),
    (22.0, (200, 450), -15.0, 20.0, 150.0, 0.7, 2.0, 90),
]


@pytest.mark.parametrize(("ppm", "centre", "rot", "tilt", "axis", "blur", "noise", "quality"), CASES)
def test_scale_and_geometry_match_truth(scene, ppm, centre, rot, tilt, axis, blur, noise, quality):
    image, truth = place_sticker(
        scene,
        px_per_mm=ppm,
        centre_xy=centre,
        marker_size_mm=SIZE_MM,
        marker_id=7,
        rotation_deg=rot,
        tilt_deg=tilt,
        tilt_axis_deg=axis,
        seed=3,
        blur_sigma_px=blur,
        noise_sigma=noise,
        jpeg_quality=quality,
    )
    before = image.copy()
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    np.testing.assert_array_equal(image, before)  # input not mutated
    assert res.found, res.reason
    assert res.marker_id == 7
    assert abs(res.px_per_mm / truth.px_per_mm - 1) < 0.01
    assert_allclose(res.corners, truth.corners, atol=0.75)
    assert 0.9 <= res.confidence <= 1.0
    assert res.tilt_deg == pytest.approx(tilt, abs=2.5)
    # the homography maps the true corners to the marker's metric square
    pts = np.c_[truth.corners, np.ones(4)] @ res.homography.T
    assert_allclose(
        pts[:, :2] / pts[:, 2:], [[0, 0], [SIZE_MM, 0], [SIZE_MM, SIZE_MM], [0, SIZE_MM]], atol=0.02
    )
    # the exclusion polygon covers the whole sticker (quiet zone included)
    keep = res.field_mask(image.shape)
    inner = truth.sticker_polygon + 0.02 * (truth.sticker_polygon.mean(0) - truth.sticker_polygon)
    for x, y in np.rint(inner).astype(int):
        assert not keep[y, x]
    excluded = float((~keep).sum())
    assert excluded == pytest.approx(abs(cv2.contourArea(res.polygon.astype(np.float32))), rel=0.03)


def test_detects_on_grey_float_input(scene):
    image, truth = place_sticker(scene, px_per_mm=80.0, centre_xy=(400, 300), marker_size_mm=SIZE_MM, seed=1)
    grey = image.mean(axis=2) / 255.0
    res = detect_fiducial(grey, marker_size_mm=SIZE_MM)
    assert res.found and abs(res.px_per_mm / truth.px_per_mm - 1) < 0.01


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_marker_in_plain_closeups(seed):
    image, _, _ = render_closeup(seed=seed, shape=(600, 800), px_per_mm=120.0, jpeg_quality=80)
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    assert not res.found and res.reason == "no_marker" and res.px_per_mm is None


def test_refuses_marker_cut_by_the_border(scene):
    # marker inside the image but its quiet zone cut by the left edge
    image, truth = place_sticker(scene, px_per_mm=60.0, centre_xy=(84, 300), marker_size_mm=SIZE_MM, seed=2)
    assert truth.corners[:, 0].min() > 0 > truth.sticker_polygon[:, 0].min()
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    assert not res.found and res.reason == "partly_visible" and res.px_per_mm is None


def test_refuses_marker_half_outside(scene):
    image, _ = place_sticker(scene, px_per_mm=60.0, centre_xy=(10, 300), marker_size_mm=SIZE_MM, seed=2)
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    assert not res.found and res.reason in ("no_marker", "partly_visible")


def test_refuses_too_small(scene):
    image, truth = place_sticker(scene, px_per_mm=13.0, centre_xy=(400, 300), marker_size_mm=SIZE_MM, seed=2)
    assert np.ptp(truth.corners[:, 0]) < 40
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    assert not res.found and res.reason == "too_small"
    # the same marker is accepted when the caller allows smaller markers
    ok = detect_fiducial(image, marker_size_mm=SIZE_MM, min_side_px=20)
    assert ok.found and abs(ok.px_per_mm / truth.px_per_mm - 1) < 0.01


def test_refuses_too_oblique(scene):
    image, _ = place_sticker(scene, px_per_mm=90.0, centre_xy=(400, 300), tilt_deg=45.0, seed=2)
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    assert not res.found and res.reason == "too_oblique" and res.tilt_deg > 25


def test_ids_filter(scene):
    image, _ = place_sticker(scene, px_per_mm=90.0, centre_xy=(400, 300), marker_id=3, seed=2)
    assert detect_fiducial(image, marker_size_mm=SIZE_MM, ids=[3]).found
    assert detect_fiducial(image, marker_size_mm=SIZE_MM, ids=[4]).reason == "no_marker"


def test_wrong_dictionary_finds_nothing(scene):
    image, _ = place_sticker(scene, px_per_mm=90.0, centre_xy=(400, 300), marker_id=3, seed=2)
    assert not detect_fiducial(image, marker_size_mm=SIZE_MM, dictionary="DICT_6X6_250").found


def test_occluded_marker_is_refused(scene):
    image, truth = place_sticker(scene, px_per_mm=100.0, centre_xy=(400, 300), seed=2)
    smeared = image.copy()
    x0, y0 = np.rint(truth.corners.min(0)).astype(int)
    x1, y1 = np.rint(truth.corners.max(0)).astype(int)
    mid = (y0 + y1) // 2
    smeared[mid - 20 : mid + 20, x0 + 40 : x1 - 40] = 128  # a smudge over the code, not the border
    res = detect_fiducial(smeared, marker_size_mm=SIZE_MM)
    assert not res.found or abs(res.px_per_mm / truth.px_per_mm - 1) < 0.01


def test_result_as_dict_is_plain(scene):
    image, _ = place_sticker(scene, px_per_mm=90.0, centre_xy=(400, 300), seed=2)
    d = detect_fiducial(image, marker_size_mm=SIZE_MM).as_dict()
    assert d["found"] and isinstance(d["corners"], list) and len(d["homography"]) == 3


def test_marker_image_geometry():
    img = marker_image(0, cell_px=5)
    assert img.shape == (30, 30) and marker_cells() == 6
    assert (img[:5] == 0).all() and (img[:, :5] == 0).all()  # the black border cell


@pytest.mark.parametrize(
    ("kwargs", "image"),
    [
        ({"marker_size_mm": 0.0}, np.zeros((64, 64), np.uint8)),
        ({"marker_size_mm": float("nan")}, np.zeros((64, 64), np.uint8)),
        ({"marker_size_mm": 2.5, "dictionary": "DICT_NOPE"}, np.zeros((64, 64), np.uint8)),
        ({"marker_size_mm": 2.5, "max_tilt_deg": 95.0}, np.zeros((64, 64), np.uint8)),
        ({"marker_size_mm": 2.5}, np.zeros((64,), np.uint8)),
        ({"marker_size_mm": 2.5}, np.zeros((64, 64, 2), np.uint8)),
        ({"marker_size_mm": 2.5}, np.full((64, 64), np.nan)),
    ],
)
def test_bad_input(kwargs, image):
    with pytest.raises(ValueError):
        detect_fiducial(image, **kwargs)


def test_field_mask_without_sticker_keeps_everything():
    assert FiducialResult(found=False, reason="no_marker").field_mask((4, 5)).all()


# ------------------------------------------------------------------ the staged search = a whole-image search
def _whole_image_search(grey: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """cv2.aruco over the whole image, as the search did before it was staged (a copy at most 1400 px first,
    full size when that finds nothing; threshold windows 5..65): the reference for the staged search."""
    params = cv2.aruco.DetectorParameters()
    params.adaptiveThreshWinSizeMin, params.adaptiveThreshWinSizeMax, params.adaptiveThreshWinSizeStep = 5, 65, 10
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    params.minMarkerPerimeterRate, params.maxMarkerPerimeterRate, params.minDistanceToBorder = 0.02, 4.0, 1
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), params)
    long_side = max(grey.shape)
    for s in ([1400 / long_side] if long_side > 1400 else []) + [1.0]:
        work = grey if s == 1.0 else cv2.resize(grey, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        corners, ids, _ = det.detectMarkers(work)
        if ids is not None:
            return [(int(i), (c.reshape(4, 2) + 0.5) / s - 0.5) for c, i in zip(corners, ids.ravel(), strict=True)]
    return []


@pytest.fixture(scope="module")
def big_scene(scene) -> np.ndarray:
    """A 2000 x 1500 close-up (the size the pipeline searches a 12 MP photo at)."""
    return cv2.resize(scene, (2000, 1500), interpolation=cv2.INTER_CUBIC)


# marker side px, rotation, tilt, tilt axis, blur, noise, jpeg quality, light gain, image width
STAGED = [
    (48.0, 10.0, 0.0, 0.0, 0.8, 3.0, 80, 1.0, 2000),
    (70.0, -110.0, 15.0, 40.0, 1.5, 4.0, 70, 1.0, 2000),
    (120.0, 33.0, 10.0, 120.0, 0.8, 3.0, 80, 0.45, 2000),
    (200.0, 170.0, 20.0, 60.0, 2.5, 2.0, 85, 1.15, 2000),
    (90.0, 60.0, 0.0, 0.0, 1.0, 2.0, 90, 0.3, 1999),  # dim, and a width with no small reduction ratio
    (300.0, -20.0, 5.0, 0.0, 1.0, 2.0, 90, 1.0, 1999),
]


@pytest.mark.parametrize(("side", "rot", "tilt", "axis", "blur", "noise", "quality", "gain", "width"), STAGED)
def test_staged_search_finds_what_a_whole_image_search_finds(
    big_scene, side, rot, tilt, axis, blur, noise, quality, gain, width
):
    from tracker.imaging.fiducial_search import detect_markers as _detect

    base = np.ascontiguousarray(big_scene[:, :width])
    image, truth = place_sticker(
        base, px_per_mm=side / SIZE_MM, centre_xy=(0.6 * width, 650.0), marker_size_mm=SIZE_MM,
        marker_id=int(side) % 50, rotation_deg=rot, tilt_deg=tilt, tilt_axis_deg=axis, seed=int(side),
        blur_sigma_px=blur, noise_sigma=noise, jpeg_quality=quality,
    )
    if gain != 1.0:  # dimmer or brighter light, with a gradient across the field
        ramp = np.linspace(0.8, 1.2, width, dtype=np.float32)[None, :, None]
        image = np.clip(image * (gain * ramp), 0, 255).astype(np.uint8)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    reference = _whole_image_search(grey)
    staged = _detect(grey, "DICT_4X4_50")
    assert [i for i, _ in reference] == [truth.marker_id]
    assert [i for i, _ in staged] == [truth.marker_id]
    assert_allclose(staged[0][1], reference[0][1], atol=0.1)
    res = detect_fiducial(image, marker_size_mm=SIZE_MM)
    assert res.found and res.marker_id == truth.marker_id
    assert_allclose(res.corners, truth.corners, atol=0.75)


def test_staged_search_finds_nothing_in_a_large_plain_closeup(big_scene):
    grey = cv2.cvtColor(big_scene, cv2.COLOR_RGB2GRAY)
    assert _whole_image_search(grey) == []
    assert detect_fiducial(big_scene, marker_size_mm=SIZE_MM).reason == "no_marker"
