"""Registration of a follow-up photo (MOVING) onto the baseline photo (REFERENCE).

Pipeline (DESIGN.md section 5, "Alignment"):

1. Working images (grey, about 1000 px, CLAHE; optional masks say where features may be taken: global
   views mask the hair out, hair moves between visits) and features (:mod:`tracker.imaging.features`).
   Everything taken from REFERENCE alone can be computed once and stored (:func:`prepare_reference`,
   :mod:`tracker.imaging.align_reference`); ``align_images`` accepts that object in place of the photo.
2. ORB features + Lowe's ratio test + ``cv2.findHomography(..., cv2.USAC_MAGSAC)``, first on the
   ``QUICK_FEATURES`` strongest keypoints of each image, on all of them unless that evidence is strong.
   When ORB yields too few inliers (or an implausible transform), SIFT is tried and the better
   candidate is kept. When no candidate is acceptable, guided matching (:mod:`tracker.imaging.guided_matching`)
   refits each detector's best answer to keypoints re-matched near their predicted positions; when still none
   is, the pixels may confirm a weak candidate (:mod:`tracker.imaging.align_evidence`: 13+ inliers, correlation 0.9).
3. Optional ECC refinement (:mod:`tracker.imaging.refine`: homography, masked, coarse to fine up to
   about 1000 px, on MOVING's grey levels tone-matched to REFERENCE so that a gamma change cannot bias it).
   The refinement is kept only if it raises the masked correlation and moves no corner far. Close-ups whose
   accepted feature answer ECC left unrefined are polished in float64 (:mod:`tracker.imaging.refine_polish`).
4. Plausibility gate and checks of the result against the pixels themselves (ECC must not pull far
   away from the feature answer; the masked correlation of the aligned grey images must reach 0.85, or
   less when the feature evidence is strong). The limits, presets (``PRESETS``: "global", "closeup")
   and verdicts are in :mod:`tracker.imaging.align_policy`. Anything failing gives ``ok=False`` with a
   plain-language reason and the identity matrix: refusing is better than presenting a wrong alignment
   as right. (Measured: on two-visit vertex phantoms with the hair NOT masked out, features on moved
   hair gave 4-16 px errors at 0.66-0.80 correlation; with the hair masked, correlation was 0.95-0.995
   and errors < 1.5 px.)

The returned matrix maps full-resolution pixel ``(x, y, 1)`` of MOVING to full-resolution pixels of
REFERENCE (pixel centres at integer coordinates, OpenCV convention); the two images may differ in size.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tracker.imaging.align_evidence import CONFIRM_CORRELATION, correlation_confirmed

# Constants of the feature, ECC and policy stages, re-exported from their modules (they used to live here).
from tracker.imaging.align_policy import ECC_DISAGREE_GAIN as ECC_DISAGREE_GAIN
from tracker.imaging.align_policy import ECC_MAX_CORNER_SHIFT as ECC_MAX_CORNER_SHIFT
from tracker.imaging.align_policy import EVIDENCE_CORRELATION as EVIDENCE_CORRELATION
from tracker.imaging.align_policy import FALLBACK_INLIERS as FALLBACK_INLIERS
from tracker.imaging.align_policy import MAX_ANISOTROPY as MAX_ANISOTROPY
from tracker.imaging.align_policy import MAX_PERSPECTIVE as MAX_PERSPECTIVE
from tracker.imaging.align_policy import MAX_ROTATION_DEG as MAX_ROTATION_DEG
from tracker.imaging.align_policy import MIN_CORRELATION as MIN_CORRELATION
from tracker.imaging.align_policy import MIN_OVERLAP as MIN_OVERLAP
from tracker.imaging.align_policy import PRESETS as PRESETS
from tracker.imaging.align_policy import SCALE_RANGE as SCALE_RANGE
from tracker.imaging.align_policy import STRONG_INLIER_RATIO as STRONG_INLIER_RATIO
from tracker.imaging.align_policy import STRONG_INLIERS as STRONG_INLIERS
from tracker.imaging.align_policy import (
    correlation_reason,
    ecc_decision,
    required_correlation,
    resolve_limits,
)
from tracker.imaging.align_reference import AlignmentReference, _prepare, prepare_reference
from tracker.imaging.alignment import Alignment
from tracker.imaging.features import MAX_UPSCALE as MAX_UPSCALE
from tracker.imaging.features import MIN_INLIER_RATIO as MIN_INLIER_RATIO
from tracker.imaging.features import MIN_INLIER_SPREAD as MIN_INLIER_SPREAD
from tracker.imaging.features import MIN_INLIERS as MIN_INLIERS
from tracker.imaging.features import MIN_SIDE as MIN_SIDE
from tracker.imaging.features import WORK_LONG_SIDE as WORK_LONG_SIDE
from tracker.imaging.features import candidates_from_features, evidence_reason, resize_with_mask
from tracker.imaging.geometry import (
    as_homography,
    describe_homography,
    fit_homography,
    plausibility,
    transform_points,
)
from tracker.imaging.guided_matching import guided_refits
from tracker.imaging.refine import ECC_LONG_SIDE as ECC_LONG_SIDE
from tracker.imaging.refine import SPLIT_LONG_SIDE, coarse_level_needed, ecc_at_level, split_half_at_level
from tracker.imaging.refine_polish import polished

__all__ = [
    "PRESETS",
    "Alignment",
    "AlignmentReference",
    "align_images",
    "homography_from_points",
    "prepare_reference",
    "required_correlation",
    "transform_points",
    "warp_to_reference",
]


#: ORB matching starts with this many strongest keypoints per image (matching costs keypoints x keypoints:
#: 8000 x 8000 took 0.45 s at 12 MP); that answer stands when it has at least QUICK_MIN_INLIERS inliers at a
#: share of at least QUICK_MIN_INLIER_RATIO (the top evidence tier of ``align_policy.EVIDENCE_CORRELATION``),
#: else all keypoints are matched as before.
QUICK_FEATURES = 3000
QUICK_MIN_INLIERS = 100
QUICK_MIN_INLIER_RATIO = 0.5


# --------------------------------------------------------------------------------------------------
# public API


def align_images(
    reference: np.ndarray | AlignmentReference,
    moving: np.ndarray,
    *,
    reference_mask: np.ndarray | None = None,
    moving_mask: np.ndarray | None = None,
    refine: bool = True,
    scale_range: tuple[float, float] | None = None,
    max_rotation_deg: float | None = None,
    preset: str | None = None,
) -> Alignment:
    """Register MOVING onto REFERENCE with a homography.

    Parameters
    ----------
    reference : ndarray, shape (H, W, 3) RGB or (H, W), uint8, or AlignmentReference
        The baseline photo, or what :func:`prepare_reference` computed from it (same result, faster:
        nothing of the baseline is recomputed; ``reference_mask`` must then be None, and ``preset`` None
        or the one it was prepared for).
    moving : ndarray, shape (H, W, 3) RGB or (H, W), uint8
        The follow-up photo; sizes may differ (each side at least 32 px).
    reference_mask, moving_mask : ndarray, shape (H, W), bool, optional
        Where features may be taken (True) in each image; for global views pass masks that exclude
        the hair, which moves between visits. The ECC refinement and the correlation check use them too.
    refine : bool, default True
        Refine the feature homography with ECC; the refinement is kept only if it raises the masked
        correlation and moves no corner of MOVING by more than 1.5 % of its long side.
    scale_range : (float, float), optional
        Accepted zoom of MOVING relative to REFERENCE, measured between frames normalised to a long
        side of 1000 px (so the same framing at two resolutions has zoom 1). Default: the preset's
        ((0.7, 1.4) for "global", (1/4, 4) for "closeup").
    max_rotation_deg : float, optional
        Accepted rotation (absolute, degrees). Default: the preset's (45 for "global", 180 for "closeup").
    preset : {"global", "closeup"}, optional
        Kind-specific limits and models (see ``PRESETS``); None means "global" (the limits this function
        always had). "closeup" accepts dermoscope re-shots (any rotation, zoom 1/4-4) and backs the
        homography up with a similarity model when feature matches are few.

    Returns
    -------
    Alignment
        ``matrix`` maps full-resolution MOVING pixels to REFERENCE pixels (identity when ``ok`` is
        False). ``quality`` holds ``method``, ``model`` ("homography" | "similarity"), ``preset``, ``guided``,
        ``confirmed`` ("correlation" when :mod:`tracker.imaging.align_evidence` accepted a weak candidate, else None),
        ``keypoints_reference``, ``keypoints_moving``, ``keypoints_matched`` (``QUICK_FEATURES`` when only the
        strongest keypoints of each image were matched, else None), ``matches``, ``inlier_ratio``, ``inlier_spread``
        (convex-hull share of the image covered by inliers), ``reprojection_rmse_px`` (inliers,
        reference full-resolution px), ``refined``, ``ecc_correlation`` (masked correlation of the
        aligned grey images at up to 1000 px), ``ecc_correlation_before`` (before refinement),
        ``correlation_needed`` (lower when the feature evidence is strong, see
        :func:`required_correlation`), ``scale``, ``rotation_deg``, ``anisotropy``, ``perspective`` and
        ``overlap`` (between size-normalised frames), ``corner_uncertainty_px`` (split-half estimate of the
        corner error, see :func:`tracker.imaging.refine.split_half_uncertainty`; reported, not a refusal
        yet), ``polished`` (close-ups whose feature answer ECC did not refine, see
        :mod:`tracker.imaging.refine_polish`) and ``rejected_matrix`` when a candidate was refused.

    Raises
    ------
    ValueError
        Images not uint8 (H, W) / (H, W, 3), too small, masks of the wrong dtype/shape or empty, an
        unknown preset or limits out of range.
    """
    prepared = isinstance(reference, AlignmentReference)
    if prepared and reference_mask is not None:
        raise ValueError("reference_mask must be None with an AlignmentReference (it holds its mask)")
    if prepared and preset is not None and resolve_limits(preset)[0] != reference.preset:
        raise ValueError(f"the reference was prepared for preset {reference.preset!r}, not {preset!r}")
    preset_name, settings, limits = resolve_limits(
        reference.preset if prepared else preset, scale_range=scale_range, max_rotation_deg=max_rotation_deg
    )
    names = ("reference", "reference_mask")
    ref = reference if prepared else _prepare(reference, reference_mask, preset_name, names=names)
    mov = _prepare(moving, moving_mask, preset_name, names=("moving", "moving_mask"))

    models = settings["models"]
    min_sim = settings["min_similarity_inliers"]
    min_matches = min(MIN_INLIERS, min_sim) if min_sim else MIN_INLIERS

    def weakness(cand: dict[str, Any]) -> str | None:
        needed = MIN_INLIERS if cand["model"] == "homography" else min_sim
        return evidence_reason(cand, min_inliers=needed)

    # Feature stage: ORB, then SIFT when ORB is weak; keep the best acceptable candidate.
    def candidates(method: str) -> list[dict[str, Any]]:
        if method == "orb" and max(len(ref.features(method)[0]), len(mov.features(method)[0])) > QUICK_FEATURES:
            # Matching costs keypoints x keypoints: the strongest QUICK_FEATURES of each image first; their
            # answer stands when its evidence is already strong (unrelated pairs never exceed 15 inliers).
            quick = candidates_from_features(
                method, ref.feature_input(method, strongest=QUICK_FEATURES),
                mov.feature_input(method, strongest=QUICK_FEATURES), models=models, min_matches=min_matches,
            )
            if (
                weakness(quick[0]) is None
                and quick[0]["inliers"] >= QUICK_MIN_INLIERS
                and quick[0]["inlier_ratio"] >= QUICK_MIN_INLIER_RATIO
            ):
                full = {"keypoints_reference": len(ref.features(method)[0]),
                        "keypoints_moving": len(mov.features(method)[0]), "keypoints_matched": QUICK_FEATURES}
                return [dict(cand, **full) for cand in quick]
        return candidates_from_features(
            method, ref.feature_input(method), mov.feature_input(method), models=models, min_matches=min_matches
        )

    candidates_found = candidates("orb")
    if candidates_found[0]["inliers"] < FALLBACK_INLIERS or weakness(candidates_found[0]) is not None:
        candidates_found += candidates("sift")
    # Plausibility is judged between frames normalised to a long side of 1000 px.
    n_r, n_m = 1000.0 / max(ref.shape), 1000.0 / max(mov.shape)
    norm_r, norm_m = np.diag([n_r, n_r, 1.0]), np.diag([n_m, n_m, 1.0])
    norm_shape_r = (round(ref.shape[0] * n_r), round(ref.shape[1] * n_r))
    norm_shape_m = (round(mov.shape[0] * n_m), round(mov.shape[1] * n_m))

    def judge(H: np.ndarray) -> tuple[dict[str, float], str | None]:
        return plausibility(norm_r @ H @ np.linalg.inv(norm_m), norm_shape_m, norm_shape_r, **limits)

    def assess(cand: dict[str, Any]) -> tuple[tuple[bool, int, bool], dict, dict, str | None, np.ndarray | None]:
        quality: dict[str, Any] = {
            k: cand.get(k)
            for k in ("method", "model", "keypoints_reference", "keypoints_moving", "keypoints_matched", "matches")
        }
        quality.update(preset=preset_name, guided=bool(cand.get("guided")), confirmed=cand.get("confirmed"))
        quality["inlier_ratio"] = cand.get("inlier_ratio", 0.0)
        quality["inlier_spread"] = cand.get("inlier_spread", 0.0)
        reason = None if cand.get("confirmed") else weakness(cand)
        H_full = cand["matrix"]
        if H_full is not None:
            quality["reprojection_rmse_px"] = cand["reprojection_rmse_px"]
            if reason is None:
                fig, reason = judge(H_full)
                quality.update(fig)
        return (reason is None, cand["inliers"], cand["model"] == "homography"), cand, quality, reason, H_full

    evaluated = [assess(cand) for cand in candidates_found]
    if not any(e[0][0] for e in evaluated):  # none acceptable: refit around the first answers (guided matching)
        guided = guided_refits(candidates_found, ref.feature_input, mov.feature_input, models=models)
        evaluated += [assess(cand) for cand in guided]
    if not any(e[0][0] for e in evaluated):  # still none: the pixels may confirm a weak candidate (align_evidence)
        levels = (ref.grey, ref.mask, ref.shape), (mov.grey, mov.mask, mov.shape)
        confirmed = correlation_confirmed([e[1] for e in evaluated], judge=judge,
                                          correlation=lambda H: ecc_at_level(*levels, H, refine=False)["correlation"])
        evaluated += [assess(confirmed)] if confirmed is not None else []
    # Prefer acceptable candidates, then more inliers, then the homography. (Preferring a close-up's
    # similarity when it had >= 90 % of the homography's inliers was tried: it helped photos zoomed out to
    # 0.45, but accepted a perspective-tilted low-texture pair 32 px off at the corners.)
    key, cand, quality, reason, H_full = max(evaluated, key=lambda e: e[0])
    good, inliers = key[0], key[1]

    if good:
        rmse = quality["reprojection_rmse_px"] * 1000.0 / max(ref.shape)  # tight features skip ECC's coarse pass
        coarse = coarse_level_needed(inliers, quality["inlier_ratio"], quality["inlier_spread"], rmse)
        ecc = ecc_at_level((ref.grey, ref.mask, ref.shape), (mov.grey, mov.mask, mov.shape), H_full, refine=refine,
                           coarse=coarse)
        rho = ecc["correlation"]
        quality.update(ecc_correlation_before=rho, ecc_correlation=rho, refined=False)
        if ecc["refined_matrix"] is not None:
            action, why = ecc_decision(
                ecc,
                correlation=rho,
                inliers=inliers,
                inlier_ratio=quality["inlier_ratio"],
                refuse_disagreement=settings["refuse_ecc_disagreement"],
            )
            if action == "refuse":
                good, reason = False, why
            elif action == "try":
                fig, why = judge(ecc["refined_matrix"])
                if why is None:
                    H_full, rho = ecc["refined_matrix"], ecc["refined_correlation"]
                    quality.update(fig)
                    quality.update(ecc_correlation=rho, refined=True)
        needed = required_correlation(inliers, quality["inlier_ratio"])
        needed = CONFIRM_CORRELATION if cand.get("confirmed") else needed  # align_evidence's own bar
        quality["correlation_needed"] = needed
        if good and (why := correlation_reason(rho, needed, inliers)) is not None:
            good, reason = False, why
        if good and not quality["refined"] and settings["polish_unrefined"]:  # see align_policy.PRESETS
            H_full = polished(H_full, (ref.grey, ref.mask, ref.shape), (mov.grey, mov.mask, mov.shape), judge=judge,
                              max_shift=ECC_MAX_CORNER_SHIFT, quality=quality)
        if good:  # how well does the image content pin the corners down? Reported, not (yet) a refusal:
            # measured, a 1 px limit refused 61 % of the real lesion re-shots and 8/20 correct sample
            # follow-ups (hair-masked skin and real change make the two halves disagree).
            quality["corner_uncertainty_px"] = split_half_at_level(_split_level(ref), _split_level(mov), H_full)
    if good:
        return Alignment(matrix=H_full, ok=True, inliers=inliers, reason=None, quality=quality)
    if H_full is not None:
        quality["rejected_matrix"] = H_full.tolist()
    quality["method"] = "identity"
    quality["candidate_method"] = cand["method"]
    return Alignment(matrix=np.eye(3), ok=False, inliers=inliers, reason=reason, quality=quality)


def _split_level(prepared: AlignmentReference) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The copy of the split-half check (``SPLIT_LONG_SIDE``), reduced from the working level."""
    long_side = min(SPLIT_LONG_SIDE, round(MAX_UPSCALE * max(prepared.shape)))
    if max(prepared.grey.shape) == long_side:
        return prepared.grey, prepared.mask, prepared.shape
    grey, mask = resize_with_mask(prepared.grey, prepared.mask, long_side=long_side)
    return grey, mask, prepared.shape


