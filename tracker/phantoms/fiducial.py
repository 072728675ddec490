"""Synthetic scale references with exact truth: a fiducial sticker placed in a close-up, a ruler photo.

:func:`place_sticker` draws the project's printed ArUco sticker (marker, white quiet zone, off-white
paper, grey-black ink) into an image at a known position, size, rotation and perspective tilt, then
applies the camera stage (blur, noise, JPEG). :func:`render_ruler` renders a dermoscope photo of a
millimetre ruler lying on skin at a known scale and direction. Both are drawn supersampled and reduced
by area averaging, so edges sit where the geometry says to a small fraction of a pixel. Coordinates are
OpenCV pixel coordinates (pixel centres at integers).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracker.imaging.fiducial import DEFAULT_DICTIONARY, QUIET_ZONE_CELLS, marker_cells, marker_image
from tracker.phantoms import skin as sk

_SS = 4  # supersampling factor


@dataclass(frozen=True)
class StickerTruth:
    """Exact truth of a placed sticker, in the output image's pixel frame."""

    px_per_mm: float  # sqrt(image area of the marker) / its side in mm
    marker_id: int
    marker_size_mm: float
    corners: np.ndarray  # (4, 2) marker corners: its top-left, top-right, bottom-right, bottom-left
    sticker_polygon: np.ndarray  # (4, 2) outer edge of the white quiet zone (the cut line)
    homography: np.ndarray  # (3, 3) image px -> marker mm (origin at its top-left corner)
    tilt_deg: float


@dataclass(frozen=True)
class RulerTruth:
    """Exact truth of a rendered ruler photo."""

    px_per_mm: float
    direction_deg: float  # direction of increasing mm along the ruler, image x towards image y
    tick_spacing_mm: float


def _h_img_from_mm(centre, ppm, size_mm, rotation_deg, tilt_deg, tilt_axis_deg, focal_px):
    """Pinhole view of the sticker plane: marker mm -> image px, scale ``ppm`` at the marker centre."""
    c = size_mm / 2.0
    ax = np.radians(tilt_axis_deg)
    axis = np.array([np.cos(ax), np.sin(ax), 0.0])
    rvec = axis * np.radians(tilt_deg)
    r, _ = cv2.Rodrigues(rvec)
    z = focal_px / ppm  # camera distance (mm) giving ppm at the centre
    k = np.diag([focal_px, focal_px, 1.0])
    h = (
        k
        @ np.column_stack([r[:, 0], r[:, 1], [0.0, 0.0, z]])
        @ np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1.0]])
    )
    th = np.radians(rotation_deg)
    rot = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1.0]])
    shift = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1.0]])
    h = shift @ rot @ h
    return h / h[2, 2]


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(np.asarray(pts, np.float64).reshape(-1, 1, 2), h).reshape(-1, 2)


