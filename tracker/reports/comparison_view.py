"""Comparison images of two photos already put in one frame: the :class:`Comparison` data and its drawing.

:func:`render_comparison` draws one mode (side by side, wipe, blend, difference heat map) from a
:class:`Comparison` with the functions of :mod:`tracker.reports.compare`; :func:`framed_pair` gives the two
photos cut to the same box (for the interactive slider, so it shows exactly what the exported wipe shows).
:func:`tracker.services.comparison.compare_photos` builds the :class:`Comparison` from stored photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracker.imaging.roi import polygon_mask
from tracker.reports.compare import blend, side_by_side, wipe
from tracker.reports.heatmap import difference_map
from tracker.reports.roi_zoom import crop_polygon, outline_roi, roi_box

__all__ = ["MODES", "Comparison", "framed_pair", "render_comparison"]

#: Comparison images :func:`render_comparison` can draw.
MODES = ("side_by_side", "wipe", "blend", "difference")

Crop = tuple[int, int, int, int]


@dataclass(frozen=True)
class Comparison:
    """Two photos of one view/site in the BEFORE photo's pixel frame, ready for comparison images.

    Attributes
    ----------
    before : (H, W, 3) uint8 ndarray
        The BEFORE photo as stored (its own frame).
    after : (H, W, 3) uint8 ndarray
        The AFTER photo warped into BEFORE's frame (pixels it does not cover are 0) and colour-matched
        to BEFORE for display; unaligned, it is only resized to BEFORE's size.
    before_photo_id, after_photo_id, patient_id : int
    kind, view_or_site : str
    labels : (str, str)
        Visit captions (date and session) of BEFORE and AFTER.
    lines : (tuple of str, tuple of str)
        Metric lines of each photo (its newest analysis), e.g. ``"Coverage 61.2 % ± 1.0 %"``.
    title : str
        View or site; with the patient's code and name only when asked for.
    matrix : (3, 3) float64 ndarray
        Homography from AFTER's pixels to BEFORE's pixels (a plain resize when not aligned).
    aligned : bool
        True when both stored transforms were usable and composed.
    warnings : tuple of str
        Plain-language notes: why the photos are unaligned, colours not matched, a retake flag.
    crop : (x, y, width, height)
        The largest box where both photos have content (the same crop for both).
    roi : (N, 2) float64 ndarray or None
        Region of interest in BEFORE's pixels (global views), None for close-ups.
    before_mask, after_mask : (H, W) bool ndarray or None
        The analyses' hair masks in BEFORE's frame (None when missing or unaligned).
    """

    before: np.ndarray
    after: np.ndarray
    before_photo_id: int
    after_photo_id: int
    patient_id: int
    kind: str
    view_or_site: str
    labels: tuple[str, str]
    lines: tuple[tuple[str, ...], tuple[str, ...]]
    title: str
    matrix: np.ndarray
    aligned: bool
    warnings: tuple[str, ...]
    crop: Crop
    roi: np.ndarray | None = None
    before_mask: np.ndarray | None = field(default=None, repr=False)
    after_mask: np.ndarray | None = field(default=None, repr=False)

    def box(self, *, zoom_to_roi: bool = False) -> Crop:
        """The crop shown: the common crop, or the ROI's box inside it when zooming (and there is an ROI)."""
        if zoom_to_roi and self.roi is not None:
            try:
                return roi_box(self.roi, self.before.shape, margin=0.08, within=self.crop)
            except ValueError:
                return self.crop
        return self.crop


def framed_pair(
    comparison: Comparison, *, zoom_to_roi: bool = False, show_roi: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """BEFORE and AFTER cut to the same box (common area, or the ROI's box), with the ROI outlined.

    Returns two new (h, w, 3) uint8 arrays of the same shape, e.g. for the interactive slider, so that it
    shows exactly what the exported wipe shows.
    """
    box = comparison.box(zoom_to_roi=zoom_to_roi)
    x, y, w, h = box
    before = comparison.before[y : y + h, x : x + w].copy()
    after = comparison.after[y : y + h, x : x + w].copy()
    if comparison.roi is not None and show_roi:
        roi = crop_polygon(comparison.roi, box)
        before, after = outline_roi(before, roi), outline_roi(after, roi)
    return before, after


def render_comparison(
    comparison: Comparison,
    *,
    mode: str,
    position: float = 0.5,
    opacity: float = 0.5,
    zoom_to_roi: bool = False,
    show_roi: bool = True,
) -> np.ndarray:
    """Draw one comparison image from a :class:`Comparison`.

    Parameters
    ----------
    comparison : Comparison
    mode : {"side_by_side", "wipe", "blend", "difference"}
        Side by side with captions; BEFORE left of a split at ``position`` and AFTER right of it; AFTER
        over BEFORE at ``opacity``; difference heat map (from the hair masks when both exist, else from
        lightness; refused for unaligned photos).
    position : float
        Split of the wipe as a fraction of the width, in [0, 1].
    opacity : float
        Opacity of AFTER in the blend, in [0, 1].
    zoom_to_roi : bool
        Crop to the region of interest (global views) instead of the whole common area.
    show_roi : bool
        Outline the ROI on the photos (global views).

    Returns
    -------
    (H, W, 3) uint8 ndarray

    Raises
    ------
    ValueError
        Unknown mode, position or opacity outside [0, 1], or a difference map of unaligned photos.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "difference" and not comparison.aligned:
        raise ValueError("not aligned: a difference map of unaligned photos would show movement, not change")
    if mode == "difference":
        return _difference(comparison, zoom_to_roi=zoom_to_roi, show_roi=show_roi)
    before, after = framed_pair(comparison, zoom_to_roi=zoom_to_roi, show_roi=show_roi)
    if mode == "side_by_side":
        return side_by_side(before, after, labels=comparison.labels, lines=comparison.lines,
                            title=comparison.title)
    if mode == "wipe":
        return wipe(before, after, position=position, labels=comparison.labels)
    return blend(before, after, opacity=opacity)


def _difference(comparison: Comparison, *, zoom_to_roi: bool, show_roi: bool) -> np.ndarray:
    """Heat map of the change inside the box (coloured only inside the ROI for global views)."""
    box = comparison.box(zoom_to_roi=zoom_to_roi)
    x, y, w, h = box
    before, after = comparison.before[y : y + h, x : x + w], comparison.after[y : y + h, x : x + w]
    roi = None if comparison.roi is None else crop_polygon(comparison.roi, box)
    region = None if roi is None else polygon_mask(roi, before.shape)
    caption = f"{comparison.labels[0]} → {comparison.labels[1]}"
    if comparison.before_mask is not None and comparison.after_mask is not None:
        image = difference_map(before, after, mode="mask", region=region, caption=caption,
                               before_mask=comparison.before_mask[y : y + h, x : x + w],
                               after_mask=comparison.after_mask[y : y + h, x : x + w])
    else:
        image = difference_map(before, after, mode="luminance", region=region, caption=caption)
    if roi is not None and show_roi:
        image[:h] = outline_roi(image[:h], roi)
    return image
