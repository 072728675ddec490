"""Global-view hair coverage: matches a drawn mask, ignores light changes, follows true changes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.coverage import CoverageMeasurement, measure_coverage

SHAPE = (360, 480)


def draw_strands(n_strands, *, seed=0, shape=SHAPE, ss=4, skin=(215, 170, 150), hair=(70, 45, 30),
                 falloff=0.3, noise=2.0):
    """Skin with a vignette and ``n_strands`` random anti-aliased strands 1.5-4 px wide, 40-160 px long.

    Returns the uint8 RGB image and the true mask (pixels at least half covered by hair).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    big = np.zeros((h * ss, w * ss), np.uint8)
    for _ in range(n_strands):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        ang, length = rng.uniform(0, np.pi), rng.uniform(40, 160)
        x1, y1 = x0 + length * np.cos(ang), y0 + length * np.sin(ang)
        width = rng.uniform(1.5, 4.0)
        cv2.line(big, (round(x0 * ss), round(y0 * ss)), (round(x1 * ss), round(y1 * ss)), 255,
                 max(1, round(width * ss)), cv2.LINE_8)
    cov = cv2.resize(big.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fall = (1.0 - falloff * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2) / 2)[..., None]
    img = (np.array(skin, np.float32) * (1 - cov) + np.array(hair, np.float32) * cov) * fall
    img += np.random.default_rng(seed + 1).normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), cov[..., 0] >= 0.5


def _gain(img, gains):
    return np.clip(img.astype(np.float32) * np.asarray(gains, np.float32), 0, 255).astype(np.uint8)


def _gamma(img, g):
    return np.clip(255.0 * (img / 255.0) ** g, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("n_strands", [60, 150, 300])
def test_coverage_matches_drawn_mask(n_strands):
    img, truth = draw_strands(n_strands)
    m = measure_coverage(img)
    assert isinstance(m, CoverageMeasurement)
    assert m.mask.shape == SHAPE and m.mask.dtype == bool
    assert_allclose(m.hair_coverage, truth.mean(), atol=0.02)
    assert_allclose(m.scalp_visibility, 1 - m.hair_coverage)
    assert m.roi_area_px == SHAPE[0] * SHAPE[1]


@pytest.mark.parametrize(
    "change",
    [lambda i: _gain(i, 0.7), lambda i: _gain(i, 1.3), lambda i: _gamma(i, 0.8), lambda i: _gamma(i, 1.25),
     lambda i: _gain(i, (1.15, 1.0, 0.8))],
    ids=["x0.7", "x1.3", "gamma0.8", "gamma1.25", "cast"],
)
def test_coverage_unchanged_by_light_and_colour(change):
    img, _ = draw_strands(150, seed=3)
    base = measure_coverage(img).hair_coverage
    assert abs(measure_coverage(change(img)).hair_coverage - base) < 0.02


def test_true_change_survives_a_light_change():
    before, t_before = draw_strands(100, seed=5)
    after, t_after = draw_strands(220, seed=5)  # same first 100 strands plus 120 more
    true_change = t_after.mean() - t_before.mean()
    assert true_change > 0.05
    measured = measure_coverage(_gain(after, 1.25)).hair_coverage - measure_coverage(before).hair_coverage
    assert_allclose(measured, true_change, atol=0.02)


def test_roi_restricts_the_measure():
    img, truth = draw_strands(150, seed=7)
    roi = np.zeros(SHAPE, bool)
    roi[60:300, 100:400] = True
    m = measure_coverage(img, roi_mask=roi)
    assert m.roi_area_px == int(roi.sum())
    assert_allclose(m.hair_coverage, truth[roi].mean(), atol=0.02)


def test_hair_free_skin_is_flagged_not_trusted():
    img, truth = draw_strands(0)
    assert not truth.any()
    m = measure_coverage(img)
    assert "low_separation" in m.flags


def test_greyscale_input_and_metrics_json():
    img, truth = draw_strands(150, seed=2)
    m = measure_coverage(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    assert_allclose(m.hair_coverage, truth.mean(), atol=0.02)
    d = m.metrics()
    assert set(d) == {"hair_coverage", "scalp_visibility", "roi_area_px", "flags"}
    json.dumps(d)


def test_inputs_not_mutated():
    img, _ = draw_strands(100)
    roi = np.ones(SHAPE, bool)
    before, rbefore = img.copy(), roi.copy()
    measure_coverage(img, roi_mask=roi)
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(roi, rbefore)


@pytest.mark.parametrize(
    "image,roi",
    [
        (np.zeros((50,), np.uint8), None),
        (np.zeros((50, 50, 4), np.uint8), None),
        (np.zeros((50, 50), np.int16), None),
        (np.full((50, 50), 100, np.uint8), np.zeros((50, 50), bool)),
        (np.full((50, 50), 100, np.uint8), np.ones((40, 50), bool)),
        (np.full((50, 50), 100, np.uint8), np.ones((50, 50), np.uint8)),
    ],
)
def test_bad_input_raises_value_error(image, roi):
    with pytest.raises(ValueError):
        measure_coverage(image, roi_mask=roi)


def test_vertex_phantom_roi_coverage():
    vertex = pytest.importorskip("tracker.phantoms.vertex")
    img, _, truth = vertex.render_vertex(seed=1, thinning=0.8, shape=(600, 800))
    roi = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(roi, [np.round(np.array(truth.roi_polygon)).astype(np.int32)], 1)
    roi = roi.astype(bool)
    measured = measure_coverage(img, roi_mask=roi)
    base = measured.hair_coverage
    assert abs(base - truth.hair_coverage_roi) < 0.05
    assert "clipped" not in measured.flags  # a normally exposed photo: nothing to warn about
    darker, _, _ = vertex.render_vertex(seed=1, thinning=0.8, shape=(600, 800), brightness=0.7)
    assert abs(measure_coverage(darker, roi_mask=roi).hair_coverage - base) < 0.02


def test_clipped_skin_channel_is_left_out():
    # Light skin whose red channel clips when the exposure rises: the clipped channel must not move coverage.
    img, truth = draw_strands(150, seed=7, skin=(236, 200, 170), hair=(150, 115, 80), noise=1.5)
    base = measure_coverage(img)
    bright = measure_coverage(_gain(img, 1.3))
    assert (_gain(img, 1.3)[..., 0] == 255).mean() > 0.05
    assert "clipped" in bright.flags and "clipped" not in base.flags
    assert abs(bright.hair_coverage - base.hair_coverage) < 0.02
    assert_allclose(base.hair_coverage, truth.mean(), atol=0.03)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])
