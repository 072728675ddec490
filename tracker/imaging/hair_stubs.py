"""Clipped stubs judged in hair-wide units (issue 3; steps 3 and 4c of :mod:`tracker.imaging.hair`).

At 70x the hairs of one follicular unit are often clipped to stubs that lie against each other: two or three
shafts merge into one piece of the mask that is two or three shaft widths wide. The outline test of
:func:`tracker.imaging.hair_segment.drop_blobs` ("long for its mean width") drops such a piece (two hairs at
5:1 side by side make a 2.5:1 piece) and the skeleton counts one hair where a clinician counts two. Here a
piece is judged by the field's own single-shaft width ``w`` (:func:`typical_shaft_width`) instead:

- a piece of mean width ``A / L`` holds ``n = round(A / (L * w))`` hair-wide units (1 to
  :data:`MAX_UNITS`: a follicular unit holds 1-4 hairs);
- :func:`keep_stubs` re-admits a dropped piece of ``n >= 2`` units when each unit is long for its width
  (``L >= elongation * w``, the outline test's ratio applied to one shaft) and the piece is at least as
  elongated as two of the shortest shafts side by side (``L >= elongation / 2 * S``, ``S`` its short
  side): a merged stub of two 4:1 hairs passes; a round or square blot (``L / S`` about 1) does not,
  whatever its size;
- :func:`split_units` counts a piece that the skeleton saw as one hair as ``n`` hairs.

Plain functions on (H, W) bool masks and the hair dicts of :func:`tracker.imaging.hair_graph.count_hairs`;
inputs are never mutated.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.imaging.skeleton import skeletonize

__all__ = ["MAX_UNITS", "keep_stubs", "piece_units", "split_units", "typical_shaft_width"]

#: Most hairs one piece can hold (a follicular unit holds 1-4 hairs; DESIGN section 5).
MAX_UNITS = 4


def typical_shaft_width(
    mask: np.ndarray, *, smooth_px: float, percentile: float = 75.0, skeleton: np.ndarray | None = None
) -> float | None:
    """The field's typical shaft width (px): a high percentile of ``2 * distance - 0.5`` over the skeleton.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        Hair mask.
    smooth_px : float
        Gaussian sigma (px) applied to the mask before skeletonising (ragged edges would sprout spurs).
    percentile : float
        Percentile of the skeleton's widths taken (tips and spurs are thin, so a high one).
    skeleton : (H, W) bool ndarray, optional
        The skeleton of ``mask`` smoothed by ``smooth_px`` and thresholded at 1/2, when the caller has it
        already (it is not checked).

    Returns
    -------
    float or None
        Width in pixels; ``None`` when the mask holds too little hair (under 50 pixels or a 30 pixel
        skeleton) to say.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    if m.sum() < 50:
        return None
    dist = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
    if skeleton is None:
        soft = cv2.GaussianBlur(m.astype(np.float32), (0, 0), sigmaX=max(1.0, float(smooth_px)))
        skel = skeletonize(soft >= 0.5)
    else:
        skel = np.asarray(skeleton, dtype=bool)
        if skel.shape != m.shape:
            raise ValueError(f"skeleton shape {skel.shape} does not match the mask's {m.shape}")
    if skel.sum() < 30:
        return None
    return float(np.percentile(2.0 * dist[skel] - 0.5, percentile))


def piece_units(area: float, length: float, unit_width: float, *, max_units: int = MAX_UNITS) -> int:
    """Number of hair-wide units (1..``max_units``) a piece of ``area`` px and long side ``length`` px holds."""
    if unit_width <= 0 or length <= 0:
        raise ValueError(f"unit_width and length must be positive, got {unit_width}, {length}")
    return int(np.clip(np.floor(area / (length * unit_width) + 0.5), 1, max_units))


def _sides(labels: np.ndarray, i: int, box: np.ndarray) -> tuple[float, float]:
    """Long and short side (px) of the minimum-area rectangle around component ``i``."""
    x, y, bw, bh = box
    ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == i)
    (_, _), (rw, rh), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
    return float(max(rw, rh) + 1), float(min(rw, rh) + 1)


