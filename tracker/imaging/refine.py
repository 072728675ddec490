"""ECC refinement and correlation check of a homography (step 3 of :mod:`tracker.imaging.align`).

A feature homography is refined with ``cv2.findTransformECCWithMask`` (homography, masked) on grey
images of about 1000 px: more accurate here than the 500 px DESIGN.md suggests, see ``ECC_LONG_SIDE``.
ECC runs a half-size pass (skipped when the feature evidence is tight, :func:`coarse_level_needed`), then at
most ``FINE_ITERATIONS`` steps at full ECC size (``FINE_AFTER_COARSE`` after the half-size pass): most of
ECC's cost is per step (about 40 ms at 1000 px).
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
from tracker.imaging.geometry import (
    as_homography,
    image_corners,
    rescale_homography,
    resize_matrix,
    transform_points,
)

__all__ = [
    "ECC_LONG_SIDE",
    "SPLIT_LONG_SIDE",
    "coarse_level_needed",
    "ecc_at_level",
    "ecc_refinement",
    "matched_intensities",
    "split_half_at_level",
    "split_half_uncertainty",
]

#: Long side of the images used for ECC refinement and the correlation check (px). DESIGN.md suggests
#: about 500; measured here, 1000 halved the corner error (two-visit vertex phantoms: mean 0.81 -> 0.40 px,
#: max 2.09 -> 0.73 px; photo warps: p95 0.52 -> 0.19 px) for about 130 ms more per pair.
ECC_LONG_SIDE = 1000


#: ECC stops when the correlation gains less than this in one step. At 1e-6 (before) float32 noise kept some
#: runs going to the iteration limit after converging in 5-10 steps (a 12 MP vertex pair: 360 ms instead of
#: 40 ms for the same answer); on known warps of bundled photos 1e-5 gave the same corner errors.
_ECC_EPS = 1e-5
#: Iterations of the coarse (half-size) and of the full ECC level. The coarse pass converges (cheap, wide basin);
#: from its answer the full level needs 1-3 Gauss-Newton steps, then crawls on float32 noise: a 12 MP vertex
#: pair took 8 (40 ms each at 1000 px), moving the corners 0.03 px after the second. After a coarse pass (the
#: feature answer was not tight) the full level may take ``FINE_AFTER_COARSE`` steps: measured on the 216 known
#: warps of ``benchmarks/registration.py``, 3 left two smooth pairs short of their optimum (a vertex phantom
#: 2.36 px, an enlarged dermoscopy shot 2.03 px off at the corners; with 5: 1.38 and 1.999 px, just inside 2)
#: and 5 gave the same answers as 6-30. From a tight feature answer 5 changed nothing and cost a 12 MP vertex
#: pair 50 ms (0.51 -> 0.56 s: float32 noise keeps ECC going to the limit).
COARSE_ITERATIONS = 50
FINE_ITERATIONS = 3
FINE_AFTER_COARSE = 5
#: Feature evidence so tight that the half-size ECC pass is skipped (:func:`coarse_level_needed`): at least
#: this many inliers, at this share of the matches, spread over this share of the image, with an inlier RMS
#: reprojection error (px at 1000 px) at most this. Measured: such feature answers were 0.1-1.2 px off at the
#: corners (bundled photos, sample series), well inside the full level's basin; the coarse pass cost 40-70 ms
#: and on a 12 MP hair-masked vertex pair moved the answer 4.5 px away, for the full level to bring it back.
TIGHT_INLIERS = 200
TIGHT_INLIER_RATIO = 0.6
TIGHT_INLIER_SPREAD = 0.4
TIGHT_RMSE_PX = 2.0

#: Long side of the images of the split-half check (px): cheap (about 60 ms per pair), and coarser than the
#: refinement, so it errs towards a larger (more cautious) figure.
SPLIT_LONG_SIDE = 500
#: Checkerboard tiles per long side in the split-half check: tiles larger than the texture's correlation
#: length, so the two halves carry independent evidence, and both halves span the whole overlap.
SPLIT_TILES = 8
#: ECC iterations per half. Both halves start from the whole-image answer, one or two Gauss-Newton steps from
#: their own; the stop threshold let them run 9-10 steps (12 MP vertex pair) for a figure that moved < 0.5 %
#: after the fourth (2.900 vs 2.910 px; close-up 0.421 vs 0.421 px).
SPLIT_ITERATIONS = 4


def _checked(
    reference: np.ndarray, reference_mask: np.ndarray, moving: np.ndarray, moving_mask: np.ndarray, matrix: np.ndarray
) -> np.ndarray:
    """Validate the arguments of :func:`ecc_refinement` / :func:`split_half_uncertainty`; the homography."""
    for name, grey, mask in (("reference", reference, reference_mask), ("moving", moving, moving_mask)):
        if not isinstance(grey, np.ndarray) or grey.dtype != np.uint8 or grey.ndim != 2 or min(grey.shape) < 1:
            raise ValueError(f"{name} must be a non-empty (H, W) uint8 grey image")
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.shape != grey.shape:
            raise ValueError(f"{name}_mask must be a uint8 0/255 array of shape {grey.shape}")
    return as_homography(matrix)


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


def matched_intensities(
    ref: np.ndarray, ref_mask: np.ndarray, mov: np.ndarray, mov_mask: np.ndarray, H: np.ndarray
) -> np.ndarray:
    """MOVING's grey levels mapped monotonically onto REFERENCE's, matched over the overlap given by ``H``.

    ECC's correlation is invariant to gain and offset but not to gamma, tone curves or colour casts; on
    smooth images (a dermoscopy shot enlarged 7.5x) that residual pulled ECC to a wrong optimum that
    correlates better than the truth (measured: corner errors 2-16 px at correlation 0.997-0.998). Matching
    the cumulative histograms over the overlapping pixels removes any monotone tone change. Used for the
    registration only: the measurement path never matches statistics (DESIGN.md section 5).

    Parameters
    ----------
    ref, mov : ndarray, shape (H, W), uint8
        Grey images (ECC frames).
    ref_mask, mov_mask : ndarray, shape (H, W), uint8
        0/255 masks of the pixels to use.
    H : ndarray, shape (3, 3), float64
        Homography from MOVING to REFERENCE pixels (ECC frames).

    Returns
    -------
    ndarray, shape of ``mov``, uint8
        MOVING with its grey levels remapped (a new array); ``mov`` itself when the overlap is too small.
    """
    size = (ref.shape[1], ref.shape[0])
    warped = cv2.warpPerspective(mov, H, size, flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(mov_mask, H, size, flags=cv2.INTER_NEAREST, borderValue=0)
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8)) & ref_mask
    sel = valid > 0
    if np.count_nonzero(sel) < 1000:
        return mov
    cdf_r = np.bincount(ref[sel], minlength=256).cumsum().astype(np.float64)
    cdf_m = np.bincount(warped[sel], minlength=256).cumsum().astype(np.float64)
    lut = np.interp(cdf_m / cdf_m[-1], cdf_r / cdf_r[-1], np.arange(256.0))
    return cv2.LUT(mov, np.clip(np.round(lut), 0, 255).astype(np.uint8))


def coarse_level_needed(inliers: int, inlier_ratio: float, inlier_spread: float, rmse_px: float) -> bool:
    """Whether ECC should start with the half-size pass, given the feature evidence.

    Parameters
    ----------
    inliers : int
        Inliers of the feature homography.
    inlier_ratio : float
        Their share of the ratio-test matches (0..1).
    inlier_spread : float
        Convex-hull share of the image covered by the inliers (0..1).
    rmse_px : float
        RMS reprojection error of the inliers, px at a long side of 1000 px.

    Returns
    -------
    bool
        False when the evidence is tight (``TIGHT_*``): the feature answer is then within a pixel or so,
        inside the full-size level's basin. True otherwise (and for NaN figures).
    """
    tight = (
        inliers >= TIGHT_INLIERS
        and inlier_ratio >= TIGHT_INLIER_RATIO
        and inlier_spread >= TIGHT_INLIER_SPREAD
        and rmse_px <= TIGHT_RMSE_PX
    )
    return not tight


def _refine_ecc(
    ref: np.ndarray, ref_mask: np.ndarray, mov: np.ndarray, mov_mask: np.ndarray, H: np.ndarray, coarse: bool
) -> np.ndarray | None:
    """ECC refinement of ``H`` (moving -> reference, ECC frames), coarse to fine; None when ECC fails.

    A half-size pass first unless ``coarse`` is False (cheap, wide basin; smooth images need many
    iterations), then at most ``FINE_ITERATIONS`` on the full ECC frames (``FINE_AFTER_COARSE`` after a
    coarse pass); each stops once the correlation gains less than ``_ECC_EPS`` a step.
    """
    warp = np.linalg.inv(H)  # ECC warps template (reference) coords to input coords
    fine = FINE_AFTER_COARSE if coarse else FINE_ITERATIONS
    for factor, iterations in ((0.5, COARSE_ITERATIONS), (1.0, fine)):
        if factor < 1 and (not coarse or min(ref.shape + mov.shape) * factor < 64):
            continue
        r, rm, m, mm = ref, ref_mask, mov, mov_mask
        if factor < 1:
            r, rm = _shrink(ref, ref_mask, factor)
            m, mm = _shrink(mov, mov_mask, factor)
        w = (resize_matrix(mov.shape, m.shape) @ warp @ np.linalg.inv(resize_matrix(ref.shape, r.shape)))
        w = (w / w[2, 2]).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, _ECC_EPS)
        try:
            _, w = cv2.findTransformECCWithMask(r, m, rm, mm, w, cv2.MOTION_HOMOGRAPHY, criteria, 5)
        except cv2.error:
            return None
        if not np.all(np.isfinite(w)) or abs(np.linalg.det(w)) < 1e-12:
            return None
        warp = np.linalg.inv(resize_matrix(mov.shape, m.shape)) @ w.astype(np.float64) @ resize_matrix(
            ref.shape, r.shape
        )
    refined = np.linalg.inv(warp)
    return refined / refined[2, 2]


def _shrink(grey: np.ndarray, mask: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    size = (max(1, round(grey.shape[1] * factor)), max(1, round(grey.shape[0] * factor)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    return small, np.where(small_mask >= 255, 255, 0).astype(np.uint8)


def ecc_refinement(
    reference: np.ndarray,
    reference_mask: np.ndarray,
    moving: np.ndarray,
    moving_mask: np.ndarray,
    matrix: np.ndarray,
    *,
    refine: bool = True,
    coarse: bool = True,
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
    coarse : bool, default True
        Start ECC with a half-size pass (wide basin). False skips it when ``matrix`` is known to be close
        (see :func:`coarse_level_needed`).

    Returns
    -------
    result : dict
        ``correlation`` (masked correlation of the grey images aligned by ``matrix``, at up to
        ``ECC_LONG_SIDE`` px; small images enlarged at most ``MAX_UPSCALE`` times), ``long_side`` (px,
        of MOVING at that size) and ``refined_matrix`` (full-resolution, or None when not refined or
        ECC failed). With a refined matrix, also
        ``refined_correlation`` and ``corner_shift`` (largest move of a MOVING corner, px at
        ``long_side``).

    Raises
    ------
    ValueError
        Images not (H, W) uint8, masks not uint8 of their image's shape, or ``matrix`` not a finite,
        invertible 3x3 homography.
    """
    matrix = _checked(reference, reference_mask, moving, moving_mask, matrix)
    ref_e, ref_em = resize_with_mask(reference, reference_mask, long_side=ECC_LONG_SIDE)
    mov_e, mov_em = resize_with_mask(moving, moving_mask, long_side=ECC_LONG_SIDE)
    return ecc_at_level(
        (ref_e, ref_em, reference.shape), (mov_e, mov_em, moving.shape), matrix, refine=refine, coarse=coarse
    )


