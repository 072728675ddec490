"""Decision policy of the registration in :mod:`tracker.imaging.align`: presets, limits and verdicts.

:func:`tracker.imaging.align.align_images` measures (features, plausibility figures, ECC correlation);
this module holds what it takes to ACCEPT a result, in one place:

- ``PRESETS`` ("global", "closeup") and :func:`resolve_limits`: the plausibility limits and models per
  kind of photo (scale 0.7-1.4 and rotation < 45 deg between size-normalised frames for "global"; any
  rotation and zoom 1/4-4 for dermoscope close-ups).
- :func:`ecc_decision`: whether an ECC refinement is kept, dropped, or refuses the alignment because
  intensities pull far away from the feature answer (or wander far from it without a better fit).
- :func:`required_correlation` and :func:`correlation_reason`: the masked correlation the aligned grey
  images must reach (0.85, or less when the feature evidence is strong: 0.7 from 50 inliers at 35 %,
  0.5 from 100 inliers at 50 %; unrelated pairs never exceeded 15 inliers).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PRESETS",
    "correlation_reason",
    "ecc_decision",
    "evidence_reason",
    "required_correlation",
    "resolve_limits",
    "uncertainty_reason",
]

#: Evidence limits for accepting a feature-based candidate (MIN_INLIERS also bounds keypoints and matches).
MIN_INLIERS = 25
MIN_INLIER_RATIO = 0.2
MIN_INLIER_SPREAD = 0.02
#: With at least this many inliers a lower share of agreeing matches is enough (``LOW_INLIER_RATIO``). Measured
#: with the matching of :mod:`tracker.imaging.features` on 245 unrelated pairs (150 pairs of different lesions,
#: 78 of different photos, 10 of different scalp close-ups, ORB and SIFT, homography and similarity): at most
#: 12 inliers, and where ORB found 8 or more, at most 10 % of the strict matches agreed. Real re-shots with
#: large zoom changes reach 30-130 inliers at 12-20 %.
MANY_INLIERS = 30
LOW_INLIER_RATIO = 0.12
#: A similarity (4 parameters, no perspective to extrapolate) backed by ``MANY_INLIERS`` may rest on a smaller
#: cluster: a lesion zoomed out 2-3x covers under 2 % of the photo (unrelated pairs' similarity clusters had
#: at most 12 inliers, so they stay refused by the count).
MIN_SIMILARITY_SPREAD = 0.005

#: Plausibility limits, measured between size-normalised frames (the "global" preset).
SCALE_RANGE = (0.7, 1.4)
MAX_ROTATION_DEG = 45.0
MAX_ANISOTROPY = 1.3
MAX_PERSPECTIVE = 0.5
MIN_OVERLAP = 0.2
#: Correlation the aligned grey images must reach when the feature evidence is ordinary.
MIN_CORRELATION = 0.85
#: With strong feature evidence a lower correlation is enough: real change between visits (new hair, +25 %
#: density, light, blur) lowers the correlation of a correct alignment, while chance matches never build
#: such evidence. Rows: (min inliers, min inlier ratio, correlation needed). Measured: unrelated pairs
#: (scikit-image photos, different lesions, different close-up scalps) never exceeded 15 inliers; the
#: DEMO-001 visit-1/visit-6 close-up has 1575 inliers (94 %) at correlation 0.84.
EVIDENCE_CORRELATION = ((100, 0.5, 0.5), (50, 0.35, 0.7))
#: ORB inliers below this try SIFT as well.
FALLBACK_INLIERS = 80
#: The ECC refinement may move no corner of MOVING by more than this share of the long side.
ECC_MAX_CORNER_SHIFT = 0.015
#: ECC moving further than that while raising the correlation by more than this refuses the alignment.
ECC_DISAGREE_GAIN = 0.005
#: ... unless the feature evidence is strong: then ECC is the one led astray (measured on real dermoscopy
#: re-shots, where the camera-fixed vignette pulls ECC towards the identity) and the feature answer stays.
STRONG_INLIERS = 60
STRONG_INLIER_RATIO = 0.35
#: Largest corner uncertainty accepted (px of MOVING at its own resolution, at most 1000 px on the long side;
#: see :func:`tracker.imaging.refine.split_half_uncertainty`). The split-half figure under-estimated the true
#: corner error by up to 2.5x on low-texture photos (dermoscopy enlarged 7.5x), so 1 px keeps accepted
#: corners within the 2-3 px a comparison tolerates; measured on well-textured photos it is 0.01-0.5 px.
MAX_CORNER_UNCERTAINTY = 1.0  # not applied by align_images yet (see its corner_uncertainty_px)
#: Kind-specific presets. "global": phone photos of a view, framed alike at every visit. "closeup":
#: dermoscope re-shots of a marked site, re-framed freely (any rotation, zoom 1/4-4: 2 of the 150 real lesion
#: re-shots of ../shared/data/lesion-pairs were zoomed 0.30 and 0.33, refused at the former 1/3-3 although
#: their similarities were right, lesion Dice 0.17 -> 0.98 and 0.23 -> 0.91; 1/4 leaves a margin below 0.30, 4
#: mirrors it; unrelated pairs stay refused by the evidence rules, whatever the zoom) and close to a
#: similarity (contact plate), so a similarity model backs up the homography when matches are few; when
#: ECC pulls far from the feature answer there (the camera-fixed vignette pulls it towards the identity),
#: the refinement is dropped and the feature answer must pass the correlation check on its own.
#: ``polish_unrefined``: an accepted feature answer that ECC did not refine is polished by
#: :mod:`tracker.imaging.refine_polish` (float64 Gauss-Newton; kept when it moves no corner further than ECC may,
#: ``ECC_MAX_CORNER_SHIFT``, and stays plausible). Measured on the 126 known warps of enlarged lesion images
#: (``benchmarks/registration.py``): the 6 accepted answers ECC left unrefined were 0.66-2.88 px off at the corners
#: (ORB keypoints on smooth skin: 1.6-1.9 px RMS), polished 0.12-1.22 px. Not applied to "global" views: not
#: measured there, and a wrong vertex answer (15.9 px) is one ECC rightly left unrefined (:func:`ecc_decision`
#: now refuses it).
PRESETS: dict[str, dict[str, Any]] = {
    "global": {
        "scale_range": SCALE_RANGE,
        "max_rotation_deg": MAX_ROTATION_DEG,
        "models": ("homography",),
        "min_similarity_inliers": None,
        "mask_vignette": False,
        "refuse_ecc_disagreement": True,
        "polish_unrefined": False,
    },
    "closeup": {
        "scale_range": (0.25, 4.0),
        "max_rotation_deg": 180.0,
        "models": ("homography", "similarity"),
        "min_similarity_inliers": 15,
        "mask_vignette": True,
        "refuse_ecc_disagreement": False,
        "polish_unrefined": True,
    },
}


def resolve_limits(
    preset: str | None,
    *,
    scale_range: tuple[float, float] | None = None,
    max_rotation_deg: float | None = None,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Preset settings and plausibility limits for one registration.

    Parameters
    ----------
    preset : {"global", "closeup"} or None
        Kind of photo (see ``PRESETS``); None means "global".
    scale_range : (float, float), optional
        Accepted zoom of MOVING relative to REFERENCE between size-normalised frames; default the preset's.
    max_rotation_deg : float, optional
        Accepted absolute rotation in degrees; default the preset's.

    Returns
    -------
    name : str
        The preset's name.
    settings : dict
        The preset's entry of ``PRESETS`` (``models``, ``min_similarity_inliers``,
        ``refuse_ecc_disagreement``, ...).
    limits : dict
        Keyword arguments for :func:`tracker.imaging.geometry.plausibility`: ``scale_range``,
        ``max_rotation_deg``, ``max_anisotropy``, ``max_perspective``, ``min_overlap``.

    Raises
    ------
    ValueError
        Unknown preset, or limits out of range.
    """
    name = "global" if preset is None else preset
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    settings = PRESETS[name]
    scale_range = tuple(settings["scale_range"] if scale_range is None else scale_range)
    max_rotation_deg = float(settings["max_rotation_deg"] if max_rotation_deg is None else max_rotation_deg)
    if len(scale_range) != 2 or not 0 < scale_range[0] <= 1 <= scale_range[1]:
        raise ValueError(f"scale_range must satisfy 0 < low <= 1 <= high, got {scale_range}")
    if not 0 < max_rotation_deg <= 180:
        raise ValueError(f"max_rotation_deg must be in (0, 180], got {max_rotation_deg}")
    limits = {
        "scale_range": scale_range,
        "max_rotation_deg": max_rotation_deg,
        "max_anisotropy": MAX_ANISOTROPY,
        "max_perspective": MAX_PERSPECTIVE,
        "min_overlap": MIN_OVERLAP,
    }
    return name, settings, limits


