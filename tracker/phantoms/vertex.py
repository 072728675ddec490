"""Synthetic global vertex photos (top of the head, phone camera) with an exact hair mask.

The scene (head, ears, cape) is rendered in a *canonical* frame (the baseline camera) on a canvas larger
than the photo and warped by ``pose`` (a homography canonical -> this image); the hair strands are drawn
through the pose straight into this image's pixels (supersampled, then area-reduced: one integration, as
a sensor makes), so thin strands are not resampled twice. The truth mask and ROI are exact in this
image's frame and ``transform_to_canonical = inv(pose)``.

``seed`` fixes the patient and the room (head shape, ears, scalp marks, cape folds, snaps, seams: the
non-hair landmarks that registration should use); ``hair_seed`` fixes the strand layout, which moves
between visits like real hair; ``thinning`` opens the crown around the whorl.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracker.phantoms import skin as sk

#: Default supersampling of the strand layer. OpenCV draws thick lines only in odd widths of (supersampled)
#: pixels, so at 2 x the strands come out up to 1.2 px wider than ``widths`` and the truth mask a further
#: 0.3 px wider (measured on straight strands of 1.1, 1.7 and 2.3 px at 0-90 deg: 1.3-1.5, 2.4-2.5 and
#: 3.4-3.5 px drawn; 1.8, 2.8, 3.8 px in the mask at 0 deg); at 8 x they are drawn within 0.3 px (1.35-1.38,
#: 1.86-1.92, 2.37-2.39 px). 2 stays the default, so the sample series and the tests render as before; the
#: benchmarks measure both.
DEFAULT_SUPERSAMPLING = 2
#: Supersampling that draws strands at their nominal width (within 0.3 px); the benchmarks' "fine strands".
FINE_SUPERSAMPLING = 8
#: Supersampling factors that :func:`render_vertex` accepts (memory grows with the square: 8 x holds about
#: 500 MB of strand layers for a 1200 x 1600 render).
SUPERSAMPLING_RANGE = (1, 8)
_SHIFT = 3
_MARGIN = 0.3  # canvas margin, fraction of max(H, W), so posed views never show an empty border


@dataclass(frozen=True)
class VertexTruth:
    """Exact ground truth of one rendered vertex photo, in THIS image's pixel frame."""

    hair_coverage_roi: float
    roi_polygon: tuple[tuple[float, float], ...]
    transform_to_canonical: np.ndarray

    def as_dict(self) -> dict:
        """Plain JSON-ready dict (the polygon as a list of [x, y], the matrix as nested lists)."""
        return {
            "hair_coverage_roi": float(self.hair_coverage_roi),
            "roi_polygon": [[float(x), float(y)] for x, y in self.roi_polygon],
            "transform_to_canonical": np.asarray(self.transform_to_canonical, float).tolist(),
        }


def _geometry(shape: tuple[int, int]) -> dict:
    """Head, whorl and hairline placement in the canonical frame (scaled with the image)."""
    h, w = shape
    s = min(h / 1200.0, w / 1600.0)
    cx, cy = 0.5 * w, 0.53 * h
    return {
        "s": s,
        "centre": (cx, cy),
        "axes": (430.0 * s, 520.0 * s),  # head seen from above: narrower than long
        "whorl": (cx + 18.0 * s, cy - 150.0 * s),
        "hairline_y": cy + 390.0 * s,  # forehead below this (the face is bowed away)
    }


def default_vertex_roi(shape: tuple[int, int]) -> np.ndarray:
    """Crown region of interest in the canonical frame of a vertex photo of ``shape`` = (H, W).

    Returns
    -------
    (32, 2) float64
        Polygon vertices (x, y) in pixels: an ellipse around the crown whorl.
    """
    h, w = sk.check_shape(shape)
    g = _geometry((h, w))
    t = np.linspace(0.0, 2 * np.pi, 32, endpoint=False)
    wx, wy = g["whorl"]
    return np.stack([wx + 250.0 * g["s"] * np.cos(t), wy + 40.0 * g["s"] + 270.0 * g["s"] * np.sin(t)], 1)


