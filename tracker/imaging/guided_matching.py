"""Guided matching: re-match keypoints near where a first transform predicts them, then refit.

The global matching of :mod:`tracker.imaging.features` compares every descriptor of MOVING with every one of
REFERENCE; on repetitive skin texture many correct matches fail Lowe's ratio test there, because a look-alike
elsewhere in the photo is nearly as close. Once a first transform is known, each MOVING keypoint only has to be
told apart from the few REFERENCE keypoints inside a small window around its predicted position, which
recovers those matches; the model is then refitted to them (twice, the window shrinking as the transform
improves).

The geometry cannot tell these matches apart from chance ones (every guided match lies near the first
transform by construction, so a wrong first transform also "agrees" with its own guided matches); what
separates them is their descriptor distance, which must be small (``MAX_DISTANCE``, calibrated on unrelated
pairs: see there). The evidence of a guided candidate is judged by the same rules as any feature candidate
(:func:`tracker.imaging.align_policy.evidence_reason`).

Used by :func:`tracker.imaging.align.align_images` when none of its first candidates is acceptable. Measured
on the 150 real lesion re-shots (ORB distance <= 32): it rescued 2 of the 16 declined pairs (their global
homographies were refused as implausible perspective; the guided refits were right, lesion Dice 0.30 -> 0.92
and 0.60 -> 0.89) and changed no other verdict. On the other declined ones it found 4-83 guided inliers, fewer
than the global matching's own, and at looser distances unrelated pairs reach as many guided inliers as those
re-shots (see ``MAX_DISTANCE``): a guided-specific evidence rule would have to be calibrated before loosening it.

Matrices map full-resolution pixel ``(x, y, 1)`` of MOVING to full-resolution pixels of REFERENCE; the
keypoints and the first transform given here are at the working level (see :func:`features.working_image`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tracker.imaging.features import MODELS, _fit, _usable, fit_figures
from tracker.imaging.geometry import transform_points

__all__ = [
    "GUIDED_RADII",
    "MAX_DISTANCE",
    "MIN_SEED_INLIERS",
    "WINDOW_RATIO",
    "guided_candidates",
    "guided_matches",
    "guided_refits",
]

#: Search radius around each predicted position per round, as a share of the working image's long side
#: (1 % = 10 px at 1000 px, 4 px for a 200x150 dermoscopy photo enlarged to 400 px).
GUIDED_RADII = (0.015, 0.008)
#: Largest descriptor distance of a guided match: Hamming bits of 256 for ORB, L2 for SIFT (OpenCV's
#: descriptors, norm 512). Measured with :func:`guided_candidates` seeded by every first candidate of 206 unrelated
#: pairs (150 pairs of different lesions, 28 of different photos; 178 with "closeup" features, 28 "global"):
#: the most guided inliers were, ORB at distance <= 32 / 40 / 64: 14 / 35 / 130 (homography), 12 / 28 / 104
#: (similarity); SIFT at <= 256: 10 / 8. These values keep guided counts within the range the evidence limits
#: of :mod:`tracker.imaging.align_policy` were calibrated on (unrelated pairs at most 12-15 inliers).
MAX_DISTANCE = {"orb": 32.0, "sift": 192.0}
#: Lowe's ratio among the REFERENCE keypoints inside the window (best vs second best).
WINDOW_RATIO = 0.9
_MIN_MATCHES = 8
#: A first transform needs this many inliers to seed guided matching (fewer are mostly chance).
MIN_SEED_INLIERS = 8


def _distances(method: str, desc_m: np.ndarray, desc_r: np.ndarray) -> np.ndarray:
    """Row-wise descriptor distances of equally long descriptor arrays (Hamming for ORB, L2 for SIFT)."""
    if method == "orb":
        return np.unpackbits(np.bitwise_xor(desc_m, desc_r), axis=1).sum(axis=1).astype(np.float64)
    diff = desc_m.astype(np.float64) - desc_r.astype(np.float64)
    return np.sqrt(np.sum(diff * diff, axis=1))


def guided_matches(
    method: str,
    moving: tuple[np.ndarray, np.ndarray],
    reference: tuple[np.ndarray, np.ndarray],
    matrix: np.ndarray,
    *,
    radius: float,
    max_distance: float | None = None,
    ratio: float = WINDOW_RATIO,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mutual matches of MOVING keypoints with REFERENCE keypoints near their predicted positions.

    Parameters
    ----------
    method : {"orb", "sift"}
        Descriptor kind (Hamming or L2 distance).
    moving, reference : tuple of ndarray
        ``(points, descriptors)``: points ``(N, 2)`` float64 at the working level, descriptors ``(N, 32)``
        uint8 (ORB) or ``(N, 128)`` float32 (SIFT).
    matrix : ndarray, shape (3, 3)
        First transform from MOVING working pixels to REFERENCE working pixels.
    radius : float
        Search window radius around each predicted position (REFERENCE working px), > 0.
    max_distance : float, optional
        Largest descriptor distance accepted; default ``MAX_DISTANCE[method]``.
    ratio : float, default ``WINDOW_RATIO``
        Best distance must be below ``ratio`` times the second best inside the window (a single
        keypoint in the window passes).

    Returns
    -------
    idx_moving, idx_reference : ndarray, shape (M,), int64
        Indices of the matched keypoints; each keypoint is used at most once (mutual best inside windows).
    distances : ndarray, shape (M,), float64
        Their descriptor distances.

    Raises
    ------
    ValueError
        Unknown method, non-positive radius or a matrix that is not 3x3.
    """
    if method not in MAX_DISTANCE:
        raise ValueError(f"method must be one of {sorted(MAX_DISTANCE)}, got {method!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError("matrix must be a finite 3x3 array")
    limit = MAX_DISTANCE[method] if max_distance is None else float(max_distance)
    pts_m, desc_m = moving
    pts_r, desc_r = reference
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if desc_m is None or desc_r is None or len(pts_m) == 0 or len(pts_r) == 0:
        return empty
    from scipy.spatial import cKDTree  # imported here: only the fallback needs it (keeps `tracker` starting fast)

    predicted = transform_points(np.asarray(pts_m, dtype=np.float64), matrix)
    finite = np.all(np.isfinite(predicted), axis=1)
    neighbours = cKDTree(np.asarray(pts_r, dtype=np.float64)).query_ball_point(
        np.where(finite[:, None], predicted, -1e9), r=radius
    )
    lengths = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=len(neighbours))
    if lengths.sum() == 0:
        return empty
    rows = np.repeat(np.arange(len(pts_m)), lengths)
    cols = np.fromiter((c for n in neighbours for c in n), dtype=np.int64, count=int(lengths.sum()))
    dist = _distances(method, desc_m[rows], desc_r[cols])
    # Best and second best per MOVING keypoint (sort by row, then distance).
    order = np.lexsort((dist, rows))
    rows, cols, dist = rows[order], cols[order], dist[order]
    first = np.r_[True, rows[1:] != rows[:-1]]
    starts = np.flatnonzero(first)
    has_second = np.r_[starts[1:], len(rows)] - starts > 1
    second = np.full(len(starts), np.inf)
    second[has_second] = dist[starts[has_second] + 1]
    best_r, best_d, best_m = cols[starts], dist[starts], rows[starts]
    keep = (best_d <= limit) & (best_d < ratio * second)
    best_m, best_r, best_d = best_m[keep], best_r[keep], best_d[keep]
    if len(best_m) == 0:
        return empty
    # Mutual: each REFERENCE keypoint keeps only its closest MOVING keypoint.
    order = np.lexsort((best_d, best_r))
    best_m, best_r, best_d = best_m[order], best_r[order], best_d[order]
    unique = np.r_[True, best_r[1:] != best_r[:-1]]
    return best_m[unique], best_r[unique], best_d[unique]


