"""Compare two visits of one view/site: both photos in the BEFORE photo's frame, and the comparison PNG.

:func:`compare_photos` loads two photos of one patient and one view or site, checks the actor may see
them, and puts AFTER into BEFORE's pixel frame with the transforms stored by the analyses: each
follow-up's ``Analysis.transform`` maps it to the baseline of its view, so AFTER -> BEFORE is
``inv(T_before) @ T_after`` (``T`` is the identity for the baseline itself). When a transform is missing
or the alignment was refused, the photos are shown unaligned (AFTER only resized to BEFORE's size) and
:attr:`Comparison.aligned` is False with the reason: a wrong alignment presented as right is the worst
outcome. AFTER is colour-matched to BEFORE for display only (DESIGN section 5, display path).

:func:`render_comparison` draws one mode (side by side, wipe, blend, difference heat map) from a
:class:`Comparison` with the functions of :mod:`tracker.reports.compare`, and
:func:`export_comparison_png` returns it as PNG bytes without any metadata (audited ``export``).
Labels carry dates, sessions and metrics; the patient's name only when asked for.
"""

from __future__ import annotations

import cv2
import numpy as np
from sqlalchemy import select

from tracker.imaging.align import warp_to_reference
from tracker.imaging.display import match_display
from tracker.imaging.geometry import resize_matrix, transform_points
from tracker.imaging.roi import default_roi
from tracker.reports.compare import common_crop, to_png_bytes, visit_label
from tracker.reports.comparison_view import MODES, Comparison, framed_pair, render_comparison
from tracker.services.access import Actor, audit, missing, require_patient_access
from tracker.services.photos import _baseline_photo, _pixels
from tracker.store import Analysis, Patient, Photo, Store, Visit

__all__ = ["MODES", "Comparison", "compare_photos", "export_comparison_png", "framed_pair", "metric_lines",
           "render_comparison"]



# --- loading ----------------------------------------------------------------------------------------------


def _photo_rows(store: Store, actor: Actor, photo_ids: tuple[int, int]) -> list[tuple[Photo, Visit]]:
    rows = []
    with store.session() as session:
        for photo_id in photo_ids:
            row = session.execute(
                select(Photo, Visit).join(Visit, Photo.visit_id == Visit.id).where(Photo.id == photo_id)
            ).first()
            if row is None:
                raise missing(actor, f"photo with id {photo_id}")
            require_patient_access(actor, row[1].patient_id)
            rows.append((row[0], row[1]))
    return rows


def _newest_analysis(store: Store, photo_id: int) -> Analysis | None:
    with store.session() as session:
        return session.scalar(
            select(Analysis).where(Analysis.photo_id == photo_id).order_by(Analysis.id.desc()).limit(1)
        )


def _to_baseline(store: Store, photo: Photo, analysis: Analysis | None) -> tuple[np.ndarray | None, int, str]:
    """(transform to the baseline or None, baseline photo id, reason when None)."""
    if analysis is None:
        baseline = _baseline_photo(store, photo)
        if baseline.id == photo.id:
            return np.eye(3), photo.id, ""
        return None, baseline.id, f"the {photo.view_or_site} photo of photo id {photo.id} has not been analysed"
    baseline_id = analysis.baseline_photo_id if analysis.baseline_photo_id is not None else photo.id
    if baseline_id == photo.id:
        return np.eye(3), photo.id, ""
    alignment = (analysis.quality or {}).get("alignment") or {}
    if analysis.transform is None or not alignment.get("ok"):
        reason = alignment.get("reason") or "no transform to the baseline was stored"
        return None, baseline_id, f"alignment to the baseline failed ({reason})"
    return np.asarray(analysis.transform, dtype=np.float64), baseline_id, ""