def _flow(g: dict, x: np.ndarray, y: np.ndarray, twist: float) -> np.ndarray:
    """Strand direction: a spiral out of the whorl that turns forward (+y) over the front of the head."""
    wx, wy = g["whorl"]
    radial = np.arctan2(y - wy, x - wx) + twist
    forward = np.full_like(radial, np.pi / 2)
    blend = np.clip((y - wy) / (g["axes"][1] * 0.9), 0.0, 1.0) ** 1.5
    vx = (1 - blend) * np.cos(radial) + blend * np.cos(forward)
    vy = (1 - blend) * np.sin(radial) + blend * np.sin(forward)
    return np.arctan2(vy, vx)


def _scene(rng: np.random.Generator, g: dict, canvas: tuple[int, int], off: float, skin_tone: int) -> dict:
    """Background cape, head, ears and scalp marks on the canvas (1x), plus the hair-region mask."""
    ch, cw = canvas
    s = g["s"]
    cape_rgb = np.array(rng.choice([[46, 70, 84], [58, 58, 66], [36, 52, 78], [70, 84, 78]]), np.float32)
    folds = sk.smooth_noise(rng, (ch, cw), 140 * s)
    weave = sk.smooth_noise(rng, (ch, cw), 2.0)
    img = np.empty((ch, cw, 3), np.float32)
    img[:] = cape_rgb
    img *= (1.0 + 0.12 * folds + 0.05 * weave)[..., None]
    cx, cy = g["centre"][0] + off, g["centre"][1] + off
    ax, ay = g["axes"]
    # Cape seams, a collar edge and snap buttons: fixed non-hair landmarks around the head.
    for k in range(3):
        a0 = rng.uniform(0, 2 * np.pi)
        r = rng.uniform(1.25, 1.6)
        pts = np.array(
            [[cx + r * ax * np.cos(a0 + t), cy + r * ay * np.sin(a0 + t)] for t in np.linspace(0, 1.1, 24)]
        )
        cv2.polylines(
            img,
            [np.rint(pts * 8).astype(np.int32)],
            False,
            (cape_rgb * (1.6 if k else 0.55)).tolist(),
            max(1, int(3 * s)),
            cv2.LINE_AA,
            _SHIFT,
        )
    for _ in range(5):
        a = rng.uniform(0, 2 * np.pi)
        r = rng.uniform(1.3, 1.9)
        p = (cx + r * ax * np.cos(a), cy + r * ay * np.sin(a))
        cv2.circle(
            img, (int(p[0] * 8), int(p[1] * 8)), int(14 * s * 8), (205, 205, 200), -1, cv2.LINE_AA, _SHIFT
        )
        cv2.circle(
            img, (int(p[0] * 8), int(p[1] * 8)), int(6 * s * 8), (120, 120, 118), -1, cv2.LINE_AA, _SHIFT
        )
    # Neck/shoulder shadow ring around the head.
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    rho = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    img *= (1.0 - 0.45 * np.exp(-((((rho - 1.0) / 0.1).clip(0)) ** 2)))[..., None]
    # Ears: skin-coloured lobes at the sides, a little forward of the middle.
    base = sk.skin_rgb(skin_tone)
    ear_mask = np.zeros((ch, cw), np.float32)
    for sign in (-1, 1):
        ex, ey = cx + sign * (ax * 0.98), cy + ay * 0.18 + rng.normal(0, 6 * s)
        cv2.ellipse(
            ear_mask,
            (int(ex * 8), int(ey * 8)),
            (int(55 * s * 8), int(120 * s * 8)),
            sign * rng.uniform(5, 15),
            0,
            360,
            1.0,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
    ear_shade = cv2.GaussianBlur(ear_mask, (0, 0), 14 * s)
    ear_rgb = base * (0.75 + 0.25 * ear_shade)[..., None] * np.array([1.02, 0.95, 0.95], np.float32)
    img = img * (1 - ear_mask[..., None]) + ear_rgb * ear_mask[..., None]
    # Head: an ellipsoid lit from the camera flash.
    head = np.zeros((ch, cw), np.float32)
    cv2.ellipse(
        head, (int(cx * 8), int(cy * 8)), (int(ax * 8), int(ay * 8)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT
    )
    shade = np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
    scalp = np.empty((ch, cw, 3), np.float32)
    tex = sk.fractal_noise(rng, (ch, cw), (60 * s, 12 * s, 2.5 * s))
    pink = sk.smooth_noise(rng, (ch, cw), 90 * s)
    scalp[:] = base * np.array([1.03, 0.97, 0.96], np.float32)
    scalp *= (0.55 + 0.45 * shade)[..., None] * (1.0 + 0.035 * tex)[..., None]
    scalp += (np.array([1.0, -0.5, -0.4], np.float32) * 6.0) * pink[..., None]
    shine = np.exp(-(((xx - cx + 0.15 * ax) / (0.25 * ax)) ** 2 + ((yy - cy + 0.2 * ay) / (0.3 * ay)) ** 2))
    scalp += (32.0 * shine)[..., None]
    for _ in range(int(rng.integers(4, 9))):  # moles and freckles on the scalp
        r = np.sqrt(rng.uniform(0, 0.8))
        a = rng.uniform(0, 2 * np.pi)
        p = (cx + r * ax * np.cos(a), cy + r * ay * np.sin(a))
        rad = rng.uniform(2.5, 6.0) * s
        cv2.circle(
            scalp,
            (int(p[0] * 8), int(p[1] * 8)),
            int(rad * 8),
            (base * 0.55).tolist(),
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
    img = img * (1 - head[..., None]) + scalp * head[..., None]
    # Hair-bearing region: the head minus the forehead below a curved hairline.
    hairline = g["hairline_y"] + off - 0.25 * ay * ((xx - cx) / ax) ** 2
    region = (head > 0.5) & (yy < hairline) & (rho < 0.985)
    return {"image": img, "region": region, "rho": rho}


def _draw_strands(
    paths: np.ndarray,
    widths: np.ndarray,
    colours: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, int],
    supersampling: int = DEFAULT_SUPERSAMPLING,
) -> tuple[np.ndarray, np.ndarray]:
    """Strand polylines drawn through ``matrix`` (canvas -> image) at ``supersampling`` x, area-reduced.

    ``paths`` (N, K, 2) canvas points, ``widths`` (N,) canvas pixels, ``colours`` (N, 3) RGB. Each strand's
    width follows the local scale of the homography at its root. Returns the hair coverage (H, W) float32
    in 0..1 and the strands' colour layer (H, W, 3) float32 (premultiplied by coverage).
    """
    h, w = shape
    n, k = paths.shape[:2]
    flat = np.concatenate([paths.reshape(-1, 2), np.ones((n * k, 1))], axis=1) @ matrix.T
    pts = (flat[:, :2] / flat[:, 2:3]).reshape(n, k, 2)
    roots = paths[:, 0, :]
    probe = np.stack([roots, roots + [1.0, 0.0], roots + [0.0, 1.0]], axis=1).reshape(-1, 2)
    mapped = np.concatenate([probe, np.ones((len(probe), 1))], axis=1) @ matrix.T
    mapped = (mapped[:, :2] / mapped[:, 2:3]).reshape(n, 3, 2)
    ex, ey = mapped[:, 1] - mapped[:, 0], mapped[:, 2] - mapped[:, 0]
    local = np.sqrt(np.abs(ex[:, 0] * ey[:, 1] - ex[:, 1] * ey[:, 0]))
    ss = supersampling
    colour = np.zeros((h * ss, w * ss, 3), np.uint8)
    alpha = np.zeros((h * ss, w * ss), np.uint8)
    seen = (pts.max(axis=1) >= -50).all(axis=1) & (pts[:, :, 0].min(axis=1) < w + 50) & (
        pts[:, :, 1].min(axis=1) < h + 50
    )
    for i in np.nonzero(seen)[0]:
        ssp = np.rint(((pts[i] + 0.5) * ss - 0.5) * (1 << _SHIFT)).astype(np.int32)
        thick = max(1, int(round(widths[i] * local[i] * ss)))
        cv2.polylines(colour, [ssp], False, tuple(float(v) for v in colours[i]), thick, cv2.LINE_8, _SHIFT)
        cv2.polylines(alpha, [ssp], False, 255, thick, cv2.LINE_8, _SHIFT)
    cov = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    col = cv2.resize(colour, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    return cov, col


def render_vertex(
    *,
    seed: int,
    thinning: float = 0.5,
    shape: tuple[int, int] = (1200, 1600),
    pose: np.ndarray | None = None,
    brightness: float = 1.0,
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0),
    blur_sigma_px: float = 0.0,
    noise_sigma: float = 2.0,
    jpeg_quality: int | None = None,
    hair_seed: int | None = None,
    skin_tone: int = 1,
    hair_colour: str = "brown",
    supersampling: int = DEFAULT_SUPERSAMPLING,
) -> tuple[np.ndarray, np.ndarray, VertexTruth]:
    """Render a phone photo of the top of a head with a thinning crown, with an exact hair mask.

    Parameters
    ----------
    seed : int
        Patient and room: head shape, ears, scalp marks, cape, snaps and seams (registration landmarks).
    thinning : float
        0 = full crown, 1 = very thin: scalp visibility around the whorl.
    shape : (int, int)
        Output (height, width).
    pose : (3, 3) array, optional
        Homography mapping canonical (baseline) pixels to this image; None = identity.
    brightness : float
        Exposure gain (0.3..3). white_balance : per-channel RGB gains (each 0.5..2).
    blur_sigma_px, noise_sigma : float
        Optical blur (pixels) and sensor noise (grey levels). jpeg_quality : JPEG round trip or None.
    hair_seed : int, optional
        Strand layout and camera noise of this visit (default: ``seed``); hair moves between visits.
    skin_tone : int
        0..5, light to dark. hair_colour : "black", "brown", "blond", "grey" or "white".
    supersampling : int
        Supersampling of the strand layer (1..8). The default 2 draws strands up to 1.2 px wider than
        their nominal widths; 8 draws them within 0.3 px (see :data:`DEFAULT_SUPERSAMPLING`). The same
        ``seed`` and ``hair_seed`` give the same strands (positions, paths, colours) at any value.

    Returns
    -------
    image : (H, W, 3) uint8 RGB
    mask : (H, W) bool
        Pixels at least half covered by hair strands.
    truth : VertexTruth
    """
    h, w = sk.check_shape(shape, minimum=128)
    if not 0.0 <= thinning <= 1.0:
        raise ValueError(f"thinning must be 0..1, got {thinning!r}")
    if not 0.3 <= brightness <= 3.0:
        raise ValueError(f"brightness must be 0.3..3, got {brightness!r}")
    wb = np.asarray(white_balance, dtype=np.float32)
    if wb.shape != (3,) or np.any(~np.isfinite(wb)) or np.any(wb < 0.5) or np.any(wb > 2.0):
        raise ValueError(f"white_balance must be 3 gains in 0.5..2, got {white_balance!r}")
    sk.skin_rgb(skin_tone)
    sk.check_choice("hair_colour", hair_colour, sk.HAIR_COLOURS)
    pose_m = sk.check_homography(pose)
    lo, hi = SUPERSAMPLING_RANGE
    integer = isinstance(supersampling, (int, np.integer)) and not isinstance(supersampling, bool)
    if not integer or not lo <= supersampling <= hi:
        raise ValueError(f"supersampling must be an integer {lo}..{hi}, got {supersampling!r}")
    hseed = int(seed) if hair_seed is None else int(hair_seed)

    g = _geometry((h, w))
    s = g["s"]
    off = float(int(_MARGIN * max(h, w)))
    ch, cw = h + 2 * int(off), w + 2 * int(off)
    scene = _scene(np.random.default_rng(np.random.SeedSequence([int(seed), 1])), g, (ch, cw), off, skin_tone)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2, hseed]))

    # ---- strands --------------------------------------------------------------------------------------
    region = scene["region"]
    ys, xs = np.nonzero(region)
    y0, y1 = int(ys.min()) - int(120 * s), int(ys.max()) + int(120 * s)
    x0, x1 = int(xs.min()) - int(120 * s), int(xs.max()) + int(120 * s)
    wx, wy = g["whorl"][0] + off, g["whorl"][1] + off
    s_w = max(s, 0.75)  # strands stay at least ~1 px wide in small renders
    n_try = int(26000 * s / s_w)  # coverage independent of the image size
    px = rng.uniform(x0, x1, n_try)
    py = rng.uniform(y0, y1, n_try)
    keep_u = rng.random(n_try)
    inside = region[np.clip(py.astype(int), 0, ch - 1), np.clip(px.astype(int), 0, cw - 1)]
    r_wh = np.hypot((px - wx) / (1.0 * s), (py - wy) / (1.1 * s))
    dens = 1.0 - (0.15 * thinning) - (0.9 * thinning) * np.exp(-((r_wh / (150.0 + 130.0 * thinning)) ** 2))
    dens *= 1.0 - 0.6 * np.exp(-((r_wh / 18.0) ** 2))  # the whorl centre itself always parts
    sel = np.nonzero(inside & (keep_u < dens))[0]
    px, py = px[sel], py[sel]
    n = len(px)
    twist = rng.uniform(0.35, 0.6)
    lengths = rng.uniform(35, 95, n) * s
    widths = rng.uniform(1.1, 2.3, n) * s_w * (1.0 - 0.35 * thinning * np.exp(-((r_wh[sel] / 200.0) ** 2)))
    bend = rng.normal(0, 0.004, n) / s
    tone = rng.uniform(0.55, 1.35, n)
    cols = sk.hair_rgb(hair_colour, rng.random(n), rng.random(n))
    head_rho = scene["rho"][py.astype(int), px.astype(int)]
    sheen = 0.65 * np.exp(-(((head_rho - 0.55) / 0.14) ** 2))
    lengths *= 1.0 - 0.6 * np.clip((head_rho - 0.8) / 0.2, 0.0, 1.0)

    n_steps = 6
    path = np.empty((n, n_steps + 1, 2))
    path[:, 0, 0], path[:, 0, 1] = px, py
    step = lengths / n_steps
    a_prev = None
    for k in range(n_steps):  # integrate all strands along the flow field at once
        a = _flow(g, path[:, k, 0] - off, path[:, k, 1] - off, twist) + bend * k * step
        if a_prev is not None:  # strands do not kink
            a = a_prev + np.clip(np.angle(np.exp(1j * (a - a_prev))), -0.25, 0.25)
        path[:, k + 1, 0] = path[:, k, 0] + step * np.cos(a)
        path[:, k + 1, 1] = path[:, k, 1] + step * np.sin(a)
        a_prev = a
    colours = np.clip(cols * tone[:, None] * (1.0 + 0.9 * sheen[:, None]) + 20.0 * sheen[:, None], 0, 255)

    # ---- camera: the strands drawn through the pose, the scene warped ---------------------------------------
    # The strands are integrated once over this image's pixels, as a sensor does; warping a rendered canvas
    # would resample them a second time (a sub-pixel blur of the thin strands that no camera adds).
    shift_m = np.array([[1.0, 0.0, -off], [0.0, 1.0, -off], [0.0, 0.0, 1.0]])
    m = pose_m @ shift_m  # canvas -> this image
    zoom = float(np.sqrt(abs(np.linalg.det(pose_m[:2, :2]))))
    pad = int(np.ceil(4 * 5.0 * s * zoom)) + 2  # the shadow's blur reaches this far into the frame
    padded = np.array([[1.0, 0.0, pad], [0.0, 1.0, pad], [0.0, 0.0, 1.0]]) @ m
    cov_p, col_p = _draw_strands(path, widths, colours, padded, (h + 2 * pad, w + 2 * pad), int(supersampling))
    # Deeper hair layers shade the scalp between visible strands.
    shadow = cv2.GaussianBlur(cov_p, (0, 0), 5.0 * s * zoom)[pad : pad + h, pad : pad + w]
    cov_img, col_img = cov_p[pad : pad + h, pad : pad + w], col_p[pad : pad + h, pad : pad + w]
    del cov_p, col_p
    under = cv2.warpPerspective(scene["image"], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    img = under * ((1.0 - 0.55 * shadow) * (1.0 - cov_img))[..., None] + col_img
    mask = cov_img >= 0.5
    light = sk.light_field(
        (h, w), falloff=0.22, centre=(0.5 + rng.normal(0, 0.05), 0.45 + rng.normal(0, 0.05))
    )
    img = img * (light * float(brightness))[..., None] * wb
    image = sk.finish(
        img, rng=rng, blur_sigma_px=blur_sigma_px, noise_sigma=noise_sigma, jpeg_quality=jpeg_quality
    )

    # ---- truth --------------------------------------------------------------------------------------------
    roi = default_vertex_roi((h, w))
    roi_h = np.hstack([roi, np.ones((len(roi), 1))]) @ pose_m.T
    roi_img = roi_h[:, :2] / roi_h[:, 2:3]
    roi_mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(roi_mask, [np.rint(roi_img * (1 << _SHIFT)).astype(np.int32)], 1, cv2.LINE_8, _SHIFT)
    sel_roi = roi_mask.astype(bool)
    coverage = float(mask[sel_roi].mean()) if sel_roi.any() else float("nan")
    inv = np.linalg.inv(pose_m)
    truth = VertexTruth(
        hair_coverage_roi=coverage,
        roi_polygon=tuple((float(x), float(y)) for x, y in roi_img),
        transform_to_canonical=inv / inv[2, 2],
    )
    return image, mask, truth
