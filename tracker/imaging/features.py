"""Feature stage of the registration in :mod:`tracker.imaging.align`: input checks, working images and
candidate homographies from ORB or SIFT features.

1. Both images go to grey, are resized to a working image of about 1000 px on the long side and
   contrast-equalised with CLAHE. Optional masks say where features may be taken (global views mask the
   hair out: hair moves between visits); they are eroded so that keypoint patches stay off the excluded
   pixels. For dermoscope close-ups, :func:`vignette_mask` removes the camera-fixed dark ring.
2. ORB or SIFT features + mutual nearest neighbours passing Lowe's ratio test +
   ``cv2.findHomography(..., cv2.USAC_MAGSAC)`` (and, when asked, a similarity by
   ``cv2.estimateAffinePartial2D``, for close-ups). Each result is a candidate with its evidence (keypoints,
   matches, inliers, their share and spread), which :func:`evidence_reason` judges. Geometric plausibility
   and the checks against the pixels are left to :func:`tracker.imaging.align.align_images`.

Matrices map full-resolution pixel ``(x, y, 1)`` of MOVING to full-resolution pixels of REFERENCE
(pixel centres at integer coordinates, OpenCV convention).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# The evidence limits (MIN_INLIERS also bounds keypoints and matches) and their verdict live in align_policy.
from tracker.imaging.align_policy import LOW_INLIER_RATIO as LOW_INLIER_RATIO
from tracker.imaging.align_policy import MANY_INLIERS as MANY_INLIERS
from tracker.imaging.align_policy import MIN_INLIER_RATIO as MIN_INLIER_RATIO
from tracker.imaging.align_policy import MIN_INLIER_SPREAD as MIN_INLIER_SPREAD
from tracker.imaging.align_policy import MIN_INLIERS as MIN_INLIERS
from tracker.imaging.align_policy import MIN_SIMILARITY_SPREAD as MIN_SIMILARITY_SPREAD
from tracker.imaging.align_policy import evidence_reason as evidence_reason
from tracker.imaging.geometry import as_homography, resize_matrix, transform_points
from tracker.imaging.vignette import vignette_mask

__all__ = [
    "LOW_INLIER_RATIO",
    "MAX_UPSCALE",
    "MANY_INLIERS",
    "MIN_INLIERS",
    "MIN_INLIER_RATIO",
    "MIN_INLIER_SPREAD",
    "MIN_SIMILARITY_SPREAD",
    "MIN_SIDE",
    "MODELS",
    "WORK_LONG_SIDE",
    "candidates_from_features",
    "checked_grey",
    "checked_mask",
    "detect_features",
    "equalised",
    "evidence_reason",
    "feature_candidate",
    "feature_candidates",
    "fit_figures",
    "resize_with_mask",
    "vignette_mask",
    "working_image",
]

#: Long side of the working image for feature matching (px); smaller photos are enlarged at most
#: ``MAX_UPSCALE`` times (measured on 200x150 dermoscopy pairs: 2x found more inliers than 1x or 5x).
WORK_LONG_SIDE = 1000
MAX_UPSCALE = 2.0
#: Smallest image side accepted (px).
MIN_SIDE = 32
#: Lowe's ratio per detector; every match must also be mutual (each point the other's nearest neighbour).
#: Measured on the 22 real dermoscopy re-shots round 1 declined: ORB at ratio 0.8 without the mutual check
#: found 10-23 consistent matches on most; mutual + 0.9 (with the FAST threshold below) 13-132, while 60
#: pairs of different lesions stayed at <= 9 (ratio 0.95 let them reach 14).
_RATIO = {"orb": 0.9, "sift": 0.75}
#: The share of agreeing matches (``inlier_ratio``) is counted among the stricter matches only, so that the
#: looser pool above does not dilute it (its limits were set with these ratios).
_STRICT_RATIO = {"orb": 0.8, "sift": 0.75}
#: ORB keypoints per image and FAST threshold. Dermoscopy and enlarged photos are smooth: at threshold 10
#: ORB found too few corners on the lesion; 5 finds them there, and on textured photos the ``nfeatures``
#: strongest (Harris score) are kept either way.
_ORB_FEATURES = 8000
_ORB_FAST_THRESHOLD = 5
#: Transform models the feature stage can fit.
MODELS = ("homography", "similarity")
_RANSAC_THRESHOLD_PX = 3.0  # at the working resolution


# --------------------------------------------------------------------------------------------------
# input checks and working images


def checked_grey(image: np.ndarray, *, name: str) -> np.ndarray:
    """Validate a (H,W) or (H,W,3) uint8 image and return a grey (H,W) uint8 copy.

    Raises
    ------
    ValueError
        Not a uint8 numpy array of shape (H, W) or (H, W, 3), or a side below ``MIN_SIDE``.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    elif image.ndim == 2:
        grey = image.copy()
    else:
        raise ValueError(f"{name} must have shape (H, W) or (H, W, 3), got {image.shape}")
    if min(grey.shape) < MIN_SIDE:
        raise ValueError(
            f"{name} is too small ({grey.shape[1]}x{grey.shape[0]} px; need {MIN_SIDE} px a side)"
        )
    return grey


