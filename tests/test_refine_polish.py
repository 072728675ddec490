"""Tests of tracker.imaging.refine_polish (float64 Gauss-Newton polish of a homography)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.geometry import image_corners, transform_points
from tracker.imaging.refine_polish import polish_at_level, polish_homography, polished

SHAPE = (300, 400)
FULL = np.full(SHAPE, 255, np.uint8)


def _smooth_texture(seed: int, sigma: float) -> np.ndarray:
    """Smooth random texture (like enlarged dermoscopy: no sharp corners), uint8 in a wide range."""
    rng = np.random.default_rng(seed)
    f = cv2.GaussianBlur(rng.normal(size=(SHAPE[0] + 200, SHAPE[1] + 200)), (0, 0), sigma)
    f = (f - f.min()) / (f.max() - f.min())
    return np.round(20 + 215 * f).astype(np.uint8)


def _truth(persp: float) -> np.ndarray:
    """MOVING -> REFERENCE: rotation 4 deg, zoom 1.05, shift, perspective ``persp`` (per image width)."""
    a = np.deg2rad(4.0)
    h = np.array([[1.05 * np.cos(a), -1.05 * np.sin(a), 12.0], [1.05 * np.sin(a), 1.05 * np.cos(a), -7.0],
                  [persp / SHAPE[1], -0.5 * persp / SHAPE[0], 1.0]])
    return h / h[2, 2]


def _case(seed: int, sigma: float, persp: float, gain: float = 1.0, offset: float = 0.0):
    """REFERENCE (the texture's centre), MOVING (REFERENCE's content seen through the inverse of the truth)."""
    big = _smooth_texture(seed, sigma)
    ref = big[100:100 + SHAPE[0], 100:100 + SHAPE[1]]
    h = _truth(persp)
    shift = np.array([[1, 0, 100.0], [0, 1, 100.0], [0, 0, 1]])
    # MOVING pixel p shows REFERENCE pixel h(p), i.e. big pixel shift @ h (p).
    mov = cv2.warpPerspective(big, shift @ h, (SHAPE[1], SHAPE[0]), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    mov = np.clip(gain * mov.astype(np.float64) + offset, 0, 255).round().astype(np.uint8)
    return ref, mov, h


def _corner_error(a: np.ndarray, b: np.ndarray) -> float:
    c = image_corners(SHAPE)
    return float(np.linalg.norm(transform_points(c, a) - transform_points(c, b), axis=1).max())


def _off(h: np.ndarray, px: float) -> np.ndarray:
    """``h`` with REFERENCE-side corners moved by about ``px`` (a perspective-and-shift error)."""
    e = np.array([[1, 0, px * 0.6], [0, 1, -px * 0.4], [px * 0.8 / SHAPE[1] ** 2, px * 0.5 / SHAPE[0] ** 2, 1.0]])
    return e @ h


@pytest.mark.parametrize(
    ("seed", "sigma", "persp", "start_px", "gain", "offset"),
    [(0, 6.0, 0.05, 3.0, 1.0, 0.0), (1, 10.0, 0.08, 4.0, 1.0, 0.0), (2, 6.0, 0.0, 2.0, 0.8, 25.0)],
)
def test_recovers_known_homography_on_smooth_texture(seed, sigma, persp, start_px, gain, offset):
    ref, mov, h = _case(seed, sigma, persp, gain, offset)
    start = _off(h, start_px)
    assert _corner_error(start, h) > 1.5
    out = polish_homography(ref, FULL, mov, FULL, start)
    assert out["matrix"] is not None and out["converged"]
    assert _corner_error(out["matrix"], h) < 0.15
    c = image_corners(SHAPE)  # largest move of a corner coordinate, as refine.ecc_at_level's corner_shift
    assert_allclose(out["corner_shift"], np.abs(transform_points(c, out["matrix"]) - transform_points(c, start)).max())


def test_inputs_not_mutated_and_level_wrapper_maps_full_resolution():
    ref, mov, h = _case(3, 6.0, 0.05)
    copies = ref.copy(), mov.copy()
    # the ECC level is half the full resolution: matrices stay between full-resolution pixels
    full_shape = (SHAPE[0] * 2, SHAPE[1] * 2)
    to_level = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1.0]])  # pixel centres, as resize_matrix
    h_full = np.linalg.inv(to_level) @ h @ to_level
    start = np.linalg.inv(to_level) @ _off(h, 3.0) @ to_level
    out = polish_at_level((ref, FULL, full_shape), (mov, FULL, full_shape), start)
    err_full = _corner_error(out["matrix"] / out["matrix"][2, 2], h_full) / 2  # px at the level ~ px at SHAPE
    assert err_full < 0.3
    assert out["long_side"] == max(SHAPE)
    assert np.array_equal(ref, copies[0]) and np.array_equal(mov, copies[1])


def test_too_little_overlap_gives_no_answer():
    ref, mov, _ = _case(4, 6.0, 0.0)
    far = np.array([[1, 0, 395.0], [0, 1, 295.0], [0, 0, 1.0]])  # MOVING lands on REFERENCE's last corner
    out = polish_homography(ref, FULL, mov, FULL, far)
    assert out["matrix"] is None and not out["converged"] and np.isnan(out["corner_shift"])


def test_polished_keeps_the_input_when_refused():
    ref, mov, h = _case(5, 6.0, 0.05)
    start = _off(h, 3.0)
    level = (ref, FULL, SHAPE), (mov, FULL, SHAPE)
    quality: dict = {}
    out = polished(start, *level, judge=lambda m: ({}, "implausible"), max_shift=1.0, quality=quality)
    assert out is start and quality["polished"] is False
    quality = {}
    out = polished(start, *level, judge=lambda m: ({}, None), max_shift=1e-4, quality=quality)  # moves too far
    assert out is start and quality["polished"] is False
    quality = {}
    out = polished(start, *level, judge=lambda m: ({"scale": 1.05}, None), max_shift=0.015, quality=quality)
    assert quality["polished"] is True and quality["scale"] == 1.05
    assert _corner_error(out, h) < 0.15


@pytest.mark.parametrize(
    ("ref", "ref_mask", "mov", "mov_mask", "matrix", "iterations"),
    [
        (FULL.astype(np.float32), FULL, FULL, FULL, np.eye(3), 5),
        (FULL, FULL[:-1], FULL, FULL, np.eye(3), 5),
        (FULL, FULL, FULL[:, :, None], FULL, np.eye(3), 5),
        (FULL, FULL, FULL, FULL.astype(bool), np.eye(3), 5),
        (FULL, FULL, FULL, FULL, np.zeros((3, 3)), 5),
        (FULL, FULL, FULL, FULL, np.eye(3), 0),
    ],
)
def test_bad_input(ref, ref_mask, mov, mov_mask, matrix, iterations):
    with pytest.raises(ValueError):
        polish_homography(ref, ref_mask, mov, mov_mask, matrix, iterations=iterations)
