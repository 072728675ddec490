"""Regions of interest for global views: defaults per view, rasterising, carrying through a transform.

A region of interest (ROI) is a polygon of ``(N, 2)`` float pixel coordinates ``(x, y)``. It is drawn
once on the baseline photo of a view (or taken from :func:`default_roi`) and carried to every follow-up
through the follow-up's transform to the baseline frame.
"""

from __future__ import annotations

import cv2
import numpy as np

GLOBAL_VIEWS = ("vertex", "frontal", "temporal_left", "temporal_right", "occipital", "midline_part")

# Ellipse of each default ROI as fractions of the image: centre x, centre y, half-width, half-height.
# The vertex default covers the crown of a head photographed from above and centred in the frame.
_DEFAULT_ELLIPSES: dict[str, tuple[float, float, float, float]] = {
    "vertex": (0.5, 0.5, 0.2, 0.25),
    "frontal": (0.5, 0.35, 0.25, 0.15),
    "temporal_left": (0.5, 0.4, 0.2, 0.2),
    "temporal_right": (0.5, 0.4, 0.2, 0.2),
    "occipital": (0.5, 0.45, 0.25, 0.2),
    "midline_part": (0.5, 0.5, 0.08, 0.35),
}


def default_roi(view: str, shape: tuple[int, ...], *, points: int = 64) -> np.ndarray:
    """Return the default ROI polygon of a global view.

    Parameters
    ----------
    view : str
        One of :data:`GLOBAL_VIEWS`.
    shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` of the image the ROI is for.
    points : int, optional
        Number of polygon vertices approximating the ellipse.

    Returns
    -------
    polygon : (points, 2) float64 ndarray
        ``(x, y)`` pixel coordinates.
    """
    if view not in _DEFAULT_ELLIPSES:
        raise ValueError(f"unknown global view {view!r}; expected one of {', '.join(GLOBAL_VIEWS)}")
    if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
        raise ValueError(f"shape must be (H, W[, C]) with positive sizes, got {shape!r}")
    if points < 3:
        raise ValueError("points must be at least 3")
    height, width = shape[0], shape[1]
    cx, cy, rx, ry = _DEFAULT_ELLIPSES[view]
    theta = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    return np.column_stack([(cx + rx * np.cos(theta)) * width, (cy + ry * np.sin(theta)) * height])


def polygon_mask(polygon: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Rasterise a polygon into a boolean mask.

    Parameters
    ----------
    polygon : (N, 2) array_like of float
        ``(x, y)`` vertices in pixel coordinates; parts outside the image are clipped.
    shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` of the mask to build.

    Returns
    -------
    mask : (H, W) bool ndarray
    """
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise ValueError(f"polygon must be an (N, 2) array with N >= 3, got shape {poly.shape}")
    if not np.all(np.isfinite(poly)):
        raise ValueError("polygon has non-finite coordinates")
    mask = np.zeros(shape[:2], dtype=np.uint8)
    # Sub-pixel vertices via the shift argument (4 fractional bits).
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def carry_roi(polygon: np.ndarray, matrix_to_baseline: np.ndarray) -> np.ndarray:
    """Carry an ROI drawn in the baseline frame into a follow-up photo's frame.

    Parameters
    ----------
    polygon : (N, 2) array_like of float
        ROI in baseline pixel coordinates.
    matrix_to_baseline : (3, 3) array_like
        Homography mapping follow-up pixels to baseline pixels (what alignment returns).

    Returns
    -------
    polygon : (N, 2) float64 ndarray
        The ROI in follow-up pixel coordinates.
    """
    matrix = np.asarray(matrix_to_baseline, dtype=np.float64)
    if matrix.shape != (3, 3) or abs(np.linalg.det(matrix)) < 1e-12:
        raise ValueError("matrix_to_baseline must be an invertible 3x3 homography")
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2:
        raise ValueError(f"polygon must be an (N, 2) array, got shape {poly.shape}")
    inverse = np.linalg.inv(matrix)
    homogeneous = np.column_stack([poly, np.ones(len(poly))]) @ inverse.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]
