"""Text for comparison images: the bundled font, captions that always fit, corner tags, the heat-map legend.

The font is DejaVu Sans, bundled in ``tracker/assets/fonts`` (Bitstream Vera licence, see the LICENSE
beside it), so output does not depend on the fonts of the machine and Latin, Greek and Cyrillic names
print. Too long a line is shrunk (to 70 % of its size at most), then shortened with an ellipsis.
Only the text the caller passes is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "FONT_DIR",
    "LESS_HAIR_RGB",
    "MORE_HAIR_RGB",
    "clean",
    "corner_tag",
    "get_font",
    "fit_text",
    "legend_bar",
    "size_for",
    "text_block",
    "visit_label",
]

FONT_DIR = Path(__file__).resolve().parent.parent / "assets" / "fonts"
#: Heat-map colours (ends of ColorBrewer RdBu, told apart with red-green colour blindness too).
MORE_HAIR_RGB = (5, 113, 176)
LESS_HAIR_RGB = (202, 0, 32)
PAPER = (255, 255, 255)
INK = (25, 25, 25)
SOFT_INK = (80, 80, 80)


@lru_cache(maxsize=64)
def get_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The bundled DejaVu Sans (bold or regular) at SIZE pixels."""
    return ImageFont.truetype(str(FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)


def clean(text: object, name: str) -> str:
    """TEXT with every run of white space (newlines, tabs) made one space; ValueError if not a str."""
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a string, got {type(text).__name__}")
    return " ".join(text.split())


def size_for(width: int) -> int:
    """Font size in pixels for a panel WIDTH pixels wide (13-40 px)."""
    return int(np.clip(round(width * 0.032), 13, 40))


def fit_text(text: str, size: int, bold: bool, max_width: int) -> tuple[str, ImageFont.FreeTypeFont]:
    """Shrink the font (to 70 % at most), then shorten with an ellipsis, until TEXT fits MAX_WIDTH."""
    font = get_font(size, bold)
    for s in range(size, max(8, int(size * 0.7)) - 1, -1):
        font = get_font(s, bold)
        if font.getlength(text) <= max_width:
            return text, font
    while text and font.getlength(text + "…") > max_width:
        text = text[:-1]
    return text.rstrip() + "…", font


def text_block(lines: Sequence[str], width: int, size: int, *, bold_first: bool = True) -> np.ndarray:
    """(h, WIDTH, 3) uint8 white band with LINES: the first bold and dark, the others regular and grey."""
    pad = max(4, size // 2)
    step = int(round(size * 1.35))
    canvas = Image.new("RGB", (width, pad * 2 + step * len(lines)), PAPER)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        first = i == 0 and bold_first
        text, font = fit_text(line, size if first else max(12, int(size * 0.85)), first, width - 2 * pad)
        draw.text((pad, pad + i * step), text, font=font, fill=INK if first else SOFT_INK)
    return np.asarray(canvas).copy()


def visit_label(visit_date: date | datetime | str, session: int | None = None, *, extra: str = "") -> str:
    """Caption of a visit, e.g. ``"12 Jan 2026 · session 3"`` (an ISO date string is accepted).

    Raises
    ------
    ValueError
        VISIT_DATE is neither a date nor an ISO date string.
    """
    if isinstance(visit_date, str):
        try:
            visit_date = date.fromisoformat(visit_date[:10])
        except ValueError as exc:
            raise ValueError(f"visit_date must be an ISO date, got {visit_date!r}") from exc
    if not isinstance(visit_date, date):
        raise ValueError(f"visit_date must be a date or an ISO string, got {type(visit_date).__name__}")
    parts = [visit_date.strftime("%d %b %Y")]
    if session is not None:
        parts.append(f"session {int(session)}")
    if extra:
        parts.append(clean(extra, "extra"))
    return " · ".join(parts)


def corner_tag(canvas: Image.Image, text: str, *, right: bool, size: int) -> None:
    """Draw TEXT on a dark translucent tag in the top-left (or top-right) corner of an RGBA CANVAS."""
    text, font = fit_text(text, size, True, max(40, canvas.width // 2 - 3 * size))
    pad = max(4, size // 2)
    w = int(font.getlength(text)) + 2 * pad
    h = int(size * 1.3) + pad
    x = canvas.width - w - pad if right else pad
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rounded_rectangle((x, pad, x + w, pad + h), radius=pad, fill=(0, 0, 0, 150))
    draw.text((x + pad, pad + pad // 2), text, font=font, fill=(255, 255, 255, 255))
    canvas.alpha_composite(layer)


def legend_bar(width: int, scale_text: str, caption: str | None = None) -> np.ndarray:
    """(h, WIDTH, 3) uint8 legend of the heat map: caption, scale, colour ramp less hair -> more hair."""
    size = size_for(min(width, 1200))
    bar_w, bar_h = int(width * 0.6), max(10, size)
    t = np.linspace(-1.0, 1.0, bar_w)[None, :, None]
    neutral = np.array([235.0, 235.0, 235.0])
    more, less = np.array(MORE_HAIR_RGB, float), np.array(LESS_HAIR_RGB, float)
    ramp = np.where(t > 0, neutral + t * (more - neutral), neutral - t * (less - neutral))
    lines = ([clean(caption, "caption")] if caption else []) + [clean(scale_text, "scale text")]
    head = text_block(lines, width, size, bold_first=bool(caption))
    x0 = (width - bar_w) // 2
    band = np.full((bar_h, width, 3), 255, np.uint8)
    band[:, x0 : x0 + bar_w] = np.repeat(np.rint(ramp), bar_h, axis=0).astype(np.uint8)
    ticks = Image.new("RGB", (width, int(size * 1.9)), PAPER)
    draw = ImageDraw.Draw(ticks)
    ends = (("less hair", "la", x0, LESS_HAIR_RGB), ("no change", "ma", width // 2, INK))
    for text, anchor, x, ink in (*ends, ("more hair", "ra", x0 + bar_w, MORE_HAIR_RGB)):
        draw.text((x, max(2, size // 4)), text, font=get_font(size, True), fill=ink, anchor=anchor)
    return np.vstack([head, band, np.asarray(ticks)])
