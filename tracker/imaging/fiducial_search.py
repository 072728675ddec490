"""Finding ArUco markers in a photo cheaply (the search behind :func:`tracker.imaging.fiducial.detect_fiducial`).

The usual close-up has no sticker, so the search is staged: marker-like quads are looked for on a coarse
copy (one adaptive-threshold window), only quads whose white quiet zone is clearly brighter than their black
border are kept, and ``cv2.aruco`` decodes only in crops around them, with the full settings (on a copy of
at most 1400 px first, at full size if nothing is found there).
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

__all__ = ["aruco_dictionary", "detect_markers"]

_WORK_MAX_SIDE = 1400  # markers are decoded on a copy at most this large first, at full size if none is found
_COARSE_LONG_SIDE = 1000  # marker-like quads are looked for on a copy about this large (integer reduction)
_COARSE_WINDOWS = (7, 7, 10)  # adaptive-threshold windows of that search (min, max, step)
_COARSE_MIN_SIDE = 8  # smallest quad side (px of the coarse copy) it keeps
# ... and only those whose quiet zone is this much brighter than their border (grey levels; >= 51 measured on
# rendered stickers down to 45 % light, 92 % of the quads of hair on real skin are below it)
_MIN_QUIET_CONTRAST = 20.0


def aruco_dictionary(name: str) -> cv2.aruco.Dictionary:
    """Return the predefined ``cv2.aruco`` dictionary called ``name`` (e.g. ``"DICT_4X4_50"``)."""
    if not isinstance(name, str) or not name.startswith("DICT_") or not hasattr(cv2.aruco, name):
        raise ValueError(
            f"unknown ArUco dictionary {name!r}; expected a cv2.aruco name such as 'DICT_4X4_50'"
        )
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))

def _detector(dictionary: str, *, windows: tuple[int, int, int] = (5, 65, 10), min_perimeter_rate: float = 0.02,
              refine: bool = True) -> cv2.aruco.ArucoDetector:
    params = cv2.aruco.DetectorParameters()
    params.adaptiveThreshWinSizeMin, params.adaptiveThreshWinSizeMax, params.adaptiveThreshWinSizeStep = windows
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX if refine else cv2.aruco.CORNER_REFINE_NONE
    params.minMarkerPerimeterRate = min_perimeter_rate
    params.maxMarkerPerimeterRate = 4.0
    params.minDistanceToBorder = 1
    return cv2.aruco.ArucoDetector(aruco_dictionary(dictionary), params)


def _candidates(grey: np.ndarray, dictionary: str) -> list[np.ndarray]:
    """Marker-like quads (decoded or not) found on a coarse copy, as (4, 2) float64 full-resolution corners.

    The outline of a marker (a black square in a white quiet zone) survives a reduction that its code may
    not: quads are looked for on a copy reduced by an integer factor to about :data:`_COARSE_LONG_SIDE`, with
    one threshold window, and kept when their quiet zone is brighter than their border
    (:func:`_quiet_contrast`); they are decoded later, in crops around each (:func:`_detect`).
    """
    h, w = grey.shape
    f = max(1, round(max(h, w) / _COARSE_LONG_SIDE))  # an integer factor: area reduction is fastest
    work = grey if f == 1 else cv2.resize(grey, (w // f, h // f), interpolation=cv2.INTER_AREA)
    rate = 4 * _COARSE_MIN_SIDE / max(work.shape)
    det = _detector(dictionary, windows=_COARSE_WINDOWS, min_perimeter_rate=rate, refine=False)
    corners, _, rejected = det.detectMarkers(work)
    quads = [c.reshape(4, 2).astype(np.float64) for c in (*corners, *rejected)]
    return [(q + 0.5) * f - 0.5 for q in quads if _quiet_contrast(work, q) >= _MIN_QUIET_CONTRAST]


def _quiet_contrast(grey: np.ndarray, quad: np.ndarray) -> float:
    """How much the band just outside ``quad`` (the quiet zone) is brighter than the band just inside (the
    black border): the darkest 10 % outside minus the brightest 10 % inside, in grey levels (inf when a band
    is empty). A marker's quiet zone is plain paper all round; a quad drawn by hairs on skin is not."""
    centre = quad.mean(0)
    outer = centre + (quad - centre) * 1.44  # 0.22 marker side outside (the quiet zone is 0.25)
    x0, y0 = np.maximum(np.floor(outer.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(outer.max(0)).astype(int) + 2, grey.shape[::-1])
    roi = grey[y0:y1, x0:x1]

    bands = np.zeros(roi.shape, np.uint8)
    for f, value in ((1.44, 1), (1.16, 0), (0.92, 2), (0.76, 0)):
        pts = np.rint((centre + (quad - centre) * f - [x0, y0]) * 16).astype(np.int32)
        cv2.fillPoly(bands, [pts], value, cv2.LINE_8, shift=4)
    quiet = roi[bands == 1]  # 0.08 .. 0.22 side outside
    border = roi[bands == 2]  # 0.04 .. 0.12 side inside (the border is 1/6 of it)
    if quiet.size == 0 or border.size == 0:
        return float("inf")
    return float(np.percentile(quiet, 10) - np.percentile(border, 90))


def _reduced_crop(
    grey: np.ndarray, s: float, box: tuple[int, int, int, int], copies: dict[float, np.ndarray]
) -> tuple[np.ndarray, int, int]:
    """The part ``box`` (x0, y0, x1, y1, full px) of ``grey`` reduced by ``s``, with the pixels of the whole
    image reduced by ``s``, and its origin in that copy. When ``s`` is p/q with q small (1400/2000 = 7/10),
    a crop aligned to q px is reduced alone (area averaging gives the same pixels when q divides the image's
    sides); otherwise the whole image is reduced once and kept in ``copies``."""
    h, w = grey.shape
    x0, y0, x1, y1 = box
    if s == 1.0:
        return grey[y0:y1, x0:x1], x0, y0
    ratio = Fraction(_WORK_MAX_SIDE, max(h, w))
    p, q = ratio.numerator, ratio.denominator
    if float(ratio) == s and q <= 64:
        x0, y0, x1, y1 = x0 // q * q, y0 // q * q, -(-x1 // q) * q, -(-y1 // q) * q
        if x1 <= w and y1 <= h:
            crop = cv2.resize(grey[y0:y1, x0:x1], ((x1 - x0) // q * p, (y1 - y0) // q * p),
                              interpolation=cv2.INTER_AREA)
            return crop, x0 // q * p, y0 // q * p
    if s not in copies:
        copies[s] = cv2.resize(grey, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    u0, v0 = int(x0 * s), int(y0 * s)
    return copies[s][v0 : int(np.ceil(y1 * s)), u0 : int(np.ceil(x1 * s))], u0, v0


def detect_markers(grey: np.ndarray, dictionary: str) -> list[tuple[int, np.ndarray]]:
    """ArUco detections as (id, (4, 2) float64 corners in full-resolution pixels).

    Markers are decoded in crops around the quads of :func:`_candidates` only (a photo without a
    marker-like quad costs one coarse pass), as a search of the whole image would: threshold windows 5..65,
    on a copy of at most :data:`_WORK_MAX_SIDE` px first and at full size when that finds nothing, the
    smallest perimeter accepted 2 % of the image's long side.
    """
    h, w = grey.shape
    min_perimeter = 0.02 * max(h, w)
    scales = [1.0] if max(h, w) <= _WORK_MAX_SIDE else [_WORK_MAX_SIDE / max(h, w), 1.0]
    copies = {1.0: grey}  # the reduced copy, when one is needed (made once)
    done: list[tuple[int, int, int, int]] = []
    out: list[tuple[int, np.ndarray]] = []
    for quad in _candidates(grey, dictionary):
        side = float(np.sqrt(abs(cv2.contourArea(quad.astype(np.float32)))))
        margin = 0.75 * side + 16
        x0, y0 = np.maximum(np.floor(quad.min(0) - margin).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(quad.max(0) + margin).astype(int) + 1, [w, h])
        if any(a <= x0 and b <= y0 and x1 <= c and y1 <= d for a, b, c, d in done):
            continue  # inside a crop already searched
        done.append((x0, y0, x1, y1))
        for s in scales:  # as a whole-image search would: the reduced copy first, full resolution if it fails
            crop, u0, v0 = _reduced_crop(grey, s, (x0, y0, x1, y1), copies)
            det = _detector(dictionary, min_perimeter_rate=s * min_perimeter / max(crop.shape))
            corners, ids, _ = det.detectMarkers(crop)
            if ids is not None and len(ids):
                break
        else:
            continue
        for c, i in zip(corners, ids.ravel(), strict=True):
            pts = (c.reshape(4, 2).astype(np.float64) + [u0 + 0.5, v0 + 0.5]) / s - 0.5
            centre = pts.mean(0)
            if not any(j == i and np.hypot(*(q.mean(0) - centre)) < 2.0 for j, q in out):
                out.append((int(i), pts))
    return out
