"""Comparison images for the consultation: side by side, blend, wipe, difference heat map, series grid.

Every function takes photos that are already in one frame (follow-ups warped into the baseline's frame
with :func:`tracker.imaging.align.warp_to_reference`; pixels outside a warped photo are 0) and returns a
new (H, W, 3) uint8 RGB array; :func:`save_png` and :func:`to_png_bytes` export it. Inputs are never
modified. Colours are matched for display beforehand with :func:`tracker.imaging.display.normalise_series`
(the heat map, :func:`tracker.reports.heatmap.difference_map`, re-exported here, does it itself): that
is the display path, never the measurement path.

Labels are whatever strings the caller passes (dates, sessions, metric lines): nothing identifying is
added, so no patient name appears unless the caller asks for it. Text is drawn with the bundled DejaVu
Sans (``tracker/assets/fonts``, see :mod:`tracker.reports.labels`); too long a line is shrunk, then
shortened with an ellipsis.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tracker.imaging.display import channel_max, checked_rgb
from tracker.reports.heatmap import difference_map
from tracker.reports.labels import (
    LESS_HAIR_RGB,
    MORE_HAIR_RGB,
    clean,
    corner_tag,
    size_for,
    text_block,
    visit_label,
)

__all__ = [
    "LESS_HAIR_RGB",
    "MORE_HAIR_RGB",
    "blend",
    "common_crop",
    "difference_map",
    "save_png",
    "series_grid",
    "side_by_side",
    "to_png_bytes",
    "visit_label",
    "wipe",
]

Crop = tuple[int, int, int, int]


# --- geometry helpers -----------------------------------------------------------------------------------


def _pair(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b, a = checked_rgb(before, name="before"), checked_rgb(after, name="after")
    if b.shape != a.shape:
        raise ValueError(f"before and after must be in one frame (same shape): {b.shape} vs {a.shape}")
    return b, a


def _crop(image: np.ndarray, crop: Crop | None) -> np.ndarray:
    if crop is None:
        return image
    if len(crop) != 4 or any(isinstance(v, bool) or int(v) != v for v in crop):
        raise ValueError(f"crop must be (x, y, width, height) integers, got {crop!r}")
    x, y, w, h = (int(v) for v in crop)
    if x < 0 or y < 0 or w < 8 or h < 8 or x + w > image.shape[1] or y + h > image.shape[0]:
        size = f"{image.shape[1]} x {image.shape[0]}"
        raise ValueError(f"crop {crop} does not fit in an image of {size} pixels")
    return image[y : y + h, x : x + w]


def _resize_width(image: np.ndarray, width: int) -> np.ndarray:
    if image.shape[1] == width:
        return image
    height = max(1, int(round(image.shape[0] * width / image.shape[1])))
    interp = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)


def common_crop(images: Sequence[np.ndarray], *, working_px: int = 256) -> Crop:
    """Largest axis-aligned box where every image has content (no black border left by a warp).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8 ndarray
        Photos in one frame.
    working_px : int
        Long side of the grid the search runs on; the box is exact to one grid cell (rounded inwards).

    Returns
    -------
    (x, y, width, height) : tuple of int
        Pixel box, usable as ``crop=`` of :func:`side_by_side` and :func:`series_grid`.
    """
    if len(images) == 0:
        raise ValueError("images must not be empty")
    checked = [checked_rgb(img, name=f"images[{i}]") for i, img in enumerate(images)]
    H, W = checked[0].shape[:2]
    if any(img.shape[:2] != (H, W) for img in checked):
        raise ValueError("images must share one frame (same H, W)")
    valid = np.logical_and.reduce([channel_max(img) > 0 for img in checked])
    f = min(1.0, working_px / max(H, W))
    gh, gw = max(1, int(H * f)), max(1, int(W * f))
    # a cell counts only when all of it is valid: the minimum over the cell
    small = cv2.resize(valid.astype(np.uint8), (gw, gh), interpolation=cv2.INTER_AREA) >= 1
    small = cv2.erode(small.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=1).astype(bool)
    best, heights = (0, 0, 0, 0, 0), np.zeros(gw, dtype=int)
    for row in range(gh):  # largest rectangle in a histogram, row by row
        heights = np.where(small[row], heights + 1, 0)
        stack: list[int] = []
        for col in range(gw + 1):
            h = heights[col] if col < gw else 0
            while stack and heights[stack[-1]] >= h:
                top = heights[stack.pop()]
                left = stack[-1] + 1 if stack else 0
                if top * (col - left) > best[0]:
                    best = (top * (col - left), left, row - top + 1, col - left, top)
            stack.append(col)
    if best[0] == 0:
        raise ValueError("the images share no area with content")
    _, cx, cy, cw, ch = best
    x0, y0 = int(np.ceil(cx * W / gw)), int(np.ceil(cy * H / gh))
    x1, y1 = int((cx + cw) * W / gw), int((cy + ch) * H / gh)
    return x0, y0, max(8, x1 - x0), max(8, y1 - y0)


# --- comparison images -----------------------------------------------------------------------------------


def side_by_side(
    before: np.ndarray,
    after: np.ndarray,
    *,
    labels: tuple[str, str] = ("Before", "After"),
    lines: tuple[Sequence[str], Sequence[str]] = ((), ()),
    crop: Crop | None = None,
    title: str | None = None,
    panel_width: int | None = None,
) -> np.ndarray:
    """Two photos of one frame next to each other, same crop, each with its caption underneath.

    Parameters
    ----------
    before, after : (H, W, 3) uint8 ndarray
        Photos in one frame (AFTER warped to BEFORE). Not modified.
    labels : (str, str)
        Caption of each photo, e.g. :func:`visit_label` (date and session), printed in bold.
    lines : (sequence of str, sequence of str)
        Extra caption lines under each photo, e.g. metrics ``"Coverage 61 % ± 2 %"``.
    crop : (x, y, width, height), optional
        The same box cut from both photos (see :func:`common_crop`).
    title : str, optional
        A bold line above both photos.
    panel_width : int, optional
        Width of each photo in the output; default the crop width, at most 900 and at least 320.

    Returns
    -------
    (H_out, W_out, 3) uint8 ndarray
        ``W_out = 2 * panel_width + 3 * gap`` on a white page.
    """
    b, a = _pair(before, after)
    b, a = _crop(b, crop), _crop(a, crop)
    if len(labels) != 2 or len(lines) != 2:
        raise ValueError("labels and lines must each hold two entries (before, after)")
    width = int(np.clip(b.shape[1], 320, 900)) if panel_width is None else int(panel_width)
    if width < 64:
        raise ValueError(f"panel_width must be at least 64, got {panel_width}")
    font_px = size_for(width)
    panels = []
    for img, label, extra in zip((b, a), labels, lines, strict=True):
        text = [clean(label, "label")] + [clean(t, "metric line") for t in extra]
        panels.append((_resize_width(img, width), text_block(text, width, font_px)))
    caption_h = max(p[1].shape[0] for p in panels)
    gap = max(8, width // 40)
    photo_h = panels[0][0].shape[0]
    head = text_block([clean(title, "title")], 2 * width + gap, int(font_px * 1.15)) if title else None
    head_h = 0 if head is None else head.shape[0]
    page = np.full((gap + head_h + photo_h + caption_h + gap, 2 * width + 3 * gap, 3), 255, np.uint8)
    if head is not None:
        page[gap : gap + head_h, gap : gap + head.shape[1]] = head
    for i, (photo, caption) in enumerate(panels):
        x = gap + i * (width + gap)
        page[gap + head_h : gap + head_h + photo_h, x : x + width] = photo
        page[gap + head_h + photo_h : gap + head_h + photo_h + caption.shape[0], x : x + width] = caption
    return page


def blend(before: np.ndarray, after: np.ndarray, *, opacity: float = 0.5) -> np.ndarray:
    """Overlay AFTER on BEFORE at OPACITY: ``round((1 - opacity) * before + opacity * after)``.

    Both are (H, W, 3) uint8 in one frame; the result has the same shape. ``opacity`` in [0, 1].
    """
    b, a = _pair(before, after)
    if not isinstance(opacity, int | float) or not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be a number in [0, 1], got {opacity!r}")
    return cv2.addWeighted(b, 1.0 - float(opacity), a, float(opacity), 0.0)


def wipe(
    before: np.ndarray,
    after: np.ndarray,
    *,
    position: float = 0.5,
    line_px: int | None = None,
    line_rgb: tuple[int, int, int] = (255, 255, 255),
    labels: tuple[str, str] | None = None,
) -> np.ndarray:
    """BEFORE left of a vertical split, AFTER right of it, with a line at the split.

    Parameters
    ----------
    before, after : (H, W, 3) uint8 ndarray
        Photos in one frame. Not modified.
    position : float
        Split as a fraction of the width in [0, 1]: columns ``< round(position * W)`` show BEFORE, the
        others AFTER.
    line_px : int, optional
        Width of the split line, centred on the split column (default ``max(2, W // 400)``; 0 = none).
    line_rgb : (int, int, int)
        Colour of the line.
    labels : (str, str), optional
        Tags in the top-left and top-right corners (e.g. the two visit dates).

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    b, a = _pair(before, after)
    if not isinstance(position, int | float) or not 0.0 <= float(position) <= 1.0:
        raise ValueError(f"position must be a fraction in [0, 1], got {position!r}")
    width = b.shape[1]
    split = int(round(float(position) * width))
    out = a.copy()
    out[:, :split] = b[:, :split]
    line = max(2, width // 400) if line_px is None else int(line_px)
    if line < 0:
        raise ValueError("line_px must not be negative")
    if line:
        lo = max(0, split - line // 2)
        out[:, lo : min(width, lo + line)] = np.asarray(line_rgb, dtype=np.uint8)
    if labels is not None:
        canvas = Image.fromarray(out).convert("RGBA")
        for text, right in zip(labels, (False, True), strict=True):
            corner_tag(canvas, clean(text, "label"), right=right, size=size_for(width) - 2)
        out = np.asarray(canvas.convert("RGB")).copy()
    return out


def series_grid(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    lines: Sequence[Sequence[str]] | None = None,
    columns: int | None = None,
    tile_width: int | None = None,
    crop: Crop | None = None,
    title: str | None = None,
) -> np.ndarray:
    """All photos of a series in a grid, each with its caption (label in bold, then LINES).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8 ndarray
        Photos in one frame, in visit order. Not modified.
    labels : sequence of str
        One caption per photo (e.g. :func:`visit_label`).
    lines : sequence of sequence of str, optional
        Extra lines per photo (metrics).
    columns : int, optional
        Default: 1-4, as square as possible.
    tile_width : int, optional
        Width of each photo; default the crop width, between 200 and 480.
    crop : (x, y, width, height), optional
        The same box cut from every photo.
    title : str, optional
        Bold line above the grid.

    Returns
    -------
    (H_out, W_out, 3) uint8 ndarray
        White page; empty cells of the last row stay white.
    """
    if len(images) == 0:
        raise ValueError("images must not be empty")
    if len(labels) != len(images) or (lines is not None and len(lines) != len(images)):
        raise ValueError("labels (and lines) must have one entry per image")
    checked = [_crop(checked_rgb(img, name=f"images[{i}]"), crop) for i, img in enumerate(images)]
    if any(img.shape != checked[0].shape for img in checked):
        raise ValueError("images must share one frame (same shape)")
    n = len(checked)
    cols = min(n, 4, int(np.ceil(np.sqrt(n)))) if columns is None else int(columns)
    if cols < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    width = int(np.clip(checked[0].shape[1], 200, 480)) if tile_width is None else int(tile_width)
    if width < 64:
        raise ValueError(f"tile_width must be at least 64, got {tile_width}")
    font_px = size_for(width) + 1
    tiles = []
    for i, img in enumerate(checked):
        text = [clean(labels[i], "label")] + [clean(t, "metric line") for t in (lines[i] if lines else ())]
        tiles.append(np.vstack([_resize_width(img, width), text_block(text, width, font_px)]))
    tile_h = max(t.shape[0] for t in tiles)
    rows = int(np.ceil(n / cols))
    gap = max(8, width // 30)
    head_w = cols * width + (cols - 1) * gap
    head = text_block([clean(title, "title")], head_w, font_px + 4) if title else None
    head_h = 0 if head is None else head.shape[0]
    page = np.full((gap + head_h + rows * (tile_h + gap), gap + cols * (width + gap), 3), 255, np.uint8)
    if head is not None:
        page[gap : gap + head_h, gap : gap + head.shape[1]] = head
    for i, tile in enumerate(tiles):
        y = gap + head_h + (i // cols) * (tile_h + gap)
        x = gap + (i % cols) * (width + gap)
        page[y : y + tile.shape[0], x : x + width] = tile
    return page


# --- export ---------------------------------------------------------------------------------------------


def to_png_bytes(image: np.ndarray) -> bytes:
    """Encode a (H, W, 3) uint8 RGB array (or (H, W) grey) as PNG bytes, without any metadata."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(checked_rgb(image))).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write IMAGE as a PNG at PATH atomically (temporary file in the same folder, then rename).

    Returns the path written. Raises ValueError for a bad image, OSError when the folder is missing
    or not writable.
    """
    data = to_png_bytes(image)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
