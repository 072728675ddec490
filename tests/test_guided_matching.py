"""Tests of tracker.imaging.guided_matching: known transforms recovered from a perturbed first guess."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage import data

from tracker.imaging.features import candidates_from_features, detect_features, working_image
from tracker.imaging.geometry import transform_points
from tracker.imaging.guided_matching import guided_candidates, guided_matches, guided_refits


def _pair(angle: float, scale: float, shift: tuple[float, float]):
    ref = cv2.resize(data.camera(), (600, 600), interpolation=cv2.INTER_AREA)
    c = (299.5, 299.5)
    A = np.vstack([cv2.getRotationMatrix2D(c, angle, scale), [0, 0, 1]])
    A[:2, 2] += shift
    mov = cv2.warpPerspective(ref, A, (600, 600), flags=cv2.INTER_LINEAR)  # A: ref -> mov
    return ref, mov, np.linalg.inv(A)  # truth maps MOVING to REFERENCE


def _inputs(grey: np.ndarray, method: str):
    work, fmask, to_work = working_image(grey, np.full(grey.shape, 255, np.uint8))
    points, desc, _ = detect_features(method, work, fmask)
    return points, desc, work.shape, to_work


def _corner_error(H: np.ndarray, truth: np.ndarray, shape=(600, 600)) -> float:
    corners = np.array([[0, 0], [shape[1] - 1, 0], [0, shape[0] - 1], [shape[1] - 1, shape[0] - 1]], float)
    return float(np.max(np.linalg.norm(transform_points(corners, H) - transform_points(corners, truth), axis=1)))


@pytest.mark.parametrize(
    ("method", "angle", "scale", "shift", "model"),
    [
        ("orb", 10.0, 1.1, (15.0, -10.0), "homography"),
        ("orb", -25.0, 0.9, (-20.0, 5.0), "similarity"),
        ("sift", 5.0, 1.0, (8.0, 12.0), "homography"),
    ],
)
def test_guided_candidate_recovers_known_transform_from_perturbed_guess(method, angle, scale, shift, model):
    ref, mov, truth = _pair(angle, scale, shift)
    guess = np.array([[1, 0, 6.0], [0, 1, -5.0], [0, 0, 1]]) @ truth  # corners about 8 px off
    assert _corner_error(guess, truth) > 5
    (cand,) = guided_candidates(method, _inputs(ref, method), _inputs(mov, method), guess, models=(model,))
    assert cand["guided"] is True and cand["model"] == model
    assert cand["inliers"] >= 50
    assert cand["inlier_ratio"] > 0.8
    corners = np.array([[0, 0], [599, 0], [0, 599], [599, 599]], float)
    assert_allclose(transform_points(corners, cand["matrix"]), transform_points(corners, truth), atol=1.5)


def test_guided_matches_stay_inside_the_window_and_are_one_to_one():
    ref, mov, truth = _pair(12.0, 1.05, (10.0, 4.0))
    pts_r, desc_r, _, to_r = _inputs(ref, "orb")
    pts_m, desc_m, _, to_m = _inputs(mov, "orb")
    H = to_r @ truth @ np.linalg.inv(to_m)
    im, ir, dist = guided_matches("orb", (pts_m, desc_m), (pts_r, desc_r), H, radius=6.0)
    assert len(im) > 100
    assert len(np.unique(im)) == len(im) and len(np.unique(ir)) == len(ir)
    assert np.all(np.linalg.norm(transform_points(pts_m[im], H) - pts_r[ir], axis=1) <= 6.0)
    assert np.all(dist <= 32)
    # A far-off guess finds (almost) nothing that close in descriptor space.
    far = np.array([[1, 0, 150.0], [0, 1, 90.0], [0, 0, 1]]) @ H
    im_far, _, _ = guided_matches("orb", (pts_m, desc_m), (pts_r, desc_r), far, radius=6.0)
    assert len(im_far) < 0.1 * len(im)


def test_unrelated_photos_give_few_guided_inliers():
    ref = cv2.resize(data.camera(), (600, 600), interpolation=cv2.INTER_AREA)
    other = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (600, 600), interpolation=cv2.INTER_AREA)
    r, m = _inputs(ref, "orb"), _inputs(other, "orb")
    found = candidates_from_features("orb", r, m, models=("homography", "similarity"), min_matches=4)
    guided = guided_refits(found, lambda _: r, lambda _: m, models=("homography", "similarity"))
    assert all(c["inliers"] < 15 for c in guided)


def test_guided_refits_needs_a_seed():
    r = _inputs(data.camera(), "orb")
    assert guided_refits([{"method": "orb", "matrix": None, "inliers": 0}], lambda _: r, lambda _: r) == []


def test_empty_keypoints_give_no_matches():
    pts = np.zeros((0, 2))
    im, ir, d = guided_matches("orb", (pts, None), (pts, None), np.eye(3), radius=5.0)
    assert len(im) == len(ir) == len(d) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "akaze"}, "method"),
        ({"radius": 0.0}, "radius"),
        ({"matrix": np.eye(2)}, "3x3"),
        ({"matrix": np.full((3, 3), np.nan)}, "3x3"),
    ],
)
def test_bad_input_raises(kwargs, match):
    pts = np.zeros((3, 2))
    desc = np.zeros((3, 32), np.uint8)
    args = {"method": "orb", "matrix": np.eye(3), "radius": 5.0} | kwargs
    with pytest.raises(ValueError, match=match):
        guided_matches(args["method"], (pts, desc), (pts, desc), args["matrix"], radius=args["radius"])


def test_unknown_model_raises():
    r = _inputs(data.camera(), "orb")
    with pytest.raises(ValueError, match="model"):
        guided_candidates("orb", r, r, np.eye(3), models=("affine",))
