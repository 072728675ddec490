"""Tests of :mod:`tracker.imaging.refine`: ECC refinement, correlation check and split-half uncertainty.

Pairs are views of scikit-image's bundled photos under a known homography (truth exact), with a tone
change and noise on the moving view; the "feature answer" handed to ECC is the truth moved a few pixels.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage import data

from tracker.imaging import refine
from tracker.imaging.features import resize_with_mask
from tracker.imaging.geometry import image_corners, transform_points
from tracker.imaging.refine import (
    ECC_LONG_SIDE,
    SPLIT_LONG_SIDE,
    coarse_level_needed,
    ecc_at_level,
    ecc_refinement,
    split_half_at_level,
    split_half_uncertainty,
)

VIEW = (750, 1000)


@cache
def source(name: str) -> np.ndarray:
    """Grey photo enlarged to a long side of 1600 px (the views are cut from it)."""
    img = getattr(data, name)()
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    s = 1600 / max(grey.shape)
    return cv2.resize(grey, (round(grey.shape[1] * s), round(grey.shape[0] * s)), interpolation=cv2.INTER_CUBIC)


def about_centre(shape, angle=0.0, zoom=1.0, shift=(0.0, 0.0), persp=(0.0, 0.0)) -> np.ndarray:
    """Homography of a view: rotation, zoom and perspective about the view's centre, then a shift (px)."""
    h, w = shape
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1.0]])
    t = np.radians(angle)
    m = np.array([[zoom * np.cos(t), -zoom * np.sin(t), shift[0]], [zoom * np.sin(t), zoom * np.cos(t), shift[1]],
                  [persp[0] / w, persp[1] / h, 1.0]])
    return c @ m @ np.linalg.inv(c)


