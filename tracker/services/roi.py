"""The region of interest of a global view: set by the clinician, carried to the follow-ups.

On the baseline photo of a view the ROI is drawn once; every follow-up of that view measures the
baseline's ROI carried through its own transform (tracker.services.photos ``_analyse`` reads the
baseline's stored ROI). Setting it therefore re-analyses the baseline and then each follow-up. On a
follow-up, an ROI in its own pixels re-analyses only that photo (until the baseline's ROI changes
again). A follow-up aligned by hand keeps its picked points. Analyses are appended, never overwritten.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from tracker.imaging.roi import polygon_mask
from tracker.services.access import Actor, audit, missing, require_clinical
from tracker.services.photos import _analyse, _baseline_photo
from tracker.store import Analysis, Photo, Store, Visit

__all__ = ["MIN_ROI_PIXELS", "current_roi", "set_roi"]

#: An ROI covering fewer image pixels than this is refused (a slip of the mouse, not a region).
MIN_ROI_PIXELS = 400


def _check_polygon(polygon, photo: Photo) -> np.ndarray:
    poly = np.asarray(polygon, dtype=float)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise ValueError(f"an ROI needs at least 3 (x, y) points, got shape {poly.shape}")
    if not np.all(np.isfinite(poly)):
        raise ValueError("the ROI has non-finite coordinates")
    area = int(polygon_mask(poly, (photo.height, photo.width)).sum())
    if area < MIN_ROI_PIXELS:
        raise ValueError(
            f"the ROI covers {area} pixels of the photo ({photo.width}x{photo.height}); "
            f"draw a region of at least {MIN_ROI_PIXELS} pixels inside the photo"
        )
    return poly


def _latest(store: Store, photo_id: int) -> Analysis | None:
    with store.session() as session:
        return session.scalar(
            select(Analysis).where(Analysis.photo_id == photo_id).order_by(Analysis.id.desc()).limit(1)
        )


def _manual_alignment(analysis: Analysis | None):
    """The clinician's alignment of the newest analysis (picked points), to keep on re-analysis."""
    from tracker.imaging.align import homography_from_points

    parameters = (analysis.parameters or {}) if analysis is not None else {}
    if parameters.get("alignment") != "manual":
        return None, None
    extra = {k: parameters[k] for k in ("alignment", "moving_points", "reference_points")}
    alignment = homography_from_points(parameters["moving_points"], parameters["reference_points"])
    return (alignment, extra) if alignment.ok else (None, None)


def _reanalyse(store: Store, photo_id: int, roi: np.ndarray | None) -> Analysis:
    alignment, extra = _manual_alignment(_latest(store, photo_id))
    return _analyse(store, photo_id, roi=roi, manual_alignment=alignment, extra_parameters=extra)


def current_roi(store: Store, photo_id: int, *, actor: Actor) -> np.ndarray | None:
    """The ROI (``(N, 2)`` pixels of this photo) its newest analysis measured, or None."""
    require_clinical(actor)
    analysis = _latest(store, photo_id)
    roi = None if analysis is None else (analysis.parameters or {}).get("roi")
    return None if not roi else np.asarray(roi, float)


def set_roi(store: Store, photo_id: int, polygon, *, actor: Actor) -> list[Analysis]:
    """Set the ROI of a global photo and re-analyse what depends on it; audited.

    Parameters
    ----------
    polygon : (N, 2) array_like of float, or None
        ROI vertices ``(x, y)`` in this photo's pixels (N >= 3). ``None`` restores the default: the
        view's default ROI on a baseline, the baseline's ROI carried through the transform on a
        follow-up.

    Returns
    -------
    list of Analysis
        The new analyses: this photo's first, then (on a baseline) each follow-up of the view.

    Raises
    ------
    ValueError
        A close-up photo, or a polygon with fewer than 3 points, non-finite, or covering almost none
        of the photo.
    """
    require_clinical(actor)
    with store.session() as session:
        photo = session.get(Photo, photo_id)
    if photo is None:
        raise missing(actor, f"photo with id {photo_id}")
    if photo.kind != "global":
        raise ValueError("a region of interest is set on global photos; close-ups measure the whole field")
    roi = None if polygon is None else _check_polygon(polygon, photo)
    base = _baseline_photo(store, photo)
    analyses = [_reanalyse(store, photo_id, roi)]
    if base.id == photo.id:
        with store.session() as session:
            patient_id = session.scalar(select(Visit.patient_id).where(Visit.id == photo.visit_id))
            followups = list(session.scalars(
                select(Photo.id)
                .join(Visit, Photo.visit_id == Visit.id)
                .where(Visit.patient_id == patient_id, Photo.kind == "global",
                       Photo.view_or_site == photo.view_or_site, Photo.id != photo.id)
                .order_by(Visit.visit_date, Visit.id, Photo.id)
            ))
        analyses += [_reanalyse(store, fid, None) for fid in followups]
    audit(store, actor, "set_roi", object_type="photo", object_id=photo_id,
          details={"points": None if roi is None else len(roi), "default": roi is None,
                   "baseline": base.id == photo.id, "analyses": [a.id for a in analyses]})
    return analyses