def _mask(store: Store, analysis: Analysis | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if analysis is None or not analysis.mask_blob_key:
        return None
    encoded = np.frombuffer(store.blobs.get(analysis.mask_blob_key), dtype=np.uint8)
    mask = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    if mask is None or mask.shape != tuple(shape[:2]):
        return None
    return mask > 0


def _percent(value: float | None, sd: float | None, digits: int = 1) -> str:
    text = f"{value * 100:.{digits}f} %"
    return text if sd is None else f"{text} ± {sd * 100:.{digits}f} %"


def metric_lines(kind: str, analysis: Analysis | None) -> tuple[str, ...]:
    """Caption lines of a photo's measurements (its newest analysis), e.g. ``("Coverage 61.2 % ± 1.0 %",)``."""
    if analysis is None:
        return ("Not analysed",)
    metrics, sd = analysis.metrics or {}, analysis.uncertainty or {}
    lines = []
    if kind == "global":
        if metrics.get("hair_coverage") is not None:
            lines.append("Coverage " + _percent(metrics["hair_coverage"], sd.get("hair_coverage_sd")))
    else:
        density, density_sd = metrics.get("density_per_cm2"), sd.get("density_per_cm2_sd")
        if density is not None:
            lines.append(f"Density {density:.0f} hairs/cm²" + (f" ± {density_sd:.0f}" if density_sd else ""))
        elif metrics.get("hair_count") is not None:
            lines.append(f"Hairs in field {metrics['hair_count']:.0f} (no scale)")
        parts = []
        if metrics.get("mean_shaft_width_um") is not None:
            parts.append(f"width {metrics['mean_shaft_width_um']:.0f} µm")
        if metrics.get("vellus_fraction") is not None:
            parts.append(f"vellus {metrics['vellus_fraction'] * 100:.0f} %")
        if parts:
            lines.append("Mean " + ", ".join(parts))
    if (analysis.quality or {}).get("retake"):
        lines.append("Retake: " + "; ".join(analysis.quality.get("reasons", [])))
    return tuple(lines)


# --- the use case -----------------------------------------------------------------------------------------


def compare_photos(
    store: Store,
    before_photo_id: int,
    after_photo_id: int,
    *,
    actor: Actor,
    include_patient: bool = False,
    match_colours: bool = True,
    audited: bool = True,
) -> Comparison:
    """Put two photos of one patient and one view/site into the BEFORE photo's frame for comparison.

    Parameters
    ----------
    store : Store
    before_photo_id, after_photo_id : int
        The photos to compare (usually the baseline and the latest visit; any order of dates works).
    actor : Actor
        Who asks; must have access to both photos.
    include_patient : bool
        Put the patient's code and name in the title (default: never any name).
    match_colours : bool
        Colour-match AFTER to BEFORE's skin for display (white balance and exposure).
    audited : bool
        Append a ``view_comparison`` audit event (turn off only when the caller audits a larger action).

    Returns
    -------
    Comparison

    Raises
    ------
    PermissionDenied
        The actor may not see one of the photos (also for a missing photo, for a patient actor).
    NotFound
        A photo does not exist (clinical actors).
    ValueError
        The photos belong to different patients, are of different kinds or views/sites, or are the same photo.
    """
    (before, before_visit), (after, after_visit) = _photo_rows(store, actor, (before_photo_id, after_photo_id))
    if before_visit.patient_id != after_visit.patient_id:
        raise ValueError("the two photos belong to different patients: compare photos of one patient")
    if (before.kind, before.view_or_site) != (after.kind, after.view_or_site):
        raise ValueError(f"the photos show different views or sites ({before.view_or_site} and "
                         f"{after.view_or_site}): compare photos of one view or site")
    if before.id == after.id:
        raise ValueError("pick two different photos to compare")
    before_analysis, after_analysis = _newest_analysis(store, before.id), _newest_analysis(store, after.id)
    before_pixels, after_pixels = _pixels(store, before), _pixels(store, after)
    shape = before_pixels.shape

    warnings: list[str] = []
    t_before, base_b, why_b = _to_baseline(store, before, before_analysis)
    t_after, base_a, why_a = _to_baseline(store, after, after_analysis)
    aligned = t_before is not None and t_after is not None and base_b == base_a
    if aligned:
        matrix = np.linalg.inv(t_before) @ t_after
        matrix = matrix / matrix[2, 2]
    else:
        reason = why_b or why_a or "the photos were aligned to different baselines (re-analyse them)"
        warnings.append(f"Not aligned: shown unaligned, because {reason}.")
        matrix = resize_matrix(after_pixels.shape, shape)
    after_in_frame = warp_to_reference(after_pixels, matrix, reference_shape=shape)
    if not np.any(after_in_frame):
        raise ValueError("the stored transform puts the AFTER photo outside the BEFORE photo's frame")

    if match_colours:
        try:
            after_in_frame = match_display(after_in_frame, before_pixels, method="gain")
        except ValueError as exc:
            warnings.append(f"Colours not matched for display ({exc}).")
    try:
        crop = common_crop([before_pixels, after_in_frame])
    except ValueError:
        crop = (0, 0, shape[1], shape[0])

    roi = None
    if before.kind == "global":
        roi = _roi_in_before_frame(before_analysis, after_analysis, matrix if aligned else None, before, shape)

    before_mask = after_mask = None
    if aligned:
        before_mask = _mask(store, before_analysis, shape)
        raw_after_mask = _mask(store, after_analysis, after_pixels.shape)
        if raw_after_mask is not None:
            after_mask = warp_to_reference(raw_after_mask, matrix, reference_shape=shape)

    for analysis, visit in ((before_analysis, before_visit), (after_analysis, after_visit)):
        if analysis is not None and (analysis.quality or {}).get("retake"):
            warnings.append(f"The photo of {visit.visit_date:%d %b %Y} is flagged for retake.")

    title = before.view_or_site.replace("_", " ").capitalize()
    title = f"{title} ({'global view' if before.kind == 'global' else 'close-up'})"
    if include_patient:
        with store.session() as session:
            patient = session.get(Patient, before_visit.patient_id)
            title = f"{patient.code} · {patient.display_name} · {title}"
    if audited:
        audit(store, actor, "view_comparison", object_type="photo", object_id=before.id,
              details={"before_photo_id": before.id, "after_photo_id": after.id, "aligned": aligned})
    return Comparison(
        before=before_pixels,
        after=after_in_frame,
        before_photo_id=before.id,
        after_photo_id=after.id,
        patient_id=before_visit.patient_id,
        kind=before.kind,
        view_or_site=before.view_or_site,
        labels=(visit_label(before_visit.visit_date, before_visit.session_number),
                visit_label(after_visit.visit_date, after_visit.session_number)),
        lines=(metric_lines(before.kind, before_analysis), metric_lines(after.kind, after_analysis)),
        title=title,
        matrix=matrix,
        aligned=aligned,
        warnings=tuple(warnings),
        crop=crop,
        roi=roi,
        before_mask=before_mask,
        after_mask=after_mask,
    )


def _roi_in_before_frame(
    before_analysis: Analysis | None,
    after_analysis: Analysis | None,
    matrix: np.ndarray | None,
    before: Photo,
    shape: tuple[int, ...],
) -> np.ndarray:
    """BEFORE's stored ROI (its own pixels); else AFTER's carried through MATRIX; else the view's default."""
    stored = ((before_analysis.parameters or {}) if before_analysis else {}).get("roi")
    if stored:
        return np.asarray(stored, dtype=np.float64)
    carried = ((after_analysis.parameters or {}) if after_analysis else {}).get("roi")
    if carried and matrix is not None:
        return transform_points(np.asarray(carried, dtype=np.float64), matrix)
    return default_roi(before.view_or_site, shape)


# --- comparison images ------------------------------------------------------------------------------------



def export_comparison_png(
    store: Store,
    before_photo_id: int,
    after_photo_id: int,
    *,
    mode: str,
    actor: Actor,
    position: float = 0.5,
    opacity: float = 0.5,
    zoom_to_roi: bool = False,
    include_patient: bool = False,
    comparison: Comparison | None = None,
) -> bytes:
    """The comparison image of MODE as PNG bytes (no metadata at all); audited as ``export``.

    ``comparison`` may pass the result of an earlier :func:`compare_photos` of the same two photos to
    avoid loading them again; access to both photos is checked either way. Other parameters and errors
    as in :func:`compare_photos` and :func:`render_comparison`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if comparison is None:
        comparison = compare_photos(store, before_photo_id, after_photo_id, actor=actor,
                                    include_patient=include_patient, audited=False)
    else:
        if (comparison.before_photo_id, comparison.after_photo_id) != (before_photo_id, after_photo_id):
            raise ValueError("the comparison given is of other photos")
        _photo_rows(store, actor, (before_photo_id, after_photo_id))
    image = render_comparison(comparison, mode=mode, position=position, opacity=opacity, zoom_to_roi=zoom_to_roi)
    data = to_png_bytes(image)
    audit(store, actor, "export", object_type="photo", object_id=before_photo_id,
          details={"what": "comparison_png", "mode": mode, "before_photo_id": before_photo_id,
                   "after_photo_id": after_photo_id, "aligned": comparison.aligned, "bytes": len(data)})
    return data
