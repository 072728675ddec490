"""The alignment step of the pipeline: a follow-up photo onto its baseline, per kind of photo.

Manual points picked by the clinician win over everything; close-ups then try the two fiducial stickers'
transform, and both kinds fall back to feature matching (:func:`tracker.imaging.align.align_images`). Each
function returns the alignment (None without a baseline) and the quality flags it adds. They read nothing
but their arguments, so :mod:`tracker.pipeline` may run them on a second thread beside the measurement
(:func:`tracker.pipeline_work.run_beside`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracker.pipeline_baseline import BaselineReference
from tracker.pipeline_scale import sticker_alignment
from tracker.pipeline_work import Working, full_alignment, shrink

__all__ = ["align_closeup", "align_global"]


def _align(
    baseline: BaselineReference | None, image: np.ndarray, *, failure_flag: str, preset: str, manual: Any = None,
    **masks: Any,
) -> tuple[Any, list[str]]:
    if manual is not None:  # the clinician's picked points: used as given (validated when fitted)
        return manual, ([] if manual.ok else [failure_flag])
    if baseline is None:
        return None, []
    from tracker.imaging.align import align_images

    # The photo as given (features and ECC reduce to about 1000 px inside): aligning reduced copies raised the
    # corner error on large vertex phantoms (see analyse_global's working_long_side), so none is made here.
    alignment = align_images(baseline.alignment, image, preset=preset, **masks)
    return alignment, ([] if alignment.ok else [failure_flag])


def align_closeup(
    baseline: BaselineReference | None, image: np.ndarray, sticker: Any, field_mask: np.ndarray | None,
    *, manual: Any = None,
) -> tuple[Any, list[str]]:
    """Manual points > the two stickers' transform (when the skin agrees) > feature matching.

    Parameters
    ----------
    baseline : BaselineReference or None
        The prepared baseline close-up of the same site.
    image : (H, W, 3) uint8 ndarray
        The follow-up close-up.
    sticker : fiducial search result or None
        What :func:`tracker.pipeline_scale.find_sticker` found in ``image``.
    field_mask : (H, W) bool ndarray or None
        The analysed field (the sticker left out); features are taken there.
    manual : tracker.imaging.alignment.Alignment, optional
        A transform from points the clinician picked.

    Returns
    -------
    (Alignment or None, list of str)
        The alignment and ``["not_aligned"]`` when it failed (a note: the whole field is measured anyway).
    """
    if manual is not None or baseline is None:
        return _align(baseline, image, failure_flag="not_aligned", preset="closeup", manual=manual)
    base_sticker = baseline.sticker if sticker is not None else None
    tried = None
    if sticker is not None and sticker.found and base_sticker is not None and base_sticker.found:
        alignment, tried = sticker_alignment(baseline.alignment, image, base_sticker, sticker, field_mask)
        if alignment is not None:
            return alignment, []
    # A sticker is a strong feature that may sit elsewhere at each visit: match on the skin only (the
    # baseline's sticker is masked out of its prepared reference).
    alignment, flags = _align(baseline, image, failure_flag="not_aligned", preset="closeup", moving_mask=field_mask)
    if tried is not None:
        alignment.quality["fiducial_correlation"] = tried
    return alignment, flags


def align_global(
    baseline: BaselineReference | None, image: np.ndarray, working: Working, base_working: Working | None,
    *, manual: Any = None,
) -> tuple[Any, list[str]]:
    """Manual points > feature matching with the hair masked out (hair moves between visits).

    Parameters
    ----------
    baseline : BaselineReference or None
        The prepared baseline of the same view (its hair region already masked out of its features).
    image : (H, W, 3) uint8 ndarray
        The follow-up photo, full size.
    working, base_working : Working or None
        Working copies of the follow-up and, when the baseline was prepared from a reduced copy here, of the
        baseline (:func:`tracker.pipeline_work.working_for_long_side`); the transform is reported between the
        full-size photos.
    manual : tracker.imaging.alignment.Alignment, optional
        A transform from points the clinician picked.

    Returns
    -------
    (Alignment or None, list of str)
        The alignment and ``["alignment_failed"]`` when it failed (the ROI then cannot be carried: retake).
    """
    if manual is not None or baseline is None:
        return _align(baseline, image, failure_flag="alignment_failed", preset="global", manual=manual)
    from tracker.imaging.align import align_images
    from tracker.imaging.hair_region import hair_region

    # Register on everything but the hair region (masked out of the baseline's reference when it was prepared;
    # here of the follow-up, both on working copies).
    work = shrink(image, working)
    alignment = align_images(baseline.alignment, work, preset="global", moving_mask=~hair_region(work))
    if base_working is not None:
        alignment = full_alignment(alignment, base_working, working)
    return alignment, ([] if alignment.ok else ["alignment_failed"])
