"""The printable fiducial sticker sheet (tracker.reports.sticker): real PNG and PDF, checked in mm."""

from __future__ import annotations

import io
import re
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from tracker.imaging.fiducial import detect_fiducial
from tracker.reports.sticker import (
    INSTRUCTIONS,
    PAGE_SIZES_MM,
    sticker_layout,
    sticker_sheet_pdf,
    sticker_sheet_png,
    write_sticker_sheet,
)

PT_PER_MM = 72.0 / 25.4


def _png(**kwargs) -> tuple[np.ndarray, tuple[float, float]]:
    im = Image.open(io.BytesIO(sticker_sheet_png(**kwargs)))
    im.load()
    return np.asarray(im.convert("L")), im.info["dpi"]


def _black_squares(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x, y, w, h) of black connected blobs that are square (markers)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((grey < 64).astype(np.uint8), connectivity=8)
    out = []
    for x, y, w, h, area in stats[1:]:
        if w == h and area > 0.4 * w * h:
            out.append((int(x), int(y), int(w), int(h)))
    return out


@pytest.mark.parametrize(
    ("page", "dpi", "size_mm"), [("A4", 300, 2.54), ("Letter", 600, 2.54), ("A4", 300, 5.08)]
)
def test_png_page_and_marker_size(page, dpi, size_mm):
    grey, file_dpi = _png(page=page, dpi=dpi, marker_size_mm=size_mm)
    assert file_dpi[0] == pytest.approx(dpi, abs=0.01)
    w_mm, h_mm = PAGE_SIZES_MM[page]
    assert grey.shape[1] / dpi * 25.4 == pytest.approx(w_mm, abs=25.4 / dpi)
    assert grey.shape[0] / dpi * 25.4 == pytest.approx(h_mm, abs=25.4 / dpi)
    squares = _black_squares(grey)
    n_stickers = len(sticker_layout(marker_size_mm=size_mm, page=page).stickers)
    assert len(squares) >= n_stickers
    sides_mm = np.array([w for *_, w, _ in squares]) / dpi * 25.4
    markers = sides_mm[np.abs(sides_mm / size_mm - 1) < 0.05]
    assert markers.size == n_stickers
    assert np.all(np.abs(markers / size_mm - 1) <= 0.005)


def test_png_test_bar_is_10_mm():
    grey, _ = _png(dpi=300)
    n, _, stats, _ = cv2.connectedComponentsWithStats((grey < 64).astype(np.uint8))
    # solid rectangles at least 1 mm tall and 5x wider than tall
    bars = [s for s in stats[1:] if s[2] > 5 * s[3] and s[3] >= 300 / 25.4 and s[4] == s[2] * s[3]]
    assert len(bars) == 1
    assert bars[0][2] / 300 * 25.4 == pytest.approx(10.0, rel=0.005)


def test_png_markers_decode_with_their_ids():
    grey, _ = _png(dpi=300)
    lay = sticker_layout()
    marker_id, x_mm, y_mm = lay.stickers[5]
    x, y = int(round(x_mm / 25.4 * 300)), int(round(y_mm / 25.4 * 300))
    crop = grey[y - 40 : y + 70, x - 40 : x + 70]
    big = cv2.resize(crop, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)  # a "photo" of the print
    res = detect_fiducial(big, marker_size_mm=lay.marker_size_mm)
    assert res.found and res.marker_id == marker_id
    assert res.px_per_mm == pytest.approx(4 * 300 / 25.4, rel=0.01)


def _pdf_content(pdf: bytes) -> str:
    parts = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            parts.append(raw.decode("latin-1"))
    return "\n".join(parts)


@pytest.mark.parametrize("page", ["A4", "Letter"])
def test_pdf_page_text_and_marker_size(page):
    size_mm = 2.54
    pdf = sticker_sheet_pdf(page=page, marker_size_mm=size_mm)
    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert len(boxes) == 1
    w_mm, h_mm = (float(v) / PT_PER_MM for v in boxes[0])
    assert (w_mm, h_mm) == pytest.approx(PAGE_SIZES_MM[page], abs=0.05)
    content = _pdf_content(pdf)
    text = " ".join(re.findall(r"\((.*?)\)\s*Tj", content.replace("\\(", "[").replace("\\)", "]")))
    for line in INSTRUCTIONS:
        assert line.replace("(", "[").replace(")", "]") in text
    assert "Print at 100 %" in text and "fit to page" in text and "10 mm" in text and "matte" in text
    rects = [
        tuple(map(float, m)) for m in re.findall(r"([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) re f", content)
    ]
    # the marker's top border row is one full-width black run: width = marker side, height = one cell
    side_pt, cell_pt = size_mm * PT_PER_MM, size_mm / 6 * PT_PER_MM
    tops = np.array(
        [r[:2] for r in rects if abs(r[2] / side_pt - 1) < 0.005 and abs(abs(r[3]) / cell_pt - 1) < 0.01]
    )
    lay = sticker_layout(marker_size_mm=size_mm, page=page)
    for _, x_mm, y_mm in lay.stickers:  # PDF y runs up from the bottom of the page
        want = np.array([x_mm, lay.page_mm[1] - y_mm]) * PT_PER_MM
        assert np.abs(tops - want).max(axis=1).min() < 0.02
    bars = [r for r in rects if abs(r[2] / PT_PER_MM - 10.0) < 0.05]
    assert len(bars) == 1


def test_write_sticker_sheet(tmp_path):
    pdf_path, png_path = write_sticker_sheet(tmp_path / "out", marker_size_mm=2.54)
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    assert png_path.read_bytes().startswith(b"\x89PNG")
    assert "2.54mm" in pdf_path.name


def test_layout_uses_given_ids_and_stays_on_the_page():
    lay = sticker_layout(ids=[4, 9])
    assert {i for i, _, _ in lay.stickers} == {4, 9}
    w, h = lay.page_mm
    for _, x, y in lay.stickers:
        assert x > 0 and x + lay.cut_mm < w and y > 0 and y + lay.cut_mm < h


@pytest.mark.parametrize(
    ("func", "kwargs"),
    [
        (sticker_sheet_png, {"marker_size_mm": 2.0}),  # 3.94 dots per cell at 300 dpi: not on the grid
        (sticker_sheet_png, {"dpi": 10}),
        (sticker_sheet_pdf, {"page": "A3x"}),
        (sticker_sheet_pdf, {"marker_size_mm": 0.5}),
        (sticker_sheet_pdf, {"ids": [50]}),
        (sticker_sheet_pdf, {"dictionary": "DICT_NOPE"}),
    ],
)
def test_bad_options(func, kwargs):
    with pytest.raises(ValueError):
        func(**kwargs)
