"""Difference heat map between two visits: where hair increased (blue) or decreased (red), with a legend.

Display path only: in luminance mode the follow-up is colour-matched to the baseline with
:func:`tracker.imaging.display.match_display` before lightness is compared; in mask mode the change is
that of the measurement path's hair masks, smoothed into local coverage. The map is for people to look
at; the charted numbers come from the measurements.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from tracker.imaging.display import channel_max, checked_rgb, match_display
from tracker.reports.labels import LESS_HAIR_RGB, MORE_HAIR_RGB, legend_bar

__all__ = ["difference_map"]


def _smooth(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian mean of VALUES over VALID pixels only (normalised convolution)."""
    w = cv2.GaussianBlur(valid.astype(np.float32), (0, 0), sigma)
    v = cv2.GaussianBlur(np.where(valid, values, 0).astype(np.float32), (0, 0), sigma)
    return np.where(w > 1e-3, v / np.maximum(w, 1e-3), 0.0)


def _bool_mask(mask: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != shape:
        got = getattr(mask, "shape", mask)
        raise ValueError(f"{name} must be a bool array of shape {shape}, got {got!r}")
    return mask


def difference_map(
    before: np.ndarray,
    after: np.ndarray,
    *,
    mode: Literal["luminance", "mask"] = "luminance",
    before_mask: np.ndarray | None = None,
    after_mask: np.ndarray | None = None,
    region: np.ndarray | None = None,
    sigma_px: float | None = None,
    limit: float | None = None,
    normalise: Literal["gain", "reinhard"] | None = "gain",
    caption: str | None = None,
    legend: bool = True,
) -> np.ndarray:
    """Heat map of the signed change from BEFORE to AFTER over a pale grey copy of BEFORE, with a legend.

    Blue (:data:`MORE_HAIR_RGB`) marks more hair now, red (:data:`LESS_HAIR_RGB`) less hair.

    Parameters
    ----------
    before, after : (H, W, 3) uint8 ndarray
        Photos in one frame (AFTER warped to BEFORE; its black border is left uncoloured). Not modified.
    mode : {"luminance", "mask"}
        ``"luminance"``: change of CIELAB lightness L* after display normalisation of AFTER to BEFORE;
        darker now reads as more hair (dark hair on lighter skin). ``"mask"``: change of local hair
        coverage between the two hair masks (the measurement path's masks, in the same frame); prefer
        it when the masks exist, since it does not depend on light at all.
    before_mask, after_mask : (H, W) bool ndarray
        Hair masks, required for ``mode="mask"``.
    region : (H, W) bool ndarray, optional
        Where to colour the change (the ROI, or the scalp): outside it a backdrop that changed colour
        would otherwise show as a change. Default: everywhere both photos have content.
    sigma_px : float, optional
        Gaussian smoothing of the change (within the region), so that single hairs that moved do not
        show; default ``long side / 80``.
    limit : float, optional
        Change shown at full colour: default 12 L* units, or 0.3 of coverage. Changes under 15 % of it
        stay uncoloured.
    normalise : {"gain", "reinhard"} or None
        Display normalisation used in luminance mode (:func:`tracker.imaging.display.match_display`).
    caption : str, optional
        First legend line, e.g. ``"12 Jan 2026 → 01 Jun 2026"``.
    legend : bool
        Add the colour bar with its meaning and scale under the map.

    Returns
    -------
    (H + legend height, W, 3) uint8 ndarray

    Raises
    ------
    ValueError
        Bad images or masks, unknown mode or normalisation, non-positive sigma or limit.
    """
    b, a = checked_rgb(before, name="before"), checked_rgb(after, name="after")
    if b.shape != a.shape:
        raise ValueError(f"before and after must be in one frame (same shape): {b.shape} vs {a.shape}")
    shape = b.shape[:2]
    valid = (channel_max(b) > 0) & (channel_max(a) > 0)
    if region is not None:
        valid &= _bool_mask(region, shape, "region")
    sigma = max(shape) / 80.0 if sigma_px is None else sigma_px
    if not isinstance(sigma, int | float) or not sigma > 0:
        raise ValueError(f"sigma_px must be a positive number, got {sigma_px!r}")
    if mode == "luminance":
        shown = a if normalise is None else match_display(a, b, method=normalise)
        lab = [cv2.cvtColor(x.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[:, :, 0] for x in (b, shown)]
        change = _smooth(lab[0] - lab[1], valid, float(sigma))
        limit = 12.0 if limit is None else limit
        scale = f"Full colour at ±{limit:g} L* (brightness after colour matching; darker now = more hair)"
    elif mode == "mask":
        m0 = _bool_mask(before_mask, shape, "before_mask (needed for mode='mask')")
        m1 = _bool_mask(after_mask, shape, "after_mask (needed for mode='mask')")
        change = _smooth(m1.astype(np.float32) - m0.astype(np.float32), valid, float(sigma))
        limit = 0.3 if limit is None else limit
        scale = f"Full colour at ±{limit * 100:g} % of local hair coverage (from the hair masks)"
    else:
        raise ValueError(f"mode must be 'luminance' or 'mask', got {mode!r}")
    if not isinstance(limit, int | float) or not limit > 0:
        raise ValueError(f"limit must be a positive number, got {limit!r}")
    strength = np.clip((np.abs(change) / limit - 0.15) / 0.85, 0.0, 1.0) * valid
    grey = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    base = np.repeat((grey * 0.55 + 105.0)[:, :, None], 3, axis=2)
    colour = np.where((change > 0)[:, :, None], np.float32(MORE_HAIR_RGB), np.float32(LESS_HAIR_RGB))
    alpha = (0.85 * strength)[:, :, None]
    out = np.clip(np.rint(base * (1 - alpha) + colour * alpha), 0, 255).astype(np.uint8)
    return np.vstack([out, legend_bar(out.shape[1], scale, caption)]) if legend else out