def guided_candidates(
    method: str,
    reference: tuple[np.ndarray, np.ndarray | None, tuple[int, ...], np.ndarray],
    moving: tuple[np.ndarray, np.ndarray | None, tuple[int, ...], np.ndarray],
    matrix: np.ndarray,
    *,
    models: tuple[str, ...] = ("homography",),
) -> list[dict[str, Any]]:
    """Candidates refitted to guided matches around a first full-resolution transform, one per model.

    Parameters
    ----------
    method : {"orb", "sift"}
        Detector whose keypoints are given.
    reference, moving : tuple
        ``(points, descriptors, working_shape, to_work)`` as for
        :func:`tracker.imaging.features.candidates_from_features`.
    matrix : ndarray, shape (3, 3)
        First transform, full-resolution MOVING pixels to full-resolution REFERENCE pixels.
    models : tuple of {"homography", "similarity"}
        Models to refit.

    Returns
    -------
    candidates : list of dict
        As :func:`tracker.imaging.features.candidates_from_features` (``method``, ``model``, keypoint
        counts, ``matches`` = guided matches, ``inliers``, ``inlier_ratio`` = inliers / guided matches,
        ``inlier_spread``, ``matrix``, ``reprojection_rmse_px``, or ``reason`` without a matrix), plus
        ``guided`` True.

    Raises
    ------
    ValueError
        Unknown method or model, or a matrix that is not 3x3.
    """
    for model in models:
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    pts_r, desc_r, ref_shape, to_work_r = reference
    pts_m, desc_m, mov_shape, to_work_m = moving
    base: dict[str, Any] = {"method": method, "guided": True, "keypoints_reference": len(pts_r),
                            "keypoints_moving": len(pts_m), "matches": 0, "inliers": 0, "matrix": None,
                            "reason": "too few guided feature matches"}
    long_side = float(max(ref_shape[:2]))
    out = []
    for model in models:
        cand = dict(base, model=model)
        H = to_work_r @ np.asarray(matrix, dtype=np.float64) @ np.linalg.inv(to_work_m)
        for share in GUIDED_RADII:
            im, ir, _ = guided_matches(method, (pts_m, desc_m), (pts_r, desc_r), H, radius=share * long_side)
            if len(im) < _MIN_MATCHES:
                break
            src, dst = pts_m[im], pts_r[ir]
            fitted, inl = _fit(model, src, dst)
            if fitted is None or inl is None or not _usable(fitted):
                break
            H = fitted
            inl = inl.ravel().astype(bool)
            cand = dict(base, model=model, matches=len(im), inliers=int(inl.sum()))
            cand.pop("reason")
            cand["inlier_ratio"] = float(inl.mean())
            cand.update(fit_figures(H, inl, src, dst, (mov_shape, ref_shape), (to_work_m, to_work_r)))
        out.append(cand)
    return out


