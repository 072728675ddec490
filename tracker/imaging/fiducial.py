"""Printed ArUco fiducial sticker in trichoscopy close-ups: scale (px/mm), outline and metric homography.

The project's sticker (``tracker.reports.sticker``) is one square ArUco marker of known physical side
(the outer edge of its black border) on white paper, with a white quiet zone of :data:`QUIET_ZONE_CELLS`
marker cells around it. :func:`detect_fiducial` finds it with ``cv2.aruco``, refines the four corners
to a small fraction of a pixel by aligning an ideal rendering of the marker to the photo with ECC
(``cv2.findTransformECC``, homography), and returns

- ``px_per_mm``: the square root of the marker's image area per mm2, the scale of the skin plane at
  the sticker (exact under rotation, an area-preserving mean under mild perspective);
- ``corners``: the marker's four corners in image pixels (its top-left, top-right, bottom-right,
  bottom-left, as printed) and ``polygon``: the sticker's outline to exclude from the analysed field;
- ``homography``: image pixels -> the marker's metric frame (mm; origin at its top-left corner, x along
  its top edge, y down its left edge);
- ``confidence`` in 0..1 (the ECC correlation of the refined fit).

The search is staged to be cheap on the usual photo without a sticker: marker-like quads with a bright
quiet zone are looked for on a coarse copy first, and ``cv2.aruco`` decodes only around them.

It refuses (``found=False`` and a ``reason``, never a guessed scale) when no marker is found, when the
marker or its quiet zone is cut by the image border, when the marker is too small for a 1 % scale, when
it is seen too obliquely, or when the refinement does not fit. Coordinates are OpenCV pixel coordinates
(pixel centres at integers).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

from tracker.imaging.fiducial_search import aruco_dictionary, detect_markers

#: White margin around the printed marker, in marker cells (the sticker's cut line lies on its edge).
QUIET_ZONE_CELLS = 1.5
DEFAULT_DICTIONARY = "DICT_4X4_50"
_ECC_MAX_PPC = 24  # template pixels per marker cell for the refinement


@dataclass(frozen=True)
class FiducialResult:
    """Outcome of :func:`detect_fiducial`. When ``found`` is False only ``reason`` (and maybe
    ``marker_id``/``corners`` of the refused marker) is set; ``px_per_mm`` is None."""

    found: bool
    reason: str | None = None
    px_per_mm: float | None = None
    marker_id: int | None = None
    corners: np.ndarray | None = None
    polygon: np.ndarray | None = None
    homography: np.ndarray | None = None
    confidence: float = 0.0
    tilt_deg: float | None = None
    n_markers: int = 0

    def field_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Boolean (H, W) mask, True outside the sticker polygon (the part of the field to analyse)."""
        if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
            raise ValueError(f"shape must be (H, W[, C]) with positive sizes, got {shape!r}")
        keep = np.full(shape[:2], 255, np.uint8)
        if self.polygon is not None:
            cv2.fillPoly(keep, [np.rint(self.polygon * 16).astype(np.int32)], 0, cv2.LINE_8, shift=4)
        return keep > 0

    def as_dict(self) -> dict:
        """JSON-ready dict (arrays as nested lists)."""
        out: dict = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


def marker_cells(dictionary: str = DEFAULT_DICTIONARY) -> int:
    """Cells along one side of a marker of ``dictionary``, its one-cell black border included."""
    return int(aruco_dictionary(dictionary).markerSize) + 2


def marker_image(marker_id: int, *, dictionary: str = DEFAULT_DICTIONARY, cell_px: int = 1) -> np.ndarray:
    """Ideal marker (black border included, no quiet zone) as a (S, S) uint8 image, S = cells * cell_px."""
    d = aruco_dictionary(dictionary)
    if not 0 <= int(marker_id) < d.bytesList.shape[0]:
        raise ValueError(
            f"marker_id must be 0..{d.bytesList.shape[0] - 1} for {dictionary}, got {marker_id!r}"
        )
    if int(cell_px) < 1:
        raise ValueError(f"cell_px must be >= 1, got {cell_px!r}")
    cells = int(d.markerSize) + 2
    return cv2.aruco.generateImageMarker(d, int(marker_id), cells * int(cell_px), borderBits=1)