def ecc_at_level(
    reference: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    moving: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    matrix: np.ndarray,
    *,
    refine: bool = True,
    coarse: bool = True,
) -> dict[str, Any]:
    """:func:`ecc_refinement` on copies already reduced to the ECC size.

    ``reference`` and ``moving`` are ``(grey, mask, full_shape)``: the output of
    ``resize_with_mask(full_grey, full_mask, long_side=ECC_LONG_SIDE)`` and the full-resolution shape;
    ``matrix`` and the returned matrix are between full-resolution pixels.
    """
    ref_e, ref_em, ref_shape = reference
    mov_e, mov_em, mov_shape = moving
    H_e = rescale_homography(matrix, reference=(ref_shape, ref_e.shape), moving=(mov_shape, mov_e.shape))
    rho, _ = _correlation(ref_e, ref_em, mov_e, mov_em, H_e)
    out: dict[str, Any] = {"correlation": rho, "long_side": max(mov_e.shape), "refined_matrix": None}
    if not refine:
        return out
    # ECC and the before/after comparison run on tone-matched grey levels (see matched_intensities).
    mov_t = matched_intensities(ref_e, ref_em, mov_e, mov_em, H_e)
    H_r = _refine_ecc(ref_e, ref_em, mov_t, mov_em, H_e, coarse)
    if H_r is None:
        return out
    corners = image_corners(mov_e.shape)
    out["corner_shift"] = np.abs(transform_points(corners, H_r) - transform_points(corners, H_e)).max()
    out["matched_correlation"], _ = _correlation(ref_e, ref_em, mov_t, mov_em, H_e)
    out["matched_refined_correlation"], _ = _correlation(ref_e, ref_em, mov_t, mov_em, H_r)
    out["refined_correlation"], _ = _correlation(ref_e, ref_em, mov_e, mov_em, H_r)
    out["refined_matrix"] = rescale_homography(H_r, reference=(ref_e.shape, ref_shape),
                                               moving=(mov_e.shape, mov_shape))
    return out