def checked_mask(mask: np.ndarray | None, shape: tuple[int, int], *, name: str) -> np.ndarray:
    """Validate an optional (H,W) bool mask and return it as uint8 0/255 (all 255 when None).

    Raises
    ------
    ValueError
        Not a bool numpy array of the image's shape, or no pixel included.
    """
    if mask is None:
        return np.full(shape, 255, dtype=np.uint8)
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise ValueError(f"{name} must be a bool array, got {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {mask.shape}, but its image is {shape}")
    if not mask.any():
        raise ValueError(f"{name} excludes every pixel: nothing left to align on")
    return mask.astype(np.uint8) * 255


def resize_with_mask(grey: np.ndarray, mask: np.ndarray, *, long_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a grey image (area/cubic) and its 0/255 mask (area, then > half) to the given long side.

    Small images are enlarged at most ``MAX_UPSCALE`` times.
    """
    long_side = min(long_side, round(MAX_UPSCALE * max(grey.shape)))
    h, w = grey.shape
    s = long_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return grey, mask
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = cv2.resize(grey, size, interpolation=interp)
    msk = cv2.resize(mask, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return img, np.where(msk >= 128, 255, 0).astype(np.uint8)


def _feature_mask(mask: np.ndarray) -> np.ndarray:
    """Erode the mask so that keypoint patches do not reach far into excluded pixels."""
    if mask.all():
        return mask
    eroded = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    return eroded if eroded.any() else mask


def working_image(grey: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Working image for feature matching.

    Parameters
    ----------
    grey : ndarray, shape (H, W), uint8
        Full-resolution grey image (see :func:`checked_grey`).
    mask : ndarray, shape (H, W), uint8
        0/255 mask of where features may be taken (see :func:`checked_mask`).

    Returns
    -------
    image : ndarray, shape (h, w), uint8
        CLAHE-equalised image with a long side of ``WORK_LONG_SIDE`` (enlarged at most ``MAX_UPSCALE``).
    feature_mask : ndarray, shape (h, w), uint8
        The mask at that size, eroded so that keypoint patches stay off excluded pixels (0/255).
    to_work : ndarray, shape (3, 3), float64
        Maps full-resolution pixels to working-image pixels.
    """
    work, work_mask = resize_with_mask(grey, mask, long_side=WORK_LONG_SIDE)
    return (*equalised(work, work_mask), resize_matrix(grey.shape, work.shape))


def equalised(work: np.ndarray, work_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CLAHE-equalised copy of a grey image already at the working size, and its eroded feature mask."""
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(work), _feature_mask(work_mask)


# --------------------------------------------------------------------------------------------------
# feature stage


def _detect(method: str, image: np.ndarray, mask: np.ndarray, *, ranked: bool = False) -> tuple[Any, ...]:
    detector = (
        cv2.ORB_create(nfeatures=_ORB_FEATURES, scaleFactor=1.2, nlevels=8, fastThreshold=_ORB_FAST_THRESHOLD)
        if method == "orb" else cv2.SIFT_create(nfeatures=4000)
    )
    keypoints, descriptors = detector.detectAndCompute(image, mask)
    points = cv2.KeyPoint_convert(keypoints) if keypoints else np.zeros((0, 2), np.float32)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not ranked:
        return points, descriptors
    response = np.array([kp.response for kp in keypoints], dtype=np.float64)
    return points, descriptors, np.argsort(-response, kind="stable").astype(np.int32)


def _match(
    method: str, desc_m: np.ndarray | None, desc_r: np.ndarray | None
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Mutual nearest-neighbour matches that pass Lowe's ratio test.

    Returns the (moving index, reference index) pairs and, per pair, whether it also passes the stricter
    ratio of ``_STRICT_RATIO`` (bool array).
    """
    if desc_m is None or desc_r is None or len(desc_m) < 2 or len(desc_r) < 2:
        return [], np.zeros(0, dtype=bool)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING if method == "orb" else cv2.NORM_L2)
    ratio, strict = _RATIO[method], _STRICT_RATIO[method]
    knn = [p for p in matcher.knnMatch(desc_m, desc_r, k=2) if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if not knn:
        return [], np.zeros(0, dtype=bool)
    # The mutual check needs the nearest moving point of the reference points that passed the ratio test only
    # (each query row is matched independently, so this equals matching every reference descriptor).
    targets = np.unique([p[0].trainIdx for p in knn])
    backward = np.full(len(desc_r), -1, dtype=np.int64)
    for m in matcher.match(desc_r[targets], desc_m):
        backward[targets[m.queryIdx]] = m.trainIdx
    pairs, is_strict = [], []
    for p in knn:
        if backward[p[0].trainIdx] == p[0].queryIdx:
            pairs.append((p[0].queryIdx, p[0].trainIdx))
            is_strict.append(p[0].distance < strict * p[1].distance)
    return pairs, np.array(is_strict, dtype=bool)


def _hull_share(points: np.ndarray, shape: tuple[int, int]) -> float:
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32)))) / float(shape[0] * shape[1])


