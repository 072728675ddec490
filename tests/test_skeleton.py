"""Zhang-Suen skeleton without scikit-image (tracker.imaging.skeleton): pixel for pixel as skimage's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize as skimage_skeletonize

from tracker.imaging.skeleton import skeletonize, update_skeleton


@pytest.mark.parametrize("seed", range(12))
def test_same_as_scikit_image_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(3, 160, 2)
    mask = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    if seed % 2:  # blobs and strokes rather than salt and pepper
        mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), rng.uniform(0.7, 3.0)) > 0.5
    before = mask.copy()
    result = skeletonize(mask)
    np.testing.assert_array_equal(mask, before)
    assert result.dtype == bool and result.shape == mask.shape
    np.testing.assert_array_equal(result, skimage_skeletonize(mask))


def test_same_as_scikit_image_on_hair_strokes():
    mask = np.zeros((300, 400), np.uint8)
    rng = np.random.default_rng(3)
    for _ in range(25):
        x0, y0, x1, y1 = rng.integers(0, 400, 4)
        cv2.line(mask, (int(x0), int(y0 % 300)), (int(x1), int(y1 % 300)), 255, int(rng.integers(1, 15)))
    np.testing.assert_array_equal(skeletonize(mask), skimage_skeletonize(mask > 0))


def test_ellipse_reduces_to_its_axis():
    # the example of skimage's documentation
    x, y = np.ogrid[0:9, 0:9]
    ellipse = (1.0 / 3 * (x - 4) ** 2 + (y - 4) ** 2 < 3**2)
    expected = np.zeros((9, 9), bool)
    expected[3:7, 4] = True
    np.testing.assert_array_equal(skeletonize(ellipse), expected)


@pytest.mark.parametrize("width", [1, 4, 9])
def test_bar_becomes_one_pixel_line(width):
    mask = np.zeros((40, 120), bool)
    mask[20 - width // 2:20 - width // 2 + width, 10:110] = True
    skeleton = skeletonize(mask)
    columns = skeleton[:, 20:100].sum(axis=0)
    np.testing.assert_array_equal(columns, 1)  # one pixel across, all along the middle


def test_empty_and_full_border_cases():
    assert not skeletonize(np.zeros((10, 10), bool)).any()
    full = np.ones((5, 7), np.uint8)
    np.testing.assert_array_equal(skeletonize(full), skimage_skeletonize(full.astype(bool)))


def test_rejects_non_2d():
    with pytest.raises(ValueError):
        skeletonize(np.zeros((4, 4, 3), bool))


@pytest.mark.parametrize("seed", [1, 2])
def test_same_as_scikit_image_on_phantom_hair_masks(seed):
    """The masks measure_closeup skeletonises (issue 7 changed how the pending pixels are merged)."""
    closeup = pytest.importorskip("tracker.phantoms.closeup")
    from tracker.imaging.hair import hair_mask

    img = closeup.render_closeup(seed=seed, shape=(300, 400), px_per_mm=150.0, density_per_cm2=150.0 * seed)[0]
    mask = cv2.GaussianBlur(hair_mask(img, px_per_mm=150.0).astype(np.float32), (0, 0), 1.2) >= 0.5
    assert mask.sum() > 1000
    np.testing.assert_array_equal(skeletonize(mask), skimage_skeletonize(mask))


@pytest.mark.parametrize("seed", range(10))
def test_update_skeleton_is_thinning_the_new_mask(seed):
    # Strokes added, joined, cut and erased: only the changed pieces are thinned again, with the same result.
    rng = np.random.default_rng(100 + seed)
    h, w = (int(v) for v in rng.integers(30, 200, 2))
    old = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 15))):
        p0, p1 = (tuple(int(v) for v in rng.integers(0, (w, h))) for _ in range(2))
        cv2.line(old, p0, p1, 1, int(rng.integers(1, 9)))
    new = old.copy()
    for _ in range(int(rng.integers(1, 5))):
        centre = tuple(int(v) for v in rng.integers(0, (w, h)))
        cv2.circle(new, centre, int(rng.integers(1, 10)), int(rng.integers(0, 2)), -1)
    old_skeleton = skeletonize(old)
    frozen = [a.copy() for a in (old, old_skeleton, new)]
    result = update_skeleton(old.astype(bool), old_skeleton, new.astype(bool))
    np.testing.assert_array_equal(result, skeletonize(new))
    for a, b in zip((old, old_skeleton, new), frozen, strict=True):
        np.testing.assert_array_equal(a, b)


def test_update_skeleton_of_an_unchanged_mask_is_a_copy():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 5:50] = True
    skeleton = skeletonize(mask)
    result = update_skeleton(mask, skeleton, mask.copy())
    np.testing.assert_array_equal(result, skeleton)
    assert result is not skeleton


def test_update_skeleton_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        update_skeleton(np.zeros((5, 5)), np.zeros((5, 5), bool), np.zeros((5, 6)))
