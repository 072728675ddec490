"""Working resolution of the pipeline (tracker.pipeline_work): sizes, mapping back, and same results."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.geometry import image_corners, resize_matrix, transform_points
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.fiducial import place_sticker
from tracker.phantoms.vertex import render_vertex
from tracker.pipeline import analyse_closeup, analyse_global
from tracker.pipeline_scale import find_sticker
from tracker.pipeline_work import (
    Working,
    enlarge_mask,
    full_hairs,
    run_beside,
    shrink,
    working_for_long_side,
    working_for_scale,
)

from .poses import centred_pose


@pytest.mark.parametrize(
    ("shape", "px_per_mm", "target", "expected"),
    [
        ((3000, 4000), 300.0, 150.0, (1500, 2000)),
        ((3000, 4000, 3), 450.0, 150.0, (1000, 1333)),
        ((1024, 1280), 200.0, 150.0, (1024, 1280)),  # 0.75: not worth it, measured as it was tuned
        ((1024, 1280), 215.0, 150.0, (714, 893)),
        ((1024, 1280), 120.0, 150.0, (1024, 1280)),  # never enlarged
        ((1024, 1280), None, 150.0, (1024, 1280)),  # no scale: full size
        ((3000, 4000), 300.0, None, (3000, 4000)),  # no target: full size
    ],
)
def test_working_for_scale(shape, px_per_mm, target, expected):
    working = working_for_scale(shape, px_per_mm, target_px_per_mm=target)
    assert working.shape == expected
    assert working.full_shape == tuple(shape[:2])
    assert working.reduced == (expected != tuple(shape[:2]))


@pytest.mark.parametrize(
    ("shape", "long_side", "expected"),
    [((3000, 4000), 1600, (1200, 1600)), ((4000, 3000), 2000, (2000, 1500)), ((1200, 1600), 1600, (1200, 1600)),
     ((1500, 2000), 1600, (1500, 2000)), ((2000, 2600), 2000, (2000, 2600)),
     ((600, 800), 1600, (600, 800)), ((3000, 4000), None, (3000, 4000))],
)
def test_working_for_long_side(shape, long_side, expected):
    assert working_for_long_side(shape, long_side).shape == expected


@pytest.mark.parametrize(("func", "args", "kwargs"), [
    (working_for_scale, ((100, 100), 300.0), {"target_px_per_mm": 0.0}),
    (working_for_scale, ((100, 100), None), {"target_px_per_mm": -5.0}),
    (working_for_scale, ((100, 100), 300.0), {"target_px_per_mm": float("nan")}),
    (working_for_long_side, ((100, 100), 8), {}),
])
def test_bad_options(func, args, kwargs):
    with pytest.raises(ValueError):
        func(*args, **kwargs)


def test_shrink_keeps_input_and_returns_it_at_full_size():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    mask = rng.random((300, 400)) > 0.5
    before, mask_before = image.copy(), mask.copy()
    same = Working((300, 400), (300, 400))
    assert shrink(image, same) is image
    half = Working((300, 400), (150, 200))
    small, small_mask = shrink(image, half), shrink(mask, half)
    assert small.shape == (150, 200, 3) and small.dtype == np.uint8
    assert small_mask.shape == (150, 200) and small_mask.dtype == bool
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(mask, mask_before)


def test_enlarge_mask_round_trip():
    mask = np.zeros((900, 1200), bool)
    cv2.circle(mask.view(np.uint8), (600, 450), 200, 1, -1)
    cv2.line(mask.view(np.uint8), (100, 100), (1100, 800), 1, 9)  # a hair-like stroke, 9 px wide
    working = working_for_scale(mask.shape, 300.0, target_px_per_mm=150.0)
    back = enlarge_mask(shrink(mask, working), working)
    assert back.shape == mask.shape and back.dtype == bool
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou > 0.97


@pytest.mark.parametrize(("full", "work"), [((3000, 4000), (1500, 2000)), ((1024, 1280), (768, 960))])
def test_full_hairs_uses_the_pixel_centre_rule(full, work):
    working = Working(full, work)
    hairs = ({"x": 10.0, "y": 20.0, "width_px": 3.0, "length_px": 40.0, "weight": 0.5},
             {"x": work[1] - 1.0, "y": work[0] - 1.0, "width_px": 6.0, "length_px": 90.0, "weight": 1.0})
    mapped = full_hairs(hairs, working)
    expected = transform_points(np.array([[h["x"], h["y"]] for h in hairs]), resize_matrix(work, full))
    assert_allclose([[h["x"], h["y"]] for h in mapped], expected)
    factor = full[1] / work[1]
    assert_allclose([h["width_px"] for h in mapped], [3.0 * factor, 6.0 * factor], rtol=1e-3)
    assert_allclose([h["length_px"] for h in mapped], [40.0 * factor, 90.0 * factor], rtol=1e-3)
    assert [h["weight"] for h in mapped] == [0.5, 1.0]
    assert hairs[0]["x"] == 10.0  # inputs not changed


@pytest.fixture(scope="module")
def large_sticker_photo():
    scene, _, _ = render_closeup(seed=11, shape=(600, 800), px_per_mm=100.0, noise_sigma=0.0)
    scene = cv2.resize(scene, (2880, 2160), interpolation=cv2.INTER_CUBIC)  # a 6.2 MP field at 360 px/mm
    return place_sticker(scene, px_per_mm=360.0, centre_xy=(1900.0, 1000.0), marker_size_mm=2.54, marker_id=5,
                         rotation_deg=23.0, tilt_deg=6.0, seed=3, noise_sigma=2.0, jpeg_quality=90)


def test_sticker_found_on_the_reduced_copy_is_reported_in_full_pixels(large_sticker_photo):
    image, truth = large_sticker_photo
    found = find_sticker(image)
    assert found.found, found.reason
    assert abs(found.px_per_mm / truth.px_per_mm - 1.0) < 0.01
    assert_allclose(found.corners, truth.corners, atol=1.1)  # 0.75 px at the 2000 px copy (x 1.44)
    pts = np.c_[truth.corners, np.ones(4)] @ found.homography.T
    assert_allclose(pts[:, :2] / pts[:, 2:], [[0, 0], [2.54, 0], [2.54, 2.54], [0, 2.54]], atol=0.01)
    mask = found.field_mask(image.shape)
    centre = np.rint(truth.corners.mean(axis=0)).astype(int)
    assert not mask[centre[1], centre[0]] and mask[100, 100]


@pytest.fixture(scope="module")
def closeup_300():
    image, _, truth = render_closeup(seed=5, px_per_mm=300.0, shape=(900, 1200), density_per_cm2=220.0,
                                     jpeg_quality=90)
    return image, truth


def test_closeup_at_working_scale_matches_full_size(closeup_300):
    image, truth = closeup_300
    before = image.copy()
    full = analyse_closeup(image, px_per_mm=300.0, marker_size_mm=None, working_px_per_mm=None)
    work = analyse_closeup(image, px_per_mm=300.0, marker_size_mm=None)
    np.testing.assert_array_equal(image, before)
    assert work.parameters["working_shape"] == [450, 600]
    assert full.parameters["working_shape"] == [900, 1200]
    assert work.mask.shape == image.shape[:2] and work.mask.dtype == bool
    fm, wm = full.metrics, work.metrics
    # the same field measured twice differs by a few hairs (the field-to-field noise is larger)
    assert abs(wm["hair_count"] - fm["hair_count"]) <= max(4, 0.12 * fm["hair_count"])
    assert abs(wm["hair_count"] - truth.hair_count) <= 0.25 * truth.hair_count
    assert wm["mean_shaft_width_um"] == pytest.approx(fm["mean_shaft_width_um"], abs=5.0)
    assert wm["mean_shaft_width_um"] == pytest.approx(truth.mean_shaft_width_um, abs=8.0)
    assert wm["hair_coverage"] == pytest.approx(fm["hair_coverage"], abs=0.01)
    assert wm["density_per_cm2"] == pytest.approx(fm["density_per_cm2"], rel=0.12)
    # widths in full-size px: the same hairs as in um at the photo's scale
    assert wm["mean_shaft_width_px"] / 300.0 * 1000.0 == pytest.approx(wm["mean_shaft_width_um"], rel=1e-6)
    xy = np.array([[d["x"], d["y"]] for d in work.detections])
    assert xy[:, 0].max() < image.shape[1] and xy[:, 1].max() < image.shape[0] and xy.min() > -1
    assert xy[:, 0].max() > 0.75 * image.shape[1]  # positions span the full frame, not the working one
    for d in work.detections:
        assert d["width_um"] == pytest.approx(d["width_px"] / 300.0 * 1000.0, abs=0.01)
    # most detected exits lie on the full-size mask (mapped back, not shifted)
    on_mask = [work.mask[min(int(round(y)), 899), min(int(round(x)), 1199)] for x, y in xy]
    assert np.mean(on_mask) > 0.8
    assert work.uncertainty["hair_count_sd"] == pytest.approx(full.uncertainty["hair_count_sd"], rel=0.25)


def test_closeup_working_option_is_checked(closeup_300):
    with pytest.raises(ValueError):
        analyse_closeup(closeup_300[0], px_per_mm=300.0, marker_size_mm=None, working_px_per_mm=0.0)


def test_global_on_working_copies_reports_full_pixels():
    shape = (600, 800)
    base, _, base_truth = render_vertex(seed=21, thinning=0.6, shape=shape, hair_seed=1)
    follow, _, truth = render_vertex(seed=21, thinning=0.6, shape=shape, hair_seed=2, brightness=0.9,
                                     pose=centred_pose(shape, 7.0, scale=0.95, dx=25, dy=-10))
    # Photos of 3200 x 2400 aligned on half-size copies (an option, not the default).
    up = np.diag([4.0, 4.0, 1.0]) @ np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    up[:2, 2] -= 0.5  # x_big = 4 (x + 0.5) - 0.5
    big = [cv2.resize(im, (3200, 2400), interpolation=cv2.INTER_CUBIC) for im in (base, follow)]
    roi = transform_points(np.array(base_truth.roi_polygon), up)
    result = analyse_global(big[1], baseline=big[0], baseline_roi=roi, working_long_side=1600)
    assert result.parameters["working_shape"] == [1200, 1600]
    assert result.parameters["coverage_shape"] == [2400, 3200]  # coverage where it was validated: full size
    assert result.mask.shape == (2400, 3200)
    assert result.alignment["ok"], result.alignment["reason"]
    corners = image_corners((2400, 3200))
    true_h = up @ truth.transform_to_canonical @ np.linalg.inv(up)  # follow-up px -> baseline px, big frames
    error = np.linalg.norm(transform_points(corners, result.transform) - transform_points(corners, true_h), axis=1)
    assert error.max() < 8.0  # 2 px of the 800 px render
    assert_allclose(result.parameters["roi"], transform_points(np.array(truth.roi_polygon), up), atol=8.0)
    assert result.metrics["hair_coverage"] == pytest.approx(truth.hair_coverage_roi, abs=0.06)
    assert result.alignment["quality"]["reprojection_rmse_px"] < 8.0  # full px (about 1 at working size)


@pytest.fixture
def opencv_threads():
    """Set OpenCV's thread count for one test; restored afterwards."""
    before = cv2.getNumThreads()
    yield cv2.setNumThreads
    cv2.setNumThreads(before)