def _usable(H: np.ndarray) -> bool:
    try:
        as_homography(H)
    except ValueError:
        return False
    return True


def feature_candidates(
    method: str,
    reference: tuple[np.ndarray, np.ndarray, np.ndarray],
    moving: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    models: tuple[str, ...] = ("homography",),
    min_matches: int = MIN_INLIERS,
) -> list[dict[str, Any]]:
    """Candidate transforms from MOVING to REFERENCE with one feature detector, one per model.

    Features are detected and matched once; each model is then fitted robustly to the same matches.

    Parameters
    ----------
    method : {"orb", "sift"}
        Detector and descriptor.
    reference, moving : tuple
        ``(image, feature_mask, to_work)`` of each image, as returned by :func:`working_image`.
    models : tuple of {"homography", "similarity"}, default ("homography",)
        Models to fit: a full homography (``cv2.findHomography`` with ``cv2.USAC_MAGSAC``) and/or a
        similarity (rotation, uniform zoom, shift: ``cv2.estimateAffinePartial2D``), which needs fewer
        matches and cannot invent perspective (contact dermoscopy re-shots are close to similarities).
    min_matches : int, default ``MIN_INLIERS``
        Fewer keypoints or ratio-test matches than this give no transform.

    Returns
    -------
    candidates : list of dict
        One per model, in the order given: ``method``, ``model``, ``keypoints_reference``,
        ``keypoints_moving``, ``matches``, ``inliers`` and ``matrix`` (ndarray (3, 3) float64 mapping
        full-resolution MOVING pixels to REFERENCE pixels, or None with a plain-language ``reason`` when no
        transform was found). With a matrix, also ``inlier_ratio`` (share of the matches that also pass
        the stricter ratio test which agree with the transform), ``inlier_spread`` (smaller
        convex-hull share of the two images covered by the inliers) and ``reprojection_rmse_px``
        (inliers, reference full-resolution px).

    Raises
    ------
    ValueError
        Unknown method or model.
    """
    if method not in _RATIO:
        raise ValueError(f"method must be one of {sorted(_RATIO)}, got {method!r}")
    for model in models:
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    ref_w, ref_fmask, to_work_r = reference
    mov_w, mov_fmask, to_work_m = moving
    return candidates_from_features(
        method,
        (*_detect(method, ref_w, ref_fmask), ref_w.shape, to_work_r),
        (*_detect(method, mov_w, mov_fmask), mov_w.shape, to_work_m),
        models=models,
        min_matches=min_matches,
    )


def detect_features(method: str, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray]:
    """Keypoints of a working image (see :func:`working_image`): positions ``(N, 2)`` float64 (float32 values,
    exactly), descriptors (``(N, 32)`` uint8 for ORB, ``(N, 128)`` float32 for SIFT, or None when N is 0) and
    the keypoint indices ordered by decreasing detector response ``(N,)`` int32."""
    if method not in _RATIO:
        raise ValueError(f"method must be one of {sorted(_RATIO)}, got {method!r}")
    return _detect(method, image, mask, ranked=True)


