"""Flat-field normalisation for the measurement path.

Hair is measured against the skin right next to it, never against a baseline photo: matching histograms
or colour statistics to a baseline erases real coverage changes (DESIGN section 5). This module divides
out a hair-free background instead:

1. the background of each colour channel is a grey *closing* (for dark hair) computed at low
   resolution with a structuring element wider than any hair, then smoothed and brought back to full
   size; a closing replaces every dark structure narrower than the element by the brighter skin around
   it;
2. the ratio ``channel / background`` is about 1.0 on hair-free skin and below 1 on dark hair;
3. the per-channel ratios are combined by their geometric mean.

Because each channel is divided by its own background, a change of exposure (a gain) or a colour cast
(a gain per channel) cancels exactly, and a gamma change turns ``log(ratio)`` into ``gamma * log(ratio)``,
which thresholds relative to the local contrast and to the noise (as :mod:`tracker.imaging.hair` uses)
do not see.

Polarity: dark hair on lighter skin is the default (``polarity="dark"``). For white or grey hair on
darker skin use ``polarity="light"``: the background is then a grey *opening* (which removes thin bright
structures) and the returned ratio is ``background / channel``, so hair is again below 1 and every later
step is unchanged.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

__all__ = ["background", "flat_field", "as_float_image"]

Polarity = Literal["dark", "light"]

#: Side of the structuring element at low resolution, in pixels; the image is reduced so that the
#: requested ``scale_px`` maps to about this many pixels (keeps a closing cheap at any image size).
_LOW_RES_KERNEL_PX = 15
_EPS = 1.0 / 255.0


def as_float_image(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Check an image and return it as float32 in [0, 1], (H, W) or (H, W, C).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
        uint8 (0-255), uint16 (0-65535) or float (0-1) image.
    name : str
        Name used in error messages.

    Returns
    -------
    (H, W) or (H, W, 3) float32 ndarray
        A new array (the input is never mutated).

    Raises
    ------
    ValueError
        Wrong number of dimensions or channels, unsupported dtype, empty or non-finite image.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{name} must be (H, W) or (H, W, 3), got shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"{name} is too small to analyse: {image.shape[:2]}")
    # One pass each (the conversions of issue 7): the same values as converting, then dividing or clipping.
    if image.dtype == np.uint8:
        return np.divide(image, np.float32(255.0), dtype=np.float32)
    if image.dtype == np.uint16:
        return np.divide(image, np.float32(65535.0), dtype=np.float32)
    if image.dtype in (np.float32, np.float64):
        out = image.astype(np.float32)  # always a copy
        lo, hi = out.min(), out.max()  # NaN propagates into both; +-inf shows in one
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return out if lo >= 0.0 and hi <= 1.0 else np.clip(out, 0.0, 1.0, out=out)
    raise ValueError(f"{name} must be uint8, uint16 or float, got dtype {image.dtype}")


def _check_scale(scale_px: float, name: str) -> float:
    scale = float(scale_px)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"{name} must be a positive number, got {scale_px!r}")
    return scale


def background(image_grey: np.ndarray, *, scale_px: float, polarity: Polarity = "dark") -> np.ndarray:
    """Hair-free background of one channel by a grey closing (or opening) at low resolution.

    Parameters
    ----------
    image_grey : (H, W) ndarray
        One channel, uint8, uint16 or float in [0, 1].
    scale_px : float
        Diameter, in full-resolution pixels, of the structuring element. Structures (hairs) narrower
        than this are replaced by their surroundings; choose it 2-4 times the widest hair.
    polarity : {"dark", "light"}
        ``"dark"``: remove dark structures (grey closing). ``"light"``: remove bright ones (opening).

    Returns
    -------
    (H, W) float32 ndarray
        Smooth background in the input's [0, 1] scale, same size as the input.

    Raises
    ------
    ValueError
        Not a 2-D image, bad dtype, ``scale_px <= 0`` or unknown polarity.
    """
    grey = as_float_image(image_grey, name="image_grey")
    if grey.ndim != 2:
        raise ValueError(f"image_grey must be 2-D, got shape {np.shape(image_grey)}")
    scale = _check_scale(scale_px, "scale_px")
    if polarity not in ("dark", "light"):
        raise ValueError(f"polarity must be 'dark' or 'light', got {polarity!r}")
    bg = low_res_background(grey, scale_px=scale, polarity=polarity)
    if bg.shape != grey.shape:
        bg = cv2.resize(bg, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    return bg


def low_res_background(grey: np.ndarray, *, scale_px: float, polarity: Polarity = "dark") -> np.ndarray:
    """The background of :func:`background` before it is brought back to full size.

    The background is smooth, so callers that only need it at a few places, or that compare it with the
    image in the log domain, can interpolate this small array themselves (``cv2.resize`` with
    ``INTER_LINEAR`` to the full size gives exactly :func:`background`).

    Parameters
    ----------
    grey : (H, W) float32 ndarray
        One channel in [0, 1] (as returned by :func:`as_float_image`); not checked, never mutated.
    scale_px : float
        Closing diameter in full-resolution pixels (positive).
    polarity : {"dark", "light"}
        As for :func:`background`.

    Returns
    -------
    (h, w) float32 ndarray
        The background on a grid reduced by ``max(1, scale_px / 15)`` (the full size when no reduction).
    """
    h, w = grey.shape
    factor = max(1.0, scale_px / _LOW_RES_KERNEL_PX)
    lw, lh = max(4, round(w / factor)), max(4, round(h / factor))
    small = cv2.resize(grey, (lw, lh), interpolation=cv2.INTER_AREA) if factor > 1 else grey
    k = max(3, int(round(scale_px / factor)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    op = cv2.MORPH_CLOSE if polarity == "dark" else cv2.MORPH_OPEN
    # Odd reflection continues a light fall-off linearly past the border, so the closing neither fills
    # a reflected valley nor drags the brighter interior onto the edge; taking the minimum with the even
    # reflection keeps a hair near the border from becoming a bright spike in the padding.
    pad = k // 2 + 2
    combine = np.minimum if polarity == "dark" else np.maximum
    padded = combine(np.pad(small, pad, mode="reflect", reflect_type="odd"), np.pad(small, pad, mode="reflect"))
    bg = cv2.morphologyEx(padded, op, kernel, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.GaussianBlur(bg, (0, 0), sigmaX=1.0)[pad:-pad, pad:-pad]
    return np.clip(bg, 0.0, None).astype(np.float32, copy=False)


def default_background_scale(shape: tuple[int, ...]) -> float:
    """Default closing diameter for an image of this shape: 1/16 of the short side, at least 31 px."""
    return float(max(31, min(shape[0], shape[1]) // 16))


def flat_field(
    image: np.ndarray, *, background_scale_px: float | None = None, polarity: Polarity = "dark"
) -> np.ndarray:
    """Flat-field ratio image: about 1.0 on hair-free skin, below 1 on hair.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB or (H, W) ndarray
        uint8, uint16 or float in [0, 1]. Never mutated.
    background_scale_px : float, optional
        Diameter of the closing (see :func:`background`); must exceed the widest hair. Default:
        :func:`default_background_scale` (1/16 of the short side, at least 31 px), which suits a
        1280x1024 trichoscopy field (hairs up to about 30 px wide).
    polarity : {"dark", "light"}
        ``"dark"`` for dark hair on lighter skin; ``"light"`` for white/grey hair on darker skin (the
        ratio is then ``background / image`` so hair is still below 1).

    Returns
    -------
    (H, W) float32 ndarray
        Geometric mean over channels of the per-channel ratio, clipped to [0.01, 4]. Invariant to a
        gain per channel (exposure, white balance); a gamma change scales its logarithm.

    Raises
    ------
    ValueError
        Bad shape or dtype, non-positive scale, unknown polarity.
    """
    img = as_float_image(image)
    scale = default_background_scale(img.shape) if background_scale_px is None else _check_scale(
        background_scale_px, "background_scale_px"
    )
    if polarity not in ("dark", "light"):
        raise ValueError(f"polarity must be 'dark' or 'light', got {polarity!r}")
    h, w = img.shape[:2]
    channels = [img] if img.ndim == 2 else cv2.split(img)
    product = None
    for ch in channels:
        bg = low_res_background(ch, scale_px=scale, polarity=polarity)
        if bg.shape != (h, w):
            bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        num, den = (ch, bg) if polarity == "dark" else (bg, ch)
        ratio = cv2.divide(num + _EPS, den + _EPS)
        np.clip(ratio, 0.01, 4.0, out=ratio)
        product = ratio if product is None else cv2.multiply(product, ratio, dst=product)
    # Geometric mean over channels (the ratios are positive: clipped to [0.01, 4] above).
    if len(channels) == 1:
        return product
    return np.cbrt(product) if len(channels) == 3 else np.sqrt(product)
