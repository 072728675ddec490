"""Scale of a close-up for the pipeline: the fiducial sticker's px/mm, mask and transform, and precedence.

A close-up's scale comes, in this order, from a value given with the photo (``manual``: typed in;
``device``: the calibrated device profile it was taken with), from the printed fiducial sticker found
in the photo (``fiducial``), or not at all (density null, flag ``no_scale``). The sticker is always left
out of the analysed field, found or refused, so its printed pattern is never counted as hair. When the
follow-up and its baseline both show the sticker, the sticker gives the transform between them.

Pure functions on arrays, used by :func:`tracker.pipeline.analyse_closeup`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Side of the printed sticker's marker (mm): the sheet's default (tracker.reports.sticker, docs/fiducial.md).
STICKER_MM = 2.54
#: Where a close-up's scale came from (DESIGN section 3); "fiducial" is found at analysis.
SCALE_SOURCES = ("manual", "device", "fiducial")
#: A given scale and the sticker's that differ by more than this share flag "scale_conflict".
SCALE_CONFLICT = 0.05


def find_sticker(image: np.ndarray, *, marker_size_mm: float | None = STICKER_MM) -> Any:
    """The fiducial sticker search of a close-up (:func:`tracker.imaging.fiducial.detect_fiducial`).

    Returns the :class:`~tracker.imaging.fiducial.FiducialResult` (``found`` False with a ``reason``
    when there is none or it was refused), or None when ``marker_size_mm`` is None (search disabled).
    Photos larger than :data:`tracker.pipeline_work.STICKER_LONG_SIDE` are searched on a reduced copy;
    corners, outline, scale and homography are given in the photo's own pixels.
    """
    if marker_size_mm is None:
        return None
    from tracker.imaging.fiducial import detect_fiducial
    from tracker.pipeline_work import STICKER_LONG_SIDE, full_sticker, shrink, working_for_long_side

    # Searched on a copy of at most STICKER_LONG_SIDE px (a 12 MP photo: 4x fewer pixels; the marker's
    # corners are refined there to a fraction of a pixel) and reported in the photo's pixels.
    working = working_for_long_side(image.shape, STICKER_LONG_SIDE)
    found = detect_fiducial(shrink(image, working), marker_size_mm=float(marker_size_mm))
    return full_sticker(found, working)


def choose_scale(
    px_per_mm: float | None, scale_source: str | None, sticker: Any
) -> tuple[float | None, str | None, list[str]]:
    """The scale to use, where it came from, and flags: a given scale > the sticker's > none.

    A given scale (``scale_source`` "manual" or "device") is used as given; when a sticker was found
    and its px/mm differs by more than :data:`SCALE_CONFLICT`, the flag ``"scale_conflict"`` is raised.
    """
    found = sticker is not None and sticker.found
    if px_per_mm is not None:
        flags = []
        if found and abs(float(px_per_mm) / sticker.px_per_mm - 1.0) > SCALE_CONFLICT:
            flags.append("scale_conflict")
        return float(px_per_mm), scale_source or "manual", flags
    if found:
        return float(sticker.px_per_mm), "fiducial", []
    return None, None, []


def sticker_field_mask(sticker: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """(H, W) bool field mask, False on the sticker (found, or seen but refused); None when there is none.

    A refused marker (partly outside the photo, too oblique, smeared) still hides the skin and prints a
    pattern: its detected corners, widened by the quiet zone and half a cell, are masked out as well.
    """
    if sticker is None or sticker.corners is None:
        return None
    if sticker.found:
        keep = sticker.field_mask(shape)
    else:
        import cv2

        from tracker.imaging.fiducial import QUIET_ZONE_CELLS, marker_cells

        corners = np.asarray(sticker.corners, float)
        centre = corners.mean(axis=0)
        cells = marker_cells()
        grow = (cells + 2.0 * (QUIET_ZONE_CELLS + 0.5)) / cells
        polygon = centre + (corners - centre) * grow
        fill = np.full(shape[:2], 255, np.uint8)
        cv2.fillPoly(fill, [np.rint(polygon * 16).astype(np.int32)], 0, cv2.LINE_8, shift=4)
        keep = fill > 0
    if not keep.any():
        raise ValueError("the fiducial sticker covers the whole photo: nothing to analyse")
    return None if keep.all() else keep


def sticker_summary(sticker: Any) -> dict[str, Any] | None:
    """JSON-ready summary of a sticker search (stored in the analysis parameters)."""
    if sticker is None:
        return None
    summary: dict[str, Any] = {"found": bool(sticker.found), "reason": sticker.reason,
                               "marker_id": sticker.marker_id}
    if sticker.found:
        summary.update(px_per_mm=round(float(sticker.px_per_mm), 4), confidence=round(float(sticker.confidence), 4),
                       tilt_deg=round(float(sticker.tilt_deg), 2))
    return summary


def sticker_alignment(
    reference: Any, image: np.ndarray, base_sticker: Any, sticker: Any, field_mask: np.ndarray | None,
) -> tuple[Any, float]:
    """The transform image px -> baseline px through the two stickers, kept when the skin correlates.

    ``reference`` is the baseline's :class:`~tracker.imaging.align_reference.AlignmentReference` (its
    working-level grey copy, sticker masked out). A new sticker may be placed a little elsewhere at each
    visit: the transform is accepted only when the grey images (stickers masked out) correlate at least
    as well as a feature alignment must (``align_policy.MIN_CORRELATION``). Returns (alignment or None,
    correlation).
    """
    import cv2
    from skimage.transform import SimilarityTransform

    from tracker.imaging.align import Alignment
    from tracker.imaging.align_policy import MIN_CORRELATION
    from tracker.imaging.refine import ecc_refinement

    # A similarity through the two sets of refined marker corners: measured on re-shot phantoms, the
    # composed marker homographies (8 parameters from 4 corners) extrapolate to the image corners with
    # errors of several px; the similarity stays within a fraction of a pixel (contact dermoscopy presses
    # the sticker flat, and its tilt is limited by the detector).
    fitted = SimilarityTransform.from_estimate(np.asarray(sticker.corners, float),
                                               np.asarray(base_sticker.corners, float))
    if not fitted:
        return None, 0.0
    matrix = np.asarray(fitted.params, float)
    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    mask = np.full(grey.shape, 255, np.uint8) if field_mask is None else np.where(field_mask, 255, 0).astype(np.uint8)
    # The correlation is read at the reference's working level (ECC works at about 1000 px in any case).
    check = ecc_refinement(np.asarray(reference.grey), np.asarray(reference.mask), grey, mask,
                           reference.to_work @ matrix, refine=False)
    rho = float(check["correlation"])
    if rho < MIN_CORRELATION:
        return None, rho
    quality = {"method": "fiducial", "model": "similarity", "preset": "closeup", "ecc_correlation": rho,
               "correlation_needed": MIN_CORRELATION, "refined": False,
               "marker_ids": [int(base_sticker.marker_id), int(sticker.marker_id)]}
    return Alignment(matrix=matrix, ok=True, inliers=4, reason=None, quality=quality), rho