def ecc_decision(
    ecc: dict[str, Any],
    *,
    correlation: float,
    inliers: int,
    inlier_ratio: float,
    refuse_disagreement: bool,
) -> tuple[str, str | None]:
    """What to do with an ECC refinement of the feature homography.

    Parameters
    ----------
    ecc : dict
        Output of :func:`tracker.imaging.refine.ecc_refinement` with a ``refined_matrix`` (not None):
        ``refined_correlation``, ``corner_shift`` (px) and ``long_side`` (px) are used.
    correlation : float
        Masked correlation of the feature answer (before refinement).
    inliers : int
        Inliers of the feature stage.
    inlier_ratio : float
        Their share of the ratio-test matches (0..1).
    refuse_disagreement : bool
        The preset's ``refuse_ecc_disagreement``.

    Returns
    -------
    action : {"refuse", "try", "drop"}
        "refuse": the alignment is refused, because intensities pull far away from the feature answer or
        wander far from it without a better fit (presets with ``refuse_ecc_disagreement``, ordinary
        feature evidence); "try": the refinement may be kept if it passes the plausibility gate; "drop":
        keep the feature answer.
    reason : str or None
        Plain-language reason for "refuse", else None.
    """
    shift, rho_r, long_side = ecc["corner_shift"], ecc["refined_correlation"], ecc["long_side"]
    if "matched_refined_correlation" in ecc:  # compare on tone-matched grey levels, as ECC optimised them
        correlation, rho_r = ecc["matched_correlation"], ecc["matched_refined_correlation"]
    strong = inliers >= STRONG_INLIERS and inlier_ratio >= STRONG_INLIER_RATIO
    far = shift > ECC_MAX_CORNER_SHIFT * long_side
    if far and not strong and refuse_disagreement:
        if rho_r > correlation + ECC_DISAGREE_GAIN:
            # Intensities pull far away from the feature answer: one of them is wrong (measured on unmasked
            # hair phantoms: feature matches on moved hair, ECC 12-22 px away at 500 px).
            return "refuse", (
                f"feature matches and image intensities disagree (a corner differs by {shift:.0f} px "
                f"at {long_side} px): the features may sit on hair or other moving parts"
            )
        # ECC wandered far without a better fit: the intensities do not pin the answer down, so nothing
        # confirms the feature answer to within that distance either (measured on the known warps of
        # benchmarks/registration.py: the one global answer ECC moved further than 2.5 px of 1000 was
        # accepted 15.9 px off, ECC moved it 18.6 px and the correlation fell by 0.0005).
        return "refuse", (
            f"the image intensities do not confirm the feature matches (refining moved a corner by "
            f"{shift:.0f} px at {long_side} px without a better fit): the photo may be too blurred or dark"
        )
    if rho_r > correlation and not far:
        return "try", None
    return "drop", None


