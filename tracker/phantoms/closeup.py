"""Synthetic trichoscopy fields (20-70x dermoscope views of clipped hair) with exact ground truth.

The hair layout is drawn from a fixed *pool* of follicular units that depends only on ``seed``,
``shape``, ``px_per_mm`` and ``units``; ``density_per_cm2`` switches units of the pool on in a fixed
order, ``mean_width_um`` and ``vellus_fraction`` move fixed per-hair draws. So re-rendering the same
seed with a higher density adds hairs at new openings (and a lower vellus fraction thickens some hairs)
while every other hair stays where it was: a follow-up visit of the same scalp patch. ``pose`` re-shoots
the patch with a small camera move; ``shot_seed`` changes light and noise only. Coordinates are OpenCV
pixel coordinates (pixel centres at integers, the image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``); a
hair counts when its exit lies in that rectangle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from tracker.phantoms import skin as sk

#: Largest density the unit pool supports (hairs per cm2).
MAX_DENSITY_PER_CM2 = 600.0
VELLUS_UM, TERMINAL_UM = 30.0, 60.0  # width thresholds of the truth fractions
_SS = 3  # supersampling factor of the hair layer
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_POSE_MARGIN = 0.25  # fraction of max(H, W) the camera may move the field (pool and skin extend that far)
_HAIR_MARGIN_MM = 2.5


@dataclass(frozen=True)
class CloseupTruth:
    """Exact ground truth of one rendered trichoscopy field (all in THIS image's pixel frame)."""

    px_per_mm: float
    hair_count: int
    density_per_cm2: float
    mean_shaft_width_um: float
    vellus_fraction: float
    terminal_fraction: float
    hair_coverage: float
    hairs: tuple[dict, ...]
    transform_to_canonical: np.ndarray = field(default_factory=lambda: np.eye(3))

    def as_dict(self) -> dict:
        """Plain JSON-ready dict (the matrix as nested lists, the hairs as a list of dicts)."""
        d = asdict(self)
        for key, value in d.items():  # an empty field has no mean width: null, not NaN, in JSON
            if isinstance(value, float) and not np.isfinite(value):
                d[key] = None
        d["hairs"] = [dict(h) for h in self.hairs]
        d["transform_to_canonical"] = np.asarray(self.transform_to_canonical, float).tolist()
        return d


def _unit_weights(units: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(units, dtype=float)
    if w.shape != (4,) or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"units must be 4 non-negative weights for units of 1-4 hairs, got {units!r}")
    return w / w.sum()


def _lengths_mm(hair_length_mm: float | tuple[float, float], u: np.ndarray) -> np.ndarray:
    if isinstance(hair_length_mm, tuple | list):
        lo, hi = (float(v) for v in hair_length_mm)
    else:
        lo, hi = 0.7 * float(hair_length_mm), 1.3 * float(hair_length_mm)
    if not (0 < lo <= hi <= 50):
        raise ValueError(f"hair_length_mm must be positive (mm, at most 50), got {hair_length_mm!r}")
    return lo + (hi - lo) * u


def _pool(rng: np.random.Generator, shape: tuple[int, int], ppm: float, weights: np.ndarray) -> dict:
    """All random draws of the hair layout, sized by the pool only (never by density or widths)."""
    h, w = shape
    m = _POSE_MARGIN * max(h, w) + _HAIR_MARGIN_MM * ppm
    x0, y0, x1, y1 = -m, -m, w + m, h + m
    area_cm2 = (x1 - x0) * (y1 - y0) / ppm**2 / 100.0
    mean_n = float(np.dot(weights, [1, 2, 3, 4]))
    n = int(round(MAX_DENSITY_PER_CM2 / mean_n * area_cm2))
    p: dict = {"n": n}
    # Smooth hair-stream direction field: a base direction plus two slow waves (period ~3-8 mm).
    p["flow"] = (
        rng.uniform(-np.pi, np.pi),
        rng.uniform(0.15, 0.45, 2),
        rng.uniform(2 * np.pi / (8 * ppm), 2 * np.pi / (3 * ppm), 2),
        rng.uniform(-np.pi, np.pi, 2),
        rng.uniform(0, 2 * np.pi, 2),
    )
    p["x"] = rng.uniform(x0, x1, n)
    p["y"] = rng.uniform(y0, y1, n)
    p["present"] = rng.random(n)
    p["n_hairs"] = np.searchsorted(np.cumsum(weights), rng.random(n) * (1 - 1e-12), side="right") + 1
    p["unit_angle"] = rng.normal(0.0, np.deg2rad(10.0), n)
    p["open_size"] = rng.uniform(0.7, 1.3, n)
    for key, kind in (
        ("u_vellus", "u"),
        ("z_width", "n"),
        ("u_len", "u"),
        ("div", "n"),
        ("jit", "n"),
        ("tau", "u"),
        ("col_u", "u"),
        ("col_v", "u"),
        ("u_long", "u"),
        ("curv", "n"),
        ("cut", "n"),
        ("long_len", "u"),
        ("order", "u"),
        ("sub_len", "u"),
        ("u_vlen", "u"),
    ):
        p[key] = rng.random((n, 4)) if kind == "u" else rng.standard_normal((n, 4))
    return p


def _flow_angle(flow: tuple, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    base, amp, freq, direc, phase = flow
    ang = np.full(np.shape(x), base, dtype=float)
    for i in range(2):
        k = freq[i] * (np.cos(direc[i]) * x + np.sin(direc[i]) * y)
        ang += amp[i] * np.sin(k + phase[i])
    return ang


def _hair_polygon(p0, ang, length, w0, w1, curv, cut):
    """Left and right edge points (K+1, 2) of a tapered, possibly curved shaft with a cut end."""
    k = max(6, int(np.ceil(length / 25.0)))
    t = np.linspace(0.0, length, k + 1)
    a = ang + curv * t
    dt = length / k
    steps = np.stack([np.cos(a[:-1] + 0.5 * curv * dt), np.sin(a[:-1] + 0.5 * curv * dt)], 1) * dt
    c = np.vstack([p0, p0 + np.cumsum(steps, 0)])
    nrm = np.stack([-np.sin(a), np.cos(a)], 1)
    wt = (w0 + (w1 - w0) * t / length)[:, None] / 2.0
    left, right = c + nrm * wt, c - nrm * wt
    d_end = np.array([np.cos(a[-1]), np.sin(a[-1])])
    left[-1] += d_end * cut * wt[-1, 0]
    right[-1] -= d_end * cut * wt[-1, 0]
    return c, left, right


def _to_ss(pts: np.ndarray) -> np.ndarray:
    return np.rint(((np.asarray(pts) + 0.5) * _SS - 0.5) * (1 << _SHIFT)).astype(np.int32)


def render_closeup(
    *,
    seed: int,
    density_per_cm2: float = 180.0,
    px_per_mm: float = 200.0,
    shape: tuple[int, int] = (1024, 1280),
    mean_width_um: float = 65.0,
    vellus_fraction: float = 0.15,
    hair_length_mm: float | tuple[float, float] = 1.0,
    long_fraction: float = 0.03,
    skin_tone: int = 2,
    hair_colour: str = "brown",
    light_falloff: float = 0.3,
    blur_sigma_px: float = 0.0,
    noise_sigma: float = 2.0,
    jpeg_quality: int | None = None,
    units: tuple[float, float, float, float] = (0.35, 0.45, 0.15, 0.05),
    pose: np.ndarray | None = None,
    shot_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, CloseupTruth]:
    """Render a trichoscopy field of clipped scalp hair with exact ground truth.

    Parameters
    ----------
    seed : int
        Hair layout and skin of the scalp patch.
    density_per_cm2 : float
        Expected hairs per cm2 (0 < d <= 600). The realised count is in the truth.
    px_per_mm : float
        Scale of the canonical (unposed) field; the truth holds this image's scale (times the pose scale).
    shape : (int, int)
        Output (height, width).
    mean_width_um : float
        Mean width of the non-vellus hairs (spread 20 %, clipped to 30.5 um .. 2x the mean).
    vellus_fraction : float
        Chance that a hair is vellus (14-28 um wide, shorter, paler, tapered), 0..1.
    hair_length_mm : float or (float, float)
        Visible length of clipped hairs: a float gives +-30 % around it, a tuple a uniform range.
    long_fraction : float
        Chance that a non-vellus hair was missed by the clipper: 3-7 mm long, curved, lying across others.
    skin_tone : int
        0..5, light to dark. hair_colour : "black", "brown", "blond", "grey" (salt-and-pepper) or "white".
    light_falloff : float
        Dermoscope vignette: relative light loss at the farthest corner (0..0.9).
    blur_sigma_px, noise_sigma : float
        Optical blur (pixels) and sensor noise (grey levels). jpeg_quality : JPEG round trip (1..100) or None.
    units : 4 floats
        Weights of follicular units with 1, 2, 3 and 4 hairs.
    pose : (3, 3) array, optional
        Similarity mapping canonical field pixels to this image (a re-shot of the same patch).
    shot_seed : int, optional
        Light and noise of this shot (default: derived from ``seed``).

    Returns
    -------
    image : (H, W, 3) uint8 RGB
    mask : (H, W) bool
        Pixels at least half covered by a hair shaft (the part above the skin).
    truth : CloseupTruth
    """
    h, w = sk.check_shape(shape)
    if not (np.isfinite(px_per_mm) and 20.0 <= px_per_mm <= 2000.0):
        raise ValueError(f"px_per_mm must be 20..2000, got {px_per_mm!r}")
    if not (0.0 < density_per_cm2 <= MAX_DENSITY_PER_CM2):
        raise ValueError(f"density_per_cm2 must be in (0, {MAX_DENSITY_PER_CM2:g}], got {density_per_cm2!r}")
    if not 31.0 <= mean_width_um <= 200.0:
        raise ValueError(f"mean_width_um must be 31..200 um, got {mean_width_um!r}")
    for name, val, hi in (
        ("vellus_fraction", vellus_fraction, 1.0),
        ("long_fraction", long_fraction, 1.0),
        ("light_falloff", light_falloff, 0.9),
    ):
        if not 0.0 <= val <= hi:
            raise ValueError(f"{name} must be 0..{hi:g}, got {val!r}")
    weights = _unit_weights(units)
    base_skin = sk.skin_rgb(skin_tone)
    sk.check_choice("hair_colour", hair_colour, sk.HAIR_COLOURS)
    lim = _POSE_MARGIN * max(h, w)
    pose_m, scale, rot = sk.similarity_pose(pose, (h, w), margin=lim)
    ppm0 = float(px_per_mm)
    ppm = ppm0 * scale
    inv = np.linalg.inv(pose_m)

    ss_layout, ss_skin, ss_light = np.random.SeedSequence(int(seed)).spawn(3)
    shot = np.random.SeedSequence(int(shot_seed)) if shot_seed is not None else ss_light
    pool = _pool(np.random.default_rng(ss_layout), (h, w), ppm0, weights)

    # ---- choose the hairs of this density -------------------------------------------------------
    frac = density_per_cm2 / MAX_DENSITY_PER_CM2
    on_unit = pool["present"] < frac
    empty_unit = (pool["present"] >= frac) & (pool["present"] < frac + 0.04)
    slot = np.arange(4)[None, :]
    on = on_unit[:, None] & (slot < pool["n_hairs"][:, None])
    ui, si = np.nonzero(on)
    vellus = pool["u_vellus"][ui, si] < vellus_fraction
    wt = np.clip(mean_width_um * (1 + 0.2 * pool["z_width"][ui, si]), 30.5, 2 * mean_width_um)
    wv = 14.0 + 14.0 * pool["u_vlen"][ui, si]
    width_um = np.where(vellus, wv, wt)
    length_mm = _lengths_mm(hair_length_mm, pool["u_len"][ui, si])
    is_long = (~vellus) & (pool["u_long"][ui, si] < long_fraction)
    length_mm = np.where(vellus, length_mm * (0.35 + 0.4 * pool["u_vlen"][ui, si]), length_mm)
    length_mm = np.where(is_long, 3.0 + 4.0 * pool["long_len"][ui, si], length_mm)
    tau = np.where(vellus, 0.6 + 0.4 * pool["tau"][ui, si], 0.12 * pool["tau"][ui, si])
    tau = np.where(is_long, 0.05, tau)
    curv_mm = np.where(is_long, 0.12 * pool["curv"][ui, si], 0.02 * pool["curv"][ui, si])  # rad per mm
    cut = np.where(vellus | is_long, 0.0, 0.6 * pool["cut"][ui, si])

    # Geometry in the canonical frame, then posed.
    n_in_unit = pool["n_hairs"][ui]
    uang = _flow_angle(pool["flow"], pool["x"][ui], pool["y"][ui]) + pool["unit_angle"][ui]
    fan = (si - (n_in_unit - 1) / 2.0) * np.deg2rad(8.0) + np.deg2rad(3.0) * pool["div"][ui, si]
    ang0 = uang + fan
    w_px0 = width_um / 1000.0 * ppm0
    side = (si - (n_in_unit - 1) / 2.0) * 0.6 * w_px0 + 0.15 * w_px0 * pool["jit"][ui, si]
    ex0 = pool["x"][ui] - np.sin(uang) * side
    ey0 = pool["y"][ui] + np.cos(uang) * side
    exy = np.stack([ex0, ey0, np.ones_like(ex0)], 1) @ pose_m.T
    ex, ey = exy[:, 0], exy[:, 1]
    ang = ang0 + rot
    length_px = length_mm * ppm
    w_px = width_um / 1000.0 * ppm
    inside = (ex >= -0.5) & (ex < w - 0.5) & (ey >= -0.5) & (ey < h - 0.5)

    # ---- skin layer (canonical canvas, warped by the pose) ---------------------------------------
    o = int(np.ceil(lim)) + 2
    canvas = sk.dermoscope_skin(np.random.default_rng(ss_skin), (h + 2 * o, w + 2 * o), base_skin, ppm0)
    warp = pose_m @ np.array([[1, 0, -o], [0, 1, -o], [0, 0, 1]], float)
    skin_img = cv2.warpAffine(canvas, warp[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    # ---- follicular openings and the hair seen through the skin below each exit -------------------
    hair_rgb = sk.hair_rgb(hair_colour, pool["col_u"][ui, si], pool["col_v"][ui, si])
    hair_rgb = np.where(vellus[:, None], 0.55 * hair_rgb + 0.45 * base_skin, hair_rgb)
    luminance = hair_rgb @ np.array([0.3, 0.59, 0.11], np.float32)
    mean_w = mean_width_um / 1000.0 * ppm
    ucent = np.stack([pool["x"], pool["y"], np.ones(pool["n"])], 1) @ pose_m.T
    pad = 3 * ppm
    near = (ucent[:, 0] > -pad) & (ucent[:, 0] < w + pad) & (ucent[:, 1] > -pad) & (ucent[:, 1] < h + pad)
    opened = np.nonzero((on_unit | empty_unit) & near)[0]
    n_open = np.where(on_unit[opened], pool["n_hairs"][opened], 1)
    draw = np.nonzero((ex > -pad) & (ex < w + pad) & (ey > -pad) & (ey < h + pad))[0]
    streak = draw[~is_long[draw]]
    skin_img = sk.follicle_marks(
        skin_img,
        base_skin,
        openings=ucent[opened, :2],
        opening_radius=mean_w * (0.55 + 0.25 * n_open) * pool["open_size"][opened],
        opening_strength=np.where(on_unit[opened], 1.0, 0.7),
        exits=np.stack([ex[streak], ey[streak]], 1),
        angles=ang[streak],
        streak_length=(0.15 + 0.3 * pool["sub_len"][ui[streak], si[streak]])
        * ppm
        * np.where(vellus[streak], 0.5, 1.0),
        streak_width=w_px[streak],
        streak_strength=0.9 * (1.0 - luminance[streak] / 255.0),
        blur_px=mean_w,
    )

    # ---- hair shafts on a supersampled layer (painter's order, long hairs last) -------------------
    hs, ws = h * _SS, w * _SS
    colour = np.zeros((hs, ws, 3), np.uint8)
    alpha = np.zeros((hs, ws), np.uint8)
    order = draw[np.lexsort((pool["order"][ui[draw], si[draw]], is_long[draw]))]
    light_dir = np.deg2rad(-135.0)
    for i in order:
        p0 = np.array([ex[i], ey[i]])
        tau_i = tau[i]
        w0, w1 = w_px[i] * (1 + tau_i / 2), w_px[i] * (1 - tau_i / 2)
        # cv2.fillPoly also fills the pixels its edges pass through: about one supersampled pixel of
        # extra width, measured; draw that much narrower so the rendered coverage has the true width.
        grow = 1.0 / _SS
        c, left, right = _hair_polygon(
            p0,
            ang[i],
            length_px[i],
            max(w0 - grow, 0.2 * w0),
            max(w1 - grow, 0.2 * w1),
            curv_mm[i] / ppm,
            cut[i],
        )
        lo = np.minimum(left.min(0), right.min(0))
        hi = np.maximum(left.max(0), right.max(0))
        if hi[0] < -1 or hi[1] < -1 or lo[0] > w or lo[1] > h:
            continue
        ls_, rs_ = _to_ss(left), _to_ss(right)
        k = len(c) - 1
        edge = 0.82 if luminance[i] > 90 else 0.8
        for s in range(k):
            tone = (0.96 + 0.06 * s / max(k - 1, 1)) if not vellus[i] else (0.95 + 0.15 * s / max(k - 1, 1))
            col = tuple(float(v) for v in np.clip(hair_rgb[i] * tone * edge, 0, 255))
            quad = np.array([ls_[s], ls_[s + 1], rs_[s + 1], rs_[s]])
            cv2.fillPoly(colour, [quad], col, cv2.LINE_8, _SHIFT)
            cv2.fillPoly(alpha, [quad], 255, cv2.LINE_8, _SHIFT)
        if w_px[i] * _SS >= 6.0:  # cylinder shading: darker rims, a core, a soft sheen on the lit side
            side_sign = 1.0 if np.sin(ang[i] - light_dir) > 0 else -1.0
            nrm = np.array([-np.sin(ang[i]), np.cos(ang[i])]) * side_sign
            for frac_w, gain, add, off in ((0.62, 1.0, 0.0, 0.0), (0.22, 1.13, 10.0, 0.12)):
                _, l2, r2 = _hair_polygon(
                    p0 + nrm * off * w_px[i],
                    ang[i],
                    length_px[i],
                    w0 * frac_w,
                    w1 * frac_w,
                    curv_mm[i] / ppm,
                    0.0,
                )
                l2, r2 = _to_ss(l2[:-1]), _to_ss(r2[:-1])  # stop short of the cut end
                col = tuple(float(v) for v in np.clip(hair_rgb[i] * gain + add, 0, 255))
                cv2.fillPoly(colour, [np.vstack([l2, r2[::-1]])], col, cv2.LINE_8, _SHIFT)
    cov = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    col_f = cv2.resize(colour, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    mask = cov >= 0.5
    # Premultiplied composite: the colour layer is zero where no hair was drawn.
    img = skin_img * (1.0 - cov[..., None]) + col_f

    # ---- light and camera ------------------------------------------------------------------------
    rl = np.random.default_rng(shot)
    centre = (0.5 + rl.normal(0, 0.06), 0.5 + rl.normal(0, 0.06))
    light = sk.light_field((h, w), falloff=light_falloff, centre=centre, tilt=rl.normal(0, 0.06))
    tint = np.array([1.0, 1.0, 1.0], np.float32) + rl.normal(0, 0.015, 3).astype(np.float32)
    img = img * light[..., None] * tint
    image = sk.finish(
        img, rng=rl, blur_sigma_px=blur_sigma_px, noise_sigma=noise_sigma, jpeg_quality=jpeg_quality
    )

    # ---- truth -------------------------------------------------------------------------------------
    counted = np.nonzero(inside)[0]
    wc = width_um[counted]
    area_cm2 = (h * w) / ppm**2 / 100.0
    hairs = tuple(
        {
            "id": int(ui[i] * 4 + si[i]),
            "x": round(float(ex[i]), 3),
            "y": round(float(ey[i]), 3),
            "angle_deg": round(float(np.rad2deg(ang[i])) % 360.0, 3),
            "length_px": round(float(length_px[i]), 3),
            "width_um": round(float(width_um[i]), 3),
            "unit": int(ui[i]),
            "long": bool(is_long[i]),
        }
        for i in counted
    )
    n = len(counted)
    truth = CloseupTruth(
        px_per_mm=ppm,
        hair_count=n,
        density_per_cm2=n / area_cm2,
        mean_shaft_width_um=float(wc.mean()) if n else float("nan"),
        vellus_fraction=float((wc < VELLUS_UM).mean()) if n else float("nan"),
        terminal_fraction=float((wc >= TERMINAL_UM).mean()) if n else float("nan"),
        hair_coverage=float(mask.mean()),
        hairs=hairs,
        transform_to_canonical=inv / inv[2, 2],
    )
    return image, mask, truth
