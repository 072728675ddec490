"""Per-ridge peak contrast (the half-maximum reference of each shaft) on drawn ridges of known height."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.hair_peak import ridge_peak


def _ridges(heights, centres, *, sigma=2.0, shape=(60, 120), noise=0.0, seed=0):
    """Vertical Gaussian ridges of the given heights at the given columns (max, not sum, where they meet)."""
    x = np.arange(shape[1], dtype=np.float32)
    rows = np.zeros(shape[1], np.float32)
    for h, c in zip(heights, centres, strict=True):
        rows = np.maximum(rows, h * np.exp(-0.5 * ((x - c) / sigma) ** 2))
    img = np.repeat(rows[None, :], shape[0], axis=0)
    return img + np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)


@pytest.mark.parametrize("pale", [0.2, 0.35, 0.5])
@pytest.mark.parametrize("gap", [10, 14])
def test_a_pale_ridge_beside_a_dark_one_keeps_its_own_peak(pale, gap):
    c = _ridges([1.0, pale], [40, 40 + gap])
    window = cv2.dilate(c, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (29, 29)))
    peak = ridge_peak(c, window_px=29, spread_px=1.5)
    cols = slice(40 + gap - 2, 40 + gap + 1)  # the pale ridge and its flank towards the dark one
    assert_allclose(peak[10:50, cols], pale, atol=0.02 * pale + 1e-3)
    assert window[10:50, cols].min() > 0.9  # a fixed window borrows the dark ridge's peak
    assert_allclose(peak[10:50, 38:43], 1.0, atol=1e-3)  # the dark ridge keeps its own


def test_bounds_and_noise():
    c = _ridges([1.0, 0.3], [40, 52], noise=0.02, seed=3)
    k = 29
    window = cv2.dilate(c, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    peak = ridge_peak(c, window_px=k)
    assert peak.dtype == np.float32 and peak.shape == c.shape
    assert np.all(peak >= c - 1e-7) and np.all(peak <= window + 1e-7)  # a climb stays within reach
    # with noise, the pale ridge's half maximum still falls far below the dark ridge's
    assert np.median(peak[10:50, 52]) < 0.45


def test_where_limits_the_climb_to_a_super_level_set():
    c = _ridges([1.0, 0.4], [30, 80])
    where = c > 0.1
    full = ridge_peak(c, window_px=15)
    part = ridge_peak(c, window_px=15, where=where)
    assert_allclose(part[where], full[where], atol=1e-6)
    assert np.array_equal(part[~where], c[~where])  # no climb outside: the pixel's own value


def test_input_not_mutated_and_flat_image():
    c = _ridges([0.7], [50])
    before = c.copy()
    ridge_peak(c, window_px=9)
    assert np.array_equal(c, before)
    flat = np.full((20, 30), 0.25, np.float32)
    assert_allclose(ridge_peak(flat, window_px=5), 0.25)


def _climbed(c: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Reference: each pixel of ``where`` walks, one pixel at a time, to the first of its 8 neighbours (rows then
    columns, as ``hair_peak._OFFSETS``) holding the largest value of its 3 x 3 neighbourhood in ``where``, while
    that value exceeds its own; it takes the value it stops at."""
    h, w = c.shape
    out = c.copy()
    for y, x in zip(*np.nonzero(where), strict=True):
        cy, cx = y, x
        while True:
            nbs = [(cy + a, cx + b) for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)]
            nbs = [(i, j) for i, j in nbs if 0 <= i < h and 0 <= j < w and where[i, j]]
            top = max((c[i, j] for i, j in nbs), default=-np.inf)
            if top <= c[cy, cx]:
                break
            cy, cx = next((i, j) for i, j in nbs if c[i, j] == top)
        out[y, x] = c[cy, cx]
    return out


@pytest.mark.parametrize("seed", range(12))
def test_the_climb_follows_the_steepest_neighbour_and_breaks_ties_in_order(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 24, 2))
    # integer levels make plateaus and tied neighbours; normal values make none
    c = (rng.integers(0, 4, shape) if seed % 2 else rng.normal(size=shape)).astype(np.float32)
    where = rng.random(shape) < rng.uniform(0.3, 1.0)
    got = ridge_peak(c, window_px=99, spread_px=0, where=where)
    assert np.array_equal(got, _climbed(c, where))


@pytest.mark.parametrize(
    ("contrast", "kwargs"),
    [
        (np.zeros((4, 4, 3), np.float32), {"window_px": 5}),
        (np.zeros((10, 10), np.float32), {"window_px": 0}),
        (np.zeros((10, 10), np.float32), {"window_px": 5, "where": np.ones((9, 10), bool)}),
        (np.array([[0.1, np.nan], [0.2, 0.3]], np.float32), {"window_px": 3}),
        (np.array([[0.1, np.inf], [0.2, 0.3]], np.float32), {"window_px": 3}),
    ],
)
def test_bad_input_raises(contrast, kwargs):
    with pytest.raises(ValueError):
        ridge_peak(contrast, **kwargs)
