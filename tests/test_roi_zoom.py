"""Zoom to the ROI: the box around the polygon (margin, minimum size, kept inside the image and a crop),
the polygon in crop coordinates, and the outline drawn on a copy."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.reports.roi_zoom import crop_polygon, intersect_boxes, outline_roi, roi_box

SQUARE = np.array([[100.0, 50.0], [300.0, 50.0], [300.0, 250.0], [100.0, 250.0]])


@pytest.mark.parametrize("margin, within, expected", [
    (0.0, None, (100, 50, 200, 200)),
    (0.1, None, (80, 30, 240, 240)),
    (0.5, None, (0, 0, 400, 350)),            # clipped to the image
    (0.1, (90, 40, 400, 400), (90, 40, 230, 230)),
])
def test_box_around_the_roi(margin, within, expected):
    shape = (350, 400, 3)
    assert roi_box(SQUARE, shape, margin=margin, within=within) == expected


def test_small_roi_grows_to_the_minimum_size_inside_the_image():
    dot = np.array([[2.0, 2.0], [6.0, 2.0], [4.0, 6.0]])
    assert roi_box(dot, (100, 200), margin=0.0, min_size=64) == (0, 0, 64, 64)
    corner = dot + [190.0, 90.0]
    assert roi_box(corner, (100, 200), margin=0.0, min_size=64) == (136, 36, 64, 64)


@pytest.mark.parametrize("polygon, shape, kwargs", [
    (SQUARE[:2], (300, 400), {}),                               # not a polygon
    (SQUARE + 1000.0, (300, 400), {}),                          # outside the image
    (SQUARE, (300, 400), {"margin": -0.1}),
    (SQUARE, (300, 400), {"min_size": 4}),
    (SQUARE, (300, 400), {"within": (500, 500, 10, 10)}),       # crop outside the image
    (np.array([[0.0, 0.0], [np.nan, 1.0], [1.0, 1.0]]), (300, 400), {}),
])
def test_bad_input_is_refused(polygon, shape, kwargs):
    with pytest.raises(ValueError):
        roi_box(polygon, shape, **kwargs)


def test_intersection_and_crop_coordinates():
    assert intersect_boxes((0, 0, 10, 10), (5, 5, 10, 10)) == (5, 5, 5, 5)
    assert intersect_boxes((0, 0, 10, 10), (10, 0, 5, 5)) is None
    np.testing.assert_allclose(crop_polygon(SQUARE, (80, 30, 240, 240))[0], [20.0, 20.0])


def test_outline_is_drawn_on_a_copy_along_the_polygon():
    image = np.full((300, 400, 3), 40, np.uint8)
    out = outline_roi(image, SQUARE, colour=(255, 0, 0), thickness=3)
    assert (image == 40).all(), "the input is not modified"
    assert out[50, 200, 0] > 200 and out[150, 100, 0] > 200   # on the edges
    assert (out[150, 200] == 40).all() and (out[10, 10] == 40).all()  # inside and outside untouched
    with pytest.raises(ValueError):
        outline_roi(image, SQUARE, thickness=0)
