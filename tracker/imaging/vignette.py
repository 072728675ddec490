"""The dark ring (vignette) of a dermoscope photo: fixed to the camera, not to the skin.

Registration leaves it out of features and correlation (:mod:`tracker.imaging.features`).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["vignette_mask"]


def vignette_mask(grey: np.ndarray) -> np.ndarray:
    """Pixels outside a dermoscope's dark ring (vignette): True where the skin is seen.

    The dark circular vignette of a dermoscope is fixed to the camera, not to the skin: features on its
    edge pull a registration towards the identity and its pixels lower the correlation of a correct
    alignment. When at least two corners of the photo are near-black (below ``min(50, 0.35 x median)``),
    the near-black regions holding those corners are taken as the ring and excluded, with a margin of 5 %
    of the short side for its soft edge. A corner is dark when a square of 3 % of the short side there is
    at least 80 % near-black: a dark lesion reaching one corner, or dark hairs crossing corners, are not a
    ring.

    Parameters
    ----------
    grey : ndarray, shape (H, W), uint8
        Grey image.

    Returns
    -------
    mask : ndarray, shape (H, W), bool
        True where features and correlation may use the pixel; all True when no ring is found or when
        it would leave less than a third of the photo.

    Raises
    ------
    ValueError
        Not a 2-D uint8 array.
    """
    if not isinstance(grey, np.ndarray) or grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError("grey must be a 2-D uint8 numpy array")
    h, w = grey.shape
    keep = np.ones((h, w), dtype=bool)
    threshold = min(50.0, 0.35 * float(np.median(grey)))
    dark = (cv2.medianBlur(grey, 3) < threshold).astype(np.uint8)
    if not dark.any():
        return keep
    # A corner is dark when a square of 3 % of the short side there is (almost) all dark: thin dark hairs
    # crossing a corner are not a ring.
    c = max(2, round(0.03 * min(h, w)))
    squares = [(slice(0, c), slice(0, c)), (slice(0, c), slice(w - c, w)),
               (slice(h - c, h), slice(0, c)), (slice(h - c, h), slice(w - c, w))]
    dark_corners = [sq for sq in squares if dark[sq].mean() >= 0.8]
    if len(dark_corners) < 2:  # a ring darkens at least two corners
        return keep
    _, labels = cv2.connectedComponents(dark, connectivity=8)
    ring_labels = {int(v) for sq in dark_corners for v in np.unique(labels[sq])} - {0}
    ring = np.isin(labels, sorted(ring_labels)).astype(np.uint8) * 255
    r = max(1, round(0.05 * min(h, w)))
    ring = cv2.dilate(ring, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    keep = ring == 0
    return keep if keep.mean() >= 1 / 3 else np.ones((h, w), dtype=bool)
