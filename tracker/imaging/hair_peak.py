"""Per-ridge peak contrast of a hair contrast image (the "half maximum" reference of each shaft).

The mask of :mod:`tracker.imaging.hair` keeps a pixel when its contrast is at least half of the peak
contrast of the shaft it belongs to (the mask edge then sits where the pixel is half covered by the shaft,
whatever the shaft's contrast). Taking that peak as the maximum over a fixed window (a grey dilation)
borrows it from the darkest shaft nearby: a pale vellus hair of a follicular unit lying beside a dark
terminal hair then falls under half of the *dark* hair's peak and vanishes from the mask.

:func:`ridge_peak` gives each pixel the peak of its own ridge instead: every pixel climbs the contrast
by steepest ascent (each step to the largest value of its 3 x 3 neighbourhood) until it reaches a local
maximum, and takes that maximum's value. Pixels on the flank of a pale hair climb to the pale hair's
ridge, pixels of the dark hair to the dark one; a valley between them keeps them apart. The climb is
done for all pixels at once by pointer doubling (``ptr = ptr[ptr]``), so it costs a few array gathers.

Noise makes small local maxima on the low flanks of a shaft, where a climb can stop early; the peak is
therefore the largest ridge value met within ``spread_px`` of the pixel (a small grey dilation of the
ridge values).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ridge_peak"]


_OFFSETS = tuple((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0))


def _ascent_peaks(c: np.ndarray, where: np.ndarray, steps: int) -> np.ndarray:
    """Value of the local maximum reached from each pixel of ``where`` by steepest 3 x 3 ascent.

    Only pixels of ``where`` are climbed, and the climb stays in it (a step leaving it stops there):
    ``where`` is a set of pixels above a threshold, which every uphill step from inside it stays above.
    A pixel steps to the first of its neighbours (in ``_OFFSETS`` order) holding the largest value of its
    3 x 3 neighbourhood, unless that value is its own. Returns the peaks of the pixels
    ``np.flatnonzero(where)``, in that order.
    """
    h, w = c.shape
    wp = w + 2
    pad = np.full((h + 2, w + 2), -np.inf, np.float32)
    own = pad[1:-1, 1:-1]
    np.copyto(own, c, where=where)
    # Uphill step of every pixel from whole-image OpenCV passes (no gathers): the neighbourhood maximum,
    # then for each neighbour whether it holds it; ``code`` = 8 - (index of the first that does), 0 = none.
    best = cv2.dilate(pad, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)[1:-1, 1:-1]
    code = np.zeros((h, w), np.uint8)
    for k, (a, b) in enumerate(_OFFSETS):
        holds = cv2.compare(pad[1 + a : 1 + a + h, 1 + b : 1 + b + w], best, cv2.CMP_EQ)
        cv2.max(code, cv2.bitwise_and(holds, len(_OFFSETS) - k), dst=code)
    cv2.bitwise_and(code, cv2.compare(best, own, cv2.CMP_GT), dst=code)  # a local maximum stays put
    shift = np.array([0] + [a * wp + b for a, b in reversed(_OFFSETS)], np.int32)
    idx = np.flatnonzero(np.pad(where, 1, mode="constant", constant_values=False)).astype(np.int32)
    flat = pad.ravel()
    target = idx + shift[code[where]]
    local = np.full(flat.size, -1, np.int32)
    local[idx] = np.arange(idx.size, dtype=np.int32)
    ptr = local[target]
    for _ in range(steps):
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            break
        ptr = nxt
    return flat[idx[ptr]]


def ridge_peak(
    contrast: np.ndarray, *, window_px: int, spread_px: float = 1.5, where: np.ndarray | None = None
) -> np.ndarray:
    """Peak contrast of the ridge each pixel belongs to (steepest-ascent local maximum).

    Parameters
    ----------
    contrast : (H, W) float ndarray
        Hair contrast (larger on hair), finite; never mutated.
    window_px : int
        Widest shaft (px): sets how many pointer-doubling steps the climb takes (a path of up to
        ``4 * window_px`` pixels is followed to its end; a longer one stops on the way up).
    spread_px : float
        Radius (px) over which ridge values are shared between neighbours (climbs stopped by noise).
    where : (H, W) bool ndarray, optional
        Pixels to climb from (default: all). Pass a super-level set (``contrast > t``): the climb is
        kept inside it. Elsewhere the result is the pixel's own contrast.

    Returns
    -------
    (H, W) float32 ndarray
        Per-pixel peak, ``peak >= contrast``.

    Raises
    ------
    ValueError
        ``contrast`` not 2-D or not finite, ``where`` of another shape, or ``window_px < 1``.
    """
    c = np.asarray(contrast, dtype=np.float32)
    if c.ndim != 2:
        raise ValueError(f"contrast must be 2-D, got shape {c.shape}")
    if not cv2.checkRange(c)[0]:  # a NaN compares false both ways: the climb and the maxima would be undefined
        raise ValueError("contrast must be finite (no NaN or inf)")
    if int(window_px) < 1:
        raise ValueError(f"window_px must be >= 1, got {window_px!r}")
    sel = np.ones(c.shape, bool) if where is None else np.asarray(where, dtype=bool)
    if sel.shape != c.shape:
        raise ValueError(f"where shape {sel.shape} does not match contrast {c.shape}")
    k = int(window_px) | 1
    peak = c.copy()
    if sel.any():
        steps = int(np.ceil(np.log2(max(2.0, 4.0 * k))))
        peak[sel] = _ascent_peaks(c, sel, steps)
    r = int(round(spread_px))
    if r > 0:
        peak = cv2.dilate(peak, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    out = cv2.max(peak, c)
    if where is not None:
        np.copyto(out, c, where=~sel)
    return out