def split_half_uncertainty(
    reference: np.ndarray,
    reference_mask: np.ndarray,
    moving: np.ndarray,
    moving_mask: np.ndarray,
    matrix: np.ndarray,
) -> float:
    """How precisely the image content pins down a homography at MOVING's corners (split-half check).

    The overlap is split into two interleaved checkerboard halves; ECC (on tone-matched grey levels) is run
    from ``matrix`` on each half alone. The two answers are independent estimates, each with twice the
    variance of one using all pixels, so half their largest disagreement over MOVING's four corners
    estimates the error of a whole-image estimate. It grows when the detail sits in a small part of the
    photo and the corners are extrapolated (a lesion on smooth skin, an image enlarged from few pixels),
    which feature counts and correlation do not see: measured on smooth enlarged dermoscopy, alignments
    with correlation 0.997 and hundreds of inliers were 2-16 px off at the corners.

    Parameters
    ----------
    reference, moving : ndarray, shape (H, W), uint8
        Full-resolution grey images.
    reference_mask, moving_mask : ndarray, shape (H, W), uint8
        0/255 masks of the pixels to compare.
    matrix : ndarray, shape (3, 3), float64
        Homography from full-resolution MOVING pixels to REFERENCE pixels.

    Returns
    -------
    float
        Estimated corner error in px of MOVING at its own resolution, or at 1000 px on the long side when
        it is larger (the unit of the registration targets); ``inf`` when ECC fails on a half.

    Raises
    ------
    ValueError
        As :func:`ecc_refinement`.
    """
    matrix = _checked(reference, reference_mask, moving, moving_mask, matrix)
    ref_e, ref_em = resize_with_mask(reference, reference_mask, long_side=SPLIT_LONG_SIDE)
    mov_e, mov_em = resize_with_mask(moving, moving_mask, long_side=SPLIT_LONG_SIDE)
    return split_half_at_level((ref_e, ref_em, reference.shape), (mov_e, mov_em, moving.shape), matrix)