def test_other_dtypes_give_the_uint8_result(dtype):
    img, _ = draw_strands(150, seed=9)
    scaled = img.astype(np.float64) / 255.0
    other = (scaled * 65535).round().astype(np.uint16) if dtype == np.uint16 else scaled.astype(dtype)
    assert_allclose(measure_coverage(other).hair_coverage, measure_coverage(img).hair_coverage, atol=0.005)


def test_light_polarity_measures_white_hair_on_dark_skin():
    # Reads about 0.04 high (soft strand edges against a low-contrast dark skin): a known limit, bounded here.
    img, truth = draw_strands(150, seed=4, skin=(95, 65, 50), hair=(235, 235, 230))
    assert_allclose(measure_coverage(img, polarity="light").hair_coverage, truth.mean(), atol=0.05)


def test_vertex_crown_thinning_is_followed_under_changed_light():
    # Bright (sheen) strands under dense hair are as bright as the shaded scalp; the colour cue catches them,
    # so the measured change follows the true one (measured: 0.98 of it here; by brightness alone 0.76).
    vertex = pytest.importorskip("tracker.phantoms.vertex")
    shape = (900, 1200)  # the size of the registration benchmark: strands 1-2 px wide
    roi = np.zeros(shape, np.uint8)
    cv2.fillPoly(roi, [np.round(vertex.default_vertex_roi(shape)).astype(np.int32)], 1)
    roi = roi.astype(bool)
    dense, m_dense, _ = vertex.render_vertex(seed=300, thinning=0.2, shape=shape, hair_seed=1)
    thin, m_thin, _ = vertex.render_vertex(seed=300, thinning=0.6, shape=shape, hair_seed=1, brightness=0.75,
                                           white_balance=(1.1, 0.95, 0.9))
    true_change = m_thin[roi].mean() - m_dense[roi].mean()
    measured = (measure_coverage(thin, roi_mask=roi).hair_coverage
                - measure_coverage(dense, roi_mask=roi).hair_coverage)
    assert true_change < -0.05
    assert 0.85 < measured / true_change < 1.15