def warp_to_reference(
    moving: np.ndarray, matrix: np.ndarray, *, reference_shape: tuple[int, ...], interpolation: str = "linear"
) -> np.ndarray:
    """Warp MOVING into REFERENCE's pixel frame.

    Parameters
    ----------
    moving : ndarray, shape (H, W) or (H, W, C)
        Image (uint8, uint16, float32 or float64) or a bool mask (always warped with nearest neighbour).
    matrix : array_like, shape (3, 3)
        Homography from MOVING pixels to REFERENCE pixels (e.g. ``Alignment.matrix``).
    reference_shape : tuple of int
        ``(H, W)`` of the reference (a longer shape such as ``reference.shape`` is accepted; only the
        first two numbers are used).
    interpolation : {"linear", "nearest", "cubic"}, default "linear"
        Resampling; use "nearest" for label images.

    Returns
    -------
    warped : ndarray, shape (H_ref, W_ref) or (H_ref, W_ref, C), same dtype as ``moving``
        Pixels that fall outside MOVING are 0 (False for masks).

    Raises
    ------
    ValueError
        Bad image, matrix or shape.
    """
    flags = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC}
    if interpolation not in flags:
        raise ValueError(f"interpolation must be one of {sorted(flags)}, got {interpolation!r}")
    if not isinstance(moving, np.ndarray) or moving.ndim not in (2, 3) or moving.size == 0:
        raise ValueError("moving must be a non-empty (H, W) or (H, W, C) numpy array")
    if moving.ndim == 3 and not 1 <= moving.shape[2] <= 4:
        raise ValueError(f"moving must have 1-4 channels, got {moving.shape[2]}")
    if len(reference_shape) < 2 or int(reference_shape[0]) < 1 or int(reference_shape[1]) < 1:
        raise ValueError(f"reference_shape must be (H, W) with positive sizes, got {reference_shape}")
    H = as_homography(matrix)
    size = (int(reference_shape[1]), int(reference_shape[0]))
    if moving.dtype == np.bool_:
        warped = cv2.warpPerspective(moving.astype(np.uint8), H, size, flags=cv2.INTER_NEAREST)
        return warped.astype(bool)
    if moving.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ValueError(f"moving has unsupported dtype {moving.dtype}")
    warped = cv2.warpPerspective(
        np.ascontiguousarray(moving),
        H,
        size,
        flags=flags[interpolation],
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if moving.ndim == 3 and warped.ndim == 2:
        warped = warped[:, :, None]
    return warped


def homography_from_points(moving_points: np.ndarray, reference_points: np.ndarray) -> Alignment:
    """Alignment from corresponding points picked by hand (the manual fallback).

    Three pairs give an affine transform, four an exact homography, more a least-squares homography.

    Parameters
    ----------
    moving_points, reference_points : array_like, shape (N, 2)
        ``(x, y)`` pixel coordinates of the same landmarks in MOVING and REFERENCE, N >= 3.

    Returns
    -------
    Alignment
        ``method`` "manual", ``inliers`` = N, ``reprojection_rmse_px`` (0 for 3 or 4 pairs), ``scale``,
        ``rotation_deg`` and ``perspective`` of the local map at the points' centroid. ``ok`` is False
        (with the identity matrix) when the transform mirrors the image or when more than four points
        disagree by more than 5 % of their spread.

    Raises
    ------
    ValueError
        Fewer than 3 pairs, shapes that differ, non-finite values, collinear points (for 3 or 4
        pairs: any three on one line) or duplicated points.
    """
    H = fit_homography(moving_points, reference_points)
    src = np.asarray(moving_points, dtype=np.float64)
    dst = np.asarray(reference_points, dtype=np.float64)
    n = len(src)
    residual = transform_points(src, H) - dst
    rmse = float(np.sqrt(np.mean(np.sum(residual**2, axis=1))))
    spread = float(np.sqrt(np.sum(np.var(dst, axis=0))))
    # Local figures at the centroid: describe_homography on a tiny frame centred there.
    c = src.mean(axis=0)
    shift = np.array([[1, 0, c[0] - 0.5], [0, 1, c[1] - 0.5], [0, 0, 1.0]])
    fig = describe_homography(H @ shift, (2, 2))
    quality: dict[str, Any] = {
        "method": "manual",
        "reprojection_rmse_px": rmse,
        "scale": fig["scale"],
        "rotation_deg": fig["rotation_deg"],
        "anisotropy": fig["anisotropy"],
        "perspective": float(np.hypot(H[2, 0], H[2, 1]) * spread),
    }
    reason = None
    wsign = src @ H[2, :2] + H[2, 2]
    if fig["scale"] <= 0 or np.any(wsign <= 0):
        reason = "the picked points imply a mirrored or folded image: check the order of the points"
    elif rmse > 0.05 * spread:
        reason = f"the picked points disagree ({rmse:.1f} px RMS): check each pair"
    if reason is not None:
        quality["rejected_matrix"] = H.tolist()
        return Alignment(matrix=np.eye(3), ok=False, inliers=n, reason=reason, quality=quality)
    return Alignment(matrix=H, ok=True, inliers=n, reason=None, quality=quality)
