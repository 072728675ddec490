"""Zoom comparison images to the region of interest, and draw the ROI outline on a photo.

The region of interest (ROI) is an ``(N, 2)`` polygon of ``(x, y)`` pixels in the frame the comparison is
shown in (see :mod:`tracker.imaging.roi`). :func:`roi_box` turns it into the ``(x, y, width, height)`` box
that :func:`tracker.reports.compare.side_by_side` and friends take as ``crop=``; :func:`crop_polygon` moves
the polygon into that box's coordinates; :func:`outline_roi` draws it. Every function returns new values
and never modifies its inputs.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.imaging.display import checked_rgb

__all__ = ["crop_polygon", "intersect_boxes", "outline_roi", "roi_box"]

Crop = tuple[int, int, int, int]


def _polygon(polygon: np.ndarray) -> np.ndarray:
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise ValueError(f"polygon must be an (N, 2) array with N >= 3, got shape {poly.shape}")
    if not np.all(np.isfinite(poly)):
        raise ValueError("polygon has non-finite coordinates")
    return poly


def _box(box: Crop, name: str) -> Crop:
    if len(box) != 4 or any(isinstance(v, bool) or int(v) != v for v in box):
        raise ValueError(f"{name} must be (x, y, width, height) integers, got {box!r}")
    x, y, w, h = (int(v) for v in box)
    if w < 1 or h < 1:
        raise ValueError(f"{name} must have a positive width and height, got {box!r}")
    return x, y, w, h


def intersect_boxes(a: Crop, b: Crop) -> Crop | None:
    """The overlap of two ``(x, y, width, height)`` boxes, or None when they do not overlap."""
    ax, ay, aw, ah = _box(a, "a")
    bx, by, bw, bh = _box(b, "b")
    x0, y0 = max(ax, bx), max(ay, by)
    x1, y1 = min(ax + aw, bx + bw), min(ay + ah, by + bh)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def roi_box(
    polygon: np.ndarray,
    shape: tuple[int, ...],
    *,
    margin: float = 0.1,
    min_size: int = 64,
    within: Crop | None = None,
) -> Crop:
    """Box around an ROI polygon, widened by a margin, kept inside the image (and inside ``within``).

    Parameters
    ----------
    polygon : (N, 2) array_like of float
        ROI vertices ``(x, y)`` in pixels of the image of ``shape``.
    shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` of the image.
    margin : float
        Extra border on every side as a fraction of the ROI's larger side (0 = tight box), in [0, 2].
    min_size : int
        Smallest width and height of the box in pixels (a tiny ROI still gives a viewable zoom), at least 8.
    within : (x, y, width, height), optional
        A box the result must stay inside, e.g. the common crop of two warped photos (where both have
        content).

    Returns
    -------
    (x, y, width, height) : tuple of int
        Integer pixel box; usable as ``crop=`` of the comparison functions.

    Raises
    ------
    ValueError
        Bad polygon, shape, margin or size, or an ROI that does not overlap the image (or ``within``).
    """
    poly = _polygon(polygon)
    if len(shape) < 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
        raise ValueError(f"shape must be (H, W[, C]) with positive sizes, got {shape!r}")
    if not isinstance(margin, int | float) or not 0.0 <= float(margin) <= 2.0:
        raise ValueError(f"margin must be a number in [0, 2], got {margin!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 8:
        raise ValueError(f"min_size must be an integer of at least 8, got {min_size!r}")
    height, width = int(shape[0]), int(shape[1])
    limit = (0, 0, width, height) if within is None else intersect_boxes((0, 0, width, height), within)
    if limit is None:
        raise ValueError(f"within={within!r} lies outside the image")
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    pad = float(margin) * max(x1 - x0, y1 - y0)
    box_x0, box_y0 = int(np.floor(x0 - pad)), int(np.floor(y0 - pad))
    box_x1, box_y1 = int(np.ceil(x1 + pad)), int(np.ceil(y1 + pad))
    box_x0, box_x1 = _grow(box_x0, box_x1, min_size, limit[0], limit[0] + limit[2])
    box_y0, box_y1 = _grow(box_y0, box_y1, min_size, limit[1], limit[1] + limit[3])
    if box_x1 <= box_x0 or box_y1 <= box_y0:
        raise ValueError("the region of interest lies outside the image")
    return box_x0, box_y0, box_x1 - box_x0, box_y1 - box_y0


def _grow(lo: int, hi: int, size: int, lo_limit: int, hi_limit: int) -> tuple[int, int]:
    """Clip [lo, hi) to the limits; widen it about its centre to SIZE when it is smaller (room allowing)."""
    lo, hi = max(lo, lo_limit), min(hi, hi_limit)
    if hi <= lo:
        return lo, hi
    if hi - lo < size:
        centre = (lo + hi) / 2.0
        lo = int(round(centre - size / 2.0))
        hi = lo + size
        if lo < lo_limit:
            lo, hi = lo_limit, lo_limit + size
        if hi > hi_limit:
            lo, hi = max(lo_limit, hi_limit - size), hi_limit
    return lo, hi


def crop_polygon(polygon: np.ndarray, crop: Crop) -> np.ndarray:
    """The polygon in the coordinates of a crop box: ``(x - crop_x, y - crop_y)`` as a new (N, 2) float64 array."""
    poly = _polygon(polygon)
    x, y, _, _ = _box(crop, "crop")
    return poly - np.array([x, y], dtype=np.float64)


def outline_roi(
    image: np.ndarray,
    polygon: np.ndarray,
    *,
    colour: tuple[int, int, int] = (255, 214, 0),
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of IMAGE with the ROI polygon drawn as a closed anti-aliased line.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB photo. Not modified.
    polygon : (N, 2) array_like of float
        ROI vertices ``(x, y)`` in IMAGE's pixels; parts outside the image are clipped.
    colour : (int, int, int)
        RGB of the line (default a yellow that reads on skin and hair).
    thickness : int, optional
        Line width in pixels; default ``max(2, long side // 300)``.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    img = checked_rgb(image)
    poly = _polygon(polygon)
    width = max(2, max(img.shape[:2]) // 300) if thickness is None else int(thickness)
    if width < 1:
        raise ValueError(f"thickness must be at least 1, got {thickness!r}")
    out = np.ascontiguousarray(img).copy()
    points = np.round(poly * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(out, [points], True, tuple(int(c) for c in colour), width, lineType=cv2.LINE_AA, shift=4)
    return out