def required_correlation(inliers: int, inlier_ratio: float) -> float:
    """Correlation the aligned images must reach, given the strength of the feature evidence.

    Parameters
    ----------
    inliers : int
        Inliers of the feature stage.
    inlier_ratio : float
        Their share of the ratio-test matches (0..1).

    Returns
    -------
    float
        ``MIN_CORRELATION`` for ordinary evidence, lower (``EVIDENCE_CORRELATION``) for strong evidence.
    """
    for min_inliers, min_ratio, needed in EVIDENCE_CORRELATION:
        if inliers >= min_inliers and inlier_ratio >= min_ratio:
            return needed
    return MIN_CORRELATION


def correlation_reason(correlation: float, needed: float, inliers: int) -> str | None:
    """Plain-language reason to refuse unless ``correlation >= needed``, else None.

    A correlation that could not be computed (NaN: e.g. no overlapping pixels) refuses: an alignment
    whose photos cannot be compared is not presented as right.

    Parameters
    ----------
    correlation : float
        Masked correlation of the aligned grey images.
    needed : float
        From :func:`required_correlation`.
    inliers : int
        Inliers of the feature stage (quoted in the reason).
    """
    if not correlation >= needed:  # NaN refuses
        return (
            f"the aligned photos do not look alike (correlation {correlation:.2f}, need {needed} with "
            f"{inliers} feature matches): the match may be accidental, or hair or other moving parts "
            "were not masked out"
        )
    return None


def uncertainty_reason(uncertainty: float, limit: float = MAX_CORNER_UNCERTAINTY) -> str | None:
    """Plain-language reason to refuse unless the corner uncertainty is at most ``limit``, else None.

    Parameters
    ----------
    uncertainty : float
        From :func:`tracker.imaging.refine.split_half_uncertainty` (px; inf or NaN refuse).
    limit : float, default ``MAX_CORNER_UNCERTAINTY``
        Largest accepted value (px).
    """
    if not uncertainty <= limit:  # NaN refuses
        return (
            f"the photos hold too little detail to place the whole image reliably (its corners are uncertain "
            f"by {uncertainty:.1f} px, limit {limit} px): pick corresponding points by hand"
        )
    return None


def evidence_reason(cand: dict[str, Any], *, min_inliers: int = MIN_INLIERS) -> str | None:
    """Why a feature candidate (:func:`tracker.imaging.features.feature_candidates`) is too weak to accept
    (plain language), or None when it is not."""
    if cand.get("matrix") is None:
        return cand.get("reason", "no transform found")
    if cand["inliers"] < min_inliers:
        return (
            f"only {cand['inliers']} consistent feature matches (need {min_inliers}): "
            "the photos may not show the same area"
        )
    ratio_needed = LOW_INLIER_RATIO if cand["inliers"] >= MANY_INLIERS else MIN_INLIER_RATIO
    if cand["inlier_ratio"] < ratio_needed:
        return (
            f"only {cand['inlier_ratio']:.0%} of feature matches agree (need {ratio_needed:.0%}): "
            "the photos may not show the same area"
        )
    compact_ok = cand.get("model") == "similarity" and cand["inliers"] >= MANY_INLIERS
    if cand["inlier_spread"] < (MIN_SIMILARITY_SPREAD if compact_ok else MIN_INLIER_SPREAD):
        return "the matching features cluster in a small part of the photo: transform not reliable"
    return None
