"""The PDF layout (tracker.reports.pdf_report) and offline chart rendering (tracker.reports.chart_images)."""

from __future__ import annotations

import datetime as dt
import io
import struct

import altair as alt
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from tracker.reports.chart_images import chart_png
from tracker.reports.charts import progress_chart
from tracker.reports.pdf_report import (
    BeforeAfter,
    ChartImage,
    MeasurementRow,
    ReportData,
    VisitRow,
    build_report_pdf,
    format_measure,
)

NAME = "Zoë Łukasiewicz-Ōtsuka"
MADE = dt.datetime(2026, 6, 2, 9, 30, tzinfo=dt.UTC)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _timeline() -> pd.DataFrame:
    return pd.DataFrame({
        "visit_date": pd.to_datetime(["2026-01-12", "2026-02-09", "2026-03-09"]),
        "session_number": [1, 2, 3],
        "view_or_site": ["vertex-1"] * 3,
        "retake": [False, False, False],
        "density_per_cm2": [120.0, 126.0, 134.4],
        "density_per_cm2_sd": [4.0, 4.0, 5.0],
    })


@pytest.fixture(scope="module")
def chart() -> bytes:
    return chart_png(progress_chart(_timeline(), metric="density_per_cm2").properties(width=400), scale=1)


def _photo(seed: int, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 220, size=(240, 320, 3), dtype=np.uint8)
    if shift:
        image = np.roll(image, shift, axis=1)
        image[:, :shift] = 0  # the border a warp leaves
    return image


def _report(name: str | None = None, **changes) -> ReportData:
    visits = (VisitRow(dt.date(2026, 1, 12), 1, "mesotherapy (biotin cocktail, 2 ml)", 2),
              VisitRow(dt.date(2026, 2, 9), 2, "PRP", 2),
              VisitRow(dt.date(2026, 3, 9), 3, "", 2))
    measurements = (
        MeasurementRow(dt.date(2026, 1, 12), "vertex-1", "density_per_cm2", 120.0, 4.0, 0.0, None, reference=True),
        MeasurementRow(dt.date(2026, 3, 9), "vertex-1", "density_per_cm2", 134.4, 5.0, 12.0, True),
        MeasurementRow(dt.date(2026, 3, 9), "vertex", "hair_coverage", 0.61, 0.02, None, None, retake=True),
    )
    pairs = (
        BeforeAfter("vertex-1 close-up", _photo(1), _photo(1, shift=12), "12 Jan 2026 · session 1",
                    "09 Mar 2026 · session 3", ("Density 120 hairs/cm² ± 4",), ("Density 134 hairs/cm² ± 5",)),
        BeforeAfter("vertex view", _photo(2), _photo(3), "12 Jan 2026", "09 Mar 2026"),
    )
    fields = dict(patient_code="ZOE-01", generated_at=MADE, pipeline_version="0.1.0", visits=visits,
                  summary=("vertex-1 close-up: density +12 % since your first session, beyond measurement noise.",),
                  measurements=measurements, charts=(), pairs=pairs, patient_name=name)
    fields.update(changes)
    return ReportData(**fields)


