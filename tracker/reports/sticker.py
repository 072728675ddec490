"""Printable sheet of fiducial stickers (PNG at an exact dpi, vector PDF) with printing instructions.

Each sticker is one ArUco marker (:mod:`tracker.imaging.fiducial`) of a known printed side, a white quiet
zone of :data:`~tracker.imaging.fiducial.QUIET_ZONE_CELLS` cells, and a light grey cut line around it.
The sheet carries a 10 mm test bar so the clinic can check with a ruler that nothing scaled the print,
and the instructions of :data:`INSTRUCTIONS`. The PDF is drawn in vector form (exact at any printer
resolution); the PNG puts every marker cell on a whole number of dots at its ``dpi`` and records that
dpi in the file, so a print at 100 % reproduces the marker size exactly.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tracker.imaging.fiducial import DEFAULT_DICTIONARY, QUIET_ZONE_CELLS, aruco_dictionary, marker_image

PAGE_SIZES_MM = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
DEFAULT_MARKER_MM = 2.54  # 0.1 inch: 5 dots per cell at 300 dpi, 10 at 600 dpi, 4x4 marker of 6 cells
TEST_BAR_MM = 10.0

INSTRUCTIONS: tuple[str, ...] = (
    "Print at 100 % (actual size). Turn OFF 'fit to page', 'shrink to fit' and any scaling.",
    "Check the 10 mm test bar with a ruler: it must measure 10 mm. If not, do not use the sheet.",
    "Use matte white paper or matte label paper: gloss reflects the dermoscope light.",
    "Use a laser printer (or a sharp inkjet) at 600 dpi or more, black ink only.",
    "Cut along the grey line. Never cut into the white border around the black square.",
    "Stick it flat on the skin next to the site, inside the field of view. Keep it clean and dry.",
    "Enter the marker size printed on this sheet in the tracker (device or site settings).",
)

_MARGIN_MM = 15.0
_LINE_MM = 5.0


@dataclass(frozen=True)
class SheetLayout:
    """Where things go on the page (mm from the top-left corner)."""

    page_mm: tuple[float, float]
    marker_size_mm: float
    cell_mm: float
    title: str
    text_lines: tuple[tuple[float, float, str], ...]  # (x, y baseline, text)
    bar: tuple[float, float, float, float]  # x, y, width, height of the 10 mm test bar
    stickers: tuple[tuple[int, float, float], ...]  # (marker id, x, y of the marker's top-left corner)
    cut_mm: float  # side of the cut square (marker plus quiet zone on both sides)


def sticker_layout(
    *,
    marker_size_mm: float = DEFAULT_MARKER_MM,
    dictionary: str = DEFAULT_DICTIONARY,
    ids: Sequence[int] | None = None,
    page: str = "A4",
) -> SheetLayout:
    """Lay out the sheet: title, instructions, test bar, then a grid of stickers filling the page.

    ``ids`` are the marker ids to print in order (default: the dictionary's ids, repeated to fill).
    """
    if page not in PAGE_SIZES_MM:
        raise ValueError(f"page must be one of {sorted(PAGE_SIZES_MM)}, got {page!r}")
    if not (isinstance(marker_size_mm, int | float) and 1.0 <= marker_size_mm <= 50.0):
        raise ValueError(f"marker_size_mm must be 1..50 mm, got {marker_size_mm!r}")
    d = aruco_dictionary(dictionary)
    n_ids = int(d.bytesList.shape[0])
    cells = int(d.markerSize) + 2
    cell = float(marker_size_mm) / cells
    if ids is not None:
        ids = [int(i) for i in ids]
        if not ids or any(not 0 <= i < n_ids for i in ids):
            raise ValueError(f"ids must be a non-empty list of ids in 0..{n_ids - 1} for {dictionary}")
    pw, ph = PAGE_SIZES_MM[page]
    title = f"Scalp tracker fiducial stickers - marker {marker_size_mm:.2f} mm ({dictionary})"
    lines = [
        (_MARGIN_MM, _MARGIN_MM + 8.0 + i * _LINE_MM, f"{i + 1}. {t}") for i, t in enumerate(INSTRUCTIONS)
    ]
    y = _MARGIN_MM + 8.0 + len(INSTRUCTIONS) * _LINE_MM + 4.0
    bar = (_MARGIN_MM, y, TEST_BAR_MM, 1.5)
    lines.append((_MARGIN_MM + TEST_BAR_MM + 4.0, y + 1.5, "<- test bar: exactly 10 mm long"))
    lines.append(
        (
            _MARGIN_MM,
            y + 8.0,
            f"Marker side (outer edge of the black square): {marker_size_mm:.2f} mm. "
            f"Sticker (grey cut line): {marker_size_mm + 2 * QUIET_ZONE_CELLS * cell:.2f} mm.",
        )
    )
    grid_top = y + 14.0
    cut = marker_size_mm + 2 * QUIET_ZONE_CELLS * cell
    pitch = cut + max(3.0, 0.5 * cut)  # room for scissors and the id label
    ncol = int((pw - 2 * _MARGIN_MM + (pitch - cut)) // pitch)
    nrow = int((ph - _MARGIN_MM - grid_top + (pitch - cut)) // pitch)
    if ncol < 1 or nrow < 1:
        raise ValueError("marker_size_mm too large for the page")
    order = ids if ids is not None else list(range(n_ids))
    stickers = []
    for k in range(ncol * nrow):
        r, c = divmod(k, ncol)
        x0 = _MARGIN_MM + c * pitch + QUIET_ZONE_CELLS * cell
        y0 = grid_top + r * pitch + QUIET_ZONE_CELLS * cell
        stickers.append((order[k % len(order)], x0, y0))
    return SheetLayout((pw, ph), float(marker_size_mm), cell, title, tuple(lines), bar, tuple(stickers), cut)


def _bits(marker_id: int, dictionary: str) -> np.ndarray:
    """(cells, cells) bool, True for black cells (border included)."""
    return marker_image(marker_id, dictionary=dictionary, cell_px=1) < 128


def sticker_sheet_pdf(
    *,
    marker_size_mm: float = DEFAULT_MARKER_MM,
    dictionary: str = DEFAULT_DICTIONARY,
    ids: Sequence[int] | None = None,
    page: str = "A4",
) -> bytes:
    """The sticker sheet as a vector PDF (bytes): exact physical size when printed at 100 %."""
    from fpdf import FPDF  # the project's PDF library (fpdf2)

    lay = sticker_layout(marker_size_mm=marker_size_mm, dictionary=dictionary, ids=ids, page=page)
    pdf = FPDF(orientation="portrait", unit="mm", format=lay.page_mm)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_title(lay.title)
    pdf.set_creator("scalp-tracker")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.text(_MARGIN_MM, _MARGIN_MM + 2.0, lay.title)
    pdf.set_font("Helvetica", "", 8.5)
    for x, y, t in lay.text_lines:
        pdf.text(x, y, t)
    pdf.set_fill_color(0, 0, 0)
    pdf.rect(*lay.bar, style="F")
    cell = lay.cell_mm
    pdf.set_font("Helvetica", "", 5)
    for marker_id, x0, y0 in lay.stickers:
        q = QUIET_ZONE_CELLS * cell
        pdf.set_draw_color(170, 170, 170)
        pdf.set_line_width(0.1)
        pdf.rect(
            x0 - q - 0.05, y0 - q - 0.05, lay.cut_mm + 0.1, lay.cut_mm + 0.1, style="D"
        )  # outside the cut
        pdf.set_text_color(120, 120, 120)
        pdf.text(x0 - q, y0 - q + lay.cut_mm + 2.0, f"#{marker_id}")
        bits = _bits(marker_id, dictionary)
        for r, row in enumerate(bits):
            c = 0
            while c < row.size:  # one rectangle per run of black cells in a row
                if not row[c]:
                    c += 1
                    continue
                e = c
                while e < row.size and row[e]:
                    e += 1
                pdf.rect(x0 + c * cell, y0 + r * cell, (e - c) * cell, cell, style="F")
                c = e
    return bytes(pdf.output())


def _png_cell_px(marker_size_mm: float, cells: int, dpi: int) -> int:
    exact = marker_size_mm / 25.4 * dpi / cells
    cell_px = int(round(exact))
    if cell_px < 2 or abs(cell_px / exact - 1) > 0.005:
        best = max(2, cell_px) * cells * 25.4 / dpi
        raise ValueError(
            f"a {marker_size_mm} mm marker is not a whole number of dots per cell at {dpi} dpi "
            f"(needs {exact:.2f}); use e.g. {best:.3f} mm, or the PDF"
        )
    return cell_px


def sticker_sheet_png(
    *,
    marker_size_mm: float = DEFAULT_MARKER_MM,
    dictionary: str = DEFAULT_DICTIONARY,
    ids: Sequence[int] | None = None,
    page: str = "A4",
    dpi: int = 300,
) -> bytes:
    """The sticker sheet as a greyscale PNG (bytes) at ``dpi``, with the dpi recorded in the file.

    Every marker cell covers a whole number of dots, so the marker prints at its exact size at 100 %.
    Raises ``ValueError`` when ``marker_size_mm`` does not fall on the ``dpi`` grid within 0.5 %.
    """
    if not isinstance(dpi, int) or not 72 <= dpi <= 2400:
        raise ValueError(f"dpi must be an integer 72..2400, got {dpi!r}")
    lay = sticker_layout(marker_size_mm=marker_size_mm, dictionary=dictionary, ids=ids, page=page)
    cells = int(round(lay.marker_size_mm / lay.cell_mm))
    cell_px = _png_cell_px(lay.marker_size_mm, cells, dpi)

    def px(mm: float) -> int:
        return int(round(mm / 25.4 * dpi))

    sheet = Image.new("L", (px(lay.page_mm[0]), px(lay.page_mm[1])), 255)
    draw = ImageDraw.Draw(sheet)
    font_title = ImageFont.load_default(size=max(8, px(4.2)))
    font = ImageFont.load_default(size=max(8, px(3.0)))
    font_small = ImageFont.load_default(size=max(6, px(1.8)))
    draw.text((px(_MARGIN_MM), px(_MARGIN_MM + 2.0)), lay.title, fill=0, font=font_title, anchor="ls")
    for x, y, t in lay.text_lines:
        draw.text((px(x), px(y)), t, fill=0, font=font, anchor="ls")
    bx, by, bw, bh = lay.bar
    draw.rectangle([px(bx), px(by), px(bx) + px(bw) - 1, px(by) + px(bh) - 1], fill=0)
    q = QUIET_ZONE_CELLS * lay.cell_mm
    side = cells * cell_px
    for marker_id, x0, y0 in lay.stickers:
        mx, my = px(x0), px(y0)
        qpx = int(round(q / 25.4 * dpi))
        draw.rectangle([mx - qpx - 1, my - qpx - 1, mx + side + qpx, my + side + qpx], outline=170, width=1)
        draw.text(
            (mx - qpx, px(y0 - q + lay.cut_mm + 2.0)), f"#{marker_id}", fill=120, font=font_small, anchor="ls"
        )
        sheet.paste(
            Image.fromarray(marker_image(marker_id, dictionary=dictionary, cell_px=cell_px)), (mx, my)
        )
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def write_sticker_sheet(
    folder: str | Path,
    *,
    marker_size_mm: float = DEFAULT_MARKER_MM,
    dictionary: str = DEFAULT_DICTIONARY,
    page: str = "A4",
    dpi: int = 300,
) -> tuple[Path, Path]:
    """Write ``fiducial-stickers-<size>mm.pdf`` and ``.png`` into ``folder``; return their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"fiducial-stickers-{marker_size_mm:.2f}mm-{page}"
    pdf_path, png_path = out / f"{stem}.pdf", out / f"{stem}.png"
    pdf_path.write_bytes(sticker_sheet_pdf(marker_size_mm=marker_size_mm, dictionary=dictionary, page=page))
    png_path.write_bytes(
        sticker_sheet_png(marker_size_mm=marker_size_mm, dictionary=dictionary, page=page, dpi=dpi)
    )
    return pdf_path, png_path
