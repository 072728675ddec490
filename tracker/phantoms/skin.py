"""Shared building blocks of the phantom renderer: smooth noise, skin and hair palettes, light, camera.

Everything here is deterministic for a given :class:`numpy.random.Generator` state and works on float32
RGB images in the 0-255 range (``(H, W, 3)``), so the close-up and vertex renderers can share one
look. These helpers are internal to :mod:`tracker.phantoms`; the public entry points are
:func:`tracker.phantoms.render_closeup` and :func:`tracker.phantoms.render_vertex`.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Base skin colours (RGB, as a lit camera sees them), Fitzpatrick-like from light (0) to dark (5).
SKIN_TONES: tuple[tuple[float, float, float], ...] = (
    (232.0, 216.0, 204.0),
    (222.0, 200.0, 181.0),
    (206.0, 181.0, 157.0),
    (178.0, 146.0, 117.0),
    (140.0, 107.0, 82.0),
    (92.0, 68.0, 53.0),
)

#: Base shaft colours (RGB). "grey" is salt-and-pepper: a mix of pigmented and white shafts.
HAIR_COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (26.0, 22.0, 21.0),
    "brown": (66.0, 44.0, 30.0),
    "blond": (158.0, 124.0, 82.0),
    "grey": (60.0, 52.0, 48.0),
    "white": (214.0, 210.0, 202.0),
}


def check_choice(name: str, value: object, allowed: dict[str, object]) -> None:
    """Raise ``ValueError`` naming the option when ``value`` is not a key of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)!r}, got {value!r}")


def skin_rgb(tone: int) -> np.ndarray:
    """Base skin colour of a Fitzpatrick-like ``tone`` in 0..5, as a float32 array of shape (3,)."""
    if not isinstance(tone, int | np.integer) or not 0 <= int(tone) < len(SKIN_TONES):
        raise ValueError(f"skin_tone must be an integer 0..{len(SKIN_TONES) - 1}, got {tone!r}")
    return np.asarray(SKIN_TONES[int(tone)], dtype=np.float32)


def hair_rgb(colour: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-hair shaft colours for uniform draws ``u`` (tone) and ``v`` (grey mix), shape (n, 3) float32."""
    check_choice("hair_colour", colour, HAIR_COLOURS)
    base = np.asarray(HAIR_COLOURS[colour], dtype=np.float32)
    u = np.asarray(u, dtype=np.float32)
    scale = 0.75 + 0.5 * u  # per-hair tone spread
    rgb = base[None, :] * scale[:, None]
    if colour == "grey":
        white = np.asarray(HAIR_COLOURS["white"], dtype=np.float32) * (0.9 + 0.1 * u[:, None])
        rgb = np.where((np.asarray(v) < 0.55)[:, None], white, rgb)
    return np.clip(rgb, 0.0, 255.0).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Smooth random field of unit standard deviation and zero mean, float32 of ``shape``.

    Gaussian noise on a coarse grid (one node every ``scale_px`` pixels) is upsampled with bicubic
    interpolation, which is fast and has no tile seams. The coarse grid size depends only on ``shape``
    and ``scale_px``, so the number of draws from ``rng`` is fixed for given arguments.
    """
    h, w = int(shape[0]), int(shape[1])
    step = max(float(scale_px), 1.0)
    gh, gw = int(np.ceil(h / step)) + 3, int(np.ceil(w / step)) + 3
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(coarse, (int(round(gw * step)), int(round(gh * step))), interpolation=cv2.INTER_CUBIC)
    off = int(round(step))
    field = big[off : off + h, off : off + w]
    if field.shape != (h, w):  # tiny shapes with a huge scale: pad by edge replication
        field = cv2.copyMakeBorder(field, 0, h - field.shape[0], 0, w - field.shape[1], cv2.BORDER_REPLICATE)
    field = field - field.mean()
    sd = float(field.std())
    return (field / sd if sd > 0 else field).astype(np.float32)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], scales: tuple[float, ...]) -> np.ndarray:
    """Sum of :func:`smooth_noise` fields at ``scales`` with weights falling as 1/sqrt(octave), unit std."""
    total = np.zeros(shape, np.float32)
    for i, s in enumerate(scales):
        total += smooth_noise(rng, shape, s) / np.sqrt(i + 1.0)
    sd = float(total.std())
    return total / sd if sd > 0 else total


def light_field(
    shape: tuple[int, int], *, falloff: float, centre: tuple[float, float] = (0.5, 0.5), tilt: float = 0.0
) -> np.ndarray:
    """Multiplicative illumination map, float32 (H, W), 1 at ``centre`` (fractions of width, height).

    ``falloff`` is the relative loss at the corners farthest from the centre (a dermoscope or flash
    vignette, cos^4-like), ``tilt`` an extra left-right gradient (uneven light).
    """
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = centre[0] * (w - 1), centre[1] * (h - 1)
    rmax = np.hypot(max(cx, w - 1 - cx), max(cy, h - 1 - cy))
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / max(rmax, 1.0) ** 2
    light = 1.0 - float(falloff) * r2**1.3
    light *= 1.0 + float(tilt) * (x / max(w - 1, 1) - 0.5)
    return np.clip(light, 0.05, 2.0).astype(np.float32)


