"""Comparison images: sizes, readable labels, exact wipe and blend, heat-map sign, grid, PNG export."""

from __future__ import annotations

import io
from datetime import date

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image

from tracker.reports.compare import (
    LESS_HAIR_RGB,
    MORE_HAIR_RGB,
    blend,
    common_crop,
    difference_map,
    save_png,
    series_grid,
    side_by_side,
    to_png_bytes,
    visit_label,
    wipe,
)
from tracker.reports.labels import FONT_DIR, legend_bar

H, W = 120, 160


def _photo(seed: int = 0, shape=(H, W)) -> np.ndarray:
    """Skin-coloured photo with texture and a few dark 'hairs'."""
    rng = np.random.default_rng(seed)
    img = np.empty((*shape, 3), np.float64)
    img[:] = (205, 160, 140)
    img += rng.normal(0, 6, img.shape)
    for _ in range(12):
        y, x = rng.integers(0, shape[0] - 20), rng.integers(0, shape[1] - 4)
        img[y : y + 20, x : x + 3] = (70, 50, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def _has_ink(region: np.ndarray) -> bool:
    """A white caption area holds text: some clearly dark pixels."""
    return int((region.min(axis=2) < 120).sum()) > 20


# --- side by side ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("title", [None, "Vertex · DEMO-001"])
@pytest.mark.parametrize("panel_width", [None, 200, 500])
def test_side_by_side_size_and_layout(title, panel_width):
    a, b = _photo(1), _photo(2)
    out = side_by_side(a, b, labels=("12 Jan 2026 · session 1", "01 Jun 2026 · session 6"), title=title,
                       panel_width=panel_width)
    width = 320 if panel_width is None else panel_width  # 160 px photos are shown at least 320 wide
    gap = max(8, width // 40)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.shape[1] == 2 * width + 3 * gap
    photo_h = round(H * width / W)
    assert out.shape[0] > photo_h + 2 * gap  # room for the captions
    with_title = side_by_side(a, b, labels=("x", "y"), title="T", panel_width=panel_width)
    without = side_by_side(a, b, labels=("x", "y"), panel_width=panel_width)
    assert with_title.shape[0] > without.shape[0]


def test_side_by_side_labels_and_metric_lines_are_drawn():
    a, b = _photo(1), _photo(2)
    width = 400
    gap = max(8, width // 40)
    photo_h = round(H * width / W)
    plain = side_by_side(a, b, labels=("", ""), panel_width=width)
    out = side_by_side(a, b, labels=("12 Jan 2026 · S1", "01 Jun 2026 · S6"),
                       lines=(["Coverage 61 %"], ["Coverage 74 %"]), panel_width=width)
    assert not _has_ink(plain[gap + photo_h :])  # without text the caption band is blank
    for i in range(2):
        x = gap + i * (width + gap)
        caption = out[gap + photo_h :, x : x + width]
        assert _has_ink(caption)
    # the two captions differ (different dates are drawn, not a fixed picture)
    left = out[gap + photo_h :, gap : gap + width]
    right = out[gap + photo_h :, 2 * gap + width : 2 * gap + 2 * width]
    assert not np.array_equal(left, right)


def test_side_by_side_uses_the_same_crop_for_both():
    a, b = _photo(1), _photo(2)
    out = side_by_side(a, b, labels=("a", "b"), crop=(20, 10, 100, 80), panel_width=100)
    gap = 8
    assert_array_equal(out[gap : gap + 80, gap : gap + 100], a[10:90, 20:120])
    assert_array_equal(out[gap : gap + 80, 2 * gap + 100 : 2 * gap + 200], b[10:90, 20:120])


def test_any_name_prints_and_long_labels_fit():
    a = _photo(1)
    name = "Zoë Łukasiewicz-Ñúñez · Ζωή · Зоя · " * 6  # far wider than the panel
    out = side_by_side(a, a, labels=(name, "ok"), panel_width=200)
    assert out.shape[1] == 2 * 200 + 3 * 8
    assert _has_ink(out[8 + 150 :, 8:208])
    assert (FONT_DIR / "DejaVuSans.ttf").is_file() and (FONT_DIR / "LICENSE").is_file()


# --- blend and wipe --------------------------------------------------------------------------------------


@pytest.mark.parametrize("opacity", [0.0, 0.25, 0.5, 0.8, 1.0])
def test_blend_is_the_weighted_sum(opacity):
    a, b = _photo(1), _photo(2)
    out = blend(a, b, opacity=opacity)
    expected = (1 - opacity) * a.astype(float) + opacity * b.astype(float)
    assert out.shape == a.shape and out.dtype == np.uint8
    assert_allclose(out, expected, atol=0.51)
    if opacity in (0.0, 1.0):
        assert_array_equal(out, a if opacity == 0.0 else b)


@pytest.mark.parametrize("position", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_wipe_splits_exactly_at_the_position(position):
    a, b = _photo(1), _photo(2)
    split = round(position * W)
    out = wipe(a, b, position=position, line_px=0)
    assert out.shape == a.shape
    assert_array_equal(out[:, :split], a[:, :split])
    assert_array_equal(out[:, split:], b[:, split:])
    lined = wipe(a, b, position=position, line_px=4, line_rgb=(0, 255, 0))
    lo, hi = max(0, split - 2), min(W, max(0, split - 2) + 4)  # the line is centred on the split
    assert (lined[:, lo:hi] == [0, 255, 0]).all()
    assert_array_equal(lined[:, :lo], a[:, :lo])
    assert_array_equal(lined[:, hi:], b[:, hi:])


def test_wipe_labels_are_drawn_in_the_corners():
    a, b = _photo(1, (240, 400)), _photo(2, (240, 400))
    out = wipe(a, b, position=0.5, line_px=0, labels=("12 Jan 2026", "01 Jun 2026"))
    assert not np.array_equal(out[:40, :150], a[:40, :150])
    assert not np.array_equal(out[:40, -150:], b[:40, -150:])
    assert_array_equal(out[120:, :200], a[120:, :200])  # the tags stay in the top band


# --- heat map ---------------------------------------------------------------------------------------------


def _is(colour: np.ndarray, target) -> bool:
    return bool(np.abs(colour.astype(int) - np.asarray(target)).max() < 60)


@pytest.mark.parametrize("factor, expected", [(0.6, MORE_HAIR_RGB), (1.3, LESS_HAIR_RGB)])
def test_heat_map_luminance_sign(factor, expected):
    before = _photo(3, (160, 200))
    after = before.astype(float)
    after[40:100, 60:120] *= factor  # darker = more hair, lighter = less hair
    after = np.clip(after, 0, 255).astype(np.uint8)
    out = difference_map(before, after, legend=False, sigma_px=3.0)
    assert out.shape == before.shape
    assert _is(out[70, 90], expected)
    corner = out[5:20, 150:195].reshape(-1, 3).astype(int)
    assert np.abs(corner - corner.mean(axis=1, keepdims=True)).max() <= 1  # unchanged skin stays grey


@pytest.mark.parametrize("grow", [True, False])
def test_heat_map_mask_sign(grow):
    img = _photo(4, (160, 200))
    m0 = np.zeros((160, 200), bool)
    m1 = m0.copy()
    (m1 if grow else m0)[40:100, 60:120] = True
    out = difference_map(img, img, mode="mask", before_mask=m0, after_mask=m1, legend=False, sigma_px=3.0)
    assert _is(out[70, 90], MORE_HAIR_RGB if grow else LESS_HAIR_RGB)
    grey = out[5:30, 5:40].reshape(-1, 3).astype(int)
    assert np.abs(grey - grey.mean(axis=1, keepdims=True)).max() <= 1


def test_heat_map_region_and_warp_border_are_not_coloured():
    before = _photo(3, (160, 200))
    after = (before * 0.6).astype(np.uint8)
    after[:, :30] = 0  # outside the warped follow-up
    region = np.zeros((160, 200), bool)
    region[:, :120] = True
    out = difference_map(before, after, region=region, normalise=None, legend=False, sigma_px=2.0)
    assert _is(out[80, 80], MORE_HAIR_RGB)
    for block in (out[:, :25], out[:, 130:]):
        px = block.reshape(-1, 3).astype(int)
        assert np.abs(px - px.mean(axis=1, keepdims=True)).max() <= 1


def test_heat_map_has_a_legend_with_text():
    img = _photo(3, (160, 300))
    out = difference_map(img, img, caption="12 Jan 2026 → 01 Jun 2026")
    assert out.shape[0] > 160 and out.shape[1] == 300
    assert _has_ink(out[160:])
    bar = legend_bar(300, "scale")
    row = bar[bar.shape[0] // 2 :, :]  # the ramp runs from the less-hair to the more-hair colour
    assert any(_is(px, LESS_HAIR_RGB) for px in row.reshape(-1, 3)[::7])
    assert any(_is(px, MORE_HAIR_RGB) for px in row.reshape(-1, 3)[::7])


# --- grid, crop, export -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n, cols", [(1, 1), (2, 2), (4, 2), (5, 3), (6, 3), (12, 4)])
def test_series_grid_shape(n, cols):
    images = [_photo(i) for i in range(n)]
    labels = [visit_label(date(2026, 1 + i % 12, 1), i + 1) for i in range(n)]
    out = series_grid(images, labels, tile_width=200)
    gap = max(8, 200 // 30)
    assert out.shape[1] == gap + cols * (200 + gap)
    rows = -(-n // cols)
    assert out.shape[0] > rows * (150 + gap)
    first = cv2.resize(images[0], (200, 150), interpolation=cv2.INTER_CUBIC)
    assert_array_equal(out[gap : gap + 150, gap : gap + 200], first)
    last = cv2.resize(images[-1], (200, 150), interpolation=cv2.INTER_CUBIC)
    y, x = gap + (rows - 1) * (out.shape[0] - gap) // rows, gap + ((n - 1) % cols) * (200 + gap)
    assert_array_equal(out[y : y + 150, x : x + 200], last)
    assert _has_ink(out[gap + 150 : gap + 190, gap : gap + 200])


def test_common_crop_excludes_the_warp_border():
    a, b = _photo(1, (200, 300)), _photo(2, (200, 300))
    a[:, :40] = 0
    b[150:] = 0
    x, y, w, h = common_crop([a, b], working_px=300)
    assert x >= 40 and y >= 0 and y + h <= 150 and x + w <= 300
    assert w * h >= 0.9 * (260 * 150)
    assert (a[y : y + h, x : x + w].max(axis=2) > 0).all() and (b[y : y + h, x : x + w].max(axis=2) > 0).all()


def test_png_export_round_trip(tmp_path):
    img = _photo(5)
    data = to_png_bytes(img)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "PNG" and decoded.mode == "RGB"
    assert_array_equal(np.asarray(decoded), img)
    assert decoded.info == {}  # no metadata at all (no text chunks, no EXIF)
    path = save_png(img, tmp_path / "cmp.png")
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.png"]


def test_visit_label():
    assert visit_label("2026-01-12", 3) == "12 Jan 2026 · session 3"
    assert visit_label(date(2026, 6, 1)) == "01 Jun 2026"
    assert visit_label("2026-06-01T10:00:00", 6, extra="PRP") == "01 Jun 2026 · session 6 · PRP"


def test_inputs_are_not_mutated():
    a, b = _photo(1), _photo(2)
    ca, cb = a.copy(), b.copy()
    side_by_side(a, b, labels=("a", "b"))
    blend(a, b, opacity=0.3)
    wipe(a, b, labels=("a", "b"))
    difference_map(a, b)
    series_grid([a, b], ["a", "b"])
    assert_array_equal(a, ca)
    assert_array_equal(b, cb)


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: side_by_side(a, b[:100]),
        lambda a, b: side_by_side(a.astype(float), b),
        lambda a, b: side_by_side(a, b, labels=("only one",)),
        lambda a, b: side_by_side(a, b, labels=(1, 2)),
        lambda a, b: side_by_side(a, b, crop=(100, 0, 100, 50)),
        lambda a, b: side_by_side(a, b, crop=(0, 0, 1.5, 50)),
        lambda a, b: side_by_side(a, b, panel_width=10),
        lambda a, b: blend(a, b, opacity=1.5),
        lambda a, b: blend(a, b, opacity="half"),
        lambda a, b: wipe(a, b, position=-0.1),
        lambda a, b: wipe(a, b, line_px=-1),
        lambda a, b: difference_map(a, b, mode="hue"),
        lambda a, b: difference_map(a, b, mode="mask"),
        lambda a, b: difference_map(a, b, limit=0),
        lambda a, b: difference_map(a, b, sigma_px=-1),
        lambda a, b: difference_map(a, b, region=np.ones((3, 3), bool)),
        lambda a, b: series_grid([], []),
        lambda a, b: series_grid([a, b], ["one"]),
        lambda a, b: series_grid([a, b[:90]], ["a", "b"]),
        lambda a, b: common_crop([np.zeros_like(a)]),
        lambda a, b: to_png_bytes(a[:, :, 0].astype(np.float64)),
        lambda a, b: visit_label("12/01/2026"),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call(_photo(1), _photo(2))