def _grey(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
    if arr.ndim != 2 or arr.shape[0] < 16 or arr.shape[1] < 16:
        raise ValueError(f"image must be (H, W) or (H, W, 3|4) with sides >= 16, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr // 257).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError("image contains NaN or infinite values")
        scale = 255.0 if float(arr.max(initial=0.0)) <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    raise ValueError(f"image dtype must be uint8, uint16 or float, got {arr.dtype}")


def _square_mm(size_mm: float) -> np.ndarray:
    return np.array([[0.0, 0.0], [size_mm, 0.0], [size_mm, size_mm], [0.0, size_mm]])


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(np.asarray(pts, np.float64).reshape(-1, 1, 2), h).reshape(-1, 2)


def _tilt_deg(h_img_from_mm: np.ndarray, size_mm: float) -> float:
    """Viewing obliquity at the marker centre: arccos of the ratio of the Jacobian's singular values."""
    c = size_mm / 2.0
    x, y, wz = h_img_from_mm @ np.array([c, c, 1.0])
    a = h_img_from_mm
    jac = np.array(
        [
            [(a[0, 0] * wz - x * a[2, 0]) / wz**2, (a[0, 1] * wz - x * a[2, 1]) / wz**2],
            [(a[1, 0] * wz - y * a[2, 0]) / wz**2, (a[1, 1] * wz - y * a[2, 1]) / wz**2],
        ]
    )
    s = np.linalg.svd(jac, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(s[1] / s[0], 0.0, 1.0))))


def _refine_ecc(
    grey: np.ndarray, marker_id: int, dictionary: str, size_mm: float, h0: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """ECC-refine ``h0`` (marker mm -> image px). Returns (refined homography, correlation) or None."""
    cells = marker_cells(dictionary)
    side_px = float(np.sqrt(abs(cv2.contourArea(_apply(h0, _square_mm(size_mm)).astype(np.float32)))))
    ppc = int(np.clip(round(side_px / cells), 6, _ECC_MAX_PPC))
    q = 0.75  # quiet-zone cells kept in the template: well inside the printed 1.5
    pad = int(round(q * ppc))
    template = cv2.copyMakeBorder(
        marker_image(marker_id, dictionary=dictionary, cell_px=ppc),
        *([pad] * 4),
        cv2.BORDER_CONSTANT,
        value=255,
    ).astype(np.float32)
    # template px -> mm: the marker's top-left corner is at template (pad - 0.5, pad - 0.5)
    cell_mm = size_mm / cells
    t_mm_from_tpl = np.array(
        [
            [cell_mm / ppc, 0, (0.5 - pad) * cell_mm / ppc],
            [0, cell_mm / ppc, (0.5 - pad) * cell_mm / ppc],
            [0, 0, 1.0],
        ]
    )
    # crop the photo around the sticker (and shrink it when the marker is much larger than the template)
    outline = _apply(
        h0, _square_mm(size_mm) * (1 + 2 * QUIET_ZONE_CELLS / cells) - QUIET_ZONE_CELLS * cell_mm
    )
    x0, y0 = np.floor(outline.min(0)).astype(int) - 4
    x1, y1 = np.ceil(outline.max(0)).astype(int) + 5
    hgt, wid = grey.shape
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, wid), min(y1, hgt)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    crop = grey[y0:y1, x0:x1].astype(np.float32)
    shrink = min(1.0, 1.5 * ppc / max(side_px / cells, 1e-9))
    if shrink < 1.0:
        crop = cv2.resize(crop, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    # full-image px -> crop px (pixel centres kept at integers through the resize)
    c_from_img = np.array(
        [[shrink, 0, (0.5 - x0) * shrink - 0.5], [0, shrink, (0.5 - y0) * shrink - 0.5], [0, 0, 1.0]]
    )
    warp = (c_from_img @ h0 @ t_mm_from_tpl).astype(np.float32)
    warp /= warp[2, 2]
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-7)
    blur = 3 if ppc <= 10 else 5
    try:
        rho, warp = cv2.findTransformECC(template, crop, warp, cv2.MOTION_HOMOGRAPHY, criteria, None, blur)
    except cv2.error:
        return None
    h = np.linalg.inv(c_from_img) @ warp.astype(np.float64) @ np.linalg.inv(t_mm_from_tpl)
    return h / h[2, 2], float(rho)


