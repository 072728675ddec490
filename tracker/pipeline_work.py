"""Working resolution of the pipeline: analyse a reduced copy of a large photo, report in its pixels.

A 12 MP close-up at 300 px/mm holds a 20 um vellus hair in 6 px; the detector needs 2-3 px. Measuring
at :data:`CLOSEUP_PX_PER_MM` (a 20 um hair 3 px wide) instead of the camera's scale does the same work
on a fraction of the pixels (the default of :func:`tracker.pipeline.analyse_closeup`). Global photos can
be aligned and measured on copies of :data:`GLOBAL_LONG_SIDE` px, but that is not the default: both moved
results against truth on large phantoms (see :func:`tracker.pipeline.analyse_global`).

Positions, widths and masks found on the working copy are mapped back to the full photo here, with the
pixel-centre rule of ``cv2.resize`` (``x_full = (x_work + 0.5) / s - 0.5``), so callers never see the
working frame. Pure functions on arrays; used by :mod:`tracker.pipeline`.

Independent steps of one analysis can also run side by side (:func:`run_beside`): a close-up's alignment
(mostly OpenCV, which releases the GIL) beside its hair measurement (mostly numpy and Python), when the
process may use more than one core.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import numpy as np

from tracker.imaging.geometry import resize_matrix

__all__ = ["CLOSEUP_PX_PER_MM", "GLOBAL_LONG_SIDE", "MAX_FACTOR", "STICKER_LONG_SIDE", "Working", "enlarge_mask",
           "full_hairs", "full_sticker", "run_beside", "shrink", "working_for_long_side", "working_for_scale"]

T = TypeVar("T")

#: Close-ups are measured at this scale when the photo's is higher: the thinnest hair that matters
#: (~20 um vellus) stays 3 px wide (measured on 300 px/mm phantoms: count, width and coverage errors
#: against truth at 150 px/mm are within the field-to-field noise of those at full size; 100 px/mm
#: loses thin hairs).
CLOSEUP_PX_PER_MM = 150.0
#: Long side of the copies of a global photo when asked for (the sample series' size; alignment and the
#: hair region work at 1000 px internally).
GLOBAL_LONG_SIDE = 1600
#: A photo is reduced only when the copy has at most half its pixels (side factor <= 1/sqrt(2)): photos
#: of the size the detectors were tuned on (the sample series, 1280 x 1024 close-ups at ~200 px/mm and
#: 1600 x 1200 global views) are measured exactly as before; the gain below that would be small.
MAX_FACTOR = 0.7072
#: The fiducial sticker is searched on a copy with at most this long side (ECC refines its corners
#: there; a marker too small to find at this size is under 40 px at full size and refused anyway).
STICKER_LONG_SIDE = 2000


@dataclasses.dataclass(frozen=True)
class Working:
    """A full-size shape and the shape of its working copy.

    Attributes
    ----------
    full_shape, shape : (int, int)
        ``(H, W)`` of the photo and of the working copy (equal when the photo is used as it is).
    """

    full_shape: tuple[int, int]
    shape: tuple[int, int]

    @property
    def reduced(self) -> bool:
        return self.shape != self.full_shape

    @property
    def factor(self) -> float:
        """Working px per full px (geometric mean of the two axes; they differ by under 1 px / side)."""
        return float(np.sqrt(self.shape[0] / self.full_shape[0] * self.shape[1] / self.full_shape[1]))

    def to_work(self) -> np.ndarray:
        """(3, 3) float64: full px -> working px."""
        return resize_matrix(self.full_shape, self.shape)

    def to_full(self) -> np.ndarray:
        """(3, 3) float64: working px -> full px."""
        return resize_matrix(self.shape, self.full_shape)


def _working(full_shape: tuple[int, ...], factor: float) -> Working:
    h, w = int(full_shape[0]), int(full_shape[1])
    if not factor <= MAX_FACTOR:
        return Working((h, w), (h, w))
    return Working((h, w), (max(1, round(h * factor)), max(1, round(w * factor))))


def working_for_scale(full_shape: tuple[int, ...], px_per_mm: float | None, *,
                      target_px_per_mm: float | None = CLOSEUP_PX_PER_MM) -> Working:
    """Working size of a close-up: reduced to ``target_px_per_mm`` when that at least halves its pixels.

    Without a scale or a target (None) the photo is used at full size (the detector's self-scaling
    needs the hairs as the camera saw them).
    """
    if target_px_per_mm is not None and not (np.isfinite(target_px_per_mm) and target_px_per_mm > 0):
        raise ValueError(f"target_px_per_mm must be positive, got {target_px_per_mm}")
    if px_per_mm is None or target_px_per_mm is None:
        return _working(full_shape, 1.0)
    return _working(full_shape, float(target_px_per_mm) / float(px_per_mm))


def working_for_long_side(full_shape: tuple[int, ...], long_side: int | None) -> Working:
    """Working size with ``long_side`` px on the long side when that at least halves the pixels (None: full size)."""
    if long_side is None:
        return _working(full_shape, 1.0)
    if long_side < 16:
        raise ValueError(f"long_side must be at least 16 px, got {long_side}")
    return _working(full_shape, long_side / max(full_shape[0], full_shape[1]))


def shrink(image: np.ndarray, working: Working) -> np.ndarray:
    """The working copy of an image or bool mask (area interpolation; a mask keeps pixels >= half inside).

    Returns the input itself (not a copy) when the working size is the full size; never mutates it.
    """
    if not working.reduced:
        return image
    size = (working.shape[1], working.shape[0])
    if image.dtype == bool:
        return cv2.resize(image.view(np.uint8), size, interpolation=cv2.INTER_AREA) >= 0.5
    return cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)


def enlarge_mask(mask: np.ndarray, working: Working) -> np.ndarray:
    """(H, W) bool mask of the full photo from a working-size bool mask (linear interpolation, >= 0.5)."""
    if not working.reduced:
        return mask
    size = (working.full_shape[1], working.full_shape[0])
    up = cv2.resize(mask.view(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_LINEAR)
    return up >= 128


def full_hairs(hairs: tuple[dict, ...], working: Working) -> tuple[dict, ...]:
    """Hair records (``x``, ``y``, ``width_px``, ``length_px``, ...) from working px to full px."""
    if not working.reduced:
        return hairs
    m = working.to_full()
    out = []
    for hair in hairs:
        h = dict(hair)
        h["x"] = float(hair["x"]) * m[0, 0] + m[0, 2]
        h["y"] = float(hair["y"]) * m[1, 1] + m[1, 2]
        for key in ("width_px", "length_px"):
            if key in h and h[key] is not None:
                h[key] = float(h[key]) / working.factor
        out.append(h)
    return tuple(out)


def full_sticker(sticker: Any, working: Working) -> Any:
    """A :class:`~tracker.imaging.fiducial.FiducialResult` found on the working copy, in full px."""
    if sticker is None or not working.reduced:
        return sticker
    to_full, to_work = working.to_full(), working.to_work()

    def points(p: np.ndarray | None) -> np.ndarray | None:
        if p is None:
            return None
        p = np.asarray(p, np.float64)
        return p * np.diag(to_full)[:2] + to_full[:2, 2]

    changes: dict[str, Any] = {"corners": points(sticker.corners), "polygon": points(sticker.polygon)}
    if sticker.px_per_mm is not None:
        changes["px_per_mm"] = float(sticker.px_per_mm) / working.factor
    if sticker.homography is not None:  # image px -> mm: go through the working frame
        changes["homography"] = np.asarray(sticker.homography, np.float64) @ to_work
    return dataclasses.replace(sticker, **changes)


def full_alignment(alignment: Any, reference: Working, moving: Working) -> Any:
    """An alignment found between working copies, as a map of full MOVING px to full REFERENCE px.

    The matrix (and a ``rejected_matrix`` in ``quality``) is conjugated with the two resizes; figures
    in pixels (``quality`` keys ending in ``_px``) are given in full REFERENCE px.
    """
    if not (reference.reduced or moving.reduced):
        return alignment
    to_ref_full, to_mov_work = reference.to_full(), moving.to_work()

    def conjugate(matrix: Any) -> np.ndarray:
        m = to_ref_full @ np.asarray(matrix, np.float64) @ to_mov_work
        return m / m[2, 2]

    quality = dict(alignment.quality)
    for key, value in alignment.quality.items():
        if key.endswith("_px") and isinstance(value, int | float) and value is not None:
            quality[key] = float(value) / reference.factor
    if quality.get("rejected_matrix") is not None:
        rejected = conjugate(quality["rejected_matrix"])
        quality["rejected_matrix"] = rejected.tolist() if isinstance(alignment.quality["rejected_matrix"],
                                                                     list) else rejected
    matrix = conjugate(alignment.matrix) if alignment.ok else np.asarray(alignment.matrix, np.float64)
    return dataclasses.replace(alignment, matrix=matrix, quality=quality)


_beside_pool: ThreadPoolExecutor | None = None
_beside_lock = threading.Lock()


def run_beside(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Callable[[], T]:
    """Start ``fn(*args, **kwargs)`` on a second thread while the caller goes on; returns its ``result``.

    Only when OpenCV may use several threads in this process (``cv2.getNumThreads() > 1``): the worker
    processes of :mod:`tracker.services.batch` run OpenCV on one thread because they share the cores, and
    there ``fn`` runs when the result is asked for, in the caller's thread. Either way the returned function
    gives ``fn``'s value or raises its exception; the two steps must not depend on each other.

    Measured (a 12 MP close-up against its stored baseline reference, decode included, OpenCV on 2 threads,
    medians of 3, runs alternated): alignment beside the hair measurement 0.67-0.75 s against 0.86-0.95 s one
    after the other; ``benchmarks/speed.py --quick``: 0.74 s = 12.7x the decode floor (was 0.92 s = 16.0x),
    peak memory 282-327 MB (was 241 MB: both steps' arrays are alive at once). For a global photo, the
    alignment beside the quality gate and the ROI-free part of the coverage measure saved about 7 % (noisy)
    and raised peak memory 329 -> 392 MB, so global photos stay serial.
    """
    global _beside_pool
    if cv2.getNumThreads() <= 1:
        return lambda: fn(*args, **kwargs)
    with _beside_lock:
        if _beside_pool is None:  # started on first use: never inherited half-made by a forked worker
            _beside_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tracker-beside")
        future = _beside_pool.submit(fn, *args, **kwargs)
    return future.result
