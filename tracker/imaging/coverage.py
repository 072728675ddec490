"""Hair coverage of a region of interest in a global (phone) photo: hair vs scalp skin.

Coverage is the fraction of ROI pixels that are hair; ``scalp_visibility = 1 - coverage``. The measure
must follow a true change of coverage between visits and stay put when only the light changes, so no
statistic is ever matched to a baseline (DESIGN section 5). Instead:

1. every channel is divided by its own hair-free background (:func:`~tracker.imaging.normalise.flat_field`
   with a closing of 1/3 of the short side: it removes slow light fall-off across the head); a channel
   clipped at the sensor's maximum in more than :data:`MAX_CLIPPED_SHARE` of the ROI is left out (a
   clipped skin channel squeezes the hair/skin ratio; measured: blond hair on light skin at exposure x1.3
   read 0.667 instead of 0.804, the red channel clipped on 32 % of the ROI); the red channel of an RGB
   photo is never used: skin reflects red most, so it carries the least hair/skin contrast and clips
   first (measured on the 7 vertex phantoms: ROI MAE 0.0332 -> 0.0264 with it left out);
2. the contrast ``c = -log(ratio)`` (geometric mean over channels) is read at two reference levels in
   the ROI: skin = its 1st percentile (brightest scalp), hair = its 99th percentile (darkest strands);
   a pixel is hair when its contrast lies beyond :data:`SPLIT_FRACTION` of the way from skin to hair.

Invariances (tested): an exposure change (gain) and a colour cast (a gain per channel) cancel exactly in
the per-channel ratio; a gamma change multiplies ``c`` by gamma, and both reference levels scale with
it, so the split is unchanged. A true coverage change moves pixels from one class to the other and
survives as long as each class holds more than about 1 % of the ROI.

Limits: when the ROI shows no scalp (or no hair) the brightest percentile is not skin; a small spread
between the levels is flagged ``"low_separation"`` and such a coverage is not to be trusted. Blond hair on
light skin hardly differs in brightness and is not separated by this first version. Hair must be darker
than the scalp (``polarity="light"`` handles white/grey hair on darker skin).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from tracker.imaging.normalise import _EPS, Polarity, as_float_image, low_res_background

__all__ = ["CoverageMeasurement", "measure_coverage"]

#: Skin level = this percentile of the ROI contrast (the brightest pixels), hair level = 100 minus it.
REF_PERCENTILE = 1.0
#: A pixel is hair when its contrast lies more than this fraction of the way from skin to hair level
#: (measured on rendered vertex photos: the dark tail of scalp skin ends near 0.2-0.25 of the way).
SPLIT_FRACTION = 0.25
#: Skin and hair levels closer than this (log units, about 40 %) do not separate hair from skin.
MIN_SEPARATION = 0.5
#: A channel with more ROI pixels at the maximum value than this share is not used (flag "clipped").
MAX_CLIPPED_SHARE = 0.005
#: A pixel value at or above this (on the 0..1 scale) counts as clipped.
CLIP_LEVEL = 254.0 / 255.0
#: A ROI smaller than this many pixels is too small for a coverage figure.
MIN_ROI_PX = 400
#: The reference percentiles are read on a regular subsample of the ROI of at least this many pixels.
PERCENTILE_SAMPLE_PX = 250_000
#: The flat field is estimated on a copy reduced so that the closing spans about this many pixels (the
#: background is smooth; :func:`~tracker.imaging.normalise.low_res_background` reduces further).
_BACKGROUND_WORK_PX = 30


@dataclass(frozen=True)
class CoverageMeasurement:
    """Result of :func:`measure_coverage`."""

    hair_coverage: float
    scalp_visibility: float
    roi_area_px: int
    mask: np.ndarray = field(repr=False)
    flags: tuple[str, ...] = ()

    def metrics(self) -> dict:
        """JSON-ready dict of the scalar fields and flags (no mask)."""
        return {
            "hair_coverage": float(self.hair_coverage),
            "scalp_visibility": float(self.scalp_visibility),
            "roi_area_px": int(self.roi_area_px),
            "flags": list(self.flags),
        }


def _check_image(image: np.ndarray) -> np.ndarray:
    """Validate like :func:`~tracker.imaging.normalise.as_float_image` without a full-size float copy."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype in (np.float32, np.float64) or image.ndim not in (2, 3):
        as_float_image(image)  # raises with the shared messages (and rejects NaN / inf)
        return np.clip(image, 0.0, 1.0).astype(np.float32) if image.dtype.kind == "f" else image
    as_float_image(image[:8, :8])  # dtype, channel count
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"image is too small to analyse: {image.shape[:2]}")
    return image


