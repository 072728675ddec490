"""Shaft width from the cross-section profile: exact blurred boxes and drawn, blurred shafts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import erf

from tracker.imaging.hair_graph import count_hairs
from tracker.imaging.shaft_width import cross_profiles, profile_width, shaft_width_px, solve_box_blur


def blurred_box(x, width, sigma, amplitude=1.0):
    s = np.sqrt(2.0) * sigma
    return 0.5 * amplitude * (erf((x + width / 2) / s) - erf((x - width / 2) / s))


@pytest.mark.parametrize("width", [1.5, 4.0, 12.0])
@pytest.mark.parametrize("sigma", [0.5, 1.5, 3.0])
def test_solve_box_blur_recovers_width_and_blur(width, sigma):
    ratio = width / erf(width / (2 * np.sqrt(2) * sigma))
    w, s = solve_box_blur(ratio, width**2 / 12 + sigma**2)
    assert_allclose([w, s], [width, sigma], rtol=2e-3)


@pytest.mark.parametrize("width,sigma", [(2.0, 1.5), (3.0, 0.8), (6.0, 2.0), (15.0, 1.0), (25.0, 2.5)])
def test_profile_width_of_an_exact_blurred_box_with_known_blur(width, sigma):
    x = np.arange(-60, 61) / 4.0
    got = profile_width(x, blurred_box(x, width, sigma, 0.7), blur_sigma_px=sigma)
    assert_allclose(got["width"], width, rtol=0.06)
    assert_allclose(got["area"], 0.7 * width, rtol=0.03)


@pytest.mark.parametrize("width,sigma", [(15.0, 1.0), (25.0, 2.5), (8.0, 0.7)])
def test_profile_width_of_a_resolved_box_without_blur(width, sigma):
    # Resolved shafts: area / peak is the width whatever the blur; the solved blur is then not needed.
    x = np.arange(-60, 61) / 4.0
    assert_allclose(profile_width(x, blurred_box(x, width, sigma, 0.7))["width"], width, rtol=0.04)


def _line_contrast(width, sigma, amplitude=0.6, shape=(120, 160), ss=8):
    """Contrast image of one straight anti-aliased shaft (rows 20-100 at column 80), blurred by sigma."""
    h, w = shape
    big = np.zeros((h * ss, w * ss), np.float32)
    x0 = (80 + 0.5) * ss - width * ss / 2
    big[20 * ss : 100 * ss, int(round(x0)) : int(round(x0 + width * ss))] = 1.0
    cov = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    if sigma > 0:
        cov = cv2.GaussianBlur(cov, (0, 0), sigmaX=sigma)
    return amplitude * cov


@pytest.mark.parametrize("width,sigma", [(3.0, 0.0), (5.0, 1.5), (10.0, 1.0), (16.0, 2.0)])
def test_shaft_width_of_a_drawn_blurred_shaft(width, sigma):
    c = _line_contrast(width, sigma)
    path = np.stack([np.arange(25, 95), np.full(70, 80)], 1)
    got = shaft_width_px(c, [path], radius_px=width / 2)
    assert_allclose(got["width"], width, atol=0.6)


def test_count_hairs_adds_profile_width_only_when_asked():
    width = 6.0
    c = _line_contrast(width, 1.0)
    mask = c > 0.3
    skel = np.zeros_like(mask)
    skel[22:98, 80] = True
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    plain = count_hairs(skel, dist, min_length_px=20, contrast=c)
    both = count_hairs(skel, dist, min_length_px=20, contrast=c, profile_widths=True)
    assert len(plain) == len(both) == 1
    assert "width_profile_px" not in plain[0]
    assert both[0]["width_px"] == plain[0]["width_px"]
    assert_allclose(both[0]["width_profile_px"], width, atol=0.6)


def test_no_shaft_gives_nan_and_inputs_are_not_mutated():
    c = np.zeros((50, 50), np.float32)
    before = c.copy()
    path = np.stack([np.arange(5, 45), np.full(40, 25)], 1)
    assert np.isnan(shaft_width_px(c, [path], radius_px=2)["width"])
    assert np.array_equal(c, before)


def test_bad_input():
    c = np.zeros((50, 50), np.float32)
    with pytest.raises(ValueError):
        cross_profiles(c, np.zeros((5, 3), int), half_length_px=5)
    with pytest.raises(ValueError):
        cross_profiles(c, np.zeros((5, 2), int), half_length_px=0)
    with pytest.raises(ValueError):
        shaft_width_px(c, [np.zeros((5, 2), int)], radius_px=2, trim=0.5)
    with pytest.raises(ValueError):
        solve_box_blur(-1.0, 2.0)