def detect_fiducial(
    image: np.ndarray,
    *,
    marker_size_mm: float,
    dictionary: str = DEFAULT_DICTIONARY,
    ids: Collection[int] | None = None,
    min_side_px: float = 40.0,
    max_tilt_deg: float = 25.0,
    min_confidence: float = 0.6,
    exclude_margin_mm: float | None = None,
) -> FiducialResult:
    """Find the printed fiducial sticker in a close-up and return its scale, outline and homography.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) ndarray
        RGB(A) or grey photo, uint8, uint16 or float (0..1 or 0..255). Not modified.
    marker_size_mm : float
        Printed side of the marker (outer edge of its black border), in mm, e.g. 2.54.
    dictionary : str
        ``cv2.aruco`` dictionary name the sticker was printed from.
    ids : collection of int, optional
        Accept only these marker ids (default: any id of the dictionary).
    min_side_px : float
        Refuse a marker whose side is shorter (a 1 % scale needs corners to well under a pixel).
    max_tilt_deg : float
        Refuse a marker seen more obliquely than this (the scale would differ by direction).
    min_confidence : float
        Refuse when the ECC correlation of the refined fit is lower (occluded, smeared or misfit).
    exclude_margin_mm : float, optional
        Margin around the marker that ``polygon`` covers (default: quiet zone plus half a cell).

    Returns
    -------
    FiducialResult
        With ``found`` True: ``px_per_mm``, ``marker_id``, ``corners`` (4, 2) float64, ``polygon``
        (4, 2) float64, ``homography`` (3, 3) float64 image px -> marker mm, ``confidence``, ``tilt_deg``.
        With ``found`` False: ``reason`` is one of ``"no_marker"``, ``"partly_visible"``, ``"too_small"``,
        ``"too_oblique"``, ``"refinement_failed"``, ``"low_confidence"``.
    """
    if not (isinstance(marker_size_mm, int | float) and np.isfinite(marker_size_mm) and marker_size_mm > 0):
        raise ValueError(f"marker_size_mm must be a positive number, got {marker_size_mm!r}")
    if not 0.0 < max_tilt_deg < 90.0:
        raise ValueError(f"max_tilt_deg must be in (0, 90), got {max_tilt_deg!r}")
    if min_side_px < 8:
        raise ValueError(f"min_side_px must be >= 8, got {min_side_px!r}")
    grey = _grey(image)
    cells = marker_cells(dictionary)
    size = float(marker_size_mm)
    cell_mm = size / cells
    margin_mm = (QUIET_ZONE_CELLS + 0.5) * cell_mm if exclude_margin_mm is None else float(exclude_margin_mm)
    if margin_mm < 0:
        raise ValueError("exclude_margin_mm must be >= 0")

    found = [(i, c) for i, c in detect_markers(grey, dictionary) if ids is None or i in set(ids)]
    if not found:
        return FiducialResult(found=False, reason="no_marker")
    # the largest marker first: it gives the most precise scale
    found.sort(key=lambda ic: -abs(cv2.contourArea(ic[1].astype(np.float32))))
    hgt, wid = grey.shape
    refusal: FiducialResult | None = None
    for marker_id, corners0 in found:
        h0 = cv2.getPerspectiveTransform(_square_mm(size).astype(np.float32), corners0.astype(np.float32))
        h0 = h0.astype(np.float64)
        quiet = _apply(h0, _square_mm(size + 2 * QUIET_ZONE_CELLS * cell_mm) - QUIET_ZONE_CELLS * cell_mm)
        side0 = float(np.sqrt(abs(cv2.contourArea(corners0.astype(np.float32)))))
        base = {"marker_id": marker_id, "corners": corners0, "n_markers": len(found)}
        if np.any(quiet < -0.5) or np.any(quiet[:, 0] > wid - 0.5) or np.any(quiet[:, 1] > hgt - 0.5):
            refusal = refusal or FiducialResult(found=False, reason="partly_visible", **base)
            continue
        if side0 < min_side_px:
            refusal = refusal or FiducialResult(found=False, reason="too_small", **base)
            continue
        tilt = _tilt_deg(h0, size)
        if tilt > max_tilt_deg:
            refusal = refusal or FiducialResult(found=False, reason="too_oblique", tilt_deg=tilt, **base)
            continue
        refined = _refine_ecc(grey, marker_id, dictionary, size, h0)
        if refined is None:
            refusal = refusal or FiducialResult(found=False, reason="refinement_failed", **base)
            continue
        h_img_from_mm, rho = refined
        corners = _apply(h_img_from_mm, _square_mm(size))
        if float(np.max(np.hypot(*(corners - corners0).T))) > 0.5 * side0 / cells:
            refusal = refusal or FiducialResult(found=False, reason="refinement_failed", **base)
            continue
        if rho < min_confidence:
            refusal = refusal or FiducialResult(found=False, reason="low_confidence", confidence=rho, **base)
            continue
        area = abs(cv2.contourArea(corners.astype(np.float32)))
        polygon = _apply(h_img_from_mm, _square_mm(size + 2 * margin_mm) - margin_mm)
        return FiducialResult(
            found=True,
            px_per_mm=float(np.sqrt(area) / size),
            marker_id=marker_id,
            corners=corners,
            polygon=polygon,
            homography=np.linalg.inv(h_img_from_mm) / np.linalg.inv(h_img_from_mm)[2, 2],
            confidence=float(np.clip(rho, 0.0, 1.0)),
            tilt_deg=_tilt_deg(h_img_from_mm, size),
            n_markers=len(found),
        )
    assert refusal is not None
    return refusal