@cache
def pair(name: str, angle: float, zoom: float, persp: tuple[float, float], gamma: float):
    """REFERENCE and MOVING views (uint8 grey, ``VIEW``), and the true homography MOVING -> REFERENCE."""
    src = source(name)
    offset = np.array([[1, 0, (src.shape[1] - VIEW[1]) / 2], [0, 1, (src.shape[0] - VIEW[0]) / 2], [0, 0, 1.0]])
    a_ref = offset  # view pixel -> source pixel
    a_mov = offset @ about_centre(VIEW, angle, zoom, (25.0, -15.0), persp)
    size = (VIEW[1], VIEW[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    ref = cv2.warpPerspective(src, a_ref, size, flags=flags)
    mov = cv2.warpPerspective(src, a_mov, size, flags=flags).astype(np.float64)
    noise = np.random.default_rng(0).normal(0, 2.0, mov.shape)
    mov = np.clip(255 * (mov / 255) ** gamma + noise, 0, 255).astype(np.uint8)
    h = np.linalg.inv(a_ref) @ a_mov
    return ref, mov, h / h[2, 2]


def corner_error(h_est, h_true, shape) -> float:
    c = image_corners(shape)
    return float(np.linalg.norm(transform_points(c, h_est) - transform_points(c, h_true), axis=1).max())


FULL = np.full(VIEW, 255, np.uint8)
#: A feature answer a little off: 2 px right, 1.5 px up and 0.2 degrees (about 2.5 px at the corners).
NUDGE = about_centre(VIEW, angle=0.2, shift=(2.0, -1.5))

CASES = [
    ("astronaut", 8.0, 1.1, (0.0, 0.0), 1.0),
    ("coffee", -12.0, 0.9, (0.04, -0.03), 1.3),
    ("chelsea", 3.0, 1.0, (-0.03, 0.0), 0.75),
]


@pytest.mark.parametrize(("name", "angle", "zoom", "persp", "gamma"), CASES)
def test_refinement_recovers_a_known_homography(name, angle, zoom, persp, gamma):
    ref, mov, h_true = pair(name, angle, zoom, persp, gamma)
    start = h_true @ NUDGE
    assert corner_error(start, h_true, VIEW) > 1.5
    out = ecc_refinement(ref, FULL, mov, FULL, start)
    assert out["refined_matrix"] is not None
    assert corner_error(out["refined_matrix"], h_true, VIEW) < 0.2
    assert out["refined_correlation"] > out["correlation"]
    assert out["matched_refined_correlation"] > out["matched_correlation"]
    assert out["long_side"] == ECC_LONG_SIDE
    c = image_corners(VIEW)  # corner_shift: largest coordinate move of a corner
    moved = np.abs(transform_points(c, out["refined_matrix"]) - transform_points(c, start)).max()
    assert_allclose(out["corner_shift"], moved, rtol=1e-6)


def test_few_fine_iterations_give_the_converged_answer(monkeypatch):
    """The full-size level stops after ``FINE_ITERATIONS`` (``FINE_AFTER_COARSE`` after the half-size pass): the
    answer of a run left to converge is the same."""
    ref, mov, h_true = pair(*CASES[1])
    start = h_true @ NUDGE
    capped = [ecc_refinement(ref, FULL, mov, FULL, start, coarse=c)["refined_matrix"] for c in (True, False)]
    monkeypatch.setattr(refine, "FINE_ITERATIONS", 30)
    monkeypatch.setattr(refine, "FINE_AFTER_COARSE", 30)
    converged = [ecc_refinement(ref, FULL, mov, FULL, start, coarse=c)["refined_matrix"] for c in (True, False)]
    for a, b in zip(capped, converged, strict=True):
        assert corner_error(a, b, VIEW) < 0.05


@pytest.mark.parametrize("case", CASES[:2])
def test_a_close_start_needs_no_coarse_pass(case):
    """From a feature answer 2.5 px off, the full-size level alone reaches the coarse-to-fine answer."""
    ref, mov, h_true = pair(*case)
    start = h_true @ NUDGE
    both = ecc_refinement(ref, FULL, mov, FULL, start)["refined_matrix"]
    fine_only = ecc_refinement(ref, FULL, mov, FULL, start, coarse=False)["refined_matrix"]
    assert corner_error(fine_only, both, VIEW) < 0.1
    assert corner_error(fine_only, h_true, VIEW) < 0.2


@pytest.mark.parametrize(
    ("inliers", "ratio", "spread", "rmse", "needed"),
    [
        (1100, 0.91, 0.54, 1.37, False),  # bundled photo, known warp
        (412, 0.88, 0.67, 0.88, False),  # sample vertex follow-up, hair masked
        (206, 0.79, 0.72, 0.93, False),  # 12 MP vertex follow-up, hair masked
        (199, 0.91, 0.54, 1.37, True),  # too few inliers
        (1100, 0.59, 0.54, 1.37, True),  # too small a share
        (1100, 0.91, 0.39, 1.37, True),  # clustered
        (1100, 0.91, 0.54, 2.01, True),  # loose fit
        (1100, 0.91, 0.54, float("nan"), True),
    ],
)
def test_coarse_level_needed(inliers, ratio, spread, rmse, needed):
    assert coarse_level_needed(inliers, ratio, spread, rmse) is needed


def test_without_refinement_only_the_correlation_is_measured():
    ref, mov, h_true = pair(*CASES[0])
    right = ecc_refinement(ref, FULL, mov, FULL, h_true, refine=False)
    wrong = ecc_refinement(ref, FULL, mov, FULL, h_true @ about_centre(VIEW, shift=(6.0, 4.0)), refine=False)
    assert right["refined_matrix"] is None and "corner_shift" not in right
    assert right["correlation"] > 0.95
    assert wrong["correlation"] < right["correlation"] - 0.05


def test_masked_out_pixels_do_not_matter():
    """Garbage under the mask (hair, in global views) leaves the refinement unchanged."""
    ref, mov, h_true = pair(*CASES[0])
    mask = FULL.copy()
    mask[200:450, 300:650] = 0
    spoiled = ref.copy()
    spoiled[200:450, 300:650] = np.random.default_rng(1).integers(0, 256, (250, 350), dtype=np.uint8)
    start = h_true @ NUDGE
    clean = ecc_refinement(ref, mask, mov, FULL, start)
    dirty = ecc_refinement(spoiled, mask, mov, FULL, start)
    assert_allclose(dirty["correlation"], clean["correlation"], atol=2e-3)
    assert corner_error(dirty["refined_matrix"], clean["refined_matrix"], VIEW) < 0.05
    assert corner_error(dirty["refined_matrix"], h_true, VIEW) < 0.2


def test_ecc_at_level_is_ecc_refinement_on_reduced_copies():
    """Full-resolution photos (2000 px): the reduced-copy entry point gives the same answer, in full-res px."""
    ref, mov, h_true = pair(*CASES[2])
    big = [cv2.resize(x, (2000, 1500), interpolation=cv2.INTER_CUBIC) for x in (ref, mov)]
    masks = [np.full(b.shape, 255, np.uint8) for b in big]
    s = np.diag([2.0, 2.0, 1.0])  # half-pixel offsets are below the tolerance here
    start = s @ h_true @ NUDGE @ np.linalg.inv(s)
    direct = ecc_refinement(big[0], masks[0], big[1], masks[1], start)
    levels = [(*resize_with_mask(b, m, long_side=ECC_LONG_SIDE), b.shape) for b, m in zip(big, masks, strict=True)]
    staged = ecc_at_level(levels[0], levels[1], start)
    assert_allclose(staged["refined_matrix"], direct["refined_matrix"])
    assert corner_error(direct["refined_matrix"], s @ h_true @ np.linalg.inv(s), big[1].shape) < 0.6


def test_inputs_not_mutated():
    ref, mov, h_true = pair(*CASES[0])
    args = [ref, FULL, mov, FULL.copy(), h_true @ NUDGE]
    before = [a.copy() for a in args]
    ecc_refinement(*args)
    split_half_uncertainty(*args)
    for a, b in zip(args, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", CASES[:2])
def test_split_half_is_small_on_detail_and_large_when_extrapolated(case):
    ref, mov, h_true = pair(*case)
    textured = split_half_uncertainty(ref, FULL, mov, FULL, h_true)
    assert 0 <= textured < 0.3
    # Only a 60x60 patch of the reference may be compared: the corners are extrapolated far.
    patch = np.zeros_like(FULL)
    patch[330:390, 470:530] = 255
    extrapolated = split_half_uncertainty(ref, patch, mov, FULL, h_true)
    assert extrapolated > 3 * textured and extrapolated > 0.5


def test_split_half_with_few_iterations_matches_a_converged_run(monkeypatch):
    """``SPLIT_ITERATIONS`` steps per half give the figure of halves left to converge (within 10 %)."""
    ref, mov, h_true = pair(*CASES[1])
    patch = np.zeros_like(FULL)
    patch[250:500, 350:650] = 255  # a quarter of the view: a figure well above zero
    start = h_true @ NUDGE  # the halves start a little off, as from an unrefined feature answer
    capped = split_half_uncertainty(ref, patch, mov, FULL, start)
    monkeypatch.setattr(refine, "SPLIT_ITERATIONS", 20)
    converged = split_half_uncertainty(ref, patch, mov, FULL, start)
    assert converged > 0.05
    assert_allclose(capped, converged, rtol=0.1)


def test_split_half_at_level_matches_split_half_uncertainty():
    ref, mov, h_true = pair(*CASES[0])
    levels = [(*resize_with_mask(x, FULL, long_side=SPLIT_LONG_SIDE), VIEW) for x in (ref, mov)]
    assert_allclose(split_half_at_level(levels[0], levels[1], h_true),
                    split_half_uncertainty(ref, FULL, mov, FULL, h_true))


GOOD = np.zeros((40, 50), np.uint8)
GOOD_MASK = np.full((40, 50), 255, np.uint8)


@pytest.mark.parametrize(
    ("ref", "ref_mask", "matrix"),
    [
        (GOOD.astype(np.float32), GOOD_MASK, np.eye(3)),  # not uint8
        (np.zeros((40, 50, 3), np.uint8), GOOD_MASK, np.eye(3)),  # not grey
        (GOOD, GOOD_MASK[:30], np.eye(3)),  # mask of another shape
        (GOOD, GOOD_MASK > 0, np.eye(3)),  # bool mask, not 0/255 uint8
        (GOOD, GOOD_MASK, np.full((3, 3), np.nan)),  # not a homography
        (GOOD, GOOD_MASK, np.zeros((3, 3))),  # singular
    ],
)
def test_bad_inputs_raise_value_error(ref, ref_mask, matrix):
    with pytest.raises(ValueError):
        ecc_refinement(ref, ref_mask, GOOD, GOOD_MASK, matrix)
    with pytest.raises(ValueError):
        split_half_uncertainty(ref, ref_mask, GOOD, GOOD_MASK, matrix)
