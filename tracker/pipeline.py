"""The analysis of one photo: quality gate, alignment to the baseline, measurement, uncertainty.

Pure functions on arrays (no storage): the CLI calls them on files, the services on stored photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracker import PIPELINE_VERSION
from tracker.imaging.quality import assess_quality, sharpness
from tracker.imaging.uncertainty import bootstrap_ratio_sd, closeup_uncertainty, tile_sums
from tracker.pipeline_align import align_closeup, align_global
from tracker.pipeline_baseline import BaselineReference, prepare_baseline
from tracker.pipeline_scale import (
    SCALE_CONFLICT,
    SCALE_SOURCES,
    STICKER_MM,
    choose_scale,
    find_sticker,
    sticker_field_mask,
    sticker_summary,
)
from tracker.pipeline_work import (
    CLOSEUP_PX_PER_MM,
    enlarge_mask,
    full_hairs,
    run_beside,
    shrink,
    working_for_long_side,
    working_for_scale,
)

KINDS = ("closeup", "global")
__all__ = ["KINDS", "RETAKE_FLAGS", "SCALE_CONFLICT", "SCALE_SOURCES", "STICKER_MM", "BaselineReference",
           "PhotoAnalysis", "analyse_closeup", "analyse_global", "choose_scale", "find_sticker", "prepare_baseline",
           "sticker_field_mask"]

#: Flags that mean "do not chart this figure: retake the photo (or correct it by hand)".
RETAKE_FLAGS = frozenset(
    {
        "blurred",
        "underexposed",
        "overexposed",
        "low_resolution",
        "too_few_hairs",
        "low_contrast",
        "alignment_failed",
    }
)

_FLAG_TEXT = {
    "no_scale": "no scale (px/mm) known: hair count is per field, density and widths are not available",
    "too_few_hairs": "too few hairs detected to measure reliably: retake or check the photo",
    "low_contrast": "hair and scalp hardly differ in this photo: retake with better light or focus",
    "alignment_failed": "could not align this photo to the baseline: the region compared may differ",
    "not_aligned": "could not confirm this is the same spot as the baseline photo: check the site marking",
    "scale_conflict": "the given scale (px/mm) and the fiducial sticker's differ by more than 5 %: check the "
                      "device profile or the sticker size",
    "overlay_excluded": "text or drawings the device burnt into the photo (a text bar, a measuring circle, "
                        "measurement text) were left out of the hair measurement",
}


@dataclass(frozen=True)
class PhotoAnalysis:
    """Everything measured on one photo.

    Attributes
    ----------
    kind : {"closeup", "global"}
    metrics : dict
        JSON-ready figures (DESIGN section 4 names); ``None`` where not measurable.
    uncertainty : dict
        Standard deviation per metric (``<metric>_sd``). Close-up count and density: the spread between
        re-shots of the same site (:func:`tracker.imaging.uncertainty.border_turnover_sd`), with the tile
        bootstrap's spread between fields as ``*_sampling_sd``; the others from a bootstrap over tiles.
    quality : dict
        ``{"retake": bool, "flags": [...], "reasons": [...], ...}`` from the quality gate, the
        measurement and the alignment.
    transform : (3, 3) ndarray or None
        Maps this photo's pixels to the baseline photo's pixels; ``None`` without a baseline.
    alignment : dict or None
        The alignment report (``ok``, ``inliers``, ``quality``) when a baseline was given.
    mask : (H, W) bool ndarray
        The hair mask, same size as the photo.
    parameters : dict
        Options the analysis ran with (stored beside the result).
    detections : tuple of dict
        Close-ups: one dict per counted hair, ``x``, ``y`` (exit estimate, px), ``width_px``,
        ``width_um`` (``None`` without a scale) and ``weight`` (1, or 1/2 for a hair cut by the field
        edge). The clinician's corrections add or remove such marks. Empty for global photos.
    """

    kind: str
    metrics: dict[str, Any]
    uncertainty: dict[str, Any]
    quality: dict[str, Any]
    transform: np.ndarray | None
    alignment: dict[str, Any] | None
    mask: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)
    detections: tuple[dict[str, Any], ...] = ()
    pipeline_version: str = PIPELINE_VERSION

    @property
    def retake(self) -> bool:
        return bool(self.quality.get("retake"))


def _merge_quality(base: dict[str, Any], extra_flags: list[str]) -> dict[str, Any]:
    quality = dict(base)
    flags = list(quality.get("flags", []))
    reasons = list(quality.get("reasons", []))
    for flag in extra_flags:
        if flag not in flags:
            flags.append(flag)
            reasons.append(_FLAG_TEXT.get(flag, flag.replace("_", " ")))
    quality["flags"] = flags
    quality["reasons"] = reasons
    quality["retake"] = any(flag in RETAKE_FLAGS for flag in flags)
    return quality


def _as_reference(baseline: Any, *, kind: str, marker_size_mm: float | None) -> BaselineReference | None:
    """A baseline photo prepared for its follow-ups (a prepared reference is used as it is)."""
    if isinstance(baseline, BaselineReference) and baseline.kind != kind:
        raise ValueError(f"the baseline reference was prepared for a {baseline.kind} photo, not a {kind} one")
    if baseline is None or isinstance(baseline, BaselineReference):
        return baseline
    return prepare_baseline(baseline, kind=kind, marker_size_mm=marker_size_mm)


def analyse_closeup(
    image: np.ndarray,
    *,
    px_per_mm: float | None = None,
    baseline: np.ndarray | BaselineReference | None = None,
    baseline_sharpness: float | None = None,
    vellus_um: float = 30.0,
    terminal_um: float = 60.0,
    manual_alignment: Any = None,
    scale_source: str | None = None,
    marker_size_mm: float | None = STICKER_MM,
    working_px_per_mm: float | None = CLOSEUP_PX_PER_MM,
) -> PhotoAnalysis:
    """Analyse a trichoscopy close-up: hair count, density, widths, vellus share, coverage.

    The printed fiducial sticker (:mod:`tracker.imaging.fiducial`), when in the photo, is always left out
    of the analysed field (its printed pattern is not hair). Without a given ``px_per_mm`` its scale is
    used (``scale_source`` "fiducial"); a given scale wins (manual or device) and the sticker checks it.
    When the baseline shows a sticker too, the sticker gives the transform to the baseline (kept when the
    skin around it correlates; otherwise feature matching runs, with the stickers masked out).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB close-up; the whole image is the analysed field.
    px_per_mm : float, optional
        Scale; without it density and widths are ``None`` and the photo is flagged ``no_scale``.
    baseline : (H', W', 3) uint8 ndarray or BaselineReference, optional
        The baseline close-up of the same site, to align to, or what :func:`prepare_baseline` made of it
        (same results; the service stores it so that the baseline is never decoded again).
    baseline_sharpness : float, optional
        Sharpness of the baseline, so blur is judged relative to it (default: the baseline's).
    vellus_um, terminal_um : float
        Width thresholds (clinics differ; DESIGN section 4).
    manual_alignment : tracker.imaging.align.Alignment, optional
        A transform to the baseline from points the clinician picked; replaces automatic alignment.
    scale_source : {"manual", "device"}, optional
        Where a given ``px_per_mm`` came from (default "manual"); ignored without ``px_per_mm``.
    marker_size_mm : float or None
        Printed marker side of the fiducial sticker (default :data:`STICKER_MM`); None: do not look for it.
    working_px_per_mm : float or None
        Hairs are measured on a copy reduced to this scale when the photo's is higher (default
        :data:`tracker.pipeline_work.CLOSEUP_PX_PER_MM`: a 20 um hair stays 3 px wide); positions,
        widths and the mask are reported in the photo's own pixels. None: measure at full size. Without
        a known scale the photo is measured at full size.

    Returns
    -------
    PhotoAnalysis
        ``metrics`` and ``parameters`` carry ``px_per_mm`` (the scale used, or None) and ``scale_source``
        ("manual", "device", "fiducial" or None); ``parameters["fiducial"]`` what the sticker search
        found. Flags: ``no_scale`` (density null), ``scale_conflict`` (given and sticker scale differ by
        more than :data:`SCALE_CONFLICT`).
    """
    from tracker.imaging.hair import measure_closeup

    if px_per_mm is not None and not px_per_mm > 0:
        raise ValueError(f"px_per_mm must be positive, got {px_per_mm}")
    if scale_source is not None and scale_source not in ("manual", "device"):
        raise ValueError(f"scale_source of a given scale must be 'manual' or 'device', got {scale_source!r}")
    if marker_size_mm is not None and not (np.isfinite(marker_size_mm) and marker_size_mm > 0):
        raise ValueError(f"marker_size_mm must be positive, got {marker_size_mm}")
    baseline = _as_reference(baseline, kind="closeup", marker_size_mm=marker_size_mm)
    if baseline_sharpness is None and baseline is not None:
        baseline_sharpness = baseline.sharpness
    gate = assess_quality(image, kind="closeup", reference_sharpness=baseline_sharpness)
    sticker = find_sticker(image, marker_size_mm=marker_size_mm)
    scale, source, scale_flags = choose_scale(px_per_mm, scale_source, sticker)
    field_mask = sticker_field_mask(sticker, image.shape)
    # Measured once on the working copy (every figure in the working frame), then mapped back.
    working = working_for_scale(image.shape, scale, target_px_per_mm=working_px_per_mm)
    work_scale = None if scale is None else scale * working.factor
    work_field = None if field_mask is None else shrink(field_mask, working)
    # The whole field is measured whatever the alignment says (a failed alignment of a close-up is a note:
    # same spot?, not a retake), so the two run side by side when this process may use two cores.
    aligned = run_beside(align_closeup, baseline, image, sticker, field_mask, manual=manual_alignment)
    measurement = measure_closeup(shrink(image, working), px_per_mm=work_scale, field_mask=work_field,
                                  vellus_um=vellus_um, terminal_um=terminal_um)
    uncertainty = closeup_uncertainty(working.shape, measurement.hairs, measurement.mask, px_per_mm=work_scale,
                                      vellus_um=vellus_um, field_mask=work_field)
    alignment, align_flags = aligned()
    metrics = measurement.metrics()
    metrics.setdefault("hair_count", measurement.hair_count)
    if metrics.get("mean_shaft_width_px") is not None:
        metrics["mean_shaft_width_px"] = metrics["mean_shaft_width_px"] / working.factor
    metrics["px_per_mm"] = scale
    metrics["scale_source"] = source
    flags = list(measurement.flags) + align_flags + scale_flags + ([] if scale else ["no_scale"])
    quality = _merge_quality(gate.as_dict(), flags)
    return PhotoAnalysis(
        kind="closeup",
        metrics=metrics,
        uncertainty=uncertainty,
        quality=quality,
        transform=None if alignment is None else alignment.matrix,
        alignment=None if alignment is None else alignment.as_dict(),
        mask=enlarge_mask(measurement.mask, working),
        parameters={"px_per_mm": scale, "scale_source": source, "given_px_per_mm": px_per_mm,
                    "vellus_um": vellus_um, "terminal_um": terminal_um, "marker_size_mm": marker_size_mm,
                    "fiducial": sticker_summary(sticker), "working_px_per_mm": work_scale,
                    "working_shape": list(working.shape)},
        detections=_detections(full_hairs(measurement.hairs, working), scale),
    )


def _detections(hairs: tuple[dict, ...], px_per_mm: float | None) -> tuple[dict[str, Any], ...]:
    """The counted hairs as JSON-ready marks (rounded: sub-0.01 px digits are noise)."""
    return tuple(
        {
            "x": round(float(h["x"]), 2),
            "y": round(float(h["y"]), 2),
            "width_px": round(float(h["width_px"]), 3),
            "width_um": None if not px_per_mm else round(float(h["width_px"]) / px_per_mm * 1000.0, 2),
            "weight": float(h.get("weight", 1.0)),
        }
        for h in hairs
    )


def analyse_global(
    image: np.ndarray,
    *,
    view: str = "vertex",
    roi: np.ndarray | None = None,
    baseline: np.ndarray | BaselineReference | None = None,
    baseline_roi: np.ndarray | None = None,
    baseline_sharpness: float | None = None,
    manual_alignment: Any = None,
    working_long_side: int | None = None,
    coverage_long_side: int | None = None,
) -> PhotoAnalysis:
    """Analyse a global photo: hair coverage of a region of interest.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB global photo.
    view : str
        The view, for the default ROI (:func:`tracker.imaging.roi.default_roi`).
    roi : (N, 2) ndarray, optional
        ROI polygon in this image's pixels. Default: carried from ``baseline_roi`` through the
        alignment when a baseline is given, else the view's default ROI.
    baseline : (H', W', 3) uint8 ndarray or BaselineReference, optional
        The baseline photo of the same view, to align to (hair is masked out of the features), or what
        :func:`prepare_baseline` made of it (same results; not with ``working_long_side``).
    baseline_roi : (N, 2) ndarray, optional
        ROI in baseline pixels (default: the view's default ROI on the baseline).
    baseline_sharpness : float, optional
        Sharpness of the baseline, so blur is judged relative to it.
    manual_alignment : tracker.imaging.align.Alignment, optional
        A transform to the baseline from points the clinician picked; replaces automatic alignment.
    working_long_side : int or None
        Run the hair region and the alignment on copies with this long side (e.g.
        :data:`tracker.pipeline_work.GLOBAL_LONG_SIDE`; both work at about 1000 px inside); the transform
        is reported in the photos' own pixels. Default None: the full photos, as validated. Measured on
        8 vertex pairs at 3200 x 2400 (benchmarks/speed_accuracy.py), 1600 px copies saved about 0.2 s,
        but the corner error against truth rose in 4 pairs and fell in 2 (mean 1.81 -> 2.05 px, max
        2.5 -> 3.4 px): not clearly noise, so not the default.
    coverage_long_side : int or None
        Measure coverage on a copy with this long side. Default None: full size. Coverage depends on the
        resolution (strands a pixel wide blend with the skin): on the same phantoms a 1600 px copy read
        0.021-0.025 higher than the full photo (coverage MAE against truth 0.019 -> 0.041).
    """
    from tracker.imaging.coverage import measure_coverage
    from tracker.imaging.geometry import transform_points
    from tracker.imaging.roi import carry_roi, default_roi, polygon_mask

    working = working_for_long_side(image.shape, working_long_side)
    base_working, base_shape = None, None
    if isinstance(baseline, np.ndarray):  # hair region and features of the baseline at the working size
        base_working, base_shape = working_for_long_side(baseline.shape, working_long_side), baseline.shape[:2]
        if baseline_sharpness is None and base_working.reduced:
            baseline_sharpness = sharpness(baseline)
        baseline = prepare_baseline(shrink(baseline, base_working), kind="global")
    else:
        baseline = _as_reference(baseline, kind="global", marker_size_mm=None)
        if baseline is not None and working.reduced:
            raise ValueError("working_long_side needs the baseline photo, not a prepared reference")
    if baseline_sharpness is None and baseline is not None:
        baseline_sharpness = baseline.sharpness
    gate = assess_quality(image, kind="global", reference_sharpness=baseline_sharpness)
    # Serial (unlike a close-up's): see tracker.pipeline_work.run_beside for what running beside measured here.
    alignment, align_flags = align_global(baseline, image, working, base_working, manual=manual_alignment)
    if roi is None:
        if alignment is not None and alignment.ok:
            base_roi = baseline_roi if baseline_roi is not None else default_roi(view, base_shape or baseline.shape)
            roi = carry_roi(base_roi, alignment.matrix)
        else:
            roi = default_roi(view, image.shape)
    measuring = working_for_long_side(image.shape, coverage_long_side)
    roi_mask = polygon_mask(transform_points(np.asarray(roi, float), measuring.to_work()), measuring.shape)
    if not roi_mask.any() and measuring.reduced:  # a sliver of an ROI can vanish at reduced size
        measuring = working_for_long_side(image.shape, None)
        roi_mask = polygon_mask(roi, image.shape)
    if not roi_mask.any():
        raise ValueError("the region of interest lies outside the image")
    measured = measure_coverage(shrink(image, measuring), roi_mask=roi_mask)
    metrics = measured.metrics()
    # Strands of a global photo are not countable: count-based figures are not measured here.
    metrics.update({"hair_count": None, "density_per_cm2": None, "mean_shaft_width_um": None,
                    "vellus_fraction": None})
    quality = _merge_quality(gate.as_dict(), list(measured.flags) + align_flags)
    sums = tile_sums(measuring.shape, field_mask=roi_mask, pixel_values=measured.mask)
    coverage_sd = bootstrap_ratio_sd(sums["pixels"], sums["area"])
    uncertainty = {"hair_coverage_sd": coverage_sd, "scalp_visibility_sd": coverage_sd}
    return PhotoAnalysis(
        kind="global",
        metrics=metrics,
        uncertainty=uncertainty,
        quality=quality,
        transform=None if alignment is None else alignment.matrix,
        alignment=None if alignment is None else alignment.as_dict(),
        mask=enlarge_mask(measured.mask, measuring),
        parameters={"view": view, "roi": np.asarray(roi, float).round(2).tolist(),
                    "working_shape": list(working.shape), "coverage_shape": list(measuring.shape)},
    )