def split_half_at_level(
    reference: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    moving: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    matrix: np.ndarray,
) -> float:
    """:func:`split_half_uncertainty` on ``(grey, mask, full_shape)`` copies already reduced (about
    ``SPLIT_LONG_SIDE`` px); ``matrix`` is between full-resolution pixels."""
    ref_e, ref_em, ref_shape = reference
    mov_e, mov_em, mov_shape = moving
    H_e = rescale_homography(matrix, reference=(ref_shape, ref_e.shape), moving=(mov_shape, mov_e.shape))
    mov_t = matched_intensities(ref_e, ref_em, mov_e, mov_em, H_e)
    tile = max(1, max(ref_e.shape) // SPLIT_TILES)
    yy, xx = np.indices(ref_e.shape)
    half = (yy // tile + xx // tile) % 2 == 0
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, SPLIT_ITERATIONS, _ECC_EPS)
    corners = image_corners(mov_e.shape)
    mapped = []
    for part in (half, ~half):
        warp = np.linalg.inv(H_e).astype(np.float32)
        try:
            _, warp = cv2.findTransformECCWithMask(
                ref_e, mov_t, np.where(part, ref_em, 0).astype(np.uint8), mov_em, warp,
                cv2.MOTION_HOMOGRAPHY, criteria, 5,
            )
        except cv2.error:
            return float("inf")
        if not np.all(np.isfinite(warp)) or abs(np.linalg.det(warp)) < 1e-12:
            return float("inf")
        mapped.append(transform_points(corners, np.linalg.inv(warp.astype(np.float64))))
    disagreement = float(np.linalg.norm(mapped[0] - mapped[1], axis=1).max())
    if not np.isfinite(disagreement):
        return float("inf")
    unit = min(float(max(mov_shape)), 1000.0) / max(mov_e.shape)
    return 0.5 * disagreement * unit
