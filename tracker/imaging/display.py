"""Display normalisation: make photos of different visits LOOK alike for comparison images.

DISPLAY PATH ONLY. Nothing in this module may feed a measurement. Matching colour statistics to a
baseline erases real change (DESIGN section 5: whole-image histogram matching erased 100 % of a true
30 % coverage change, Reinhard transfer a third or more). Measurements use the flat-field path in
:mod:`tracker.imaging.normalise`; the functions here only prepare pixels for people to look at
(side-by-side, wipe, blend, heat map in :mod:`tracker.reports.compare`). Every function returns a new
array and never modifies its inputs.

How: statistics are taken over *skin* pixels only (not hair, which changes between visits, not the
clipped highlights, not the black border a warp leaves, and not a coloured backdrop), then

- ``"gain"``: white balance and exposure as one gain per channel in linear light (von Kries), so that
  the skin of IMAGE gets the skin colour and brightness of REFERENCE; a colour cast or an exposure
  change (both gains in linear light) is undone exactly;
- ``"reinhard"``: Reinhard et al. (2001) colour transfer in CIELAB (mean and spread per channel), which
  also evens out contrast and gamma differences, restricted to the same skin statistics;
- :func:`grey_world` is the reference-free white balance: it makes a chosen region neutral grey (a grey
  card, a backdrop, or the whole image).

Photos are expected in one frame already (follow-ups warped into the baseline's frame with
:func:`tracker.imaging.align.warp_to_reference`), so one skin mask can serve every photo of a series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

__all__ = ["grey_world", "match_display", "match_exposure", "normalise_series", "skin_mask"]

Method = Literal["gain", "reinhard"]

#: Minimum share of usable pixels for a skin mask; below it the statistics are not trusted.
_MIN_SKIN_SHARE = 0.005
#: Spread ratios and gains outside these bounds are clamped (a bad mask must not make a freak image).
_SPREAD_LIMITS = (0.5, 2.0)
_GAIN_LIMITS = (0.25, 4.0)


def _srgb_to_linear_lut() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_TO_LINEAR = _srgb_to_linear_lut()


def _linear_to_srgb_lut() -> np.ndarray:
    x = np.arange(65536, dtype=np.float64) / 65535.0
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


_TO_SRGB = _linear_to_srgb_lut()


def _to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    """Encode linear RGB in [0, 1] (any float array) to sRGB uint8 (16-bit lookup, error < 0.5 level)."""
    index = np.clip(linear * np.float32(65535.0) + np.float32(0.5), 0.0, 65535.0).astype(np.uint16)
    return _TO_SRGB[index]


def checked_rgb(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Return IMAGE as a (H, W, 3) uint8 array (grey is repeated into 3 channels; never a view to mutate).

    Raises
    ------
    ValueError
        Not a numpy array, wrong shape or channel count, not uint8, or smaller than 8 x 8 pixels.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (display images are 8-bit RGB), got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W) or (H, W, 3), got shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"{name} is too small: {image.shape[:2]}")
    return image


def _checked_mask(mask: np.ndarray | None, shape: tuple[int, int], name: str = "mask") -> np.ndarray | None:
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        raise ValueError(f"{name} must be a bool array of shape {shape}, got {getattr(mask, 'shape', None)}")
    return mask


def channel_max(image: np.ndarray) -> np.ndarray:
    """(H, W) maximum over the channels of a (H, W, 3) image (much faster than ``max(axis=2)``)."""
    return np.maximum(np.maximum(image[:, :, 0], image[:, :, 1]), image[:, :, 2])


def _usable(image: np.ndarray) -> np.ndarray:
    """Pixels that carry information: not the black warp border and not clipped in any channel."""
    top = channel_max(image)
    return (top > 0) & (top < 250)


def skin_mask(image: np.ndarray, *, region: np.ndarray | None = None) -> np.ndarray:
    """Bright, skin-coloured, unclipped pixels of a photo: where display statistics are taken.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB photo. Not modified.
    region : (H, W) bool ndarray, optional
        Restrict the search to this region (e.g. an ROI or the scalp); default the whole image.

    Returns
    -------
    mask : (H, W) bool ndarray
        Skin-coloured pixels (Chai & Ngan's YCrCb box: Cr 133-173, Cb 77-127) of the usable region
        (not the black warp border, no channel >= 250), without dark hair and shadows: pixels below the
        Otsu threshold of their luma when it splits two clearly different classes, else below 0.65 x
        the median luma. When fewer than 0.5 % of
        the usable pixels look like skin (an odd cast, grey hair filling the frame), the bright part of
        the usable region is returned instead; when even that is empty the mask is all False.
    """
    rgb = checked_rgb(image)
    usable = _usable(rgb)
    region = _checked_mask(region, rgb.shape[:2], "region")
    if region is not None:
        usable &= region
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycc[:, :, 0], ycc[:, :, 1], ycc[:, :, 2]
    candidates = usable & (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)
    if candidates.sum() < _MIN_SKIN_SHARE * max(int(usable.sum()), 1) or not candidates.any():
        candidates = usable
    if not candidates.any():
        return candidates
    return candidates & (y > _bright_threshold(y[candidates]))


def _bright_threshold(values: np.ndarray) -> float:
    """Luma below which a pixel is hair or shadow: the Otsu split when it separates two clearly
    different classes (dark hair vs skin, means < 0.6 apart as a ratio), else 0.65 x the median."""
    if values.size == 0 or values.min() == values.max():
        return -1.0
    from skimage.filters import threshold_otsu  # imported here: scikit-image costs ~1 s of start-up

    t = float(threshold_otsu(values))
    low, high = values[values <= t], values[values > t]
    if low.size and high.size and low.mean() < 0.6 * high.mean():
        return t
    return 0.65 * float(np.median(values))


def _stats_mask(images: Sequence[np.ndarray], mask: np.ndarray | None) -> np.ndarray:
    """Skin mask shared by aligned images: MASK (or the first image's skin) usable in all of them."""
    shape = images[0].shape[:2]
    for other in images[1:]:
        if other.shape[:2] != shape:
            raise ValueError(f"images must share one frame (same H, W): {shape} vs {other.shape[:2]}")
    base = skin_mask(images[0]) if mask is None else _checked_mask(mask, shape).copy()
    for img in images:
        base &= _usable(img)
    for img in images[1:]:
        # Hair grows or thins between visits: drop pixels that are dark (hair) in this photo. The
        # threshold is relative to its own luma, so an exposure change or a mild colour cast does not move it.
        luma = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
        base &= luma > _bright_threshold(luma[base])
    if base.sum() < max(16, _MIN_SKIN_SHARE * base.size):
        raise ValueError("too few usable skin pixels shared by the images to normalise the display")
    return base


def _channel_gains(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel linear-light gains that give IMAGE's masked mean the REFERENCE's masked mean."""
    mean_i = _TO_LINEAR[image[mask]].mean(axis=0)
    mean_r = _TO_LINEAR[reference[mask]].mean(axis=0)
    return np.clip(mean_r / np.maximum(mean_i, 1e-6), *_GAIN_LIMITS)


def _apply_gains(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiply each channel by its gain in linear light, via one 256-entry lookup table per channel."""
    tables = [_to_srgb_uint8(_TO_LINEAR * np.float32(g)) for g in gains]
    return np.dstack([cv2.LUT(np.ascontiguousarray(image[:, :, c]), tables[c]) for c in range(3)])


def _gain_transfer(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _apply_gains(image, _channel_gains(image, reference, mask))


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _reinhard(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    lab_i, lab_r = _lab(image), _lab(reference)
    out = np.empty_like(lab_i)
    for c in range(3):
        vi, vr = lab_i[:, :, c][mask], lab_r[:, :, c][mask]
        ratio = float(np.clip(vr.std() / max(float(vi.std()), 1e-3), *_SPREAD_LIMITS))
        out[:, :, c] = (lab_i[:, :, c] - vi.mean()) * ratio + vr.mean()
    rgb = cv2.cvtColor(out, cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def match_display(
    image: np.ndarray, reference: np.ndarray, *, method: Method = "gain", mask: np.ndarray | None = None
) -> np.ndarray:
    """Make IMAGE look like REFERENCE (white balance and exposure) for display. Never for measurement.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        Photo to adjust, already in REFERENCE's frame (pixels outside the warped photo are 0). Not
        modified.
    reference : (H, W, 3) uint8 ndarray
        The photo to look like (usually the baseline). Not modified.
    method : {"gain", "reinhard"}
        ``"gain"``: one gain per channel in linear light (white balance + exposure); ``"reinhard"``:
        CIELAB mean/spread transfer (also evens out contrast and gamma).
    mask : (H, W) bool ndarray, optional
        Pixels to take statistics from. Default: :func:`skin_mask` of REFERENCE. Either way only pixels
        usable in both photos count.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        A new image; the black border of a warped photo stays black.

    Raises
    ------
    ValueError
        Bad images, different frames, unknown method, bad mask, too few shared skin pixels.
    """
    img = checked_rgb(image, name="image")
    ref = checked_rgb(reference, name="reference")
    if method not in ("gain", "reinhard"):
        raise ValueError(f"method must be 'gain' or 'reinhard', got {method!r}")
    stats = _stats_mask([ref, img], mask)
    transfer = _reinhard if method == "reinhard" else _gain_transfer
    out = transfer(img, ref, stats)
    out[channel_max(img) == 0] = 0
    return out


def match_exposure(image: np.ndarray, reference: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Match only brightness: one gain for all channels in linear light (colour balance untouched).

    Same parameters, return and errors as :func:`match_display`; the gain makes the mean linear
    luminance (Rec. 709 weights) of the masked skin of IMAGE equal to REFERENCE's. Display only.
    """
    img = checked_rgb(image, name="image")
    ref = checked_rgb(reference, name="reference")
    stats = _stats_mask([ref, img], mask)
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    lum_i = float((_TO_LINEAR[img[stats]] @ weights).mean())
    lum_r = float((_TO_LINEAR[ref[stats]] @ weights).mean())
    gain = float(np.clip(lum_r / max(lum_i, 1e-6), *_GAIN_LIMITS))
    out = _apply_gains(img, np.full(3, gain))
    out[channel_max(img) == 0] = 0
    return out


def grey_world(image: np.ndarray, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Reference-free white balance: make the mean colour of MASK neutral grey. Display only.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB photo. Not modified.
    mask : (H, W) bool ndarray, optional
        A region that should be neutral (grey card, backdrop). Default: all usable pixels (not the
        black warp border, not clipped). Skin is *not* neutral: for skin use :func:`match_display`.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        Gains per channel in linear light bring the masked mean to its own mean luminance, so overall
        brightness is kept.

    Raises
    ------
    ValueError
        Bad image or mask, or no usable pixel in the mask.
    """
    img = checked_rgb(image)
    region = _usable(img)
    if mask is not None:
        region &= _checked_mask(mask, img.shape[:2])
    if not region.any():
        raise ValueError("no usable pixel to white-balance on")
    mean = _TO_LINEAR[img[region]].mean(axis=0)
    grey = float(mean @ np.array([0.2126, 0.7152, 0.0722]))
    out = _apply_gains(img, np.clip(grey / np.maximum(mean, 1e-6), *_GAIN_LIMITS))
    out[channel_max(img) == 0] = 0
    return out


def normalise_series(
    images: Sequence[np.ndarray],
    *,
    reference_index: int = 0,
    method: Method = "gain",
    mask: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Display-normalise every photo of a series to one of them (the baseline by default).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8 ndarray
        Photos in one frame (follow-ups warped to the baseline). Not modified.
    reference_index : int
        Which photo the others are made to look like; it is returned as an unchanged copy.
    method, mask
        As in :func:`match_display` (the default mask is the reference's skin).

    Returns
    -------
    list of (H, W, 3) uint8 ndarray
        New arrays, in the order given.
    """
    if len(images) == 0:
        raise ValueError("images must not be empty")
    if not -len(images) <= reference_index < len(images):
        raise ValueError(f"reference_index {reference_index} out of range for {len(images)} images")
    checked = [checked_rgb(img, name=f"images[{i}]") for i, img in enumerate(images)]
    ref = checked[reference_index]
    if mask is None:
        mask = skin_mask(ref)
    ref_at = reference_index % len(checked)
    return [
        ref.copy() if i == ref_at else match_display(img, ref, method=method, mask=mask)
        for i, img in enumerate(checked)
    ]
