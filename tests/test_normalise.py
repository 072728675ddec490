"""Flat-field normalisation: ratio ~1 on skin, <1 on hair, invariant to gains, input untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.normalise import background, flat_field


def _skin(shape=(240, 320), falloff=0.4, colour=(210, 165, 140), noise=0.0, seed=0):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    fall = 1.0 - falloff * r2 / 2
    img = np.stack([c * fall for c in colour], axis=-1)
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _with_hair(img, width=6, darkness=0.35):
    hair = np.zeros(img.shape[:2], np.uint8)
    cv2.line(hair, (40, 20), (120, 220), 255, width)
    cv2.line(hair, (300, 10), (310, 230), 255, width)  # near the right border
    out = img.astype(np.float32)
    out[hair > 0] *= darkness
    return out.astype(np.uint8), hair > 0


@pytest.mark.parametrize("falloff", [0.0, 0.3, 0.6])
def test_flat_skin_ratio_is_one_despite_falloff(falloff):
    ratio = flat_field(_skin(falloff=falloff), background_scale_px=60)
    assert ratio.shape == (240, 320) and ratio.dtype == np.float32
    assert_allclose(np.median(ratio), 1.0, atol=0.01)
    assert np.percentile(np.abs(ratio - 1.0), 99) < 0.03


def test_hair_ratio_matches_its_darkness_even_at_the_border():
    img, hair = _with_hair(_skin(falloff=0.4), width=6, darkness=0.35)
    ratio = flat_field(img, background_scale_px=40)
    core = cv2.erode(hair.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert_allclose(np.median(ratio[core]), 0.35, atol=0.04)
    skin = ~cv2.dilate(hair.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert_allclose(np.median(ratio[skin]), 1.0, atol=0.02)
    assert np.percentile(ratio[skin], 1) > 0.95  # no dark halo along the borders


@pytest.mark.parametrize("gains", [(0.7, 0.7, 0.7), (1.3, 1.3, 1.3), (1.2, 1.0, 0.75)])
def test_ratio_invariant_to_exposure_and_colour_cast(gains):
    img, _ = _with_hair(_skin(falloff=0.3, colour=(160, 125, 105)))
    changed = np.clip(img.astype(np.float32) * np.array(gains, np.float32), 0, 255).astype(np.uint8)
    a = flat_field(img, background_scale_px=40)
    b = flat_field(changed, background_scale_px=40)
    assert np.median(np.abs(a - b)) < 0.01


def test_light_polarity_puts_white_hair_below_one():
    dark_skin = _skin(colour=(90, 60, 45), falloff=0.2)
    hair = np.zeros(dark_skin.shape[:2], np.uint8)
    cv2.line(hair, (40, 20), (200, 220), 255, 5)
    img = dark_skin.copy()
    img[hair > 0] = (235, 235, 235)
    ratio = flat_field(img, background_scale_px=40, polarity="light")
    assert np.median(ratio[hair > 0]) < 0.5
    assert_allclose(np.median(ratio[hair == 0]), 1.0, atol=0.02)


def test_background_removes_thin_dark_lines_and_keeps_size():
    grey = _skin(falloff=0.3)[:, :, 1]
    with_line = grey.copy()
    cv2.line(with_line, (0, 120), (319, 120), 20, 5)
    bg = background(with_line, scale_px=31)
    assert bg.shape == grey.shape and bg.dtype == np.float32
    assert_allclose(bg[118:123], grey[118:123] / 255.0, atol=0.03)


def test_inputs_not_mutated():
    img, _ = _with_hair(_skin())
    before = img.copy()
    flat_field(img)
    background(img[:, :, 0], scale_px=20)
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10,), np.uint8), np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20), np.int32),
     np.full((20, 20), np.nan, np.float32), np.zeros((4, 4), np.uint8)],
)
def test_bad_images_raise(bad):
    with pytest.raises(ValueError):
        flat_field(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_one_non_finite_pixel_is_refused(value):
    from tracker.imaging.normalise import as_float_image

    img = np.random.default_rng(0).random((30, 40, 3))
    img[7, 9, 1] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        as_float_image(img)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_as_float_image_values_and_copy(dtype):
    from tracker.imaging.normalise import as_float_image

    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "u":
        img = rng.integers(0, np.iinfo(dtype).max + 1, (30, 40, 3), dtype=dtype)
        expected = img.astype(np.float32) / np.float32(np.iinfo(dtype).max)
    else:
        img = (rng.random((30, 40, 3)) * 1.4 - 0.2).astype(dtype)  # out of range on both sides: clipped
        expected = np.clip(img.astype(np.float32), 0.0, 1.0)
    before = img.copy()
    out = as_float_image(img)
    assert out.dtype == np.float32 and out is not img
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(img, before)
    inside = np.clip(img, 0, 1).astype(np.float32) if np.dtype(dtype).kind == "f" else None
    if inside is not None:  # already in range: an equal copy, not the same array
        again = as_float_image(inside)
        assert again is not inside and np.array_equal(again, inside)


@pytest.mark.parametrize("scale", [0, -5, float("nan")])
def test_bad_scale_raises(scale):
    with pytest.raises(ValueError):
        flat_field(_skin(), background_scale_px=scale)
    with pytest.raises(ValueError):
        background(_skin()[:, :, 0], scale_px=scale)


def test_background_rejects_colour_and_bad_polarity():
    with pytest.raises(ValueError):
        background(_skin(), scale_px=20)
    with pytest.raises(ValueError):
        flat_field(_skin(), polarity="sideways")


# Reference: flat_field as it was before the speed-up (per-channel log/exp in numpy); close-up hair
# counting relies on its values, so the faster version must reproduce them.
def _reference_background(grey, scale, polarity):
    h, w = grey.shape
    factor = max(1.0, scale / 15)
    lw, lh = max(4, round(w / factor)), max(4, round(h / factor))
    small = cv2.resize(grey, (lw, lh), interpolation=cv2.INTER_AREA) if factor > 1 else grey
    k = max(3, int(round(scale / factor)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    pad = k // 2 + 2
    odd, even = np.pad(small, pad, mode="reflect", reflect_type="odd"), np.pad(small, pad, mode="reflect")
    padded = np.minimum(odd, even) if polarity == "dark" else np.maximum(odd, even)
    op = cv2.MORPH_CLOSE if polarity == "dark" else cv2.MORPH_OPEN
    bg = cv2.morphologyEx(padded, op, kernel, borderType=cv2.BORDER_REPLICATE)
    bg = np.clip(cv2.GaussianBlur(bg, (0, 0), sigmaX=1.0)[pad:-pad, pad:-pad], 0.0, None)
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR) if bg.shape != (h, w) else bg


def _reference_flat_field(image, scale, polarity):
    img = image.astype(np.float32) / 255.0
    channels = [img] if img.ndim == 2 else [img[:, :, c] for c in range(img.shape[2])]
    log_sum = np.zeros(img.shape[:2], np.float32)
    for ch in channels:
        bg = _reference_background(ch, scale, polarity)
        ratio = (ch + 1 / 255) / (bg + 1 / 255) if polarity == "dark" else (bg + 1 / 255) / (ch + 1 / 255)
        log_sum += np.log(np.clip(ratio, 0.01, 4.0))
    return np.exp(log_sum / len(channels))


@pytest.mark.parametrize("scale,polarity,grey", [(40.0, "dark", False), (97.0, "dark", False),
                                                  (40.0, "light", False), (60.0, "dark", True)])
def test_flat_field_matches_the_reference_implementation(scale, polarity, grey):
    img, _ = _with_hair(_skin(shape=(300, 410), falloff=0.4, noise=3.0, seed=4))
    img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if grey else img
    assert_allclose(flat_field(img, background_scale_px=scale, polarity=polarity),
                    _reference_flat_field(img, scale, polarity), rtol=1e-5)