def place_sticker(
    image: np.ndarray,
    *,
    px_per_mm: float,
    centre_xy: tuple[float, float],
    marker_size_mm: float = 2.54,
    marker_id: int = 0,
    dictionary: str = DEFAULT_DICTIONARY,
    rotation_deg: float = 0.0,
    tilt_deg: float = 0.0,
    tilt_axis_deg: float = 0.0,
    seed: int = 0,
    blur_sigma_px: float = 0.0,
    noise_sigma: float = 0.0,
    jpeg_quality: int | None = None,
) -> tuple[np.ndarray, StickerTruth]:
    """Draw the fiducial sticker into ``image`` and return the new image with its exact truth.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
        The scene (e.g. from :func:`tracker.phantoms.render_closeup`). Not modified.
    px_per_mm : float
        Scale of the sticker plane at the marker centre (before the tilt foreshortens it).
    centre_xy : (float, float)
        Image position of the marker centre.
    marker_size_mm, marker_id, dictionary
        The printed marker (side of its black border in mm, id, ``cv2.aruco`` dictionary name).
    rotation_deg : float
        In-plane rotation (image x towards image y).
    tilt_deg, tilt_axis_deg : float
        Perspective: the sticker plane is turned by ``tilt_deg`` about an in-plane axis at
        ``tilt_axis_deg`` and seen by a pinhole camera with a focal length of 1.5 x the image width.
    seed : int
        Paper texture, light and noise.
    blur_sigma_px, noise_sigma, jpeg_quality
        Camera stage applied to the whole result (Gaussian blur, additive noise, JPEG round trip).

    Returns
    -------
    image : (H, W, 3) uint8 RGB
    truth : StickerTruth
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    if not (np.isfinite(px_per_mm) and 2.0 <= px_per_mm <= 5000.0):
        raise ValueError(f"px_per_mm must be 2..5000, got {px_per_mm!r}")
    if not (np.isfinite(marker_size_mm) and 0.2 <= marker_size_mm <= 100.0):
        raise ValueError(f"marker_size_mm must be 0.2..100, got {marker_size_mm!r}")
    if not 0.0 <= tilt_deg < 80.0:
        raise ValueError(f"tilt_deg must be 0..80, got {tilt_deg!r}")
    hgt, wid = img.shape[:2]
    cells = marker_cells(dictionary)
    size = float(marker_size_mm)
    cell_mm = size / cells
    q_mm = QUIET_ZONE_CELLS * cell_mm
    h = _h_img_from_mm(centre_xy, float(px_per_mm), size, rotation_deg, tilt_deg, tilt_axis_deg, 1.5 * wid)
    corners = _apply(h, np.array([[0, 0], [size, 0], [size, size], [0, size]], float))
    outline = _apply(
        h, np.array([[-q_mm, -q_mm], [size + q_mm, -q_mm], [size + q_mm, size + q_mm], [-q_mm, size + q_mm]])
    )
    rng = np.random.default_rng(int(seed))

    # texture: marker + quiet zone at tpc texture pixels per cell (fine enough for the largest view)
    side_px = float(np.sqrt(abs(cv2.contourArea(corners.astype(np.float32)))))
    tpc = int(np.clip(np.ceil(2 * _SS * side_px / cells), 8, 200))
    pad = int(round(QUIET_ZONE_CELLS * tpc))
    marker = marker_image(marker_id, dictionary=dictionary, cell_px=tpc).astype(np.float32) / 255.0
    tex = cv2.copyMakeBorder(marker, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=1.0)
    n = tex.shape[0]
    paper = np.array([236.0, 234.0, 226.0], np.float32) * float(rng.uniform(0.9, 1.02))
    ink = np.array([38.0, 36.0, 42.0], np.float32) * float(rng.uniform(0.8, 1.3))
    grain = 1.0 + 0.02 * sk.smooth_noise(rng, (n, n), max(1.0, tpc / 6))
    rgb = (tex[..., None] * paper + (1 - tex[..., None]) * ink) * grain[..., None]
    rgb *= sk.light_field((n, n), falloff=0.0, tilt=float(rng.uniform(-0.12, 0.12)))[..., None]
    # texture px -> mm: texture pixel (u, v) covers mm [(u - pad) / tpc * cell_mm ...]
    t_mm = cell_mm / tpc
    mm_from_tex = np.array([[t_mm, 0, (0.5 - pad) * t_mm], [0, t_mm, (0.5 - pad) * t_mm], [0, 0, 1.0]])

    # render the sticker supersampled in its bounding box only
    x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(outline.max(0)).astype(int) + 3, [wid, hgt])
    out = img.astype(np.float32)
    if x1 > x0 and y1 > y0:
        ss_from_img = np.array(
            [[_SS, 0, (0.5 - x0) * _SS - 0.5], [0, _SS, (0.5 - y0) * _SS - 0.5], [0, 0, 1.0]]
        )
        m = ss_from_img @ h @ mm_from_tex
        dsize = ((x1 - x0) * _SS, (y1 - y0) * _SS)
        layer = cv2.warpPerspective(rgb, m, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        alpha = cv2.warpPerspective(np.ones((n, n), np.float32), m, dsize, flags=cv2.INTER_LINEAR)
        layer = cv2.resize(layer, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
        roi = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = roi * (1 - alpha) + layer * alpha
    final = sk.finish(
        out, rng=rng, blur_sigma_px=blur_sigma_px, noise_sigma=noise_sigma, jpeg_quality=jpeg_quality
    )
    area = abs(cv2.contourArea(corners.astype(np.float32)))
    h_mm = np.linalg.inv(h)
    truth = StickerTruth(
        px_per_mm=float(np.sqrt(area) / size),
        marker_id=int(marker_id),
        marker_size_mm=size,
        corners=corners,
        sticker_polygon=outline,
        homography=h_mm / h_mm[2, 2],
        tilt_deg=float(tilt_deg),
    )
    return final, truth


def render_ruler(
    *,
    seed: int,
    px_per_mm: float,
    shape: tuple[int, int] = (768, 1024),
    direction_deg: float = 0.0,
    tick_spacing_mm: float = 1.0,
    ruler_width_fraction: float = 0.5,
    offset_px: float = 0.0,
    numerals: bool = True,
    skin_tone: int = 2,
    light_falloff: float = 0.3,
    blur_sigma_px: float = 0.0,
    noise_sigma: float = 2.0,
    jpeg_quality: int | None = None,
) -> tuple[np.ndarray, RulerTruth]:
    """Render a dermoscope photo of a millimetre ruler lying on skin.

    The ruler is a white strip with dark ticks every ``tick_spacing_mm`` along one edge (ticks of
    0.9 mm, every 5th 1.4 mm, every 10th 2 mm with a numeral), crossing the whole image.

    Parameters
    ----------
    seed : int
        Skin, tick phase, light and noise.
    px_per_mm : float
        Scale (5..500 px/mm).
    shape : (int, int)
        Output (height, width).
    direction_deg : float
        Direction of the ruler axis (image x towards image y).
    tick_spacing_mm : float
        Spacing of the finest ticks (1 mm on a millimetre ruler, 0.5 on a half-millimetre one).
    ruler_width_fraction : float
        Width of the strip as a fraction of the image height (0.15..1).
    offset_px : float
        Shift of the strip's centre line from the image centre, perpendicular to the ruler.
    numerals : bool
        Print the centimetre numbers.
    skin_tone, light_falloff, blur_sigma_px, noise_sigma, jpeg_quality
        As in :func:`tracker.phantoms.render_closeup`.

    Returns
    -------
    image : (H, W, 3) uint8 RGB
    truth : RulerTruth
    """
    h, w = sk.check_shape(shape)
    ppm = float(px_per_mm)
    if not (np.isfinite(ppm) and 5.0 <= ppm <= 500.0):
        raise ValueError(f"px_per_mm must be 5..500, got {px_per_mm!r}")
    if not 0.1 <= tick_spacing_mm <= 5.0:
        raise ValueError(f"tick_spacing_mm must be 0.1..5, got {tick_spacing_mm!r}")
    if not 0.15 <= ruler_width_fraction <= 1.0:
        raise ValueError(f"ruler_width_fraction must be 0.15..1, got {ruler_width_fraction!r}")
    rng = np.random.default_rng(int(seed))
    base = sk.skin_rgb(skin_tone)
    canvas = sk.dermoscope_skin(rng, (h, w), base, ppm)

    # the ruler in its own frame (u along, v across, in ss pixels), then rotated into the image
    sp = tick_spacing_mm * ppm * _SS  # tick spacing in ss px
    length = int(np.ceil(np.hypot(h, w) * _SS)) + 4 * int(sp) + 8
    width = int(round(ruler_width_fraction * h * _SS))
    strip = np.full((width, length), 255, np.uint8)  # 255 = white plastic, 0 = ink
    tick_w = max(0.09 * ppm * _SS, 1.2 * _SS)  # printed lines are about 0.09 mm wide
    phase = rng.uniform(0, sp)
    k0 = int(rng.integers(0, 10))
    edge = int(0.04 * width)
    for k in range(int(length / sp) + 1):
        u = phase + k * sp
        idx = k + k0
        mm_len = 2.0 if idx % 10 == 0 else 1.4 if idx % 5 == 0 else 0.9
        v1 = edge + min(mm_len * ppm * _SS, 0.8 * width)
        pts = np.array(
            [[u - tick_w / 2, edge], [u + tick_w / 2, edge], [u + tick_w / 2, v1], [u - tick_w / 2, v1]]
        )
        cv2.fillPoly(strip, [np.rint(pts * 16).astype(np.int32)], 0, cv2.LINE_AA, shift=4)
        if numerals and idx % 10 == 0 and v1 + 0.5 * ppm * _SS < width:
            scale = 0.9 * ppm * _SS / 22.0
            text = str((idx // 10) % 100)
            (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, int(scale * 2)))
            org = (int(u - tw / 2), int(v1 + 1.2 * ppm * _SS))
            cv2.putText(
                strip, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 0, max(1, int(scale * 2)), cv2.LINE_AA
            )
    strip = strip.astype(np.float32) / 255.0
    th = np.radians(direction_deg)
    cu, cv_ = length / 2.0, width / 2.0
    # ss image px = centre + R (u - cu, v - cv + offset)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    centre_ss = np.array([(w / 2.0) * _SS - 0.5, (h / 2.0) * _SS - 0.5])
    trans = centre_ss - rot @ np.array([cu - 0.5, cv_ - 0.5 - offset_px * _SS])
    m = np.column_stack([rot, trans]).astype(np.float64)
    ink_ss = cv2.warpAffine(strip, m, (w * _SS, h * _SS), flags=cv2.INTER_LINEAR, borderValue=1.0)
    body_ss = cv2.warpAffine(
        np.ones_like(strip), m, (w * _SS, h * _SS), flags=cv2.INTER_LINEAR, borderValue=0.0
    )
    ink = cv2.resize(ink_ss, (w, h), interpolation=cv2.INTER_AREA)
    body = cv2.resize(body_ss, (w, h), interpolation=cv2.INTER_AREA)[..., None]
    plastic = np.array([240.0, 240.0, 236.0], np.float32) * float(rng.uniform(0.9, 1.03))
    ink_rgb = np.array([30.0, 30.0, 34.0], np.float32)
    ruler = plastic * ink[..., None] + ink_rgb * (1 - ink[..., None])
    out = canvas * (1 - body) + ruler * body
    out *= sk.light_field((h, w), falloff=light_falloff, tilt=float(rng.uniform(-0.1, 0.1)))[..., None]
    image = sk.finish(
        out, rng=rng, blur_sigma_px=blur_sigma_px, noise_sigma=noise_sigma, jpeg_quality=jpeg_quality
    )
    return image, RulerTruth(
        px_per_mm=ppm, direction_deg=float(direction_deg), tick_spacing_mm=float(tick_spacing_mm)
    )
