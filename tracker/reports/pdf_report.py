"""The PDF consultation report: data in, PDF bytes out (fpdf2 with the bundled DejaVu Sans).

Pages: a cover with the plain-language summary, the visit table and the measurements; the progress
charts; one page per before/after pair (baseline and latest photo of a view or site, in the baseline's
frame); the measurement method and its uncertainty in plain words. Every page carries its number, the
date the report was made and the pipeline version.

:func:`build_report_pdf` is pure: it reads nothing but its :class:`ReportData` (gathered, with access
checks, by :func:`tracker.services.reports.consultation_report`). Nothing identifying is printed but
the pseudonymous patient code, and the name only when ``patient_name`` is given. The document's
metadata holds a title with the code, the creator "scalp-tracker", no author.

DejaVu Sans covers Latin, Greek and Cyrillic (any European name prints); scripts it lacks (Chinese,
Japanese, Arabic, ...) print as empty boxes.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from PIL import Image

from tracker import __version__
from tracker.reports.compare import common_crop, series_grid
from tracker.reports.labels import FONT_DIR

__all__ = ["BeforeAfter", "ChartImage", "MeasurementRow", "ReportData", "VisitRow", "build_report_pdf",
           "format_measure", "format_value", "method_paragraphs"]

_FONT = "DejaVu"
_INK = (25, 25, 25)
_SOFT = (100, 100, 100)
_RULE = (200, 200, 200)
_MARGIN = 15.0
_HEADINGS = FontFace(family="DejaVu", emphasis="BOLD", size_pt=9, fill_color=(238, 238, 238))

#: How each metric is printed: label, unit after the number, factor applied, decimals.
_MEASURES: dict[str, tuple[str, str, float, int]] = {
    "density_per_cm2": ("Density", " hairs/cm²", 1.0, 0),
    "hair_coverage": ("Hair coverage", " %", 100.0, 1),
    "mean_shaft_width_um": ("Mean shaft width", " µm", 1.0, 1),
    "vellus_fraction": ("Vellus share", " %", 100.0, 0),
    "hair_count": ("Hairs in the field", "", 1.0, 0),
}


@dataclass(frozen=True)
class VisitRow:
    """One visit of the visit table."""

    visit_date: dt.date
    session_number: int | None
    treatments: str
    photos: int = 0


@dataclass(frozen=True)
class MeasurementRow:
    """One measured photo: its primary metric (a key of ``format_measure``), spread and change."""

    visit_date: dt.date
    view_or_site: str
    metric: str
    value: float | None
    sd: float | None = None
    change_pct: float | None = None
    beyond_noise: bool | None = None
    retake: bool = False
    reference: bool = False


@dataclass(frozen=True)
class ChartImage:
    """A rendered chart (PNG bytes, e.g. from :func:`tracker.reports.chart_images.chart_png`)."""

    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class BeforeAfter:
    """A baseline photo and a follow-up warped into its frame: (H, W, 3) uint8 RGB arrays, same shape."""

    title: str
    before: np.ndarray
    after: np.ndarray
    before_label: str
    after_label: str
    before_lines: tuple[str, ...] = ()
    after_lines: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ReportData:
    """Everything a consultation report prints."""

    patient_code: str
    generated_at: dt.datetime
    pipeline_version: str
    visits: Sequence[VisitRow]
    summary: Sequence[str]
    measurements: Sequence[MeasurementRow] = ()
    charts: Sequence[ChartImage] = ()
    pairs: Sequence[BeforeAfter] = ()
    patient_name: str | None = None
    analysis_versions: Sequence[str] = ()
    vellus_um: float = 30.0
    terminal_um: float = 60.0
    notes: Sequence[str] = field(default_factory=tuple)


def format_measure(metric: str, value: float | None, sd: float | None = None) -> str:
    """A measurement in words and units, e.g. ``"Density 152 hairs/cm² ± 6"``, ``"Hair coverage 61.2 % ± 1.8"``.

    Raises
    ------
    ValueError
        Unknown metric.
    """
    if metric not in _MEASURES:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(_MEASURES)}")
    label = _MEASURES[metric][0]
    return f"{label} {format_value(metric, value, sd)}" if value is not None else f"{label}: not measured"


def format_value(metric: str, value: float | None, sd: float | None = None) -> str:
    """The number of a measurement with its unit and ± spread (one standard deviation), or "–"."""
    _label, unit, factor, digits = _MEASURES[metric]
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value * factor:.{digits}f}{unit}"
    if sd is not None and np.isfinite(sd):
        text += f" ± {sd * factor:.{digits}f}"
    return text


def method_paragraphs(*, vellus_um: float = 30.0, terminal_um: float = 60.0) -> list[tuple[str, str]]:
    """The method page: (heading, paragraph) pairs in plain words."""
    return [
        ("Photos", "At each visit the clinic takes overview photos of the scalp (for example the vertex seen from "
         "above) and magnified close-ups (trichoscopy) of marked sites. The photos are stored without their "
         "camera metadata; the measurements are made on the unchanged photos."),
        ("Alignment", "Each follow-up photo is lined up with the first photo of the same view or site, using "
         "features of the head and skin that do not move between visits (not the hair itself). The region "
         "measured on an overview photo is drawn once on the first photo and carried to every later one. "
         "The before/after pictures in this report show the follow-up in the first photo's frame; their "
         "colours are matched for viewing only and never for measuring."),
        ("What is measured", "Overview photos: hair coverage, the share of the measured region covered by hair "
         "(the rest is visible scalp). Close-ups: the number of hairs in the field, density in hairs per "
         "square centimetre (needs the magnification, known from the device's calibration or a printed "
         "sticker), mean shaft width in micrometres, and the vellus share: hairs thinner than "
         f"{vellus_um:g} µm (hairs of {terminal_um:g} µm or more count as terminal)."),
        ("Uncertainty", "Every figure carries a spread (the ± value, one standard deviation). It comes from "
         "cutting the photo into tiles and re-measuring random selections of them, which shows how much the "
         "figure depends on where hairs happen to lie in the photo. Charts draw it as error bars."),
        ("When is a change real?", "A change from the first session is called beyond measurement noise only when "
         "it is larger than twice the combined spread of the two measurements. A smaller change may be "
         "noise: it is reported, but not as a change. Photos that failed the quality check (blurred, badly "
         "exposed, no scale) are marked for a retake and left out of the charts and changes."),
        ("Limits", "The figures are measurements of photos, not a diagnosis. Lighting, hair length, styling and "
         "the exact spot photographed all influence them; comparisons are most reliable between photos taken "
         "the same way. Discuss the results with your clinician."),
    ]


# --- layout ---------------------------------------------------------------------------------------------


class _Report(FPDF):
    def __init__(self, data: ReportData) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.data = data
        self.set_margins(_MARGIN, _MARGIN + 4, _MARGIN)
        self.set_auto_page_break(True, margin=_MARGIN + 4)
        self.add_font(_FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(_FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_font(_FONT, size=10)
        self.set_text_color(*_INK)

    def header(self) -> None:
        self.set_font(_FONT, size=8)
        self.set_text_color(*_SOFT)
        self.set_xy(_MARGIN, 8)
        self.cell(0, 5, f"Hair progress report · {self.data.patient_code}")
        self.set_text_color(*_INK)
        self.set_xy(_MARGIN, _MARGIN + 4)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=8)
        self.set_text_color(*_SOFT)
        made = _utc(self.data.generated_at).strftime("%d %b %Y %H:%M UTC")
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}} · made {made} · pipeline version "
                  f"{self.data.pipeline_version}", align="C")
        self.set_text_color(*_INK)

    @property
    def width(self) -> float:
        return self.w - 2 * _MARGIN

    def heading(self, text: str, size: float = 14) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(2)
        self.set_font(_FONT, "B", size)
        self.multi_cell(self.width, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FONT, size=10)
        self.ln(1.5)

    def paragraph(self, text: str, *, size: float = 10, colour=_INK) -> None:
        self.set_font(_FONT, size=size)
        self.set_text_color(*colour)
        self.multi_cell(self.width, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*_INK)
        self.ln(1.5)

    def grid(self, head: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> None:
        self.set_font(_FONT, size=9)
        self.set_draw_color(*_RULE)
        with self.table(col_widths=tuple(widths), text_align="LEFT", line_height=5, first_row_as_headings=True,
                        headings_style=_HEADINGS, borders_layout="HORIZONTAL_LINES", width=self.width) as table:
            for cells in [head, *rows]:
                row = table.row()
                for value in cells:
                    row.cell(value)
        self.set_font(_FONT, size=10)
        self.ln(3)

    def picture(self, data: bytes, *, max_h: float) -> None:
        """Place an image at full text width (less when MAX_H mm would be exceeded), centred."""
        with Image.open(io.BytesIO(data)) as probe:
            px_w, px_h = probe.size
        w = self.width
        h = w * px_h / px_w
        if h > max_h:
            h, w = max_h, max_h * px_w / px_h
        if self.get_y() + h > self.h - _MARGIN - 4:
            self.add_page()
        self.image(io.BytesIO(data), x=_MARGIN + (self.width - w) / 2, y=self.get_y(), w=w, h=h)
        self.set_y(self.get_y() + h + 2)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _change_text(row: MeasurementRow) -> str:
    if row.retake:
        return "retake"
    if row.reference:
        return "first (reference)"
    if row.change_pct is None or not np.isfinite(row.change_pct):
        return "–"
    text = f"{row.change_pct:+.1f} %"
    if row.beyond_noise is True:
        text += " (beyond noise)"
    elif row.beyond_noise is False:
        text += " (within noise)"
    return text


def _pair_jpeg(pair: BeforeAfter) -> bytes:
    """Before above after (a portrait page fits two wide photos best), same crop, JPEG-encoded."""
    if pair.before.shape != pair.after.shape:
        raise ValueError(f"before and after of {pair.title!r} must be in one frame: "
                         f"{pair.before.shape} vs {pair.after.shape}")
    try:
        crop = common_crop([pair.before, pair.after])
    except ValueError:  # no shared content (should not happen for an accepted alignment): show all
        crop = None
    page = series_grid([pair.before, pair.after], [pair.before_label, pair.after_label],
                       lines=[pair.before_lines, pair.after_lines], columns=1, tile_width=1000, crop=crop)
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format="JPEG", quality=88, optimize=True)
    return buffer.getvalue()


def _check(report: ReportData) -> None:
    if not isinstance(report, ReportData):
        raise ValueError(f"report must be a ReportData, got {type(report).__name__}")
    if not isinstance(report.patient_code, str) or not report.patient_code.strip():
        raise ValueError("the report needs a patient code")
    if not isinstance(report.generated_at, dt.datetime):
        raise ValueError("generated_at must be a datetime")
    if not report.visits:
        raise ValueError("the report needs at least one visit")
    for metric in {m.metric for m in report.measurements}:
        if metric not in _MEASURES:
            raise ValueError(f"unknown metric {metric!r} in the measurements")


# --- pages ----------------------------------------------------------------------------------------------


def _cover(pdf: _Report, report: ReportData) -> None:
    pdf.add_page()
    pdf.set_font(_FONT, "B", 20)
    pdf.cell(0, 10, "Hair progress report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, "B", 14)
    pdf.cell(0, 8, f"Patient {report.patient_code}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if report.patient_name:
        pdf.set_font(_FONT, size=12)
        pdf.multi_cell(pdf.width, 6, " ".join(report.patient_name.split()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    dates = [v.visit_date for v in report.visits]
    made = _utc(report.generated_at).strftime("%d %b %Y")
    pdf.paragraph(f"{len(dates)} visit(s) from {min(dates):%d %b %Y} to {max(dates):%d %b %Y} · report made "
                  f"{made}", size=10, colour=_SOFT)
    pdf.heading("Summary")
    for sentence in report.summary or ["No change can be shown yet."]:
        pdf.paragraph(f"•  {sentence}", size=11)
    for note in report.notes:
        pdf.paragraph(note, size=9, colour=_SOFT)
    pdf.heading("Visits")
    rows = [[f"{v.visit_date:%d %b %Y}", "" if v.session_number is None else str(v.session_number),
             v.treatments or "–", str(v.photos)] for v in sorted(report.visits, key=lambda v: v.visit_date)]
    pdf.grid(["Date", "Session", "Treatments", "Photos"], rows, (24, 16, 124, 16))
    if report.measurements:
        pdf.heading("Measurements")
        rows = [[f"{m.visit_date:%d %b %Y}", m.view_or_site, _MEASURES[m.metric][0],
                 format_value(m.metric, m.value, m.sd), _change_text(m)] for m in report.measurements]
        pdf.grid(["Date", "View / site", "Measure", "Value ± spread", "Change vs first"], rows, (24, 28, 38, 44, 46))


def _charts(pdf: _Report, report: ReportData) -> None:
    if not report.charts:
        return
    pdf.add_page()
    pdf.heading("Progress charts", 16)
    pdf.paragraph("Each point is one visit; the bars show the measurement spread (± one standard deviation). "
                  "Dashed lines mark the sessions. Hollow grey points are photos marked for a retake.",
                  size=9, colour=_SOFT)
    for chart in report.charts:
        if pdf.get_y() > pdf.h - 100:
            pdf.add_page()
        pdf.heading(chart.title, 12)
        pdf.picture(chart.png, max_h=110)
        if chart.caption:
            pdf.paragraph(chart.caption, size=9, colour=_SOFT)


def _pairs(pdf: _Report, report: ReportData) -> None:
    for pair in report.pairs:
        pdf.add_page()
        pdf.heading(f"Before and after: {pair.title}", 16)
        pdf.picture(_pair_jpeg(pair), max_h=225)
        pdf.paragraph(pair.note or "The later photo is shown in the first photo's frame (lined up by the "
                      "alignment); colours are matched for viewing only.", size=9, colour=_SOFT)


def _method(pdf: _Report, report: ReportData) -> None:
    pdf.add_page()
    pdf.heading("How the measurements are made", 16)
    for head, text in method_paragraphs(vellus_um=report.vellus_um, terminal_um=report.terminal_um):
        pdf.heading(head, 11)
        pdf.paragraph(text)
    versions = ", ".join(sorted(set(report.analysis_versions))) or report.pipeline_version
    pdf.paragraph(f"Analysis pipeline version(s) of these measurements: {versions}. Software: scalp-tracker "
                  f"{__version__}.", size=9, colour=_SOFT)


def build_report_pdf(report: ReportData) -> bytes:
    """Lay out a consultation report.

    Parameters
    ----------
    report : ReportData
        Patient code (and the name only when it is to be printed), visits, summary sentences,
        measurements, chart PNGs, before/after pairs ((H, W, 3) uint8 arrays in one frame).

    Returns
    -------
    bytes
        An A4 PDF: cover and summary, charts, one page per before/after pair, the method page.

    Raises
    ------
    ValueError
        Missing patient code, no visits, an unknown metric, or a pair whose photos differ in shape.
    """
    _check(report)
    pdf = _Report(report)
    pdf.set_title(f"Hair progress report {report.patient_code}")
    pdf.set_subject("Scalp photo measurements across visits")
    pdf.set_creator(f"scalp-tracker {__version__}")
    pdf.set_producer("scalp-tracker (fpdf2)")
    pdf.set_lang("en")
    pdf.set_creation_date(_utc(report.generated_at))
    _cover(pdf, report)
    _charts(pdf, report)
    _pairs(pdf, report)
    _method(pdf, report)
    return bytes(pdf.output())