def guided_refits(
    found: list[dict[str, Any]],
    reference: Callable[[str], tuple[np.ndarray, np.ndarray | None, tuple[int, ...], np.ndarray]],
    moving: Callable[[str], tuple[np.ndarray, np.ndarray | None, tuple[int, ...], np.ndarray]],
    *,
    models: tuple[str, ...] = ("homography",),
) -> list[dict[str, Any]]:
    """Guided candidates seeded by the first candidate with the most inliers of each detector in ``found``.

    Parameters
    ----------
    found : list of dict
        Candidates of :func:`tracker.imaging.features.candidates_from_features` (with or without a matrix;
        seeds need a matrix and at least ``MIN_SEED_INLIERS`` inliers, acceptable or not).
    reference, moving : callable
        ``method -> (points, descriptors, working_shape, to_work)`` of all keypoints of each image (e.g.
        :meth:`tracker.imaging.align_reference.AlignmentReference.feature_input`).
    models : tuple of {"homography", "similarity"}
        Models to refit.

    Returns
    -------
    list of dict
        The guided candidates (see :func:`guided_candidates`), possibly empty.
    """
    out: list[dict[str, Any]] = []
    for method in dict.fromkeys(c["method"] for c in found):
        seeds = [c for c in found if c["method"] == method and c.get("matrix") is not None]
        if not seeds:
            continue
        seed = max(seeds, key=lambda c: c["inliers"])
        if seed["inliers"] >= MIN_SEED_INLIERS:
            out += guided_candidates(method, reference(method), moving(method), seed["matrix"], models=models)
    return out
