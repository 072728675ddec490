"""Manual correction of a close-up analysis: the clinician adds or removes hair marks.

A close-up :class:`~tracker.store.Analysis` stores one mark per counted hair (``detections``: ``x``,
``y``, ``width_px``, ``width_um``, ``weight``). A :class:`~tracker.store.Correction` row records one
round of edits (marks ``added`` and ``removed``) and the metrics recomputed from the marks that result;
corrections stack (each builds on the previous one of the same analysis) and are never updated. The
automatic metrics stay on the analysis; the timeline charts the newest correction's metrics.

Marks carry an ``id``: ``"d<i>"`` for the i-th automatic detection, ``"m<n>-<k>"`` for the k-th mark
added by the n-th correction of the analysis. An added mark gets a width measured at the click from the
stored hair mask (``width_source="mask"``: the pipeline's rule, median of ``2 * distance - 0.5`` over the
skeleton near the click) or, when the click is off the mask, the median width of the analysis
(``width_source="median"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from skimage.morphology import skeletonize
from sqlalchemy import select

from tracker.errors import StorageError
from tracker.services.access import Actor, audit, missing, require_clinical, require_patient_access
from tracker.store import Analysis, Correction, Photo, Store, Visit

__all__ = [
    "CorrectionPreview", "correct_analysis", "corrected_metrics", "current_marks", "default_radius_px",
    "latest_correction", "list_corrections", "nearest_mark", "preview_correction", "width_at",
]

#: Metrics recomputed from the marks; every other metric of the analysis is kept as measured.
CORRECTED_KEYS = (
    "hair_count", "density_per_cm2", "mean_shaft_width_um", "mean_shaft_width_px", "vellus_fraction",
    "terminal_fraction", "terminal_density_per_cm2", "cumulative_thickness_mm_per_cm2",
)
#: Half-size (px) of the window skeletonised around a click to find the shaft's centre line.
_WINDOW_PX = 48


@dataclass(frozen=True)
class CorrectionPreview:
    """What saving a correction would store: the marks added and removed, the marks and metrics after it."""

    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    marks: list[dict[str, Any]]
    metrics: dict[str, Any]


def _point(value: Any) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a point must be (x, y) numbers, got {value!r}") from exc
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"a point must be finite, got {value!r}")
    return x, y


def default_radius_px(width: int, height: int) -> float:
    """Radius (px) within which a click picks an existing mark: 2 % of the longer side, at least 8 px."""
    return max(8.0, 0.02 * max(width, height))


def nearest_mark(marks: Sequence[dict[str, Any]], x: float, y: float, *, radius_px: float) -> int | None:
    """Index of the mark nearest to ``(x, y)`` within ``radius_px`` (the first on ties), or None."""
    if not marks:
        return None
    xy = np.array([[m["x"], m["y"]] for m in marks], dtype=float)
    d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
    i = int(np.argmin(d))
    return i if d[i] <= radius_px else None


def width_at(
    mask: np.ndarray, x: float, y: float, *, snap_px: float, distance: np.ndarray | None = None
) -> float | None:
    """Shaft width (px) of the hair at a click, measured on a hair mask; None when the click is off it.

    The mask pixel nearest to ``(x, y)`` (within ``snap_px``) picks the shaft; its centre line is the
    skeleton of the mask near that pixel, and the width is the median of ``2 * d - 0.5`` over the
    skeleton points within ``max(6, 4 * d0)`` px of the nearest one (``d`` the distance to the
    background, ``d0`` its value there): the rule the pipeline measures automatic detections with.

    Parameters
    ----------
    mask : (H, W) bool or uint8 ndarray
        Hair mask (non-zero = hair); never mutated.
    x, y : float
        Click in image pixels.
    snap_px : float
        A click farther than this from every mask pixel is off the mask.
    distance : (H, W) float32 ndarray, optional
        ``cv2.distanceTransform`` of the mask (L2, 5x5), when already computed.

    Returns
    -------
    float or None
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if snap_px < 0:
        raise ValueError(f"snap_px must be >= 0, got {snap_px}")
    h, w = mask.shape
    r = int(np.ceil(snap_px))
    x0, x1 = max(0, int(np.floor(x)) - r), min(w, int(np.floor(x)) + r + 2)
    y0, y1 = max(0, int(np.floor(y)) - r), min(h, int(np.floor(y)) + r + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.nonzero(mask[y0:y1, x0:x1])
    if not len(xs):
        return None
    d2 = (xs + x0 - x) ** 2 + (ys + y0 - y) ** 2
    k = int(np.argmin(d2))
    if d2[k] > snap_px**2:
        return None
    py, px = int(ys[k] + y0), int(xs[k] + x0)
    binary = (mask != 0).astype(np.uint8)
    if distance is None:
        distance = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    wy0, wy1 = max(0, py - _WINDOW_PX), min(h, py + _WINDOW_PX + 1)
    wx0, wx1 = max(0, px - _WINDOW_PX), min(w, px + _WINDOW_PX + 1)
    window = binary[wy0:wy1, wx0:wx1]
    _, labels = cv2.connectedComponents(window, connectivity=8)
    own = labels == labels[py - wy0, px - wx0]
    sy, sx = np.nonzero(skeletonize(own))
    if not len(sx):  # a speck too small to have a skeleton
        return float(2.0 * distance[py, px] - 0.5)
    sy, sx = sy + wy0, sx + wx0
    dn = np.hypot(sx - px, sy - py)
    j = int(np.argmin(dn))
    d0 = float(distance[sy[j], sx[j]])
    near = np.hypot(sx - sx[j], sy - sy[j]) <= max(6.0, 4.0 * d0)
    return float(np.median(2.0 * distance[sy[near], sx[near]] - 0.5))


def corrected_metrics(
    marks: Sequence[dict[str, Any]],
    automatic: dict[str, Any],
    *,
    px_per_mm: float | None,
    field_area_mm2: float | None,
    vellus_um: float = 30.0,
    terminal_um: float = 60.0,
) -> dict[str, Any]:
    """Close-up metrics recomputed from hair marks, with the definitions of the automatic measurement.

    ``hair_count`` is the rounded sum of the marks' weights; densities divide it by the field area;
    width statistics are weighted means over the marks that have a width (``width_px``). Metrics not
    in :data:`CORRECTED_KEYS` (coverage, field area, scale, flags) are copied from ``automatic``.

    Parameters
    ----------
    marks : sequence of dict
        ``x``, ``y``, ``width_px`` (float or None) and ``weight`` of each hair.
    automatic : dict
        The analysis's own metrics.
    px_per_mm, field_area_mm2 : float or None
        Scale and analysed field; without them density and widths in um are None.
    vellus_um, terminal_um : float
        Width thresholds (vellus ``<``, terminal ``>=``).
    """
    if not (0 < vellus_um <= terminal_um):
        raise ValueError(f"need 0 < vellus_um <= terminal_um, got {vellus_um}, {terminal_um}")
    weights = np.array([float(m.get("weight", 1.0)) for m in marks], dtype=float)
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("mark weights must be finite and >= 0")
    n = int(np.floor(weights.sum() + 0.5))
    has_width = np.array([m.get("width_px") is not None for m in marks], dtype=bool)
    ww = weights[has_width]
    widths_px = np.array([float(m["width_px"]) for m in marks if m.get("width_px") is not None], dtype=float)
    wsum = float(ww.sum())
    out = {k: automatic.get(k) for k in automatic}
    out.update(dict.fromkeys(CORRECTED_KEYS))
    out["hair_count"] = n
    if n and wsum > 0:
        out["mean_shaft_width_px"] = float(np.dot(ww, widths_px) / wsum)
    if px_per_mm and field_area_mm2:
        area_cm2 = field_area_mm2 / 100.0
        out["density_per_cm2"] = n / area_cm2
        if n and wsum > 0:
            widths_um = widths_px / px_per_mm * 1000.0
            out["mean_shaft_width_um"] = float(np.dot(ww, widths_um) / wsum)
            out["vellus_fraction"] = float(np.dot(ww, widths_um < vellus_um) / wsum)
            terminal = float(np.dot(ww, widths_um >= terminal_um) / wsum)
            out["terminal_fraction"] = terminal
            out["terminal_density_per_cm2"] = terminal * n / area_cm2
            out["cumulative_thickness_mm_per_cm2"] = float(np.dot(ww, widths_um) / 1000.0) / area_cm2
    return out


def _load(store: Store, analysis_id: int, actor: Actor) -> tuple[Analysis, Photo, list[Correction]]:
    with store.session() as session:
        row = session.execute(
            select(Analysis, Photo, Visit.patient_id)
            .join(Photo, Analysis.photo_id == Photo.id)
            .join(Visit, Photo.visit_id == Visit.id)
            .where(Analysis.id == analysis_id)
        ).first()
        if row is None:
            raise missing(actor, f"analysis with id {analysis_id}")
        analysis, photo, patient_id = row
        require_patient_access(actor, patient_id)
        corrections = list(
            session.scalars(select(Correction).where(Correction.analysis_id == analysis_id).order_by(Correction.id))
        )
        return analysis, photo, corrections


def _marks(analysis: Analysis, corrections: Iterable[Correction]) -> list[dict[str, Any]]:
    marks = {f"d{i}": {**m, "id": f"d{i}", "source": "auto"} for i, m in enumerate(analysis.detections or [])}
    for correction in corrections:
        for mark in correction.removed or []:
            marks.pop(mark["id"], None)
        for mark in correction.added or []:
            marks[mark["id"]] = {**mark, "source": "manual"}
    return list(marks.values())


def current_marks(store: Store, analysis_id: int, *, actor: Actor) -> list[dict[str, Any]]:
    """The hair marks of an analysis after its corrections (automatic ones have ``source="auto"``)."""
    analysis, _photo, corrections = _load(store, analysis_id, actor)
    return _marks(analysis, corrections)


def list_corrections(store: Store, analysis_id: int, *, actor: Actor) -> list[Correction]:
    """The corrections of an analysis, oldest first."""
    return _load(store, analysis_id, actor)[2]


def latest_correction(store: Store, analysis_id: int, *, actor: Actor) -> Correction | None:
    """The newest correction of an analysis (whose metrics the timeline charts), or None."""
    corrections = list_corrections(store, analysis_id, actor=actor)
    return corrections[-1] if corrections else None


def _mask(store: Store, analysis: Analysis) -> np.ndarray | None:
    if not analysis.mask_blob_key:
        return None
    data = np.frombuffer(store.blobs.get(analysis.mask_blob_key), np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise StorageError(f"the hair mask of analysis {analysis.id} cannot be decoded")
    return mask > 0


def _plan(
    store: Store, analysis: Analysis, photo: Photo, corrections: list[Correction], add: Sequence, remove: Sequence,
    radius_px: float | None, snap_px: float | None,
) -> CorrectionPreview:
    if photo.kind != "closeup":
        raise ValueError("hair marks are corrected on close-up photos only (global views measure coverage)")
    add = [_point(p) for p in add]
    remove = [_point(p) for p in remove]
    marks = _marks(analysis, corrections)
    radius = default_radius_px(photo.width, photo.height) if radius_px is None else float(radius_px)
    removed = []
    for x, y in remove:
        i = nearest_mark(marks, x, y, radius_px=radius)
        if i is None:
            raise ValueError(f"no hair mark within {radius:.0f} px of ({x:.0f}, {y:.0f}) to remove")
        removed.append(marks.pop(i))
    parameters, metrics = analysis.parameters or {}, analysis.metrics or {}
    px_per_mm = metrics.get("px_per_mm") or parameters.get("px_per_mm")
    auto_widths = [m["width_px"] for m in analysis.detections or [] if m.get("width_px") is not None]
    median = float(np.median(auto_widths)) if auto_widths else None
    snap = snap_px if snap_px is not None else max(4.0, median or 0.0)
    mask = _mask(store, analysis) if add else None
    distance = None if mask is None else cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    added = []
    for k, (x, y) in enumerate(add, start=1):
        if not (0 <= x < photo.width and 0 <= y < photo.height):
            raise ValueError(f"({x:.0f}, {y:.0f}) lies outside the photo ({photo.width}x{photo.height})")
        width = None if mask is None else width_at(mask, x, y, snap_px=snap, distance=distance)
        source = "mask"
        if width is None:
            width, source = median, "median"
        added.append({
            "id": f"m{len(corrections) + 1}-{k}", "x": round(x, 2), "y": round(y, 2),
            "width_px": None if width is None else round(width, 3),
            "width_um": None if width is None or not px_per_mm else round(width / px_per_mm * 1000.0, 2),
            "weight": 1.0, "width_source": source,
        })
    after = marks + [{**m, "source": "manual"} for m in added]
    new_metrics = corrected_metrics(
        after, metrics, px_per_mm=px_per_mm, field_area_mm2=metrics.get("analysed_area_mm2"),
        vellus_um=float(parameters.get("vellus_um", 30.0)), terminal_um=float(parameters.get("terminal_um", 60.0)),
    )
    removed = [{k: v for k, v in m.items() if k != "source"} for m in removed]
    return CorrectionPreview(added=added, removed=removed, marks=after, metrics=new_metrics)


def preview_correction(
    store: Store, analysis_id: int, *, actor: Actor, add: Sequence = (), remove: Sequence = (),
    radius_px: float | None = None, snap_px: float | None = None,
) -> CorrectionPreview:
    """What :func:`correct_analysis` would store, without storing it (for a live preview)."""
    require_clinical(actor)
    analysis, photo, corrections = _load(store, analysis_id, actor)
    return _plan(store, analysis, photo, corrections, add, remove, radius_px, snap_px)


def correct_analysis(
    store: Store,
    analysis_id: int,
    *,
    actor: Actor,
    add: Sequence = (),
    remove: Sequence = (),
    notes: str = "",
    radius_px: float | None = None,
    snap_px: float | None = None,
) -> Correction:
    """Add and remove hair marks on a close-up analysis and store the corrected metrics; audited.

    Removals come first: each ``(x, y)`` in ``remove`` takes away the mark nearest to it within
    ``radius_px`` (default :func:`default_radius_px`), among the marks left after the latest
    correction. Each ``(x, y)`` in ``add`` becomes a mark of weight 1 whose width is measured on the
    analysis's hair mask (a click within ``snap_px`` of it; default the larger of 4 px and the median
    automatic width) or else is the median automatic width (``width_source="median"``).

    Returns
    -------
    Correction
        The new row (``added``, ``removed``, ``metrics``, ``notes``, ``user_id``).

    Raises
    ------
    ValueError
        Not a close-up, nothing to change, a removal with no mark near it, a point outside the photo.
    """
    require_clinical(actor)
    if not add and not remove:
        raise ValueError("nothing to correct: give marks to add or to remove")
    if len(notes) > 2000:
        raise ValueError("the note is limited to 2000 characters")
    analysis, photo, corrections = _load(store, analysis_id, actor)
    plan = _plan(store, analysis, photo, corrections, add, remove, radius_px, snap_px)
    row = Correction(analysis_id=analysis_id, user_id=actor.user_id, added=plan.added, removed=plan.removed,
                     metrics=plan.metrics, notes=notes.strip())
    with store.session() as session:
        session.add(row)
        session.commit()
    audit(store, actor, "correct", object_type="analysis", object_id=analysis_id,
          details={"correction_id": row.id, "photo_id": photo.id, "added": len(plan.added),
                   "removed": len(plan.removed), "hair_count": plan.metrics.get("hair_count"),
                   "hair_count_auto": (analysis.metrics or {}).get("hair_count")})
    return row