def keep_stubs(
    candidates: np.ndarray,
    kept: np.ndarray,
    *,
    unit_width: float,
    min_area: float,
    min_length: float,
    elongation: float = 3.0,
    max_units: int = MAX_UNITS,
) -> np.ndarray:
    """Re-admit pieces of ``candidates`` missing from ``kept`` that are stubs of ``n >= 2`` hairs side by side.

    Parameters
    ----------
    candidates : (H, W) bool ndarray
        Mask before the shape test.
    kept : (H, W) bool ndarray
        Mask after it (a subset of ``candidates`` made of whole components).
    unit_width : float
        The field's single-shaft width (px), e.g. from :func:`typical_shaft_width`.
    min_area, min_length : float
        The size limits of the shape test (px2, px).
    elongation : float
        Each unit must be at least this many times as long as its width (the shape test's own ratio).
    max_units : int
        Most hairs one piece can hold.

    Returns
    -------
    (H, W) bool ndarray
        ``kept`` plus the re-admitted pieces.
    """
    cand = np.asarray(candidates, dtype=bool)
    keep_in = np.asarray(kept, dtype=bool)
    if cand.shape != keep_in.shape or cand.ndim != 2:
        raise ValueError(f"candidates and kept must be 2-D of one shape, got {cand.shape}, {keep_in.shape}")
    if not unit_width > 0:
        raise ValueError(f"unit_width must be positive, got {unit_width}")
    dropped = cand & ~keep_in
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dropped.astype(np.uint8), connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA].astype(float)
    reach = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) + 1.0
    # Two or more units need a mean width of 1.5 units, and the piece must be long for one unit.
    maybe = (area >= min_area) & (reach >= max(min_length, elongation * unit_width))
    maybe &= area >= 1.5 * unit_width * np.maximum(min_length, elongation * unit_width)
    maybe[0] = False
    add = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(maybe).tolist():
        length, across = _sides(labels, i, stats[i, :4])
        units = piece_units(area[i], length, unit_width, max_units=max_units)
        long_enough = length >= max(min_length, elongation * unit_width)
        # Hairs side by side: at least as elongated as two of the shortest shafts (``elongation`` / 2).
        if units >= 2 and long_enough and length >= 0.5 * elongation * across:
            add[i] = True
    if not add.any():
        return keep_in.copy()
    return keep_in | add[labels]


def split_units(
    hairs: list[dict],
    mask: np.ndarray,
    *,
    unit_width: float,
    elongation: float | None = None,
    max_units: int = MAX_UNITS,
) -> list[dict]:
    """Count a piece of ``mask`` that holds exactly one hair of ``hairs`` as the number of units it holds.

    A hair whose exit lies on a piece with no other hair's exit, and whose piece is ``n >= 2`` units wide
    (:func:`piece_units`), gets ``units = n``, and its ``width_px`` becomes the piece's mean width over
    ``n`` (the hairs share the band). Every other hair gets ``units = 1``. With ``elongation``, only
    pieces that are not long for their mean width (``L**2 < elongation * A``: the stubs :func:`keep_stubs`
    re-admits) are split; longer pieces are left to the skeleton. Returns new dicts.
    """
    m = np.asarray(mask, dtype=bool)
    if not unit_width > 0:
        raise ValueError(f"unit_width must be positive, got {unit_width}")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    h, w = m.shape
    at = [int(labels[min(max(int(round(x["y"])), 0), h - 1), min(max(int(round(x["x"])), 0), w - 1)]) for x in hairs]
    per = np.bincount(np.array(at, dtype=np.int64), minlength=n) if hairs else np.zeros(n, np.int64)
    out = []
    for hair, lab in zip(hairs, at, strict=True):
        units = 1
        if lab > 0 and per[lab] == 1:
            area = float(stats[lab, cv2.CC_STAT_AREA])
            length = _sides(labels, lab, stats[lab, :4])[0]
            if elongation is None or length**2 < elongation * area:
                units = piece_units(area, length, unit_width, max_units=max_units)
        new = {**hair, "units": units}
        if units > 1:
            new["width_px"] = float(area / length / units)
        out.append(new)
    return out