def _check_roi(roi_mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if roi_mask is None:
        return np.ones(shape, dtype=bool)
    roi = np.asarray(roi_mask)
    if roi.shape != shape:
        raise ValueError(f"roi_mask shape {roi.shape} does not match image {shape}")
    if roi.dtype != bool:
        raise ValueError(f"roi_mask must be bool, got dtype {roi.dtype}")
    if not roi.any():
        raise ValueError("roi_mask is empty: nothing to measure")
    return roi.copy()


def measure_coverage(
    image: np.ndarray,
    *,
    roi_mask: np.ndarray | None = None,
    polarity: Polarity = "dark",
    background_scale_px: float | None = None,
) -> CoverageMeasurement:
    """Fraction of an ROI covered by hair, robust to exposure, white balance and gamma.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB or (H, W) ndarray
        Global photo (uint8, uint16 or float in [0, 1]); never mutated.
    roi_mask : (H, W) bool ndarray, optional
        Region of interest (True = measured). Default: the whole image.
    polarity : {"dark", "light"}
        ``"dark"``: hair darker than the scalp (usual); ``"light"``: white/grey hair on darker skin.
    background_scale_px : float, optional
        Closing diameter of the flat field. Default: 1/3 of the image's short side.

    Returns
    -------
    CoverageMeasurement
        ``mask`` is the (H, W) bool hair mask of the whole image (the ROI threshold applied everywhere).

    Raises
    ------
    ValueError
        Bad image shape/dtype, ROI of the wrong shape/dtype or empty, non-positive scale.
    """
    if polarity not in ("dark", "light"):
        raise ValueError(f"polarity must be 'dark' or 'light', got {polarity!r}")
    image = _check_image(image)
    h, w = image.shape[:2]
    roi = _check_roi(roi_mask, (h, w))
    scale = max(31.0, min(h, w) / 3.0) if background_scale_px is None else float(background_scale_px)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"background_scale_px must be a positive number, got {background_scale_px!r}")
    flags: list[str] = []
    channels = [np.ascontiguousarray(image)] if image.ndim == 2 else cv2.split(np.ascontiguousarray(image))
    top = float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    roi8 = roi.view(np.uint8)
    n_roi = int(cv2.countNonZero(roi8))
    clipped = [cv2.countNonZero(cv2.compare(ch, CLIP_LEVEL * top, cv2.CMP_GE) & roi8) / n_roi for ch in channels]
    first = 1 if len(channels) == 3 else 0  # red: least hair/skin contrast, first to clip on skin
    usable = range(first, len(channels))
    keep = [k for k in usable if clipped[k] <= MAX_CLIPPED_SHARE]
    if len(keep) < len(usable):
        flags.append("clipped")  # a channel that carries the measurement is clipped on the scalp
    if not keep:
        keep = [int(np.argmin(clipped))]
    c = _contrast([channels[k] for k in keep], scale=scale, polarity=polarity)
    step = max(1, int(np.sqrt(n_roi / PERCENTILE_SAMPLE_PX)))
    vals = c[::step, ::step][roi[::step, ::step]]
    if vals.size < MIN_ROI_PX:
        vals = c[roi]
    if n_roi < MIN_ROI_PX:
        flags.append("small_roi")
    skin_level, hair_level = (float(v) for v in np.percentile(vals, [REF_PERCENTILE, 100 - REF_PERCENTILE]))
    t = skin_level + SPLIT_FRACTION * (hair_level - skin_level)
    if hair_level - skin_level < MIN_SEPARATION:
        flags.append("low_separation")
        t = max(t, skin_level + MIN_SEPARATION / 2)
    mask8 = cv2.compare(c, t, cv2.CMP_GT)
    coverage = cv2.countNonZero(mask8 & roi8) / n_roi
    return CoverageMeasurement(
        hair_coverage=coverage,
        scalp_visibility=1.0 - coverage,
        roi_area_px=n_roi,
        mask=mask8.view(bool),
        flags=tuple(flags),
    )


def _contrast(channels: list[np.ndarray], *, scale: float, polarity: Polarity) -> np.ndarray:
    """Hair contrast ``c = -log(channel / background)`` averaged over ``channels``, (H, W) float32.

    The background is estimated on a copy reduced by an integer factor (it is smooth), its logarithm is
    averaged over the channels at low resolution and interpolated once to full size; the image side is a
    table look-up for uint8. ``polarity="light"`` flips the sign (hair brighter than the scalp).
    """
    h, w = channels[0].shape
    q = max(1, min(int(scale // _BACKGROUND_WORK_PX), h // 8, w // 8))
    hq, wq = h // q * q, w // q * q  # an exact multiple of q takes OpenCV's fast area reduction
    log_bg = None
    log_img = np.zeros((h, w), np.float32)
    lut = np.log(np.arange(256, dtype=np.float64) / 255.0 + _EPS).astype(np.float32)
    for ch in channels:
        small = ch if q == 1 else cv2.resize(ch[:hq, :wq], (wq // q, hq // q), interpolation=cv2.INTER_AREA)
        small = as_float_image(small)
        bg = low_res_background(small, scale_px=scale / q, polarity=polarity)
        log_bg = np.log(bg + _EPS) if log_bg is None else log_bg + np.log(bg + _EPS)
        cv2.add(log_img, cv2.LUT(ch, lut) if ch.dtype == np.uint8 else np.log(as_float_image(ch) + _EPS), dst=log_img)
    log_bg = cv2.resize(log_bg, (w, h), interpolation=cv2.INTER_LINEAR)
    # c = mean log background - mean log image (sign flipped for light hair); bounded by the eps terms.
    sign = 1.0 if polarity == "dark" else -1.0
    return cv2.addWeighted(log_bg, sign / len(channels), log_img, -sign / len(channels), 0.0)
