"""Final polish of a homography on smooth images: Gauss-Newton in float64, in normalised coordinates.

``cv2.findTransformECC`` (:mod:`tracker.imaging.refine`) solves its homography steps in float32 with pixel
coordinates: the perspective parameters multiply ``x * x`` (about 1e6 at 1000 px) while the translation
multiplies 1, so its normal equations are ill-conditioned (about 1e12) and, where the image content constrains
the perspective weakly (a lesion on smooth skin, enlarged 7.5x), its steps stall where they start. Measured on
known warps of enlarged dermoscopy: ECC from the feature answer stopped 1.7-2.9 px off at the corners, ECC from
the TRUE warp stopped 0.5-0.7 px off, at the same correlation to 1e-5 (the objective is flat there, so comparing
correlations cannot tell the two apart). :func:`polish_homography` minimises the same kind of objective (sum of
squared differences with a gain and offset, grey levels already tone-matched) with the parameters normalised to
the image half-size and the normal equations solved in float64; it reached the same answer from the feature
answer and from the truth (0.65-0.8 px on those cases).

Matrices map pixel ``(x, y, 1)`` of MOVING to pixels of REFERENCE (the frames given; pixel centres at integer
coordinates, OpenCV convention).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from tracker.imaging.geometry import as_homography, image_corners, rescale_homography, transform_points
from tracker.imaging.refine import matched_intensities

__all__ = [
    "POLISH_ITERATIONS",
    "POLISH_SAMPLES",
    "POLISH_TOLERANCE_PX",
    "polish_at_level",
    "polish_homography",
    "polished",
]

#: Most Gauss-Newton steps (each costs one resampling of the sampled pixels).
POLISH_ITERATIONS = 20
#: At most about this many REFERENCE pixels (a regular grid over the mask) enter the normal equations.
POLISH_SAMPLES = 60_000
#: Converged when no corner of MOVING moved by more than this in the last step (px).
POLISH_TOLERANCE_PX = 0.01
#: Gaussian pre-smoothing of both images (px), as ECC's ``gaussFiltSize``: a wider basin, less noise.
_SIGMA = 1.0


def _normaliser(shape: tuple[int, ...]) -> np.ndarray:
    """Pixel -> coordinates centred on the image, in units of half its long side."""
    h, w = shape[:2]
    s = max(h, w) / 2.0
    return np.array([[1 / s, 0, -(w - 1) / (2 * s)], [0, 1 / s, -(h - 1) / (2 * s)], [0, 0, 1.0]])


def _sample(img: np.ndarray, x: np.ndarray, y: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """``img`` at float positions (NaN outside for float images); cv2.remap in rows of 1024 (its size limit)."""
    n = len(x)
    pad = (-n) % 1024
    mx = np.pad(x, (0, pad)).astype(np.float32).reshape(-1, 1024)
    my = np.pad(y, (0, pad)).astype(np.float32).reshape(-1, 1024)
    flag = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    border = 0 if nearest else np.nan
    return cv2.remap(img, mx, my, flag, borderMode=cv2.BORDER_CONSTANT, borderValue=border).ravel()[:n]


def polish_homography(
    reference: np.ndarray,
    reference_mask: np.ndarray,
    moving: np.ndarray,
    moving_mask: np.ndarray,
    matrix: np.ndarray,
    *,
    iterations: int = POLISH_ITERATIONS,
) -> dict[str, Any]:
    """Gauss-Newton refinement of a homography (8 parameters plus gain and offset), float64, normalised.

    Parameters
    ----------
    reference, moving : ndarray, shape (H, W), uint8
        Grey images (MOVING's grey levels already matched to REFERENCE's, e.g. with
        :func:`tracker.imaging.refine.matched_intensities`); sizes may differ.
    reference_mask, moving_mask : ndarray, shape (H, W), uint8
        0/255 masks of the pixels to use (255 = used).
    matrix : array_like, shape (3, 3)
        Starting homography from MOVING pixels to REFERENCE pixels (within a few px of the answer).
    iterations : int, default ``POLISH_ITERATIONS``
        Most Gauss-Newton steps, >= 1.

    Returns
    -------
    result : dict
        ``matrix`` (ndarray (3, 3) float64, MOVING -> REFERENCE, or None when fewer than 1000 pixels
        overlap or the normal equations are singular), ``converged`` (bool: the last step moved no corner of
        MOVING by more than ``POLISH_TOLERANCE_PX``), ``iterations`` (int), ``corner_shift`` (largest move
        of a MOVING corner from ``matrix`` given, px; NaN without an answer).

    Raises
    ------
    ValueError
        Images not (H, W) uint8, masks not uint8 of their image's shape, a bad matrix or ``iterations`` < 1.
    """
    for name, grey, mask in (("reference", reference, reference_mask), ("moving", moving, moving_mask)):
        if not isinstance(grey, np.ndarray) or grey.dtype != np.uint8 or grey.ndim != 2 or min(grey.shape) < 2:
            raise ValueError(f"{name} must be a (H, W) uint8 grey image, at least 2x2")
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.shape != grey.shape:
            raise ValueError(f"{name}_mask must be a uint8 0/255 array of shape {grey.shape}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    H0 = as_homography(matrix)
    n_r, n_m = _normaliser(reference.shape), _normaliser(moving.shape)
    # P maps normalised REFERENCE coordinates to normalised MOVING coordinates (the direction resampled).
    P = n_m @ np.linalg.inv(H0) @ np.linalg.inv(n_r)
    P /= P[2, 2]
    ref_f = cv2.GaussianBlur(reference.astype(np.float64), (0, 0), _SIGMA)
    mov_f = cv2.GaussianBlur(moving.astype(np.float64), (0, 0), _SIGMA)
    grad_x = cv2.Sobel(mov_f, cv2.CV_64F, 1, 0, ksize=3) / 8.0
    grad_y = cv2.Sobel(mov_f, cv2.CV_64F, 0, 1, ksize=3) / 8.0
    ys, xs = np.nonzero(cv2.erode(reference_mask, np.ones((5, 5), np.uint8)))
    step = max(1, int(np.sqrt(len(xs) / POLISH_SAMPLES)))
    keep = (xs % step == 0) & (ys % step == 0)
    xs, ys = xs[keep], ys[keep]
    template = ref_f[ys, xs]
    u = xs * n_r[0, 0] + n_r[0, 2]
    v = ys * n_r[1, 1] + n_r[1, 2]
    to_px = np.linalg.inv(n_m)
    corners = image_corners(moving.shape)
    corners_n = transform_points(corners, n_m)
    out: dict[str, Any] = {"matrix": None, "converged": False, "iterations": 0, "corner_shift": float("nan")}
    gain, offset = 1.0, 0.0
    for it in range(1, iterations + 1):
        den = P[2, 0] * u + P[2, 1] * v + P[2, 2]
        xn = (P[0, 0] * u + P[0, 1] * v + P[0, 2]) / den
        yn = (P[1, 0] * u + P[1, 1] * v + P[1, 2]) / den
        xm, ym = xn * to_px[0, 0] + to_px[0, 2], yn * to_px[1, 1] + to_px[1, 2]
        img = _sample(mov_f, xm, ym)
        ix = _sample(grad_x, xm, ym) * to_px[0, 0]
        iy = _sample(grad_y, xm, ym) * to_px[1, 1]
        ok = (_sample(moving_mask, xm, ym, nearest=True) > 0) & np.isfinite(img) & np.isfinite(ix) & np.isfinite(iy)
        if np.count_nonzero(ok) < 1000:
            return out
        uu, vv, d, xo, yo = u[ok], v[ok], den[ok], xn[ok], yn[ok]
        gx, gy = ix[ok] / d, iy[ok] / d
        jac = np.column_stack([
            uu * gx, vv * gx, gx, uu * gy, vv * gy, gy,
            -(xo * gx + yo * gy) * uu, -(xo * gx + yo * gy) * vv,
            img[ok], np.ones(len(uu)),
        ])
        # gain * I(W(p + dp)) + offset ~ T, linearised at the current gain/offset; solved in float64.
        residual = template[ok] - (gain * img[ok] + offset)
        jac[:, :8] *= gain
        normal = jac.T @ jac
        try:
            delta = np.linalg.solve(normal, jac.T @ residual)
        except np.linalg.LinAlgError:
            return out
        if not np.all(np.isfinite(delta)):
            return out
        before = transform_points(corners_n, np.linalg.inv(P))
        P = P + np.array([[delta[0], delta[1], delta[2]], [delta[3], delta[4], delta[5]], [delta[6], delta[7], 0.0]])
        gain, offset = gain + delta[8], offset + delta[9]
        after = transform_points(corners_n, np.linalg.inv(P))
        moved = float(np.abs(after - before).max()) / n_r[0, 0]  # normalised REFERENCE units -> px
        out["iterations"] = it
        if moved <= POLISH_TOLERANCE_PX:
            out["converged"] = True
            break
    H = np.linalg.inv(np.linalg.inv(n_m) @ P @ n_r)
    H /= H[2, 2]
    out["matrix"] = H
    out["corner_shift"] = float(np.abs(transform_points(corners, H) - transform_points(corners, H0)).max())
    return out


def polish_at_level(
    reference: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    moving: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    matrix: np.ndarray,
) -> dict[str, Any]:
    """:func:`polish_homography` on ``(grey, mask, full_shape)`` copies at the ECC level (as
    :func:`tracker.imaging.refine.ecc_at_level`), MOVING tone-matched to REFERENCE first.

    ``matrix`` and the returned ``matrix`` are between full-resolution pixels; ``corner_shift`` is in px of
    MOVING at the ECC level and ``long_side`` (px) is that level's long side.
    """
    ref_e, ref_em, ref_shape = reference
    mov_e, mov_em, mov_shape = moving
    H_e = rescale_homography(as_homography(matrix), reference=(ref_shape, ref_e.shape),
                             moving=(mov_shape, mov_e.shape))
    mov_t = matched_intensities(ref_e, ref_em, mov_e, mov_em, H_e)
    out = polish_homography(ref_e, ref_em, mov_t, mov_em, H_e)
    out["long_side"] = max(mov_e.shape)
    if out["matrix"] is not None:
        out["matrix"] = rescale_homography(out["matrix"], reference=(ref_e.shape, ref_shape),
                                           moving=(mov_e.shape, mov_shape))
    return out


def polished(
    matrix: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    moving: tuple[np.ndarray, np.ndarray, tuple[int, ...]],
    *,
    judge: Callable[[np.ndarray], tuple[dict[str, float], str | None]],
    max_shift: float,
    quality: dict[str, Any],
) -> np.ndarray:
    """``matrix`` polished by :func:`polish_at_level` when the polish moves no corner of MOVING by more than
    ``max_shift`` times the ECC level's long side and ``judge`` (the preset's plausibility gate, ``matrix ->
    (figures, reason)``) passes it; else ``matrix`` itself. Records ``quality["polished"]`` (bool) and, when
    polished, the judge's figures in ``quality`` (updated in place)."""
    pol = polish_at_level(reference, moving, matrix)
    fig, why = judge(pol["matrix"]) if pol["matrix"] is not None else ({}, "no answer")
    quality["polished"] = bool(why is None and pol["corner_shift"] <= max_shift * pol["long_side"])
    if not quality["polished"]:
        return matrix
    quality.update(fig)
    return pol["matrix"]
