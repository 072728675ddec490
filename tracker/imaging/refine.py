"""ECC refinement and correlation check of a homography (step 3 of :mod:`tracker.imaging.align`).

A feature homography is refined with ``cv2.findTransformECCWithMask`` (homography, masked) on grey
images of about 1000 px: more accurate here than the 500 px DESIGN.md suggests, see ``ECC_LONG_SIDE``.
The masked correlation of the aligned grey images is measured before and after. This module only
measures; :func:`tracker.imaging.align.align_images` decides whether the refinement is kept (it must
raise the correlation and move no corner far) and whether the alignment is accepted.

Matrices map full-resolution pixel ``(x, y, 1)`` of MOVING to full-resolution pixels of REFERENCE
(pixel centres at integer coordinates, OpenCV convention).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tracker.imaging.features import resize_with_mask
from tracker.imaging.geometry import image_corners, resize_matrix, transform_points

__all__ = ["ECC_LONG_SIDE", "ecc_refinement"]

#: Long side of the images used for ECC refinement and the correlation check (px). DESIGN.md suggests
#: about 500; measured here, 1000 halved the corner error (two-visit vertex phantoms: mean 0.81 -> 0.40 px,
#: max 2.09 -> 0.73 px; photo warps: p95 0.52 -> 0.19 px) for about 130 ms more per pair.
ECC_LONG_SIDE = 1000


def _correlation(
    ref: np.ndarray, ref_mask: np.ndarray, mov: np.ndarray, mov_mask: np.ndarray, H: np.ndarray
) -> tuple[float, float]:
    """Masked correlation of REFERENCE and MOVING warped by ``H``, and the share of REFERENCE used."""
    size = (ref.shape[1], ref.shape[0])
    warped = cv2.warpPerspective(mov, H, size, flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(mov_mask, H, size, flags=cv2.INTER_NEAREST, borderValue=0)
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8)) & ref_mask
    n = int(np.count_nonzero(valid))
    if n < 100:
        return 0.0, n / valid.size
    return float(cv2.computeECC(ref, warped, valid)), n / valid.size


def _refine_ecc(
    ref: np.ndarray, ref_mask: np.ndarray, mov: np.ndarray, mov_mask: np.ndarray, H: np.ndarray
) -> np.ndarray | None:
    """ECC refinement of ``H`` (moving -> reference, ECC frames); None when ECC fails."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-6)
    warp = np.linalg.inv(H).astype(np.float32)  # ECC warps template (reference) coords to input coords
    try:
        _, warp = cv2.findTransformECCWithMask(
            ref, mov, ref_mask, mov_mask, warp, cv2.MOTION_HOMOGRAPHY, criteria, 5
        )
    except cv2.error:
        return None
    if not np.all(np.isfinite(warp)) or abs(np.linalg.det(warp)) < 1e-12:
        return None
    refined = np.linalg.inv(warp.astype(np.float64))
    return refined / refined[2, 2]


def ecc_refinement(
    reference: np.ndarray,
    reference_mask: np.ndarray,
    moving: np.ndarray,
    moving_mask: np.ndarray,
    matrix: np.ndarray,
    *,
    refine: bool = True,
) -> dict[str, Any]:
    """Masked correlation of a homography and, optionally, its ECC refinement.

    Parameters
    ----------
    reference, moving : ndarray, shape (H, W), uint8
        Full-resolution grey images (sizes may differ).
    reference_mask, moving_mask : ndarray, shape (H, W), uint8
        0/255 masks of the pixels to compare (255 = used).
    matrix : ndarray, shape (3, 3), float64
        Homography from full-resolution MOVING pixels to REFERENCE pixels.
    refine : bool, default True
        Run ECC; when False only the correlation of ``matrix`` is measured.

    Returns
    -------
    result : dict
        ``correlation`` (masked correlation of the grey images aligned by ``matrix``, at up to
        ``ECC_LONG_SIDE`` px; small images enlarged at most ``MAX_UPSCALE`` times), ``long_side`` (px,
        of MOVING at that size) and ``refined_matrix`` (full-resolution, or None when not refined or
        ECC failed). With a refined matrix, also
        ``refined_correlation`` and ``corner_shift`` (largest move of a MOVING corner, px at
        ``long_side``).
    """
    ref_e, ref_em = resize_with_mask(reference, reference_mask, long_side=ECC_LONG_SIDE)
    mov_e, mov_em = resize_with_mask(moving, moving_mask, long_side=ECC_LONG_SIDE)
    to_ecc_r, to_ecc_m = resize_matrix(reference.shape, ref_e.shape), resize_matrix(moving.shape, mov_e.shape)
    H_e = to_ecc_r @ matrix @ np.linalg.inv(to_ecc_m)
    H_e /= H_e[2, 2]
    rho, _ = _correlation(ref_e, ref_em, mov_e, mov_em, H_e)
    out: dict[str, Any] = {"correlation": rho, "long_side": max(mov_e.shape), "refined_matrix": None}
    H_r = _refine_ecc(ref_e, ref_em, mov_e, mov_em, H_e) if refine else None
    if H_r is None:
        return out
    corners = image_corners(mov_e.shape)
    out["corner_shift"] = np.abs(transform_points(corners, H_r) - transform_points(corners, H_e)).max()
    out["refined_correlation"], _ = _correlation(ref_e, ref_em, mov_e, mov_em, H_r)
    refined = np.linalg.inv(to_ecc_r) @ H_r @ to_ecc_m
    out["refined_matrix"] = refined / refined[2, 2]
    return out
