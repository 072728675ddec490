"""Two-sided colour contrast of hair against the skin right next to it (close-up measurement path).

Dark hair on light skin is darker than its background, but grey and white hair on darker skin is
*brighter*, and blond hair on light skin differs more in colour than in brightness. A one-sided "darker
than a grey closing" contrast misses the last two and, worse, a closing fills in the skin next to a white
shaft with the shaft's brightness so the skin there looks like dark hair. This module measures hair as a
colour difference of either sign:

1. background: per-channel *median* at low resolution over a window several times wider than the widest
   hair (a median ignores thin structures of either polarity as long as they cover under half of the
   window), smoothed and brought back to full size (:func:`median_background`);
2. relative difference per channel ``d_k = I_k / B_k - 1``: 0 on hair-free skin; for a pixel covered by
   a fraction ``a`` of a shaft of colour ``h`` it is ``a * (h_k / B_k - 1)``, linear in the coverage;
3. contrast = noise-weighted RMS over the channels of ``d_k`` (:func:`hair_contrast`): each channel is
   weighted by the inverse of its robust noise (MAD over the field), so a noisy dark channel does not
   dominate. Being a norm of a vector linear in ``a``, it is itself linear in the coverage: half of the
   local peak is half coverage, whatever the hair's colour or polarity. A gain per channel (exposure,
   white balance) cancels in the ratio.

:func:`hair_contrast` also returns the signed luminance difference, which tells dark shafts from light
(grey, white) ones; :mod:`tracker.imaging.hair` judges each polarity's pale wisps apart.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.imaging.normalise import as_float_image

__all__ = ["hair_contrast", "median_background"]

#: Median window at low resolution (pixels); the image is reduced so the requested scale maps to it.
_LOW_RES_WINDOW = 15
_EPS = 1.0 / 255.0
#: Luminance weights (Rec. 601) of the signed brightness difference.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def median_background(image: np.ndarray, *, scale_px: float) -> np.ndarray:
    """Hair-free background by a per-channel median over ``scale_px`` (computed at low resolution).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
        uint8, uint16 or float in [0, 1]; never mutated.
    scale_px : float
        Median window side in full-resolution pixels; choose 3-5 times the widest hair.

    Returns
    -------
    (H, W) or (H, W, 3) float32 ndarray
        Smooth background in [0, 1], the shape of the input.

    Raises
    ------
    ValueError
        Bad image, non-positive or non-finite scale.
    """
    img = as_float_image(image)
    scale = float(scale_px)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale_px must be a positive number, got {scale_px!r}")
    h, w = img.shape[:2]
    factor = max(1.0, scale / _LOW_RES_WINDOW)
    lw, lh = max(4, round(w / factor)), max(4, round(h / factor))
    small = cv2.resize(img, (lw, lh), interpolation=cv2.INTER_AREA) if factor > 1 else img
    k = max(3, int(round(scale / factor)) | 1)
    # Odd reflection continues a light fall-off linearly past the border (an even one would fold the
    # vignette back and bias the median in the corners).
    chans = small[..., None] if small.ndim == 2 else small
    pad = k // 2 + 1
    chans = np.clip(np.pad(chans, ((pad, pad), (pad, pad), (0, 0)), mode="reflect", reflect_type="odd"), 0, None)
    # cv2.medianBlur takes only uint8 for windows over 5: stretch each channel to 0-255 first (the
    # quantisation step is then 1/255 of the channel's maximum, and the smoothing below averages it out).
    top = np.maximum(chans.reshape(-1, chans.shape[2]).max(axis=0), 1e-6)
    q = np.clip(np.rint(chans / top * 255.0), 0, 255).astype(np.uint8)
    med = np.stack([cv2.medianBlur(np.ascontiguousarray(q[..., c]), k) for c in range(q.shape[2])], axis=-1)
    bg = med[pad:-pad, pad:-pad].astype(np.float32) / 255.0 * top
    bg = cv2.GaussianBlur(bg, (0, 0), sigmaX=1.0)
    if bg.ndim == 2:
        bg = bg[..., None]
    if bg.shape[:2] != (h, w):
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    bg = bg.reshape(h, w, -1)
    return (bg[..., 0] if img.ndim == 2 else bg).astype(np.float32, copy=False)


def _relative_difference(img: np.ndarray, scale_px: float) -> np.ndarray:
    bg = median_background(img, scale_px=scale_px)
    d = (img + _EPS) / (bg + _EPS) - 1.0
    return d[..., None] if d.ndim == 2 else d


def hair_contrast(
    image: np.ndarray,
    *,
    scale_px: float,
    field_mask: np.ndarray | None = None,
    smooth_px: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided, noise-weighted colour contrast of thin structures against the local skin.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
        uint8, uint16 or float in [0, 1]; never mutated.
    scale_px : float
        Background median window (full-resolution pixels), 3-5 times the widest hair.
    field_mask : (H, W) bool ndarray, optional
        Pixels whose statistics set the channel noise weights (default: all).
    smooth_px : float
        Gaussian sigma applied to the per-channel differences before the norm (0 = none).

    Returns
    -------
    contrast : (H, W) float32 ndarray
        Weighted RMS over channels of ``I / B - 1``; 0 on skin, linear in the hair coverage of a pixel.
    signed_luma : (H, W) float32 ndarray
        Signed luminance difference ``sum_k luma_k * d_k`` (negative on dark hair, positive on light).

    Raises
    ------
    ValueError
        Bad image, scale, or field mask of the wrong shape.
    """
    img = as_float_image(image)
    d = _relative_difference(img, scale_px)
    if smooth_px > 0:
        d = cv2.GaussianBlur(d, (0, 0), sigmaX=float(smooth_px)).reshape(d.shape)
    if field_mask is None:
        sample = d.reshape(-1, d.shape[2])
    else:
        fm = np.asarray(field_mask, dtype=bool)
        if fm.shape != img.shape[:2]:
            raise ValueError(f"field_mask shape {fm.shape} does not match image {img.shape[:2]}")
        sample = d[fm]
    step = max(1, sample.shape[0] // 200_000)
    sample = sample[::step]
    med = np.median(sample, axis=0)
    mad = np.maximum(1.4826 * np.median(np.abs(sample - med), axis=0), 1e-3)
    wts = (1.0 / mad) / np.sqrt(np.mean((1.0 / mad) ** 2))  # RMS of the weights is 1: log-ratio units
    contrast = np.sqrt(np.mean((d * wts) ** 2, axis=2)).astype(np.float32)
    luma = (d @ _LUMA if d.shape[2] == 3 else d[..., 0]).astype(np.float32)
    return contrast, luma
