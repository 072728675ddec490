"""Hair coverage of a region of interest in a global (phone) photo: hair vs scalp skin.

Coverage is the fraction of ROI pixels that are hair; ``scalp_visibility = 1 - coverage``. The measure
must follow a true change of coverage between visits and stay put when only the light changes, so no
statistic is ever matched to a baseline (DESIGN section 5). Instead:

1. **Brightness.** The blue channel of an RGB photo (melanin absorbs blue most and the scalp reflects it
   least, so it carries the most hair/skin contrast and clips last; red carries the least and clips
   first) is divided by its own hair-free background (:func:`~tracker.imaging.normalise.low_res_background`,
   a closing of 1/3 of the short side: it removes slow light fall-off across the head). The contrast
   ``c = -log(ratio)`` is read at two reference levels in the ROI: skin = its 1st percentile (brightest
   scalp), hair = its 99th percentile (darkest strands) read after a 3 x 3 median of the channel (a JPEG
   throws single pixels of a dark strand far darker in blue: see below); a pixel is hair when its
   contrast lies beyond :data:`SPLIT_FRACTION` of the way from skin to hair.
2. **Colour** (RGB only). Hair shades the scalp under it (down to about half its brightness), so the
   brightest shafts (sheen, lighter hairs) are as bright as the shaded scalp between them and brightness
   alone cannot separate them; their colour still differs. ``chroma = log(blue / green)`` of the raw pixel
   is blind to every grey change (exposure, light fall-off, shadows) and a colour cast shifts it by a
   constant. The scalp's chroma (median over the brightest ROI pixels) and the hair's (median over the
   pixels beyond the brightness split) are read in the ROI; a pixel is also hair when its chroma has moved
   from the scalp's towards the hair's by more than :data:`CHROMA_SPLIT` of the gap and by more than
   :data:`CHROMA_FRACTION` of the brightness spread, and it is darker than :data:`CHROMA_GATE` of the
   way to the brightness split. Pixels with a clipped green or blue value have no reliable colour and are
   left to brightness; when the scalp is mostly clipped the cue is off.

Measured (``benchmarks/registration.py`` section 4, vertex phantoms, crown thinned 0.2 -> 0.6 under another
pose, exposure and white balance): measured / true change 0.25-0.57 by brightness (green and blue) alone,
0.69-0.79 with blue and the colour cue; vertex ROI MAE 0.025 -> 0.015, light/colour/gamma drift
0.031 -> 0.004. Part of the remaining gap is the benchmark's truth: a render's hair mask counts a pixel
exactly half covered as hair (coverage 128/255), which any unbiased measure calls half the time; the
unposed dense baseline holds about 3.6 % of such ties, the posed follow-up none.

JPEG: phone photos are 4:2:0 JPEGs (or HEICs), whose blue channel is full-resolution luma plus a
half-resolution, coarsely quantised colour part. Read on the raw channel, the hair level followed the
darkest single pixels (99th percentile 1.57 -> 3.00 for black hair on dark skin) and a q90 round trip
moved vertex coverage by up to 0.198; with the median, by up to 0.058 (``benchmarks/accuracy.py`` section 3,
lossless MAE 0.0154 -> 0.0124, light drift 0.004 -> 0.007). What remains is the colour part itself: a
JPEG bleeds the scalp's colour into thin strands, so per-pixel blue contrast still differs from the
lossless render's.

Invariances (tested): an exposure change (gain) and a colour cast (a gain per channel) cancel exactly in
the ratio and shift the chroma by a constant that its scalp reference follows; a gamma change multiplies
``c`` and the chroma by gamma, and the reference levels scale with them, so the splits are unchanged.

Limits: when the ROI shows no scalp (or no hair) the brightest percentile is not skin; a small spread
between the levels is flagged ``"low_separation"`` (the colour cue is then off) and such a coverage is not
to be trusted. Blond hair on light skin hardly differs in brightness; black and grey hair hardly differ in
colour (the cue adds little there). Strands 1-2 px wide make every figure depend on how partly covered
pixels are counted. Hair must be darker than the scalp (``polarity="light"`` handles white/grey hair on
darker skin).
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
#: (measured on rendered vertex photos: the dark tail of scalp skin ends near 0.2-0.3 of the way; 0.25
#: counts more of it as hair, 0.35 misses partly covered hair: vertex MAE 0.023 and 0.048 against 0.015).
SPLIT_FRACTION = 0.3
#: Skin and hair levels closer than this (log units, about 40 %) do not separate hair from skin.
MIN_SEPARATION = 0.5
#: Colour cue (module docstring, step 2): the chroma must move from the scalp's by at least this fraction of
#: the brightness spread (the chroma and ``c`` are both log ratios: about 0.1, several times the chroma
#: noise of one 8-bit scalp pixel) ...
CHROMA_FRACTION = 0.06
#: ... and by at least this fraction of the gap between the scalp's and the hair's chroma (a half-covered
#: pixel of a light shaft) ...
CHROMA_SPLIT = 0.5
#: ... and the pixel must be darker than this fraction of the way from the skin level to the brightness split.
CHROMA_GATE = 0.5
#: The scalp's chroma is the median over ROI pixels within this fraction of the spread of the skin level.
SKIN_BAND = 0.1
#: A green or blue channel with more ROI pixels at the maximum value than this share is flagged "clipped".
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
    # Brightness from blue alone (RGB): melanin absorbs blue most and the scalp reflects it least, so it
    # carries the most hair/skin contrast and clips last; green gives the colour cue; red is never used.
    read = channels[1:] if len(channels) == 3 else channels
    if any(cv2.countNonZero(cv2.compare(ch, CLIP_LEVEL * top, cv2.CMP_GE) & roi8) > MAX_CLIPPED_SHARE * n_roi
           for ch in read):
        flags.append("clipped")  # a channel that carries the measurement is clipped on the scalp
    c, log_bg = _contrast(read[-1], scale=scale, polarity=polarity)
    step = max(1, int(np.sqrt(n_roi / PERCENTILE_SAMPLE_PX)))
    sub_roi = roi[::step, ::step]
    vals = c[::step, ::step][sub_roi]
    if vals.size < MIN_ROI_PX:
        sub_roi, step = roi, 1
        vals = c[roi]
    if n_roi < MIN_ROI_PX:
        flags.append("small_roi")
    skin_level = float(np.percentile(vals, REF_PERCENTILE))
    hair_level = _hair_level(read[-1], log_bg, (step, sub_roi), polarity)
    spread = hair_level - skin_level
    t = skin_level + SPLIT_FRACTION * spread
    if spread < MIN_SEPARATION:
        flags.append("low_separation")
        t = max(t, skin_level + MIN_SEPARATION / 2)
    mask8 = cv2.compare(c, t, cv2.CMP_GT)
    if len(channels) == 3 and spread >= MIN_SEPARATION:
        mask8 |= _colour_cue(channels[1], channels[2], c, vals, (step, sub_roi), skin_level, spread, t, top)
    coverage = cv2.countNonZero(mask8 & roi8) / n_roi
    return CoverageMeasurement(
        hair_coverage=coverage,
        scalp_visibility=1.0 - coverage,
        roi_area_px=n_roi,
        mask=mask8.view(bool),
        flags=tuple(flags),
    )


def _colour_cue(
    green: np.ndarray,
    blue: np.ndarray,
    c: np.ndarray,
    vals: np.ndarray,
    sample: tuple[int, np.ndarray],
    skin_level: float,
    spread: float,
    t: float,
    top: float,
) -> np.ndarray:
    """(H, W) uint8 mask (255 = hair) of pixels whose colour has moved from the scalp's towards the hair's.

    ``chroma = log(blue / green)`` of the raw pixel: exposure, a colour cast (constants) and every grey
    shading (light fall-off, the shadow of the hair on the scalp) cancel in it, so a bright strand over a
    shaded scalp still differs in colour where it hardly differs in brightness. The scalp's chroma is the
    median over the brightest ROI pixels (within :data:`SKIN_BAND` of the spread of the skin level), the
    hair's over the pixels beyond the brightness split ``t``; a pixel is hair when its chroma lies beyond
    the scalp's, on the hair's side, by more than both :data:`CHROMA_FRACTION` of ``spread`` and
    :data:`CHROMA_SPLIT` of the gap, and it is darker than :data:`CHROMA_GATE` of the way to ``t``. A pixel
    with a clipped green or blue value has no reliable colour.

    ``green``, ``blue`` are (H, W) channels of any accepted dtype, ``c`` the (H, W) float32 contrast,
    ``vals`` the contrast at the ROI sample ``sample = (step, sub_roi)``.
    """
    step, sub_roi = sample
    if green.dtype != np.uint8:  # work on the 8-bit scale (values 0..255, float)
        green, blue = (as_float_image(x) * np.float32(255.0) for x in (green, blue))
        top = 255.0
    unclipped = cv2.compare(cv2.max(green, blue), CLIP_LEVEL * top, cv2.CMP_LT)
    ok = unclipped[::step, ::step][sub_roi].view(bool)  # a clipped pixel has no reliable colour
    g_s, b_s = (x[::step, ::step][sub_roi].astype(np.float64) for x in (green, blue))
    sub = np.log(b_s + 0.5) - np.log(g_s + 0.5)
    in_band, beyond = vals < skin_level + SKIN_BAND * spread, vals > t
    skin, hair = sub[in_band & ok], sub[beyond & ok]
    if skin.size < 0.5 * np.count_nonzero(in_band) or hair.size < MIN_ROI_PX // 4:
        return np.zeros(c.shape, np.uint8)  # the scalp is mostly clipped: its colour is unknown
    skin_chroma = float(np.median(skin))
    gap = float(np.median(hair)) - skin_chroma
    if gap == 0:
        return np.zeros(c.shape, np.uint8)
    # chroma > split  <=>  (blue + 0.5) - k (green + 0.5) > 0 with k = exp(split): one pass, no logarithm.
    k = float(np.exp(skin_chroma + np.sign(gap) * max(CHROMA_FRACTION * spread, CHROMA_SPLIT * abs(gap))))
    diff = cv2.addWeighted(blue, 1.0, green, -k, 0.5 * (1.0 - k), dtype=cv2.CV_32F)
    off_skin = cv2.compare(diff, 0.0, cv2.CMP_GT if gap > 0 else cv2.CMP_LT)
    darker = cv2.compare(c, skin_level + CHROMA_GATE * (t - skin_level), cv2.CMP_GT)
    return off_skin & darker & unclipped


def _contrast(channel: np.ndarray, *, scale: float, polarity: Polarity) -> tuple[np.ndarray, np.ndarray]:
    """Hair contrast ``c = -log(channel / background)`` and ``log background``, both (H, W) float32.

    The background is estimated on a copy reduced by an integer factor (it is smooth) and its logarithm
    is interpolated to full size; the image side is a table look-up for uint8. ``polarity="light"``
    flips the sign of ``c`` (hair brighter than the scalp).
    """
    h, w = channel.shape
    q = max(1, min(int(scale // _BACKGROUND_WORK_PX), h // 8, w // 8))
    hq, wq = h // q * q, w // q * q  # an exact multiple of q takes OpenCV's fast area reduction
    small = channel if q == 1 else cv2.resize(channel[:hq, :wq], (wq // q, hq // q), interpolation=cv2.INTER_AREA)
    bg = low_res_background(as_float_image(small), scale_px=scale / q, polarity=polarity)
    log_bg = cv2.resize(np.log(bg + _EPS), (w, h), interpolation=cv2.INTER_LINEAR)
    sign = 1.0 if polarity == "dark" else -1.0
    # c = log background - log image (sign flipped for light hair); bounded by the eps terms.
    return cv2.addWeighted(log_bg, sign, _log_image(channel), -sign, 0.0), log_bg


def _log_image(channel: np.ndarray) -> np.ndarray:
    """``log(channel + eps)`` on the 0..1 scale, (H, W) float32 (a table look-up for uint8)."""
    if channel.dtype == np.uint8:
        lut = np.log(np.arange(256, dtype=np.float64) / 255.0 + _EPS).astype(np.float32)
        return cv2.LUT(channel, lut)
    return np.log(as_float_image(channel) + _EPS)


def _hair_level(
    channel: np.ndarray, log_bg: np.ndarray, sample: tuple[int, np.ndarray], polarity: Polarity
) -> float:
    """The hair reference level: :data:`REF_PERCENTILE` from the top of the contrast of the channel after a
    3 x 3 median (``sample = (step, sub_roi)`` as in :func:`measure_coverage`).

    The darkest strands are a handful of pixels whose values a JPEG's chroma quantisation throws about (in
    a 4:2:0 JPEG the blue channel's colour part is a half-resolution, coarsely quantised estimate); the
    median keeps the level of a strand and drops single-pixel excursions.
    """
    step, sub_roi = sample
    ch = channel if channel.dtype in (np.uint8, np.uint16) else as_float_image(channel)
    med = cv2.medianBlur(np.ascontiguousarray(ch), 3)[::step, ::step]
    log_med = _log_image(np.ascontiguousarray(med))[sub_roi]
    c_med = log_bg[::step, ::step][sub_roi] - log_med
    c_med = c_med if polarity == "dark" else -c_med
    return float(np.percentile(c_med, 100 - REF_PERCENTILE))
