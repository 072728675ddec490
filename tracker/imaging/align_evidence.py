"""Second opinion for weak feature evidence in :mod:`tracker.imaging.align`: do the aligned pixels confirm it?

The evidence rules of :mod:`tracker.imaging.align_policy` (inlier count, share and spread) refuse every feature
candidate of an unrelated pair, and with them some real re-shots whose agreeing matches are few or clustered:
dermoscopy is smooth, and on skin texture most correct matches fail the ratio test. For those re-shots the
candidate is nevertheless right, and the photos it aligns look alike: lesion and skin overlay, and the masked
correlation of the aligned grey images (before any ECC refinement, which could drift towards a look-alike of
its own) is high. A chance transform between unrelated photos does not make them look alike.

:func:`correlation_confirmed` accepts such a candidate when BOTH hold, each beyond what any unrelated pair
reached:

- at least ``CONFIRM_MIN_INLIERS`` inliers (unrelated pairs: at most 12, see there);
- a masked correlation of at least ``CONFIRM_CORRELATION`` for the candidate as it is (unrelated pairs: at
  most 0.80, see there), also after any ECC refinement that :func:`tracker.imaging.align.align_images`
  keeps.

Margins: the count is only just above the unrelated maximum (13 vs 12), the correlation 0.10 above it (0.90 vs
0.80); an unrelated pair has to exceed both at once, and in 618 unrelated runs (pairs x presets) none passed
even the count alone. It is consulted only when no candidate passes the evidence rules; the candidate must also pass the
plausibility gate of its preset. Matrices map full-resolution pixel ``(x, y, 1)`` of MOVING to
full-resolution pixels of REFERENCE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = [
    "CONFIRM_CORRELATION",
    "CONFIRM_MAX_TRIES",
    "CONFIRM_MIN_INLIERS",
    "correlation_confirmed",
]

#: Fewest inliers of a candidate confirmed by correlation. Measured with the matching of
#: :mod:`tracker.imaging.features` (ORB on the 3000 strongest and on all keypoints, SIFT; homography and
#: similarity) on 308 pairs of different lesions of ``../shared/data/lesion-pairs`` ("closeup" preset; 164
#: candidates with 8 or more inliers), and under both presets on 136 pairs of different bundled photos (and
#: noise), 15 of different rendered scalp close-ups and 4 of different sample patients: at most 12 inliers
#: (lesions 12, photos 9, scalp 9, sample patients 8; the calibration of ``align_policy`` on 245 other unrelated
#: pairs: at most 12). The real re-shots this rule accepts had 13, 17, 20, 23 and 29.
CONFIRM_MIN_INLIERS = 13
#: Smallest masked correlation (:func:`tracker.imaging.refine.ecc_at_level`, grey images at up to 1000 px) of the
#: candidate's alignment. Measured on the same unrelated candidates (8 or more inliers): at most 0.80 on different
#: lesions (99th percentile 0.76), at most 0.06 on the other groups. The 5 refused re-shots this rule accepts
#: reached 0.91-0.99 (lesion Dice 0.17-0.30 unregistered, 0.86-0.98 registered). ECC refinement started from
#: unrelated candidates reached up to 0.94 while moving the corners by 30-90 % of the image: that is why the
#: candidate's own correlation is judged, not ECC's.
CONFIRM_CORRELATION = 0.9
#: At most this many candidates (most inliers first) have their correlation measured (each costs one warp).
CONFIRM_MAX_TRIES = 4


def correlation_confirmed(
    candidates: Iterable[dict[str, Any]],
    *,
    judge: Callable[[np.ndarray], tuple[dict[str, float], str | None]],
    correlation: Callable[[np.ndarray], float],
    min_inliers: int = CONFIRM_MIN_INLIERS,
    min_correlation: float = CONFIRM_CORRELATION,
    max_tries: int = CONFIRM_MAX_TRIES,
) -> dict[str, Any] | None:
    """The candidate with the most inliers whose alignment the pixels confirm, or None.

    Parameters
    ----------
    candidates : iterable of dict
        Feature candidates (:func:`tracker.imaging.features.candidates_from_features`): ``inliers`` (int) and
        ``matrix`` (ndarray (3, 3) float64, full-resolution MOVING -> REFERENCE, or None). Guided candidates
        (``guided`` True) are skipped: their inliers are counted among matches made near a first answer, and
        reached 14 on unrelated pairs (see :data:`tracker.imaging.guided_matching.MAX_DISTANCE`).
    judge : callable
        ``matrix -> (figures, reason)``: the plausibility gate of the preset (reason None when plausible).
    correlation : callable
        ``matrix -> float``: masked correlation of the grey images aligned by ``matrix`` (NaN when it cannot
        be computed, which never confirms).
    min_inliers : int, default ``CONFIRM_MIN_INLIERS``
        Fewest inliers considered, >= 4.
    min_correlation : float, default ``CONFIRM_CORRELATION``
        Smallest correlation that confirms, in (0, 1].
    max_tries : int, default ``CONFIRM_MAX_TRIES``
        Most candidates whose correlation is measured, >= 1.

    Returns
    -------
    dict or None
        A copy of the confirmed candidate with ``confirmed`` = "correlation" and ``confirm_correlation``
        (float) added; None when no candidate qualifies.

    Raises
    ------
    ValueError
        Limits out of range.
    """
    if min_inliers < 4:
        raise ValueError(f"min_inliers must be at least 4, got {min_inliers}")
    if not 0 < min_correlation <= 1:
        raise ValueError(f"min_correlation must be in (0, 1], got {min_correlation}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    pool = [c for c in candidates
            if c.get("matrix") is not None and not c.get("guided") and c.get("inliers", 0) >= min_inliers]
    pool.sort(key=lambda c: c["inliers"], reverse=True)
    tried = 0
    seen: list[np.ndarray] = []
    for cand in pool:
        matrix = np.asarray(cand["matrix"], dtype=np.float64)
        if any(np.allclose(matrix, other) for other in seen):
            continue  # the same answer twice (e.g. two models fitted to one cluster): measured once
        seen.append(matrix)
        if judge(matrix)[1] is not None:
            continue
        if tried == max_tries:
            break
        tried += 1
        rho = float(correlation(matrix))
        if rho >= min_correlation:  # NaN never confirms
            return dict(cand, confirmed="correlation", confirm_correlation=rho)
    return None
