"""The analysis of one photo, on phantoms with exact truth."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.imaging.geometry import image_corners, transform_points
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.vertex import render_vertex
from tracker.pipeline import analyse_closeup, analyse_global

from .poses import centred_pose

SHAPE = (600, 800)


@pytest.fixture(scope="module")
def baseline_vertex():
    image, _, truth = render_vertex(seed=21, thinning=0.6, shape=SHAPE, hair_seed=1)
    return image, truth


@pytest.mark.parametrize(("angle", "scale", "dx", "dy"), [(8, 1.0, 20, -10), (-12, 0.93, -30, 15), (4, 1.07, 0, 25)])
def test_global_follow_up_is_aligned_and_roi_carried(baseline_vertex, angle, scale, dx, dy):
    base_image, base_truth = baseline_vertex
    # Same scalp, another visit: new pose, hair moved (another strand layout), other light.
    image, _, truth = render_vertex(seed=21, thinning=0.6, shape=SHAPE, hair_seed=2, brightness=0.85,
                                    white_balance=(1.05, 1.0, 0.92),
                                    pose=centred_pose(SHAPE, angle, scale=scale, dx=dx, dy=dy))
    result = analyse_global(image, baseline=base_image, baseline_roi=np.array(base_truth.roi_polygon))
    assert result.alignment["ok"], result.alignment["reason"]
    corners = image_corners(SHAPE)
    expected = transform_points(corners, truth.transform_to_canonical)
    error = np.abs(transform_points(corners, result.transform) - expected)
    assert error.max() < 2.0
    np.testing.assert_allclose(result.parameters["roi"], truth.roi_polygon, atol=2.0)
    assert result.metrics["hair_coverage"] == pytest.approx(truth.hair_coverage_roi, abs=0.06)
    # Rendered small for speed, these photos are below the global resolution minimum: that is the only flag.
    assert result.quality["flags"] == ["low_resolution"]


def test_true_coverage_change_survives_a_light_change():
    before, _, truth_before = render_vertex(seed=5, thinning=0.7, shape=SHAPE, hair_seed=1)
    after, _, truth_after = render_vertex(seed=5, thinning=0.3, shape=SHAPE, hair_seed=2, brightness=0.7)
    roi = np.array(truth_before.roi_polygon)
    measured = (analyse_global(after, roi=roi).metrics["hair_coverage"]
                - analyse_global(before, roi=roi).metrics["hair_coverage"])
    true_change = truth_after.hair_coverage_roi - truth_before.hair_coverage_roi
    assert true_change > 0.1
    assert measured == pytest.approx(true_change, rel=0.35)


def test_unrelated_baseline_is_refused_not_charted(baseline_vertex):
    base_image, _ = baseline_vertex
    other, _, _ = render_vertex(seed=99, thinning=0.3, shape=SHAPE, skin_tone=4, hair_colour="black")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, other.shape, dtype=np.uint8)
    for unrelated in (other, noise):
        result = analyse_global(unrelated, baseline=base_image)
        assert not result.alignment["ok"]
        assert result.retake and "alignment_failed" in result.quality["flags"]


@pytest.fixture(scope="module")
def closeup():
    image, mask, truth = render_closeup(seed=4, density_per_cm2=200, px_per_mm=150, shape=(600, 750))
    return image, mask, truth


def test_closeup_metrics_with_scale(closeup):
    image, _, truth = closeup
    result = analyse_closeup(image, px_per_mm=150.0)
    metrics = result.metrics
    for key in ("hair_count", "density_per_cm2", "mean_shaft_width_um", "vellus_fraction", "terminal_fraction",
                "cumulative_thickness_mm_per_cm2", "hair_coverage"):
        assert key in metrics
    assert metrics["hair_count"] == pytest.approx(truth.hair_count, rel=0.3)
    assert metrics["density_per_cm2"] == pytest.approx(metrics["hair_count"] / (600 * 750 / 150**2 / 100), rel=1e-6)
    assert metrics["hair_coverage"] == pytest.approx(truth.hair_coverage, abs=0.02)
    assert result.uncertainty["density_per_cm2_sd"] > 0
    assert result.uncertainty["hair_coverage_sd"] > 0
    assert "no_scale" not in result.quality["flags"]
    assert result.mask.shape == image.shape[:2]


def test_closeup_without_scale(closeup):
    image, _, _ = closeup
    result = analyse_closeup(image)
    assert result.metrics["density_per_cm2"] is None and result.metrics["mean_shaft_width_um"] is None
    assert "no_scale" in result.quality["flags"]
    assert not result.retake  # a missing scale is a note, not a retake


def test_blurred_follow_up_is_flagged_for_retake(closeup):
    image, _, _ = closeup
    import cv2

    blurred = cv2.GaussianBlur(image, (0, 0), 3.0)
    result = analyse_closeup(blurred, px_per_mm=150.0, baseline=image)
    assert result.retake and "blurred" in result.quality["flags"]


@pytest.mark.parametrize("scale", [0.0, -2.0, float("nan")])
def test_bad_scale(closeup, scale):
    with pytest.raises(ValueError):
        analyse_closeup(closeup[0], px_per_mm=scale)


def test_closeup_of_another_spot_is_noted_not_retaken(closeup):
    image, _, _ = closeup
    elsewhere, _, _ = render_closeup(seed=77, density_per_cm2=120, px_per_mm=150, shape=(600, 750), skin_tone=4)
    result = analyse_closeup(image, px_per_mm=150.0, baseline=elsewhere)
    assert not result.alignment["ok"]
    assert "not_aligned" in result.quality["flags"]
    assert any("same spot" in reason for reason in result.quality["reasons"])
    assert not result.retake  # the field is measured either way; the clinician checks the site marking


# ------------------------------------------------------------------------------- scale: the fiducial sticker
STICKER_PPM = 100.0
STICKER_SHAPE = (600, 800)
STICKER_AT = (505.0, 300.0)


@pytest.fixture(scope="module")
def sticker_scene():
    """A close-up at a known scale, without and with the printed sticker (2.54 mm marker) on the skin."""
    from tracker.phantoms.fiducial import place_sticker

    plain, _, truth = render_closeup(seed=8, density_per_cm2=200, px_per_mm=STICKER_PPM, shape=STICKER_SHAPE)
    with_sticker, sticker = place_sticker(plain, px_per_mm=STICKER_PPM, centre_xy=STICKER_AT, rotation_deg=20.0,
                                          marker_id=3, seed=1, noise_sigma=2.0)
    return plain, with_sticker, truth, sticker


@pytest.fixture(scope="module")
def sticker_result(sticker_scene):
    return analyse_closeup(sticker_scene[1])


def _inside(polygon: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import cv2

    fill = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(fill, [np.rint(polygon).astype(np.int32)], 1)
    return fill.astype(bool)


def test_sticker_gives_the_scale_without_px_per_mm(sticker_scene, sticker_result):
    sticker = sticker_scene[3]
    result = sticker_result
    assert result.metrics["scale_source"] == result.parameters["scale_source"] == "fiducial"
    assert result.metrics["px_per_mm"] == result.parameters["px_per_mm"]
    assert result.metrics["px_per_mm"] == pytest.approx(sticker.px_per_mm, rel=0.005)
    assert result.parameters["fiducial"]["found"] and result.parameters["fiducial"]["marker_id"] == 3
    assert "no_scale" not in result.quality["flags"] and "scale_conflict" not in result.quality["flags"]
    # the analysed area: the field minus the sticker and a margin of half a marker cell around its cut line
    # (a 2.54 mm marker has 6 cells; the white quiet zone is 1.5 cells wide)
    left_out_mm = 2.54 * (6 + 2 * (1.5 + 0.5)) / 6
    field_mm2 = STICKER_SHAPE[0] * STICKER_SHAPE[1] / sticker.px_per_mm**2
    assert result.metrics["analysed_area_mm2"] == pytest.approx(field_mm2 - left_out_mm**2, rel=0.01)
    # density is the count over that area, and what the detector gives with the true scale typed in
    # (its accuracy against the rendered truth is tests/test_hair.py's business)
    assert result.metrics["density_per_cm2"] == pytest.approx(
        result.metrics["hair_count"] / (result.metrics["analysed_area_mm2"] / 100.0), rel=1e-9)
    typed = analyse_closeup(sticker_scene[1], px_per_mm=sticker.px_per_mm)
    assert result.metrics["density_per_cm2"] == pytest.approx(typed.metrics["density_per_cm2"], rel=0.01)
    assert result.uncertainty["density_per_cm2_sd"] > 0


def test_sticker_pattern_adds_no_hairs(sticker_scene, sticker_result):
    from tracker.imaging.hair import measure_closeup

    plain, _, _, sticker = sticker_scene
    result = sticker_result
    # the field left: outside the sticker's cut line widened by half a cell on each side (9 -> 10 cells)
    centre = sticker.sticker_polygon.mean(axis=0)
    field = ~_inside(centre + (sticker.sticker_polygon - centre) * 10 / 9, STICKER_SHAPE)
    # the same skin without the sticker, same field, true scale: what the sticker photo must match
    reference = measure_closeup(plain, px_per_mm=STICKER_PPM, field_mask=field)
    assert abs(result.metrics["hair_count"] - reference.hair_count) <= max(2, 0.03 * reference.hair_count)
    assert result.metrics["density_per_cm2"] == pytest.approx(reference.density_per_cm2, rel=0.04)
    # nothing on the sticker: no hair pixels, no hair marks
    on_sticker = _inside(sticker.sticker_polygon, STICKER_SHAPE)
    assert not (result.mask & on_sticker).any()
    assert not any(on_sticker[int(d["y"]), int(d["x"])] for d in result.detections)


@pytest.mark.parametrize(("factor", "conflict"), [(1.0, False), (1.03, False), (1.08, True), (0.9, True)])
def test_given_scale_wins_and_the_sticker_checks_it(sticker_scene, factor, conflict):
    _, image, _, sticker = sticker_scene
    result = analyse_closeup(image, px_per_mm=STICKER_PPM * factor, scale_source="device")
    assert result.metrics["px_per_mm"] == pytest.approx(STICKER_PPM * factor)
    assert result.metrics["scale_source"] == "device"
    assert ("scale_conflict" in result.quality["flags"]) is conflict
    assert not result.retake
    assert not (result.mask & _inside(sticker.sticker_polygon, STICKER_SHAPE)).any()  # masked out all the same


def test_refused_sticker_is_still_masked_out(sticker_scene):
    from tracker.phantoms.fiducial import place_sticker

    plain = sticker_scene[0]
    # cut by the image edge: refused for the scale, but its pattern must not count as hair
    image, sticker = place_sticker(plain, px_per_mm=STICKER_PPM, centre_xy=(645.0, 300.0), marker_id=5, seed=2)
    result = analyse_closeup(image)
    assert result.parameters["fiducial"] == {"found": False, "reason": "partly_visible", "marker_id": 5}
    assert result.metrics["px_per_mm"] is None and result.metrics["scale_source"] is None
    assert "no_scale" in result.quality["flags"]
    marker = _inside(sticker.corners, STICKER_SHAPE)
    assert not (result.mask & marker).any()


def test_no_sticker_and_no_scale_is_no_scale(closeup):
    result = analyse_closeup(closeup[0])
    assert result.parameters["fiducial"] == {"found": False, "reason": "no_marker", "marker_id": None}
    assert result.metrics["scale_source"] is None and "no_scale" in result.quality["flags"]
    off = analyse_closeup(closeup[0], marker_size_mm=None)
    assert off.parameters["fiducial"] is None


def test_stickers_in_both_photos_give_the_transform(sticker_scene):
    from tracker.phantoms.fiducial import place_sticker

    _, baseline, _, sticker = sticker_scene
    pose = centred_pose(STICKER_SHAPE, 12.0, dx=15.0, dy=-10.0)
    moved, _, truth = render_closeup(seed=8, density_per_cm2=200, px_per_mm=STICKER_PPM, shape=STICKER_SHAPE,
                                     pose=pose, shot_seed=4)
    at = pose @ np.array([*STICKER_AT, 1.0])
    # the same sticker on the same skin, seen in the re-shot
    follow_up, _ = place_sticker(moved, px_per_mm=STICKER_PPM, centre_xy=(at[0], at[1]), rotation_deg=32.0,
                                 marker_id=3, seed=1, noise_sigma=2.0)
    result = analyse_closeup(follow_up, baseline=baseline)
    assert result.alignment["ok"] and result.alignment["quality"]["method"] == "fiducial"
    corners = image_corners(STICKER_SHAPE)
    error = transform_points(corners, result.transform) - transform_points(corners, truth.transform_to_canonical)
    assert np.abs(error).max() < 1.5


def test_a_sticker_stuck_elsewhere_falls_back_to_features(sticker_scene):
    from tracker.phantoms.fiducial import place_sticker

    plain, baseline, _, _ = sticker_scene
    # same pose, but this visit's sticker sits turned by 40 degrees: the sticker transform is wrong
    follow_up, _ = place_sticker(plain, px_per_mm=STICKER_PPM, centre_xy=STICKER_AT, rotation_deg=60.0,
                                 marker_id=3, seed=1, noise_sigma=2.0)
    result = analyse_closeup(follow_up, baseline=baseline)
    assert result.alignment["quality"]["method"] != "fiducial"
    assert result.alignment["quality"]["fiducial_correlation"] < 0.85
    assert result.alignment["ok"]
    corners = image_corners(STICKER_SHAPE)
    assert np.abs(transform_points(corners, result.transform) - corners).max() < 2.0


@pytest.mark.parametrize(("options", "match"), [({"scale_source": "fiducial", "px_per_mm": 100.0}, "scale_source"),
                                                ({"marker_size_mm": 0.0}, "marker_size_mm"),
                                                ({"marker_size_mm": float("nan")}, "marker_size_mm")])
def test_bad_scale_options(closeup, options, match):
    with pytest.raises(ValueError, match=match):
        analyse_closeup(closeup[0], **options)
