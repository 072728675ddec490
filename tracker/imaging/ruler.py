"""Device calibration from a photo of a millimetre ruler: px/mm from the periodic tick marks.

A dermoscope (with a given clip-on lens and zoom) has a fixed scale. Photographing a ruler once under
it gives that scale for the device profile. :func:`measure_ruler` finds it in four steps:

1. **Direction**: the ticks form a periodic pattern whose 2-D power spectrum has its peaks along the
   ruler's axis (Hann window, interpolated peak).
2. **Profile**: the image is turned so the ticks stand upright; the rows that carry the periodic pattern
   (the tick band) are averaged into one profile across the ticks.
3. **Period**: the autocorrelation of the profile gives the tick period (the smallest multiple of the
   spectral peak's period that correlates strongly, so a strong harmonic is not taken for it).
4. **Fit**: every tick is located to a fraction of a pixel (peak of the smoothed profile), the slant of
   the ticks corrects the direction, and a robust straight-line fit of tick position against tick number
   gives the period in pixels. ``px_per_mm = period / tick_spacing_mm``.

It refuses (``found=False`` with a reason) when fewer than ``min_ticks`` ticks line up, when the ticks
do not fit a regular spacing, or when the periodic pattern is weak. Check the result against the
ruler's numerals: a ruler with half-millimetre ticks needs ``tick_spacing_mm=0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_WORK_MAX_SIDE = 1024  # the spectrum is taken on a copy at most this large


@dataclass(frozen=True)
class RulerResult:
    """Outcome of :func:`measure_ruler` (``px_per_mm`` is None when ``found`` is False)."""

    found: bool
    reason: str | None = None
    px_per_mm: float | None = None
    direction_deg: float | None = None  # axis across the ticks, image x towards image y, in [0, 180)
    period_px: float | None = None
    n_ticks: int = 0
    residual_px: float | None = None  # RMS distance of the ticks from the fitted regular spacing
    confidence: float = 0.0

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _grey(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]).astype(np.float32), cv2.COLOR_RGB2GRAY)
    if arr.ndim != 2 or arr.shape[0] < 32 or arr.shape[1] < 32:
        raise ValueError(f"image must be (H, W) or (H, W, 3|4) with sides >= 32, got shape {arr.shape}")
    if not (arr.dtype == np.uint8 or arr.dtype == np.uint16 or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"image dtype must be uint8, uint16 or float, got {arr.dtype}")
    out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError("image contains NaN or infinite values")
    return out


def _spectral_peak(grey: np.ndarray, min_cycles: float) -> tuple[float, float] | None:
    """Strongest periodic component: (frequency in cycles/px of ``grey``, direction in radians)."""
    h, w = grey.shape
    # thin-line response: a step edge (the ruler's side) survives both opening and closing, a tick
    # narrower than the kernel does not survive one of them, so edges vanish and ticks remain
    k = max(5, int(round(max(h, w) / 40)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    hp = grey - 0.5 * (
        cv2.morphologyEx(grey, cv2.MORPH_OPEN, kernel) + cv2.morphologyEx(grey, cv2.MORPH_CLOSE, kernel)
    )
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    n = int(cv2.getOptimalDFTSize(2 * max(h, w)))
    pad = np.zeros((n, n), np.float32)
    pad[:h, :w] = (hp - hp.mean()) * win
    power = np.abs(np.fft.rfft2(pad)) ** 2
    power = np.fft.fftshift(power, axes=0)
    power = cv2.GaussianBlur(power.astype(np.float32), (0, 0), 1.0)
    fy = (np.arange(n) - n // 2)[:, None] / n
    fx = np.arange(power.shape[1])[None, :] / n
    r = np.hypot(fx, fy)
    # whiten by f^2: what is left of edges and skin texture falls off with frequency, a tick train does not
    power = power * (r**2).astype(np.float32)
    valid = (r >= min_cycles / max(h, w)) & (r <= 0.3)
    if not valid.any():
        return None
    idx = np.unravel_index(np.argmax(np.where(valid, power, -1.0)), power.shape)
    # interpolated centroid of the peak (3x3 power-weighted)
    y0, x0 = idx
    ys, xs = slice(max(y0 - 1, 0), y0 + 2), slice(max(x0 - 1, 0), x0 + 2)
    wgt = power[ys, xs]
    fyc = float((fy[ys, 0][:, None] * wgt).sum() / wgt.sum())
    fxc = float((fx[0, xs][None, :] * wgt).sum() / wgt.sum())
    return float(np.hypot(fxc, fyc)), float(np.arctan2(fyc, fxc))


def _turn(grey: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the image so the direction ``theta`` becomes the +u axis: (turned image, valid mask)."""
    h, w = grey.shape
    c, s = np.cos(theta), np.sin(theta)
    out_w = int(np.ceil(abs(w * c) + abs(h * s)))
    out_h = int(np.ceil(abs(w * s) + abs(h * c)))
    # output (u, v) -> image: x = cx + c (u - ou) - s (v - ov), y = cy + s (u - ou) + c (v - ov)
    cx, cy, ou, ov = (w - 1) / 2, (h - 1) / 2, (out_w - 1) / 2, (out_h - 1) / 2
    m = np.array([[c, -s, cx - c * ou + s * ov], [s, c, cy - s * ou - c * ov]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    turned = cv2.warpAffine(grey, m, (out_w, out_h), flags=flags, borderValue=0.0)
    valid = cv2.warpAffine(np.ones_like(grey), m, (out_w, out_h), flags=flags, borderValue=0.0) > 0.999
    return turned, valid


def _row_strength(turned: np.ndarray, valid: np.ndarray, freq: float) -> np.ndarray:
    """Periodicity of each row at ``freq`` (cycles/px): |sum (row - mean) e^{-2 pi i f u}| / n."""
    carrier = np.exp(-2j * np.pi * freq * np.arange(turned.shape[1]))
    counts = valid.sum(1)
    ok = counts > max(8, 3 / freq)
    means = np.where(ok, (turned * valid).sum(1) / np.maximum(counts, 1), 0)
    centred = (turned - means[:, None]) * valid
    strength = np.where(ok, np.abs(centred @ carrier) / np.maximum(counts, 1), 0.0)
    return cv2.GaussianBlur(strength.reshape(-1, 1).astype(np.float32), (1, 0), 2.0).ravel()


def _band_profile(grey: np.ndarray, theta: float, freq: float):
    """Profile across the ticks: the mean of the rows of the turned image that carry the pattern.

    Returns (profile, valid columns, band rows, direction correction in radians) or None. The
    correction is the tilt of the tick band between the left and right halves of the turned image.
    """
    turned, valid = _turn(grey, theta)
    strength = _row_strength(turned, valid, freq)
    if strength.max() <= 0:
        return None
    rows = np.nonzero(strength >= 0.5 * strength.max())[0]
    cols_valid = valid[rows].mean(0) > 0.999
    cols = np.nonzero(cols_valid)[0]
    if cols.size < 3 / freq:
        return None
    profile = (turned[rows] * valid[rows]).sum(0) / np.maximum(valid[rows].sum(0), 1)
    # band position (strength-weighted centroid of rows) in the left and right halves
    mid = (cols[0] + cols[-1]) // 2
    lo, hi = max(0, rows[0] - rows.size), min(turned.shape[0], rows[-1] + rows.size + 1)
    centres = []
    for a, b in ((cols[0], mid), (mid, cols[-1] + 1)):
        st = _row_strength(turned[lo:hi, a:b], valid[lo:hi, a:b], freq)
        st = np.clip(st - 0.5 * st.max(), 0, None)
        centres.append(float((st * np.arange(lo, hi)).sum() / st.sum()) if st.sum() > 0 else np.nan)
    du = (cols[-1] + 1 - mid + mid - cols[0]) / 2.0
    tilt = float(np.arctan2(centres[1] - centres[0], du)) if np.all(np.isfinite(centres)) else 0.0
    return profile.astype(np.float64), cols_valid, rows, tilt


def _tick_positions(profile: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel tick positions along ``profile`` (ticks as peaks) and their prominence."""
    sig = max(0.6, period / 25.0)
    sm = cv2.GaussianBlur(profile.reshape(1, -1).astype(np.float32), (0, 0), sig).ravel().astype(np.float64)
    n = sm.size
    half = max(1, int(period * 0.35))
    pos, prom = [], []
    for i in range(1, n - 1):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        if sm[i] < sm[lo:hi].max() or lo == 0 or hi == n:
            continue
        a, b, cc = sm[i - 1], sm[i], sm[i + 1]
        den = a - 2 * b + cc
        off = 0.5 * (a - cc) / den if den < 0 else 0.0
        base = np.median(sm[max(0, i - int(period / 2)) : min(n, i + int(period / 2) + 1)])
        pos.append(i + float(np.clip(off, -0.5, 0.5)))
        prom.append(b - base)
    return np.asarray(pos), np.asarray(prom)


def _acf(x: np.ndarray, lag: float) -> float:
    """Normalised autocorrelation of ``x`` at a (fractional) lag."""
    lo, f = int(np.floor(lag)), lag - np.floor(lag)
    vals = []
    for lg in (lo, lo + 1):
        if lg <= 0 or lg >= x.size - 2:
            return 0.0
        a, b = x[:-lg], x[lg:]
        vals.append(
            float(
                np.dot(a - a.mean(), b - b.mean())
                / (np.linalg.norm(a - a.mean()) * np.linalg.norm(b - b.mean()) + 1e-12)
            )
        )
    return (1 - f) * vals[0] + f * vals[1]


def measure_ruler(
    image: np.ndarray,
    *,
    tick_spacing_mm: float = 1.0,
    min_ticks: int = 5,
    min_period_px: float = 4.0,
    min_confidence: float = 0.5,
) -> RulerResult:
    """Measure the scale (px/mm) of a photo of a ruler from its periodic tick marks.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) ndarray
        RGB(A) or grey photo (uint8, uint16 or float). Not modified.
    tick_spacing_mm : float
        Spacing of the finest ticks on the ruler (1.0 for a millimetre ruler).
    min_ticks : int
        Refuse unless at least this many ticks line up (>= 3).
    min_period_px : float
        Smallest tick period accepted, in pixels (finer ticks cannot be resolved reliably).
    min_confidence : float
        Refuse below this confidence (0..1).

    Returns
    -------
    RulerResult
        With ``found`` True: ``px_per_mm``, ``direction_deg``, ``period_px``, ``n_ticks``, ``residual_px``
        and ``confidence``. With ``found`` False, ``reason`` is ``"no_periodic_pattern"``,
        ``"too_few_ticks"``, ``"irregular_ticks"`` or ``"low_confidence"``.
    """
    if not (np.isfinite(tick_spacing_mm) and tick_spacing_mm > 0):
        raise ValueError(f"tick_spacing_mm must be positive, got {tick_spacing_mm!r}")
    if int(min_ticks) < 3:
        raise ValueError(f"min_ticks must be >= 3, got {min_ticks!r}")
    if min_period_px < 2:
        raise ValueError(f"min_period_px must be >= 2, got {min_period_px!r}")
    grey = _grey(image)
    h, w = grey.shape
    scale = min(1.0, _WORK_MAX_SIDE / max(h, w))
    work = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    peak = _spectral_peak(work, min_cycles=min_ticks - 1.5)
    if peak is None:
        return RulerResult(found=False, reason="no_periodic_pattern")
    freq, theta = peak[0] * scale, peak[1]
    refusal = RulerResult(found=False, reason="no_periodic_pattern")
    for _ in range(4):  # later passes: direction corrected by the tilt of the tick band
        got = _band_profile(grey, theta, freq)
        if got is None:
            return refusal
        profile, cols_valid, rows, tilt = got
        cols = np.nonzero(cols_valid)[0]
        prof = profile[cols[0] : cols[-1] + 1]
        prof = prof - cv2.GaussianBlur(prof.reshape(1, -1).astype(np.float32), (0, 0), 2.0 / freq).ravel()
        # period: smallest multiple of the spectral peak's period that correlates strongly
        cands = [k / freq for k in range(1, 41) if k / freq < prof.size / 3]
        if not cands:
            return RulerResult(found=False, reason="too_few_ticks")
        acfs = [max(_acf(prof, lag + d) for d in np.linspace(-0.1 * lag, 0.1 * lag, 9)) for lag in cands]
        best = max(acfs)
        if best <= 0.1:
            return RulerResult(found=False, reason="no_periodic_pattern")
        k = next(i for i, a in enumerate(acfs) if a >= 0.6 * best)
        period0, acf0 = cands[k], acfs[k]
        if period0 < min_period_px:
            return RulerResult(found=False, reason="no_periodic_pattern")
        # ticks are the narrow extrema: dark ticks on light plastic are minima (negative skew)
        skew = float(np.mean(prof**3)) / (float(np.std(prof)) ** 3 + 1e-12)
        sign = -1.0 if skew < 0 else 1.0
        fit = _fit_ticks(sign * prof, period0)
        if fit is None:
            return RulerResult(found=False, reason="too_few_ticks")
        period, n_ticks, rms, expected, x_ticks = fit
        if n_ticks < min_ticks:
            return RulerResult(found=False, reason="too_few_ticks", n_ticks=n_ticks)
        if rms > 0.1 * period:
            return RulerResult(found=False, reason="irregular_ticks", n_ticks=n_ticks, residual_px=rms)
        freq = 1.0 / period
        if abs(tilt) < 2e-3:  # the band runs along the rows: the direction is right
            break
        theta += tilt
    confidence = float(
        np.clip(acf0, 0, 1) * min(1.0, n_ticks / expected) * max(0.0, 1 - rms / (0.1 * period))
    )
    result = RulerResult(
        found=confidence >= min_confidence,
        reason=None if confidence >= min_confidence else "low_confidence",
        px_per_mm=float(period / tick_spacing_mm) if confidence >= min_confidence else None,
        direction_deg=float(np.degrees(theta) % 180.0),
        period_px=float(period),
        n_ticks=n_ticks,
        residual_px=float(rms),
        confidence=confidence,
    )
    return result


def _fit_ticks(sig: np.ndarray, period0: float) -> tuple[float, int, float, float, np.ndarray] | None:
    """Robust line fit of tick positions against tick number: (period, n, rms, expected n, positions)."""
    pos, prom = _tick_positions(sig, period0)
    if pos.size < 3:
        return None
    strong = prom >= 0.35 * np.median(prom[prom >= np.percentile(prom, 50)])
    pos = pos[strong]
    if pos.size < 3:
        return None
    period = period0
    keep = np.ones(pos.size, bool)
    for _ in range(4):
        ref = pos[keep][np.argmin(np.abs(pos[keep] - np.median(pos[keep])))]
        idx = np.rint((pos - ref) / period)
        # one tick per index: drop duplicates far from the current line
        resid_all = pos - ref - idx * period
        keep = np.abs(resid_all) < 0.2 * period
        if keep.sum() < 3:
            return None
        a = np.vstack([idx[keep], np.ones(keep.sum())]).T
        sol, *_ = np.linalg.lstsq(a, pos[keep], rcond=None)
        period = float(sol[0])
    _, counts = np.unique(idx[keep], return_counts=True)
    if np.any(counts > 1):
        return None
    resid = pos[keep] - (sol[0] * idx[keep] + sol[1])
    expected = (sig.size - 1) / period
    return period, int(keep.sum()), float(np.sqrt(np.mean(resid**2))), float(expected), pos[keep]
