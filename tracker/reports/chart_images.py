"""Altair charts as PNG images, rendered offline with vl-convert (for the PDF report and exports).

vl-convert runs the Vega and Vega-Lite JavaScript bundled in its wheel (no browser, no Node.js). Every
conversion here passes ``allowed_base_urls=[]``, so a chart can never fetch data or images from the
network or the disk: the data must be inline, as Altair writes it (``datasets``). Text is set in the
bundled DejaVu Sans (``tracker/assets/fonts``, registered with vl-convert once per process), so a chart
looks the same on every machine and prints any name; number and date formats use vl-convert's bundled
``en-US`` locale.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

import vl_convert as vlc

from tracker.reports.labels import FONT_DIR

__all__ = ["CHART_FONT", "chart_png", "chart_spec"]

#: The family name of the bundled font, as vl-convert knows it once the folder is registered.
CHART_FONT = "DejaVu Sans"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_font_lock = threading.Lock()
_fonts_registered = False


def _register_fonts() -> None:
    global _fonts_registered
    with _font_lock:
        if not _fonts_registered:
            vlc.register_font_directory(str(FONT_DIR))
            _fonts_registered = True


def chart_spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite specification of an Altair chart (or a spec given as a mapping), as a new dict.

    Raises
    ------
    ValueError
        CHART is neither an Altair chart (anything with ``to_dict``) nor a mapping.
    """
    if isinstance(chart, Mapping):
        return dict(chart)
    to_dict = getattr(chart, "to_dict", None)
    if not callable(to_dict):
        raise ValueError(f"chart must be an Altair chart or a Vega-Lite spec dict, got {type(chart).__name__}")
    return to_dict()


def _vl_version(spec: Mapping[str, Any]) -> str | None:
    """The Vega-Lite version the spec was written for (``"6.4"``), when vl-convert has it bundled."""
    match = re.search(r"/v(\d+)\.(\d+)", str(spec.get("$schema", "")))
    if match is None:
        return None
    version = f"{match.group(1)}.{match.group(2)}"
    return version if version in vlc.get_vegalite_versions() else None


def chart_png(chart: Any, *, scale: float = 2, background: str = "white") -> bytes:
    """Render a chart to PNG bytes, offline.

    Parameters
    ----------
    chart : altair.Chart, altair.LayerChart, ... or dict
        An Altair chart, or its Vega-Lite specification, with inline data (as Altair writes it).
    scale : float
        Pixel density: 1 gives the chart's own size in CSS pixels, 2 (default) twice as many pixels
        each way, sharp in print. Between 0.25 and 8.
    background : str
        CSS colour behind the chart (default white: a PDF page has no transparency to show through).

    Returns
    -------
    bytes
        A PNG file (8-bit RGBA), without metadata.

    Raises
    ------
    ValueError
        Not a chart, a bad scale, or a chart vl-convert cannot render (for instance one that reads its
        data from a URL: every URL is refused).
    """
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0.25 <= float(scale) <= 8:
        raise ValueError(f"scale must be a number between 0.25 and 8, got {scale!r}")
    spec = chart_spec(chart)
    config = dict(spec.get("config") or {})
    config.setdefault("font", CHART_FONT)
    config.setdefault("background", background)
    spec["config"] = config
    _register_fonts()
    options: dict[str, Any] = {}
    version = _vl_version(spec)
    if version is not None:
        options["vl_version"] = version
    try:
        png = vlc.vegalite_to_png(spec, scale=float(scale), allowed_base_urls=[], format_locale="en-US",
                                  time_format_locale="en-US", **options)
    except Exception as exc:  # vl-convert reports JavaScript and Rust errors as plain exceptions
        raise ValueError(f"the chart could not be rendered: {exc}") from exc
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("the chart renderer returned no PNG image")
    return png
