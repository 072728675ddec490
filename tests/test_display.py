"""Display normalisation: colour-cast copies of one photo come out alike; measurements never see it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from tracker.imaging.coverage import measure_coverage
from tracker.imaging.display import grey_world, match_display, match_exposure, normalise_series, skin_mask
from tracker.phantoms.closeup import render_closeup

SHAPE = (192, 256)


def _srgb_to_linear(img: np.ndarray) -> np.ndarray:
    c = img.astype(np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    x = np.clip(lin, 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(s * 255.0), 0, 255).astype(np.uint8)


def _cast(img: np.ndarray, gains) -> np.ndarray:
    """The same scene under other light: one gain per channel in linear light (black stays black)."""
    return _linear_to_srgb(_srgb_to_linear(img) * np.asarray(gains, float))


def _lab(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _delta_e(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    d = np.linalg.norm(_lab(a) - _lab(b), axis=2)
    return float(d.mean() if where is None else d[where].mean())


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A scalp close-up phantom (skin, hair) with a blue backdrop strip on the right."""
    img, _, _ = render_closeup(seed=7, shape=SHAPE, px_per_mm=60.0, density_per_cm2=220.0, noise_sigma=1.0)
    img = img.copy()
    img[:, 200:] = (40, 90, 130)
    return img


@pytest.mark.parametrize(
    "gains",
    [(1.25, 1.0, 0.75), (0.8, 1.0, 1.25), (0.6, 0.6, 0.6), (1.3, 1.3, 1.3), (1.2, 0.9, 0.7)],
)
def test_gain_method_undoes_a_colour_cast_and_exposure_change(scene, gains):
    shifted = _cast(scene, gains)
    assert _delta_e(shifted, scene) > 3.0  # the cast is clearly visible
    fixed = match_display(shifted, scene)
    assert _delta_e(fixed, scene) < 0.6
    assert np.abs(fixed.reshape(-1, 3).mean(0) - scene.reshape(-1, 3).mean(0)).max() < 1.0


@pytest.mark.parametrize("gains", [(1.25, 1.0, 0.75), (0.7, 0.8, 1.0)])
def test_reinhard_method_matches_the_skin(scene, gains):
    skin = skin_mask(scene)
    shifted = _cast(scene, gains)
    fixed = match_display(shifted, scene, method="reinhard")
    assert _delta_e(shifted, scene, skin) > 3.0
    assert _delta_e(fixed, scene, skin) < 1.5


def test_exposure_matching_fixes_brightness_but_not_colour(scene):
    darker = _cast(scene, (0.5, 0.5, 0.5))
    fixed = match_exposure(darker, scene)
    assert _delta_e(fixed, scene) < 0.6
    warm = _cast(scene, (1.3, 1.0, 0.7))
    kept = match_exposure(warm, scene)
    skin = skin_mask(scene)
    # the colour cast (a*, b* of the skin) survives: exposure matching is brightness only
    assert abs(_lab(kept)[..., 2][skin].mean() - _lab(scene)[..., 2][skin].mean()) > 3.0


def test_grey_world_makes_a_grey_card_neutral():
    img = np.full((64, 96, 3), (200, 150, 120), np.uint8)
    img[10:40, 10:40] = 128  # a neutral card
    card = np.zeros(img.shape[:2], bool)
    card[10:40, 10:40] = True
    out = grey_world(_cast(img, (1.3, 1.0, 0.7)), mask=card)
    mean = out[card].mean(axis=0)
    assert mean.max() - mean.min() <= 1.0


def test_inputs_not_mutated_and_measurement_unchanged(scene):
    shifted = _cast(scene, (1.2, 1.0, 0.8))
    copies = scene.copy(), shifted.copy()
    before = measure_coverage(shifted)
    for method in ("gain", "reinhard"):
        match_display(shifted, scene, method=method)
    match_exposure(shifted, scene)
    grey_world(shifted)
    normalise_series([scene, shifted])
    assert_array_equal(scene, copies[0])
    assert_array_equal(shifted, copies[1])
    after = measure_coverage(shifted)
    assert after.hair_coverage == before.hair_coverage
    assert_array_equal(after.mask, before.mask)


def test_warp_border_stays_black_and_is_ignored(scene):
    moved = _cast(scene, (1.2, 1.0, 0.8))
    moved[:, :40] = 0  # outside the warped photo
    fixed = match_display(moved, scene)
    assert not fixed[:, :40].any()
    assert _delta_e(fixed[:, 40:], scene[:, 40:]) < 0.6


def test_hair_change_between_visits_does_not_shift_the_colours(scene):
    more_hair = scene.copy()
    cv2.rectangle(more_hair, (20, 20), (120, 150), (60, 40, 30), -1)  # a big new dark patch
    fixed = match_display(_cast(more_hair, (1.2, 1.0, 0.8)), scene)
    untouched = np.ones(SHAPE, bool)
    untouched[15:155, 15:125] = False
    assert _delta_e(fixed, more_hair, untouched) < 0.8


def test_skin_mask_keeps_skin_and_drops_hair_backdrop_border_and_clipping():
    img = np.full((80, 120, 3), (215, 170, 150), np.uint8)  # skin
    img[:, 90:] = (40, 90, 130)  # blue backdrop
    img[10:70, 20:24] = (60, 40, 30)  # a dark hair
    img[:, :8] = 0  # warp border
    img[70:, 40:60] = 255  # clipped highlight
    mask = skin_mask(img)
    assert mask[30:60, 30:80].all()
    assert not mask[:, 90:].any() and not mask[10:70, 20:24].any()
    assert not mask[:, :8].any() and not mask[70:, 40:60].any()


def test_normalise_series_returns_reference_copy_and_matched_others(scene):
    series = [_cast(scene, (1.2, 1, 0.8)), scene, _cast(scene, (0.7, 0.7, 0.7))]
    out = normalise_series(series, reference_index=1)
    assert len(out) == 3
    assert_array_equal(out[1], scene)
    assert out[1] is not scene
    for img in (out[0], out[2]):
        assert img.dtype == np.uint8 and img.shape == scene.shape
        assert _delta_e(img, scene) < 0.6


def test_grey_input_is_accepted(scene):
    grey = cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY)
    out = match_display(grey, grey)
    assert out.shape == (*SHAPE, 3)
    assert_allclose(out[:, :, 0], grey, atol=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: match_display(s.astype(np.float32), s),
        lambda s: match_display(s, s[:100]),
        lambda s: match_display(s[:, :, :2], s),
        lambda s: match_display(s, s, method="histogram"),
        lambda s: match_display(s, s, mask=np.ones(SHAPE, np.uint8)),
        lambda s: match_display(np.zeros_like(s), np.zeros_like(s)),
        lambda s: match_display(s[:4, :4], s[:4, :4]),
        lambda s: match_display([[1, 2]], s),
        lambda s: normalise_series([]),
        lambda s: normalise_series([s], reference_index=3),
        lambda s: grey_world(s, mask=np.zeros(SHAPE, bool)),
        lambda s: skin_mask(s, region=np.ones((3, 3), bool)),
    ],
)
def test_bad_input_raises_value_error(scene, call):
    with pytest.raises(ValueError):
        call(scene)
