"""Device calibration from rendered ruler photos with exact truth (tracker.imaging.ruler)."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.imaging.ruler import measure_ruler
from tracker.phantoms import skin as sk
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.fiducial import render_ruler

SHAPE = (480, 640)


def _angle_diff(a: float, b: float) -> float:
    d = (a - b) % 180.0
    return min(d, 180.0 - d)


# px/mm, direction, blur, noise, jpeg, strip width fraction, offset
CASES = [
    (12.0, 20.0, 0.5, 3.0, 85, 0.5, 0.0),
    (25.0, 115.0, 1.0, 3.0, 75, 0.4, -60.0),
    (48.0, 0.0, 0.0, 2.0, None, 0.6, 40.0),
    (70.0, 63.0, 1.8, 4.0, 70, 0.35, 0.0),
    (80.0, 152.0, 1.2, 3.0, 90, 0.7, 0.0),
]


@pytest.mark.parametrize(("ppm", "direction", "blur", "noise", "quality", "width", "offset"), CASES)
def test_scale_matches_truth(ppm, direction, blur, noise, quality, width, offset):
    image, truth = render_ruler(
        seed=int(ppm),
        px_per_mm=ppm,
        shape=SHAPE,
        direction_deg=direction,
        blur_sigma_px=blur,
        noise_sigma=noise,
        jpeg_quality=quality,
        ruler_width_fraction=width,
        offset_px=offset,
    )
    before = image.copy()
    res = measure_ruler(image)
    np.testing.assert_array_equal(image, before)
    assert res.found, res.reason
    assert abs(res.px_per_mm / truth.px_per_mm - 1) < 0.01
    assert _angle_diff(res.direction_deg, direction) < 1.5
    assert res.n_ticks >= 5 and res.confidence >= 0.5
    assert res.residual_px < 0.1 * res.period_px


def test_half_millimetre_ticks():
    image, truth = render_ruler(seed=4, px_per_mm=40.0, shape=SHAPE, direction_deg=30.0, tick_spacing_mm=0.5)
    res = measure_ruler(image, tick_spacing_mm=0.5)
    assert res.found and abs(res.px_per_mm / truth.px_per_mm - 1) < 0.01
    # the same photo read as a millimetre ruler gives half the px/mm: the spacing is the caller's claim
    whole = measure_ruler(image, tick_spacing_mm=1.0)
    assert whole.found and whole.px_per_mm == pytest.approx(res.px_per_mm / 2, rel=1e-9)


def test_grey_uint16_input():
    image, truth = render_ruler(seed=5, px_per_mm=30.0, shape=SHAPE, direction_deg=80.0)
    grey16 = (image.mean(axis=2) * 257).astype(np.uint16)
    res = measure_ruler(grey16)
    assert res.found and abs(res.px_per_mm / truth.px_per_mm - 1) < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refuses_images_without_a_ruler(seed):
    rng = np.random.default_rng(seed)
    skin = sk.finish(
        sk.dermoscope_skin(rng, SHAPE, sk.skin_rgb(seed), 60.0),
        rng=rng,
        blur_sigma_px=0.5,
        noise_sigma=3,
        jpeg_quality=80,
    )
    assert not measure_ruler(skin).found
    closeup, _, _ = render_closeup(seed=seed, shape=SHAPE, px_per_mm=100.0)
    res = measure_ruler(closeup)
    assert not res.found and res.px_per_mm is None and res.reason is not None


def test_refuses_too_few_ticks():
    image, _ = render_ruler(seed=1, px_per_mm=250.0, shape=SHAPE)  # 2.6 mm across: 3 ticks at most
    res = measure_ruler(image)
    assert not res.found and res.px_per_mm is None


def test_refuses_blurred_away_ticks():
    image, _ = render_ruler(seed=1, px_per_mm=20.0, shape=SHAPE, blur_sigma_px=10.0)
    assert not measure_ruler(image).found


@pytest.mark.parametrize(
    ("kwargs", "image"),
    [
        ({"tick_spacing_mm": 0.0}, np.zeros((64, 64), np.uint8)),
        ({"min_ticks": 2}, np.zeros((64, 64), np.uint8)),
        ({"min_period_px": 1.0}, np.zeros((64, 64), np.uint8)),
        ({}, np.zeros((16, 64), np.uint8)),
        ({}, np.zeros((64, 64, 2), np.uint8)),
        ({}, np.full((64, 64), np.inf)),
        ({}, np.zeros((64, 64), bool)),
    ],
)
def test_bad_input(kwargs, image):
    with pytest.raises(ValueError):
        measure_ruler(image, **kwargs)