def draw_shaded_strands(n_strands, *, seed=0, shape=SHAPE, ss=4, skin=(215, 180, 160), hair=(110, 72, 45)):
    """Strands of varied tone (up to brighter than the scalp's shadow) that shade the scalp beneath them.

    Each strand covers what lies under it; the scalp is darkened by up to 55 % by the hair around it (a
    blur of the coverage), as hair shades a real scalp. Returns the uint8 RGB image and the true mask.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    cov = np.zeros((h, w), np.float32)
    col = np.zeros((h, w, 3), np.float32)
    for _ in range(n_strands):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        ang, length = rng.uniform(0, np.pi), rng.uniform(40, 160)
        x1, y1 = x0 + length * np.cos(ang), y0 + length * np.sin(ang)
        width, tone = rng.uniform(1.5, 3.0), rng.uniform(0.6, 2.2)
        bx0, by0 = max(0, int(min(x0, x1) - 4)), max(0, int(min(y0, y1) - 4))
        bx1, by1 = min(w, int(max(x0, x1) + 5)), min(h, int(max(y0, y1) + 5))
        if bx1 <= bx0 or by1 <= by0:
            continue
        big = np.zeros(((by1 - by0) * ss, (bx1 - bx0) * ss), np.uint8)
        cv2.line(big, (round((x0 - bx0) * ss), round((y0 - by0) * ss)),
                 (round((x1 - bx0) * ss), round((y1 - by0) * ss)), 255, max(1, round(width * ss)), cv2.LINE_8)
        a = cv2.resize(big, (bx1 - bx0, by1 - by0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        patch = col[by0:by1, bx0:bx1]
        patch[:] = patch * (1 - a[..., None]) + (np.array(hair, np.float32) * tone) * a[..., None]
        cov[by0:by1, bx0:bx1] = cov[by0:by1, bx0:bx1] * (1 - a) + a
    shade = 1.0 - 0.55 * cv2.GaussianBlur(cov, (0, 0), 4.0)
    img = np.array(skin, np.float32) * (shade * (1 - cov))[..., None] + col
    img += np.random.default_rng(seed + 1).normal(0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), cov >= 0.5


@pytest.mark.parametrize("n_strands", [400, 800, 1200])
def test_bright_strands_over_a_shaded_scalp(n_strands):
    # Brightness alone reads 0.53 for a true 0.64 at 800 strands (bright shafts look like shaded scalp);
    # their colour still differs from the scalp's, and shading is grey, so the colour cue finds them.
    # Measured errors +0.025, +0.026, -0.028 (true 0.40, 0.64, 0.77; with the hair level read on the raw
    # channel, before the JPEG fix: +0.018, +0.015, -0.041).
    img, truth = draw_shaded_strands(n_strands, seed=n_strands)
    assert_allclose(measure_coverage(img).hair_coverage, truth.mean(), atol=0.032)
    cast = measure_coverage(_gamma(_gain(img, (0.9, 1.0, 1.15)), 0.8)).hair_coverage
    assert abs(cast - measure_coverage(img).hair_coverage) < 0.02


def _jpeg(img, quality):
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_single_dark_pixels_do_not_move_the_hair_level():
    # JPEG throws single pixels of a strand far darker in the blue channel; the hair level must not follow
    # them (read on the raw channel it did, and a vertex photo lost up to 0.2 of its coverage).
    img, truth = draw_strands(150, seed=3)
    speckled = img.copy()
    rng = np.random.default_rng(0)
    on_hair = np.flatnonzero(truth)
    pick = rng.choice(on_hair, size=on_hair.size // 10, replace=False)
    blue = speckled[..., 2].copy()
    blue.flat[pick] = 0  # 10 % of the hair pixels black in blue
    speckled[..., 2] = blue
    # Measured: 0.1976 -> 0.1972 (read on the raw channel: 0.1957 -> 0.1423).
    base = measure_coverage(img).hair_coverage
    assert abs(measure_coverage(speckled).hair_coverage - base) < 0.01


@pytest.mark.parametrize(("seed", "colour", "tone"), [(3, "black", 3), (1, "brown", 1)])
def test_vertex_coverage_survives_a_jpeg_round_trip(seed, colour, tone):
    # Measured: black hair on dark skin 0.708 -> 0.651 (was 0.694 -> 0.496), brown on light 0.608 -> 0.593.
    vertex = pytest.importorskip("tracker.phantoms.vertex")
    img, _, truth = vertex.render_vertex(seed=seed, thinning=0.7, hair_colour=colour, skin_tone=tone)
    roi = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(roi, [np.round(np.array(truth.roi_polygon)).astype(np.int32)], 1)
    roi = roi.astype(bool)
    lossless = measure_coverage(img, roi_mask=roi).hair_coverage
    assert abs(lossless - truth.hair_coverage_roi) < 0.04
    assert abs(measure_coverage(_jpeg(img, 90), roi_mask=roi).hair_coverage - lossless) < 0.08