def _read(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def _image_count(reader: PdfReader) -> int:
    count = 0
    for page in reader.pages:
        xobjects = page.get("/Resources", {}).get("/XObject", {})
        count += sum(1 for ref in xobjects.values() if ref.get_object().get("/Subtype") == "/Image")
    return count


@pytest.fixture(scope="module")
def named(chart) -> tuple[PdfReader, str]:
    return _read(build_report_pdf(_report(NAME, charts=(ChartImage("Close-ups: hair density", chart),))))


@pytest.fixture(scope="module")
def anonymous(chart) -> tuple[PdfReader, str]:
    return _read(build_report_pdf(_report(None, charts=(ChartImage("Close-ups: hair density", chart),))))


def test_pages_cover_charts_pairs_method(named):
    reader, text = named
    assert len(reader.pages) == 5  # cover, one chart page, two before/after pages, method
    assert [p.extract_text().count("Before and after") for p in reader.pages] == [0, 0, 1, 1, 0]
    assert "How the measurements are made" in reader.pages[4].extract_text()
    for number in range(1, 6):
        assert f"Page {number} of 5" in " ".join(reader.pages[number - 1].extract_text().split())
    assert "made 02 Jun 2026 09:30 UTC" in text and "pipeline version 0.1.0" in text


def test_text_holds_code_dates_changes_and_the_name(named):
    _, text = named
    assert "Patient ZOE-01" in text
    for day in ("12 Jan 2026", "09 Feb 2026", "09 Mar 2026"):
        assert day in text
    assert "density +12 % since your first session" in text
    assert "+12.0 % (beyond noise)" in text and "first (reference)" in text and "retake" in text
    assert "134 hairs/cm² ± 5" in text and "61.0 % ± 2.0" in text
    assert "thinner than 30 µm" in text and "60 µm or more" in text
    assert NAME in text


def test_name_left_out_unless_given(anonymous):
    reader, text = anonymous
    assert "ZOE-01" in text
    assert "Zoë" not in text and "Łukasiewicz" not in text and "Ōtsuka" not in text


@pytest.mark.parametrize("fixture", ["named", "anonymous"])
def test_images_embedded_and_metadata_without_names(request, fixture):
    reader, _ = request.getfixturevalue(fixture)
    assert _image_count(reader) == 3  # one chart, two before/after pictures
    meta = reader.metadata
    assert "/Author" not in meta
    values = " ".join(str(v) for v in meta.values())
    assert "ZOE-01" in meta["/Title"] and "Zoë" not in values and "Łukasiewicz" not in values
    assert meta["/Creator"].startswith("scalp-tracker")


def test_no_chart_no_pair_gives_cover_and_method_only():
    reader, text = _read(build_report_pdf(_report(charts=(), pairs=(), summary=())))
    assert len(reader.pages) == 2
    assert _image_count(reader) == 0
    assert "No change can be shown yet." in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"patient_code": "  "}, "patient code"),
        ({"visits": ()}, "at least one visit"),
        ({"generated_at": "2026-06-02"}, "datetime"),
        ({"measurements": (MeasurementRow(dt.date(2026, 1, 1), "v", "colour", 1.0),)}, "unknown metric"),
        ({"pairs": (BeforeAfter("x", _photo(1), _photo(1)[:100], "a", "b"),)}, "one frame"),
    ],
)
def test_bad_report_data_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        build_report_pdf(_report(**changes))


def test_report_data_must_be_report_data():
    with pytest.raises(ValueError, match="ReportData"):
        build_report_pdf({"patient_code": "X"})


@pytest.mark.parametrize(
    ("metric", "value", "sd", "expected"),
    [
        ("density_per_cm2", 152.4, 6.2, "Density 152 hairs/cm² ± 6"),
        ("hair_coverage", 0.6124, 0.0181, "Hair coverage 61.2 % ± 1.8"),
        ("mean_shaft_width_um", 61.26, None, "Mean shaft width 61.3 µm"),
        ("vellus_fraction", 0.125, 0.05, "Vellus share 12 % ± 5"),
        ("hair_count", 37.0, None, "Hairs in the field 37"),
        ("density_per_cm2", None, None, "Density: not measured"),
    ],
)
def test_format_measure(metric, value, sd, expected):
    assert format_measure(metric, value, sd) == expected


def test_format_measure_refuses_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        format_measure("shine", 1.0)


# --- chart_png ------------------------------------------------------------------------------------------


def test_chart_png_scale_sets_pixel_size(chart):
    spec = progress_chart(_timeline(), metric="density_per_cm2").properties(width=400)
    width_1, height_1 = _png_size(chart)
    width_2, height_2 = _png_size(chart_png(spec, scale=2))
    assert width_1 > 400 and height_1 > 280  # plot area plus axes, legend and labels
    assert abs(width_2 - 2 * width_1) <= 2 and abs(height_2 - 2 * height_1) <= 2


def test_chart_png_is_not_blank(chart):
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(chart)).convert("RGB"))
    assert (pixels < 128).any(axis=2).mean() > 0.005  # axes, text and the line are drawn
    assert (pixels == 255).all(axis=2).mean() > 0.5  # on a white background


def test_chart_png_accepts_a_spec_dict():
    spec = {"data": {"values": [{"a": 1, "b": 2}, {"a": 2, "b": 3}]}, "mark": "point",
            "encoding": {"x": {"field": "a", "type": "quantitative"}, "y": {"field": "b", "type": "quantitative"}}}
    assert _png_size(chart_png(spec, scale=1))[0] > 100


@pytest.mark.parametrize("url", ["https://example.com/data.json", "data/cars.json", "/etc/passwd"])
def test_chart_png_never_reads_urls_or_files(url):
    chart = alt.Chart(alt.UrlData(url)).mark_point().encode(x="a:Q", y="b:Q")
    with pytest.raises(ValueError, match="could not be rendered"):
        chart_png(chart)


@pytest.mark.parametrize("scale", [0, -1, 9, "2", True, float("nan")])
def test_chart_png_refuses_bad_scale(chart, scale):
    with pytest.raises(ValueError, match="scale"):
        chart_png({"mark": "point"}, scale=scale)


def test_chart_png_refuses_non_charts():
    with pytest.raises(ValueError, match="Altair chart"):
        chart_png(42)
