"""Tests of tracker.imaging.geometry (homography helpers); registration is tested in test_align.py."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.geometry import (
    as_homography,
    describe_homography,
    image_corners,
    polygon_is_convex,
    rescale_homography,
    resize_matrix,
    transform_points,
)


@pytest.mark.parametrize(
    ("matrix", "points", "expected"),
    [
        (np.eye(3), [[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]),
        ([[2, 0, 1], [0, 2, -1], [0, 0, 1]], [[1.0, 1.0]], [[3.0, 1.0]]),
        ([[0, -1, 0], [1, 0, 0], [0, 0, 1]], [[1.0, 0.0]], [[0.0, 1.0]]),
        ([[1, 0, 0], [0, 1, 0], [0.5, 0, 1]], [[2.0, 4.0]], [[1.0, 2.0]]),
        ([[2, 0, 0], [0, 2, 0], [0, 0, 2]], [[5.0, 6.0]], [[5.0, 6.0]]),
    ],
)
def test_transform_points_known_values(matrix, points, expected):
    assert_allclose(transform_points(np.array(points), np.array(matrix, float)), expected, atol=1e-12)


def test_transform_points_matches_opencv_and_handles_edge_cases():
    rng = np.random.default_rng(0)
    h = np.array([[1.1, 0.1, 5], [-0.05, 0.9, 3], [1e-4, -2e-4, 1]])
    pts = rng.uniform(0, 500, (50, 2))
    expected = cv2.perspectiveTransform(pts[None].astype(np.float64), h)[0]
    assert_allclose(transform_points(pts, h), expected, rtol=1e-10)
    assert transform_points(np.zeros((0, 2)), h).shape == (0, 2)
    assert transform_points(np.array([1.0, 2.0]), np.eye(3)).shape == (1, 2)
    before = pts.copy()
    transform_points(pts, h)
    np.testing.assert_array_equal(pts, before)
    with pytest.raises(ValueError):
        transform_points(np.zeros((3, 3)), h)
    with pytest.raises(ValueError):
        transform_points(np.array([[np.nan, 1.0]]), h)


def test_resize_matrix_matches_cv2_resize_pixel_centres():
    s = resize_matrix((100, 200), (50, 100))
    assert_allclose(transform_points(np.array([[0.5, 0.5], [199.5, 99.5]]), s), [[0.0, 0.0], [99.5, 49.5]])
    assert_allclose(s @ resize_matrix((50, 100), (100, 200)), np.eye(3), atol=1e-12)


@pytest.mark.parametrize(("angle", "zoom"), [(0.0, 1.0), (30.0, 0.8), (-44.0, 1.3), (170.0, 1.0)])
def test_describe_homography_similarity(angle, zoom):
    a = np.deg2rad(angle)
    h = np.array(
        [[zoom * np.cos(a), -zoom * np.sin(a), 10], [zoom * np.sin(a), zoom * np.cos(a), -4], [0, 0, 1]]
    )
    fig = describe_homography(h, (300, 400))
    assert_allclose(
        [fig["scale"], fig["rotation_deg"], fig["anisotropy"], fig["perspective"]],
        [zoom, angle, 1.0, 0.0],
        atol=1e-9,
    )
    mirrored = describe_homography(np.diag([-1.0, 1.0, 1.0]), (300, 400))
    assert mirrored["scale"] < 0


def test_polygon_convexity_and_homography_checks():
    assert polygon_is_convex(image_corners((10, 20)))
    assert not polygon_is_convex(np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float))  # bow tie
    assert_allclose(as_homography([[2, 0, 0], [0, 2, 0], [0, 0, 2]]), np.eye(3))
    assert as_homography([[1, 0, 3], [0, 1, 4]]).shape == (3, 3)
    with pytest.raises(ValueError):
        as_homography(np.ones((3, 3)))


@pytest.mark.parametrize(
    ("ref_shapes", "mov_shapes"),
    [
        (((750, 1000), (375, 500)), ((600, 800), (750, 1000))),  # reference reduced, moving enlarged
        (((3000, 4000), (750, 1000)), ((3000, 4000), (750, 1000))),  # both to an ECC level
        (((480, 640), (480, 640)), ((240, 320), (120, 160))),  # only the moving image resized
    ],
)
def test_rescale_homography_maps_the_same_points_and_back(ref_shapes, mov_shapes):
    h = np.array([[0.97, -0.12, 14.0], [0.11, 1.02, -9.0], [2e-5, -1e-5, 1.0]])
    pts = np.array([[0.0, 0.0], [123.4, 56.7], [599.0, 399.0]])  # MOVING pixels (from shape)
    scaled = rescale_homography(h, reference=ref_shapes, moving=mov_shapes)
    assert scaled[2, 2] == pytest.approx(1.0)
    # a point resized into the moving copy lands where its image in REFERENCE lands in the reference copy
    expected = transform_points(transform_points(pts, h), resize_matrix(*ref_shapes))
    assert_allclose(transform_points(transform_points(pts, resize_matrix(*mov_shapes)), scaled), expected,
                    atol=1e-9)
    back = rescale_homography(scaled, reference=ref_shapes[::-1], moving=mov_shapes[::-1])
    assert_allclose(back, h / h[2, 2], atol=1e-12)
