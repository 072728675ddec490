"""Clipped stubs judged in hair-wide units: drawn bars and discs of known size (tracker.imaging.hair_stubs)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.hair import measure_closeup
from tracker.imaging.hair_segment import drop_blobs
from tracker.imaging.hair_stubs import keep_stubs, piece_units, split_units, typical_shaft_width

UNIT = 8  # single-shaft width of the drawn fields (px)


def _bars(shape=(200, 260), bars=()):
    m = np.zeros(shape, bool)
    for y, x, h, w in bars:
        m[y : y + h, x : x + w] = True
    return m


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


SINGLES = [(10, 10 + 30 * k, 80, UNIT) for k in range(4)]  # four single shafts 80 x 8 px: the field's width


@pytest.mark.parametrize("width", [4, 8, 14])
def test_typical_shaft_width_of_drawn_bars(width):
    m = _bars(bars=[(10, 10 + 40 * k, 90, width) for k in range(4)])
    assert_allclose(typical_shaft_width(m, smooth_px=1.0), width, atol=1.0)


def test_typical_shaft_width_from_a_given_skeleton():
    from tracker.imaging.skeleton import skeletonize

    m = _bars(bars=[(10, 10 + 40 * k, 90, 8) for k in range(4)])
    skeleton = skeletonize(cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.0) >= 0.5)
    assert typical_shaft_width(m, smooth_px=1.0, skeleton=skeleton) == typical_shaft_width(m, smooth_px=1.0)
    with pytest.raises(ValueError, match="shape"):
        typical_shaft_width(m, smooth_px=1.0, skeleton=skeleton[1:])


def test_typical_shaft_width_none_for_too_little_hair():
    assert typical_shaft_width(np.zeros((50, 50), bool), smooth_px=1.0) is None


@pytest.mark.parametrize(
    ("area", "length", "units"),
    [(40 * 8, 40, 1), (40 * 16, 40, 2), (40 * 24, 40, 3), (40 * 11, 40, 1), (40 * 13, 40, 2), (40 * 80, 40, 4)],
)
def test_piece_units(area, length, units):
    assert piece_units(area, length, UNIT) == units


@pytest.mark.parametrize(("unit_width", "length"), [(0.0, 10.0), (-1.0, 10.0), (8.0, 0.0)])
def test_piece_units_rejects_bad_input(unit_width, length):
    with pytest.raises(ValueError):
        piece_units(100.0, length, unit_width)


@pytest.mark.parametrize(
    ("piece", "readmitted"),
    [
        ((120, 20, 40, 2 * UNIT), True),  # two 5:1 stubs side by side: a 40 x 16 piece (2.5:1)
        ((120, 60, 44, 3 * UNIT), True),  # three 5.5:1 stubs: 44 x 24
        ((120, 120, 20, 2 * UNIT), False),  # two 2.5:1 dots side by side: not long for one shaft
        ((120, 160, 22, 22), False),  # a square blot 2.75 units wide
    ],
)
def test_keep_stubs_readmits_merged_stubs_only(piece, readmitted):
    cand = _bars(bars=[*SINGLES, piece])
    kept = drop_blobs(cand, min_area=40, min_length=15)
    y, x, h, w = piece
    assert not kept[y : y + h, x : x + w].any()  # the outline test drops every one of these pieces
    before = cand.copy(), kept.copy()
    out = keep_stubs(cand, kept, unit_width=UNIT, min_area=40, min_length=15)
    assert np.array_equal(cand, before[0]) and np.array_equal(kept, before[1])
    assert np.array_equal(out & ~kept, _bars(bars=[piece]) if readmitted else np.zeros_like(cand))


@pytest.mark.parametrize("radius", [8, 12, 16, 20])
def test_keep_stubs_leaves_round_blots_out(radius):
    cand = _bars(bars=SINGLES) | _disc((200, 260), 150, 200, radius)
    kept = drop_blobs(cand, min_area=40, min_length=15)
    out = keep_stubs(cand, kept, unit_width=UNIT, min_area=40, min_length=15)
    assert np.array_equal(out, kept)


def test_keep_stubs_rejects_bad_input():
    m = np.zeros((20, 20), bool)
    with pytest.raises(ValueError):
        keep_stubs(m, np.zeros((20, 21), bool), unit_width=8, min_area=1, min_length=1)
    with pytest.raises(ValueError):
        keep_stubs(m, m, unit_width=0, min_area=1, min_length=1)


def test_split_units_counts_a_band_by_its_units():
    mask = _bars(bars=[(10, 10, 60, UNIT), (10, 40, 60, 2 * UNIT), (10, 80, 60, UNIT), (10, 100, 60, UNIT)])
    mask[40:48, 80:108] = True  # joins the last two shafts: one piece holding two exits
    hairs = [dict(x=13.0, y=40.0, width_px=8.0), dict(x=47.0, y=40.0, width_px=16.0),
             dict(x=83.0, y=20.0, width_px=8.0), dict(x=103.0, y=20.0, width_px=8.0)]
    out = split_units(hairs, mask, unit_width=UNIT)
    assert [h["units"] for h in out] == [1, 2, 1, 1]
    assert_allclose(out[1]["width_px"], UNIT, rtol=0.1)  # the band's two hairs share its width
    assert "units" not in hairs[1] and hairs[1]["width_px"] == 16.0


def _scene(pieces, shape=(240, 320), seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((*shape, 3), (205.0, 170.0, 150.0)) + rng.normal(0, 2.0, (*shape, 3))
    hair = np.zeros(shape, bool)
    for y, x, h, w in pieces:
        hair[y : y + h, x : x + w] = True
    img[hair] = (70.0, 50.0, 40.0)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("extra", "count"),
    [
        ([], 4),
        ([(150, 40, 40, 2 * UNIT)], 6),  # a clipped stub of two hairs lying against each other
        ([(150, 40, 40, 3 * UNIT)], 7),  # three
        ([(150, 40, 22, 22)], 4),  # a square pigment blot
    ],
)
def test_measure_closeup_counts_merged_stubs(extra, count):
    singles = [(20, 40 + 60 * k, 90, UNIT) for k in range(4)]
    m = measure_closeup(_scene(singles + extra), px_per_mm=UNIT / 0.08)  # the shaft is 80 um
    assert m.hair_count == count


@pytest.mark.parametrize(("length", "units"), [(40, 2), (60, 1)])  # 2.5:1 is a stub; 3.75:1 is left to the skeleton
def test_split_units_with_elongation_splits_only_stubs(length, units):
    mask = _bars(bars=[(10, 10, length, 2 * UNIT)])
    hairs = [dict(x=18.0, y=20.0, width_px=16.0)]
    assert split_units(hairs, mask, unit_width=UNIT, elongation=3.0)[0]["units"] == units
    assert split_units(hairs, mask, unit_width=UNIT)[0]["units"] == 2