def finish(
    image: np.ndarray,
    *,
    rng: np.random.Generator,
    blur_sigma_px: float,
    noise_sigma: float,
    jpeg_quality: int | None,
) -> np.ndarray:
    """Camera stage: optical blur, sensor noise, 8-bit quantisation and an optional JPEG round trip.

    Parameters
    ----------
    image : (H, W, 3) float32
        Linear-ish RGB in 0..255. Not modified.
    rng : numpy.random.Generator
        Source of the noise.
    blur_sigma_px, noise_sigma : float
        Gaussian blur sigma (pixels, 0 = none) and additive noise sigma (grey levels, 0 = none).
    jpeg_quality : int or None
        1..100 to encode and decode as JPEG (chroma subsampled, like a phone), None to skip.

    Returns
    -------
    (H, W, 3) uint8 RGB
    """
    if blur_sigma_px < 0 or noise_sigma < 0:
        raise ValueError("blur_sigma_px and noise_sigma must be >= 0")
    out = image.astype(np.float32, copy=True)
    if blur_sigma_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), float(blur_sigma_px))
    # Draw the noise even when it is switched off so later draws do not depend on noise_sigma.
    noise = rng.standard_normal(out.shape, dtype=np.float32)
    if noise_sigma > 0:
        # Shot-noise-like: brighter pixels a little noisier.
        out += noise * float(noise_sigma) * (0.6 + 0.4 * out / 255.0)
    out8 = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        out8 = jpeg_roundtrip(out8, int(jpeg_quality))
    return out8


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``rgb`` (H, W, 3) uint8 as JPEG at ``quality`` (1..100) and decode it again."""
    return cv2.cvtColor(cv2.imdecode(encode_jpeg(rgb, quality), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG bytes (a 1-D uint8 array) of an RGB uint8 image, deterministic for one OpenCV build."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpeg_quality must be 1..100, got {quality!r}")
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input, checked above
        raise ValueError("JPEG encoding failed")
    return buf.reshape(-1)


def check_shape(shape: tuple[int, int], *, minimum: int = 64) -> tuple[int, int]:
    """Validate an image ``(height, width)`` and return it as a tuple of ints."""
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"shape must be (height, width), got {shape!r}") from exc
    if h < minimum or w < minimum or h > 8192 or w > 8192:
        raise ValueError(f"shape must be between {minimum} and 8192 pixels per side, got {shape!r}")
    return h, w


def check_homography(matrix: np.ndarray | None, name: str = "pose") -> np.ndarray:
    """Return ``matrix`` as a normalised float64 3x3 homography (identity for None); reject bad ones."""
    if matrix is None:
        return np.eye(3)
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)) or abs(m[2, 2]) < 1e-12:
        raise ValueError(f"{name} must be a finite 3x3 homography with a non-zero [2, 2] entry")
    m = m / m[2, 2]
    if np.linalg.det(m[:2, :2]) <= 0 or abs(np.linalg.det(m)) < 1e-9:
        raise ValueError(f"{name} must preserve orientation (positive determinant)")
    return m


def dermoscope_skin(
    rng: np.random.Generator, shape: tuple[int, int], base: np.ndarray, px_per_mm: float
) -> np.ndarray:
    """Scalp skin under a dermoscope: colour mottling, redness, texture, whitish scale, fine furrows.

    Returns
    -------
    (H, W, 3) float32 RGB in 0..255 of ``shape`` (features sized in mm through ``px_per_mm``).
    """
    ch, cw = shape
    ppm = float(px_per_mm)
    low = smooth_noise(rng, (ch, cw), 1.8 * ppm)
    red = smooth_noise(rng, (ch, cw), 1.2 * ppm)
    mid = fractal_noise(rng, (ch, cw), (0.08 * ppm, 0.03 * ppm))
    fine = smooth_noise(rng, (ch, cw), 1.6)
    scales = fractal_noise(rng, (ch, cw), (0.3 * ppm, 0.1 * ppm, 0.03 * ppm))
    canvas = np.empty((ch, cw, 3), np.float32)
    canvas[:] = base
    canvas *= (1.0 + 0.05 * low + 0.025 * mid + 0.015 * fine)[..., None]
    canvas += (np.array([1.0, -0.25, -0.3], np.float32) * 4.0) * red[..., None]
    flake = np.clip((scales - 1.4) * 0.5, 0.0, 0.35)[..., None]  # whitish scale / gel patches
    canvas = canvas * (1 - flake) + np.array([246.0, 244.0, 238.0], np.float32) * flake
    furrow = np.zeros((ch, cw), np.float32)
    for _ in range(int(rng.integers(6, 12))):
        p0 = rng.uniform([0, 0], [cw, ch])
        a = rng.uniform(0, np.pi)
        pts = [p0]
        for _k in range(8):
            a += rng.normal(0, 0.25)
            pts.append(pts[-1] + 0.25 * ppm * np.array([np.cos(a), np.sin(a)]))
        poly = [np.rint(np.array(pts) * 16).astype(np.int32)]
        cv2.polylines(
            furrow, poly, False, float(rng.uniform(0.4, 1)), max(1, int(0.01 * ppm)), cv2.LINE_AA, 4
        )
    furrow = cv2.GaussianBlur(furrow, (0, 0), max(0.8, 0.006 * ppm))
    return canvas * (1.0 - 0.07 * furrow)[..., None]


def follicle_marks(
    skin: np.ndarray,
    base: np.ndarray,
    *,
    openings: np.ndarray,
    opening_radius: np.ndarray,
    opening_strength: np.ndarray,
    exits: np.ndarray,
    angles: np.ndarray,
    streak_length: np.ndarray,
    streak_width: np.ndarray,
    streak_strength: np.ndarray,
    blur_px: float,
) -> np.ndarray:
    """Darken follicular openings and add the blue-grey hair seen through the skin behind each exit.

    Parameters
    ----------
    skin : (H, W, 3) float32
        Skin image (not modified). base : (3,) base skin colour.
    openings : (n, 2) float
        Opening centres (x, y) in pixels, with ``opening_radius`` and ``opening_strength`` (n,).
    exits, angles : (m, 2), (m,)
        Hair exits and shaft directions (radians); the streak runs the other way, fading out over
        ``streak_length`` pixels, ``streak_width`` (shaft width) and ``streak_strength`` (0..1) per hair.
    blur_px : float
        Softening scale (about a shaft width).

    Returns
    -------
    (H, W, 3) float32
    """
    h, w = skin.shape[:2]
    pit = np.zeros((h, w), np.float32)
    sub = np.zeros((h, w), np.float32)
    for c, r, v in zip(openings, opening_radius, opening_strength, strict=True):
        cv2.circle(pit, tuple(int(q) for q in np.rint(c * 16)), int(r * 16), float(v), -1, cv2.LINE_AA, 4)
    for p, a, ls, sw, st in zip(exits, angles, streak_length, streak_width, streak_strength, strict=True):
        d = np.array([np.cos(a), np.sin(a)])
        q0 = tuple(np.rint(p * 16).astype(int))
        for k in range(6, 0, -1):  # far (faint) to near (strong)
            q1 = tuple(np.rint((p - d * ls * k / 6.0) * 16).astype(int))
            thick = max(1, int(round(1.3 * sw)))
            cv2.line(sub, q0, q1, float(st * (1.0 - (k - 1) / 6.0)), thick, cv2.LINE_AA, 4)
    pit = cv2.GaussianBlur(pit, (0, 0), max(1.0, 0.35 * blur_px))
    sub = cv2.GaussianBlur(sub, (0, 0), max(1.0, 0.45 * blur_px))
    pit_rgb = base * np.array([0.62, 0.55, 0.52], np.float32)
    sub_rgb = np.array([88.0, 98.0, 116.0], np.float32) * (0.6 + 0.4 * float(base.mean()) / 200.0)
    out = skin * (1 - 0.35 * pit[..., None]) + pit_rgb * (0.35 * pit[..., None])
    sub_a = np.clip(0.75 * sub, 0, 0.85)[..., None]
    return out * (1 - sub_a) + sub_rgb * sub_a


def similarity_pose(
    pose: np.ndarray | None, shape: tuple[int, int], *, margin: float
) -> tuple[np.ndarray, float, float]:
    """Validate a re-shot pose: a similarity that keeps the field within ``margin`` px of the canonical one.

    Returns
    -------
    pose : (3, 3) float64, normalised; scale : float; rotation : float (radians)
    """
    m = check_homography(pose)
    a = m[:2, :2]
    if np.abs(m[2, :2]).max() > 1e-9 or abs(a[0, 0] - a[1, 1]) > 1e-6 or abs(a[0, 1] + a[1, 0]) > 1e-6:
        raise ValueError("closeup pose must be a similarity (rotation, uniform scale, shift)")
    scale = float(np.hypot(a[0, 0], a[1, 0]))
    if not 0.5 <= scale <= 2.0:
        raise ValueError(f"closeup pose scale must be within 0.5..2, got {scale:.3f}")
    h, w = shape
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]])
    back = corners @ np.linalg.inv(m).T
    lo, hi = back[:, :2].min(0), back[:, :2].max(0)
    if lo.min() < -margin or hi[0] > w + margin or hi[1] > h + margin:
        raise ValueError(f"closeup pose moves the field more than {margin:.0f} px beyond the rendered patch")
    return m, scale, float(np.arctan2(a[1, 0], a[0, 0]))
