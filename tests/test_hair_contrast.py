"""Two-sided colour contrast: background, linearity in coverage, polarity, invariance to a colour gain."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.hair_contrast import hair_contrast, median_background

SKIN = np.array([0.80, 0.62, 0.50], np.float32)


def _field(hair_rgb, *, width=6, noise=0.004, seed=0, shape=(200, 240)):
    """Flat skin with three vertical shafts of ``hair_rgb`` (columns 60, 120, 180) and a half-covered edge."""
    rng = np.random.default_rng(seed)
    img = np.broadcast_to(SKIN, (*shape, 3)).copy()
    cov = np.zeros(shape, np.float32)
    for x in (60, 120, 180):
        cov[:, x : x + width] = 1.0
        cov[:, x + width] = 0.5  # a pixel half covered by the shaft
    img = img * (1 - cov[..., None]) + np.asarray(hair_rgb, np.float32) * cov[..., None]
    return np.clip(img + rng.normal(0, noise, img.shape), 0, 1).astype(np.float32), cov


@pytest.mark.parametrize("hair", [(0.25, 0.18, 0.15), (0.95, 0.93, 0.90), (0.85, 0.70, 0.40)])
def test_median_background_ignores_thin_structures_of_either_polarity(hair):
    img, _ = _field(hair)
    bg = median_background(img, scale_px=60)
    assert bg.shape == img.shape and bg.dtype == np.float32
    assert_allclose(bg[20:-20, 20:-20].reshape(-1, 3).mean(0), SKIN, rtol=0.02)


@pytest.mark.parametrize(
    "hair,sign",
    [((0.25, 0.18, 0.15), -1), ((0.98, 0.96, 0.94), 1), ((0.88, 0.66, 0.35), 1)],
    ids=["dark", "white", "blond-like"],
)
def test_contrast_is_linear_in_coverage_for_any_polarity(hair, sign):
    img, cov = _field(hair, noise=0.0)
    c, luma = hair_contrast(img, scale_px=60)
    expected = np.sqrt(np.mean((np.asarray(hair) / SKIN - 1) ** 2))  # equal noise -> equal weights
    full, half = c[100, 62], c[100, 66]
    assert_allclose(full, expected, rtol=0.05)
    assert_allclose(half, 0.5 * full, rtol=0.1)
    assert c[100, 30] < 0.02  # skin
    assert np.sign(luma[100, 62]) == sign


def test_contrast_cancels_a_gain_per_channel():
    img, _ = _field((0.95, 0.93, 0.90), noise=0.0)
    c0, _ = hair_contrast(img, scale_px=60)
    c1, _ = hair_contrast(img * np.array([0.7, 0.9, 1.1], np.float32), scale_px=60)
    assert_allclose(c1, c0, atol=0.02)


def test_noisy_channel_is_weighted_down():
    img, _ = _field((0.25, 0.18, 0.15), noise=0.0)
    noisy = img.copy()
    noisy[..., 2] = np.clip(noisy[..., 2] + np.random.default_rng(1).normal(0, 0.08, noisy.shape[:2]), 0, 1)
    c, _ = hair_contrast(noisy, scale_px=60)
    skin = c[:, 10:50]
    assert float(np.median(skin)) < 0.06  # the noisy blue channel barely shows on skin


def test_inputs_not_mutated_and_bad_input():
    img, _ = _field((0.25, 0.18, 0.15))
    before = img.copy()
    fm = np.ones(img.shape[:2], bool)
    hair_contrast(img, scale_px=60, field_mask=fm, smooth_px=1.0)
    np.testing.assert_array_equal(img, before)
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError):
            median_background(img, scale_px=bad)
    with pytest.raises(ValueError):
        hair_contrast(img, scale_px=60, field_mask=np.ones((5, 5), bool))
    with pytest.raises(ValueError):
        hair_contrast(np.zeros((20, 20, 2), np.float32), scale_px=60)


def test_greyscale_input():
    img, _ = _field((0.25, 0.18, 0.15), noise=0.0)
    grey = img.mean(axis=2)
    c, luma = hair_contrast(grey, scale_px=60)
    assert c.shape == grey.shape
    assert c[100, 62] > 0.4 and luma[100, 62] < 0