@pytest.mark.parametrize(("threads", "beside"), [(1, False), (2, True)])
def test_run_beside_uses_a_second_thread_only_with_two_cores(opencv_threads, threads, beside):
    opencv_threads(threads)
    caller = threading.get_ident()
    started = threading.Event()

    def step(a, *, b):
        started.set()
        return a + b, threading.get_ident()

    result = run_beside(step, 2, b=3)
    if beside:
        assert started.wait(10)  # running while the caller goes on
    else:
        assert not started.is_set()  # on one core nothing runs until the result is asked for
    total, ran_on = result()
    assert total == 5
    assert (ran_on != caller) is beside


@pytest.mark.parametrize("threads", [1, 2])
def test_run_beside_raises_the_steps_exception(opencv_threads, threads):
    opencv_threads(threads)

    def broken():
        raise ValueError("bad input")

    result = run_beside(broken)
    with pytest.raises(ValueError, match="bad input"):
        result()


def test_closeup_alignment_beside_the_measurement_gives_the_same_analysis(opencv_threads):
    """The alignment on a second thread (OpenCV on 2 threads) and in line (1 thread) agree exactly."""
    base, _, _ = render_closeup(seed=21, density_per_cm2=180, px_per_mm=150, shape=(600, 750))
    follow, _, _ = render_closeup(seed=21, shot_seed=2, density_per_cm2=180, px_per_mm=150, shape=(600, 750),
                                  pose=centred_pose((600, 750), 4.0, scale=1.02, dx=12.0, dy=-8.0))
    results = []
    for threads in (2, 1):
        opencv_threads(threads)
        results.append(analyse_closeup(follow, px_per_mm=150.0, baseline=base))
    beside, in_line = results
    assert beside.alignment["ok"] and in_line.alignment["ok"]
    assert beside.metrics == in_line.metrics
    assert_allclose(beside.transform, in_line.transform, atol=1e-6)
    assert np.array_equal(beside.mask, in_line.mask)
