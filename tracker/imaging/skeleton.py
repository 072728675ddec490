"""Skeleton of a binary mask (Zhang-Suen thinning) with numpy and OpenCV only.

The same result as ``skimage.morphology.skeletonize`` (2-D, Zhang's method, scikit-image's look-up
table; checked pixel for pixel in tests/test_skeleton.py), without importing scikit-image and SciPy
(about 1-2 s of start-up on this machine, paid by every ``tracker analyze`` call). The headless OpenCV
wheel has no ``ximgproc.thinning``.

Each sub-iteration is parallel (every pixel is judged on the mask as it was at the start of the
sub-iteration), so it runs vectorised: the 8 neighbours of each candidate pixel coded in a byte, and a
look-up table of the removable codes, for the pixels whose neighbourhood changed since they were last
judged (at first the mask's outline), so the work follows the shrinking front.

A pixel is judged on its 3 x 3 neighbourhood only, so each 8-connected piece of the mask thins as if it
were alone: :func:`update_skeleton` re-thins only the pieces of a mask that differ from one already
thinned (the close-up measurement thins its hair mask once before and once after a few pieces are
re-admitted; issue 7).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["skeletonize", "update_skeleton"]


#: scikit-image's Zhang-Suen table (``skimage/morphology/_skeletonize_various_cy.pyx``, BSD-3-Clause):
#: per neighbour code (bit 0 north-west, 1 north, 2 north-east, 3 east, 4 south-east, 5 south,
#: 6 south-west, 7 west), 1 = removable in the first sub-iteration, 2 = in the second, 3 = in both. It differs
#: from the textbook conditions at dense diagonal contacts, so it is used as it is.
_ZHANG_TABLE = np.array([
    0, 0, 0, 1, 0, 0, 1, 3, 0, 0, 3, 1, 1, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 3, 0, 3, 3,
    0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 2, 0,
    0, 0, 3, 1, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 1, 3, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 0, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 0, 0, 0,
], np.uint8)
_FIRST = np.isin(_ZHANG_TABLE, (1, 3)).astype(np.uint8)
_SECOND = np.isin(_ZHANG_TABLE, (2, 3)).astype(np.uint8)


def _unique(indices: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """``indices`` without repeats (order not kept), in O(n): each index keeps its last position."""
    positions = np.arange(indices.size)
    slot[indices] = positions
    return indices[slot[indices] == positions]


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a 2-D binary mask (Zhang-Suen thinning).

    Parameters
    ----------
    mask : (H, W) ndarray
        Binary image; nonzero (or True) is foreground. Not modified.

    Returns
    -------
    (H, W) bool ndarray
        The skeleton; pixels on the image border are treated as having background outside.

    Raises
    ------
    ValueError
        If ``mask`` is not 2-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    out = np.zeros(mask.shape, bool)
    binary = mask.view(np.uint8) if mask.dtype == bool else (mask != 0).view(np.uint8)
    c0, r0, w, h = cv2.boundingRect(binary)
    if w == 0 or h == 0:
        return out
    # one pixel of background around the box, so every neighbour index stays inside
    image = np.zeros((h + 2, w + 2), np.uint8)
    image[1:-1, 1:-1] = binary[r0:r0 + h, c0:c0 + w]
    width = image.shape[1]
    offsets = np.array([-width - 1, -width, -width + 1, 1, width + 1, width, width - 1, -1], np.intp)
    flat = image.ravel()
    slot = np.empty(flat.size, np.intp)  # scratch for _unique
    # Only foreground pixels with a background neighbour can be removed (an interior pixel's code is 255,
    # never removable). A pixel kept by a sub-iteration is kept by the next one of the same kind unless
    # its neighbourhood changed: each kind re-judges only the pixels around the removals since its last run.
    edge = image & ~cv2.erode(image, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    pending = [np.flatnonzero(edge), np.flatnonzero(edge)]
    while pending[0].size or pending[1].size:
        for kind, table in enumerate((_FIRST, _SECOND)):
            judge = pending[kind]
            judge = judge[flat[judge] == 1]
            pending[kind] = judge[:0]
            if not judge.size:
                continue
            code = np.zeros(judge.size, np.uint8)
            for bit, offset in enumerate(offsets):
                code |= flat[judge + offset] << bit
            drop = judge[table[code] == 1]  # judged on the mask as it was before this sub-iteration
            if drop.size:
                flat[drop] = 0
                around = (drop[:, None] + offsets).ravel()
                around = _unique(around[flat[around] == 1], slot)
                # this kind's list was emptied above; only the other kind's needs merging (issue 7)
                other = pending[1 - kind]
                pending[kind] = around
                pending[1 - kind] = _unique(np.concatenate([other, around]), slot) if other.size else around
    out[r0:r0 + h, c0:c0 + w] = image[1:-1, 1:-1].astype(bool)
    return out


def update_skeleton(old_mask: np.ndarray, old_skeleton: np.ndarray, new_mask: np.ndarray) -> np.ndarray:
    """``skeletonize(new_mask)``, given ``old_skeleton = skeletonize(old_mask)``: only the pieces that changed
    are thinned again.

    Each 8-connected piece thins on its own (a pixel is judged on its 3 x 3 neighbourhood), so a piece of
    ``old_mask | new_mask`` where the two masks agree keeps its old skeleton; the pieces where they differ
    are thinned afresh. The result is the same, pixel for pixel, as thinning ``new_mask``.

    Parameters
    ----------
    old_mask, new_mask : (H, W) ndarray
        Binary masks (nonzero is foreground) of the same shape.
    old_skeleton : (H, W) bool ndarray
        ``skeletonize(old_mask)``.

    Returns
    -------
    (H, W) bool ndarray

    Raises
    ------
    ValueError
        Shapes that differ or are not 2-D.
    """
    old = np.asarray(old_mask) != 0
    new = np.asarray(new_mask) != 0
    old_skel = np.asarray(old_skeleton, dtype=bool)
    if old.ndim != 2 or old.shape != new.shape or old_skel.shape != old.shape:
        raise ValueError(f"need three 2-D arrays of one shape, got {old.shape}, {old_skel.shape}, {new.shape}")
    changed = old != new
    if not changed.any():
        return old_skel.copy()
    _, labels = cv2.connectedComponents((old | new).view(np.uint8), connectivity=8)
    touched = np.zeros(int(labels.max()) + 1, bool)
    touched[labels[changed]] = True
    region = touched[labels]
    return (old_skel & ~region) | skeletonize(new & region)