def candidates_from_features(
    method: str,
    reference: tuple[np.ndarray, np.ndarray | None, tuple[int, ...], np.ndarray],
    moving: tuple[np.ndarray, np.ndarray | None, tuple[int, ...], np.ndarray],
    *,
    models: tuple[str, ...] = ("homography",),
    min_matches: int = MIN_INLIERS,
) -> list[dict[str, Any]]:
    """:func:`feature_candidates` from features already detected.

    ``reference`` and ``moving`` are ``(points, descriptors, working_shape, to_work)``: the output of
    :func:`detect_features` on a working image, that image's shape and its full-resolution -> working matrix.
    """
    if method not in _RATIO:
        raise ValueError(f"method must be one of {sorted(_RATIO)}, got {method!r}")
    for model in models:
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    pts_r, desc_r, ref_shape, to_work_r = reference
    pts_m, desc_m, mov_shape, to_work_m = moving
    base: dict[str, Any] = {
        "method": method,
        "keypoints_reference": len(pts_r),
        "keypoints_moving": len(pts_m),
        "matches": 0,
        "inliers": 0,
        "matrix": None,
    }
    if min(len(pts_r), len(pts_m)) < min_matches:
        which = "reference" if len(pts_r) < len(pts_m) else "moving"
        base["reason"] = f"too few distinctive features in the {which} image ({min(len(pts_r), len(pts_m))})"
        return [dict(base, model=m) for m in models]
    matches, strict = _match(method, desc_m, desc_r)
    base["matches"] = len(matches)
    if len(matches) < min_matches:
        base["reason"] = (
            f"only {len(matches)} distinctive feature matches (need {min_matches}): "
            "the photos may not show the same area"
        )
        return [dict(base, model=m) for m in models]
    src = pts_m[[m for m, _ in matches]]
    dst = pts_r[[r for _, r in matches]]
    out = []
    for model in models:
        cand = dict(base, model=model)
        H, inl = _fit(model, src, dst)
        if H is None or inl is None or not _usable(H):
            cand["reason"] = "no consistent transform between the feature matches"
            out.append(cand)
            continue
        inl = inl.ravel().astype(bool)
        cand["inliers"] = int(inl.sum())
        cand["inlier_ratio"] = float(inl[strict].sum()) / max(1, int(strict.sum()))
        cand.update(fit_figures(H, inl, src, dst, (mov_shape, ref_shape), (to_work_m, to_work_r)))
        out.append(cand)
    return out


def fit_figures(H: np.ndarray, inl: np.ndarray, src: np.ndarray, dst: np.ndarray, shapes: tuple,
                to_work: tuple) -> dict:
    """``inlier_spread``, full-resolution ``matrix`` and ``reprojection_rmse_px`` of a fit between working frames
    (``shapes`` and ``to_work`` are (moving, reference) working shapes and full -> working matrices)."""
    (mov_shape, ref_shape), (to_work_m, to_work_r) = shapes, to_work
    matrix = np.linalg.inv(to_work_r) @ H @ to_work_m
    fit = transform_points(src[inl], H) - dst[inl]
    return {"inlier_spread": min(_hull_share(src[inl], mov_shape), _hull_share(dst[inl], ref_shape)),
            "matrix": matrix / matrix[2, 2],
            "reprojection_rmse_px": float(np.sqrt(np.mean(np.sum(fit**2, axis=1)))) / to_work_r[0, 0]}


def _fit(model: str, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Robust fit of one model to matched points (working frames); (3x3 matrix, inlier mask) or Nones."""
    if model == "homography":
        return cv2.findHomography(
            src, dst, cv2.USAC_MAGSAC, _RANSAC_THRESHOLD_PX, maxIters=10000, confidence=0.9999
        )
    A, inl = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=_RANSAC_THRESHOLD_PX, maxIters=10000,
        confidence=0.9999, refineIters=10,
    )
    if A is None:
        return None, None
    return np.vstack([A, [0.0, 0.0, 1.0]]), inl


def feature_candidate(
    method: str,
    reference: tuple[np.ndarray, np.ndarray, np.ndarray],
    moving: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    model: str = "homography",
) -> dict[str, Any]:
    """One candidate transform from MOVING to REFERENCE (see :func:`feature_candidates`)."""
    return feature_candidates(method, reference, moving, models=(model,))[0]
