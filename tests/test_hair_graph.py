"""Skeleton graph -> hairs: sheen-split shafts (two parallel rims) count as one hair of the whole width."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage.morphology import skeletonize

from tracker.imaging.hair_graph import count_hairs
from tracker.imaging.hair_rims import pair_split_rims


def _bar(mask: np.ndarray, p0, p1, width: float) -> None:
    cv2.line(mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1, thickness=int(width))


def _graph(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = mask.astype(bool)
    return skeletonize(m), cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)


def _split_shaft(rim: int, groove: int, length: int = 150, angle_deg: float = 20.0) -> np.ndarray:
    """Mask of one shaft whose bright core is missing: two parallel rims of ``rim`` px, ``groove`` px apart."""
    mask = np.zeros((260, 260), np.uint8)
    a = np.radians(angle_deg)
    d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    off = 0.5 * (rim + groove)
    c0 = np.array([50.0, 50.0])
    for s in (-1, 1):
        _bar(mask, c0 + s * off * n, c0 + s * off * n + length * d, rim)
    return mask


@pytest.mark.parametrize(("rim", "groove"), [(3, 5), (4, 6), (5, 8)])
def test_two_parallel_rims_are_one_hair_of_the_whole_width(rim, groove):
    skel, dist = _graph(_split_shaft(rim, groove))
    apart = count_hairs(skel, dist, min_length_px=30, max_split_px=0)
    assert len(apart) == 2  # without the pairing: two thin "hairs"
    hairs = count_hairs(skel, dist, min_length_px=30, max_split_px=30)
    assert len(hairs) == 1
    # Outer edge to outer edge: two rims and the groove (a rim of 3-5 px reads within about 1 px; cv2 lines
    # of even thickness are 1 px wider), far from one rim's width.
    assert_allclose(hairs[0]["width_px"], 2 * rim + groove, atol=2.5)
    # One rim's length (plus the round caps and the half widths at the free ends), not two rims' length.
    assert 140 <= hairs[0]["length_px"] <= 190


def test_default_spacing_limit_follows_min_length():
    skel, dist = _graph(_split_shaft(4, 6))
    assert len(count_hairs(skel, dist, min_length_px=30)) == 1


def test_rims_wider_apart_than_the_widest_shaft_stay_two_hairs():
    skel, dist = _graph(_split_shaft(4, 24))
    assert len(count_hairs(skel, dist, min_length_px=30, max_split_px=20)) == 2


def test_hairs_of_one_unit_fanning_out_are_not_paired():
    mask = np.zeros((260, 260), np.uint8)
    for ang in (10.0, 30.0):  # two hairs from one opening, 20 deg apart: their spacing grows
        a = np.radians(ang)
        _bar(mask, (40, 40), (40 + 180 * np.cos(a), 40 + 180 * np.sin(a)), 4)
    skel, dist = _graph(mask)
    assert len(count_hairs(skel, dist, min_length_px=30, max_split_px=30)) == 2


def test_rims_of_different_lengths_are_not_paired():
    """A short hair beside a long one is two hairs: the rims of one shaft span the same stretch."""
    mask = np.zeros((200, 260), np.uint8)
    _bar(mask, (20, 80), (240, 80), 4)
    _bar(mask, (20, 90), (80, 90), 4)
    skel, dist = _graph(mask)
    assert len(count_hairs(skel, dist, min_length_px=30, max_split_px=30)) == 2


def test_pair_split_rims_reports_indices_and_width():
    skel, dist = _graph(_split_shaft(4, 6, angle_deg=0.0))
    ys, xs = np.nonzero(skel)
    top, bottom = ys < ys.mean(), ys > ys.mean()
    paths = [np.column_stack([ys[sel], xs[sel]])[np.argsort(xs[sel])] for sel in (top, bottom)]
    pairs = pair_split_rims(paths, dist, max_split_px=30, min_rim_px=30)
    assert len(pairs) == 1
    i, j, width = pairs[0]
    assert {i, j} == {0, 1}
    assert_allclose(width, 14, atol=2.0)


def test_pair_split_rims_leaves_inputs_alone_and_handles_few_segments():
    dist = np.zeros((10, 10), np.float32)
    path = np.array([[1, 1], [1, 2]])
    before = path.copy()
    assert pair_split_rims([path], dist, max_split_px=5) == []
    np.testing.assert_array_equal(path, before)


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan")])
def test_pair_split_rims_rejects_bad_spacing_limit(bad):
    with pytest.raises(ValueError, match="max_split_px"):
        pair_split_rims([], np.zeros((4, 4), np.float32), max_split_px=bad)
