import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.roi import GLOBAL_VIEWS, carry_roi, default_roi, polygon_mask


@pytest.mark.parametrize("view", GLOBAL_VIEWS)
def test_default_roi_inside_image(view):
    poly = default_roi(view, (1200, 1600, 3))
    assert poly.shape == (64, 2)
    assert (poly[:, 0] >= 0).all() and (poly[:, 0] <= 1600).all()
    assert (poly[:, 1] >= 0).all() and (poly[:, 1] <= 1200).all()


def test_default_roi_rejects_unknown_view_and_bad_shape():
    with pytest.raises(ValueError, match="unknown global view"):
        default_roi("nape", (100, 100))
    with pytest.raises(ValueError):
        default_roi("vertex", (0, 100))


def test_polygon_mask_area_matches_ellipse():
    poly = default_roi("vertex", (1000, 1000), points=256)
    mask = polygon_mask(poly, (1000, 1000))
    expected = np.pi * 200 * 250  # half-axes 0.2 W and 0.25 H
    assert mask.dtype == bool and mask.shape == (1000, 1000)
    assert abs(mask.sum() - expected) / expected < 0.01


def test_polygon_mask_rejects_degenerate():
    with pytest.raises(ValueError):
        polygon_mask(np.array([[0, 0], [1, 1]]), (10, 10))
    with pytest.raises(ValueError):
        polygon_mask(np.array([[0, 0], [1, np.nan], [2, 2]]), (10, 10))


@pytest.mark.parametrize(
    "matrix",
    [
        np.eye(3),
        np.array([[1.0, 0, 30], [0, 1, -12], [0, 0, 1]]),
        np.array([[0.9 * np.cos(0.3), -0.9 * np.sin(0.3), 50], [0.9 * np.sin(0.3), 0.9 * np.cos(0.3), 10], [0, 0, 1]]),
        np.array([[1.02, 0.01, 5], [-0.02, 0.98, 7], [1e-5, -2e-5, 1]]),
    ],
)
def test_carry_roi_is_inverse_of_the_follow_up_transform(matrix):
    follow_up_points = np.array([[100.0, 200.0], [400.0, 220.0], [380.0, 500.0], [90.0, 480.0]])
    homogeneous = np.column_stack([follow_up_points, np.ones(4)]) @ matrix.T
    in_baseline = homogeneous[:, :2] / homogeneous[:, 2:]
    original = in_baseline.copy()
    carried = carry_roi(in_baseline, matrix)
    assert_allclose(carried, follow_up_points, atol=1e-6)
    assert_allclose(in_baseline, original)  # input not mutated


def test_carry_roi_rejects_singular():
    with pytest.raises(ValueError):
        carry_roi(np.zeros((3, 2)), np.zeros((3, 3)))
