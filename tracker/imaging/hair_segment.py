"""Binary clean-up steps of the close-up hair mask (step 3 of :mod:`tracker.imaging.hair`).

Plain functions on (H, W) bool masks; inputs are never mutated.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["close_grooves", "drop_blobs", "fill_small_holes", "hysteresis"]


def hysteresis(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    n, labels = cv2.connectedComponents(low.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[labels[high & low]] = True  # repeated labels are harmless: no np.unique sort (issue 7)
    keep[0] = False
    return keep[labels]


def fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    inv = (~mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3], stats[:, 4]
    touches = (x == 0) | (y == 0) | (x + bw >= w) | (y + bh >= h)
    fill = (area <= max_area) & ~touches
    fill[0] = False
    return mask | fill[labels]


def close_grooves(mask: np.ndarray, *, groove_px: float, rim_share: float) -> np.ndarray:
    """Fill grooves narrower than ``groove_px`` between thin rims (one shaft with a sheen, not two hairs).

    A groove pixel added by a closing is kept only where the pieces on either side are thin for the
    closed shaft (their half width under ``rim_share`` of the closed one): two rims of one shaft, not
    two whole hairs lying side by side.
    """
    k = int(round(groove_px)) | 1
    if k < 3:
        return mask
    m8 = mask.astype(np.uint8)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    closed = cv2.morphologyEx(m8, cv2.MORPH_CLOSE, disc)
    added = closed.astype(bool) & ~mask
    if not added.any():
        return mask
    win = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    d_orig = cv2.dilate(cv2.distanceTransform(m8, cv2.DIST_L2, 3), win)
    d_closed = cv2.dilate(cv2.distanceTransform(closed, cv2.DIST_L2, 3), win)
    return mask | (added & (d_orig < rim_share * d_closed))


def drop_blobs(mask: np.ndarray, *, min_area: float, min_length: float, elongation: float = 3.0) -> np.ndarray:
    """Remove components that are too small, or not long for their mean width (dots, blots).

    A component is kept when its longest side (minimum-area rectangle) is at least ``min_length`` and at
    least ``elongation`` times its mean width (area / longest side).
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    # The rectangle's long side is at most the bounding box's diagonal (+1): components that fail even
    # with the diagonal are skipped without a rectangle fit (same result, fewer Python iterations).
    area_all = stats[:, cv2.CC_STAT_AREA].astype(float)
    reach = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) + 1.0
    maybe = (area_all >= min_area) & (reach >= min_length) & (reach**2 >= elongation * area_all)
    maybe[0] = False
    for i in np.flatnonzero(maybe).tolist():
        area = stats[i, cv2.CC_STAT_AREA]
        x, y, bw, bh = stats[i, :4]
        ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == i)
        # Only the first and last pixel of each row can be corners of the convex hull that minAreaRect
        # fits to (the same rectangle, 7x fewer points; tests/test_hair_segment.py checks it).
        ends = np.ones(len(ys) + 1, bool)
        np.not_equal(ys[1:], ys[:-1], out=ends[1:-1])
        row_end = ends[1:] | ends[:-1]
        pts = np.column_stack([xs[row_end], ys[row_end]]).astype(np.float32)
        (_, _), (rw, rh), _ = cv2.minAreaRect(pts)
        long_side = max(rw, rh) + 1
        # A shaft is long for its mean width (area / length); pigment blots and scales are not.
        if long_side < min_length or long_side**2 < elongation * area:
            continue
        keep[i] = True
    return keep[labels]
