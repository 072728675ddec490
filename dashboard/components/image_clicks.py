"""A photo with overlay marks that returns where the user clicked, in image pixels (offline component).

A Streamlit custom component (``st.components.v2``) whose JavaScript and CSS ship beside this module
(``image_clicks.js``, ``image_clicks.css``) and are passed inline: nothing is fetched from a CDN or any
other host. The photo travels inside the component's data as a ``data:image/jpeg;base64`` URL made here
from an array the page obtained through the access-checked services, so it never gets a public
``/media`` URL. Marks (circles, crosses, numbered points) and a region polygon are drawn as SVG in
image coordinates; a click comes back in pixels of the full-size image, whatever the display size and
the size of the (reduced) preview sent to the browser.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import streamlit as st

__all__ = ["MARK_KINDS", "component_data", "image_clicks", "jpeg_data_url"]

#: Styles of marks: automatic detection, manual mark saved, pending add, pending removal, picked point.
MARK_KINDS = ("auto", "manual", "add", "remove", "point")

_HERE = Path(__file__).resolve().parent
_COMPONENT = st.components.v2.component(
    "scalp_tracker_image_clicks",
    js=(_HERE / "image_clicks.js").read_text(encoding="utf-8"),
    css=(_HERE / "image_clicks.css").read_text(encoding="utf-8"),
)


def jpeg_data_url(image: np.ndarray, *, max_side: int = 1200, quality: int = 88) -> str:
    """A ``data:image/jpeg;base64,...`` URL of an RGB image, its longer side shrunk to ``max_side``.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB pixels; never mutated. (The encoded JPEG carries no metadata.)
    max_side : int
        Longest side of the preview sent to the browser (area averaging when shrinking).
    quality : int
        JPEG quality, 50-95.
    """
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 1:
        raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got {pixels.dtype} {pixels.shape}")
    if not 16 <= max_side <= 8000:
        raise ValueError(f"max_side must be 16-8000, got {max_side}")
    if not 50 <= quality <= 95:
        raise ValueError(f"quality must be 50-95, got {quality}")
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the image could not be encoded as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _mark(mark: dict[str, Any], index: int) -> dict[str, Any]:
    try:
        x, y = float(mark["x"]), float(mark["y"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"mark {index} needs numeric x and y, got {mark!r}") from exc
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"mark {index} has non-finite coordinates")
    kind = mark.get("kind", "auto")
    if kind not in MARK_KINDS:
        raise ValueError(f"mark {index} kind must be one of {', '.join(MARK_KINDS)}, got {kind!r}")
    out: dict[str, Any] = {"x": round(x, 2), "y": round(y, 2), "kind": kind, "r": float(mark.get("r", 6.0))}
    if mark.get("label") is not None:
        out["label"] = str(mark["label"])
    return out


def component_data(
    image: np.ndarray,
    *,
    marks: Sequence[dict[str, Any]] = (),
    polygon: Sequence[Sequence[float]] | np.ndarray | None = None,
    closed: bool = True,
    max_width: int = 900,
    preview_side: int = 1200,
    alt: str = "photo",
) -> dict[str, Any]:
    """The JSON data the component draws: preview URL, full image size, marks and polygon in image pixels.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        The full-size photo; coordinates of ``marks``, ``polygon`` and the returned click are its pixels.
    marks : sequence of dict
        ``x``, ``y`` (image px), optional ``kind`` (one of :data:`MARK_KINDS`), ``r`` (radius, image
        px) and ``label``.
    polygon : (N, 2) array_like, optional
        Region outline in image pixels (drawn open while ``closed`` is False, e.g. while drawing).
    max_width : int
        Largest display width in CSS pixels (the image shrinks with the page).
    preview_side : int
        Longest side of the JPEG sent to the browser.
    alt : str
        Text alternative of the photo.
    """
    height, width = np.asarray(image).shape[:2]
    if max_width < 50:
        raise ValueError(f"max_width must be at least 50 px, got {max_width}")
    poly: list[list[float]] = []
    if polygon is not None:
        points = np.asarray(polygon, dtype=float).reshape(-1, 2) if len(polygon) else np.zeros((0, 2))
        if not np.all(np.isfinite(points)):
            raise ValueError("polygon has non-finite coordinates")
        poly = points.round(2).tolist()
    return {
        "src": jpeg_data_url(image, max_side=preview_side),
        "width": int(width),
        "height": int(height),
        "marks": [_mark(m, i) for i, m in enumerate(marks)],
        "polygon": poly,
        "closed": bool(closed),
        "max_width": int(max_width),
        "alt": alt,
    }


def _checked_click(click: Any, width: int, height: int) -> dict[str, float] | None:
    """A click payload from the browser as ``{"x", "y", "seq"}`` inside the image, or None."""
    if not isinstance(click, dict):
        return None
    try:
        x, y, seq = float(click["x"]), float(click["y"]), int(click.get("seq", 0) or 0)
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height):
        return None
    return {"x": x, "y": y, "seq": seq}


def image_clicks(
    image: np.ndarray,
    *,
    key: str,
    marks: Sequence[dict[str, Any]] = (),
    polygon: Sequence[Sequence[float]] | np.ndarray | None = None,
    closed: bool = True,
    max_width: int = 900,
    preview_side: int = 1200,
    alt: str = "photo",
    on_click: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float] | None:
    """Show a photo with marks; return the click of this run as ``{"x", "y", "seq"}`` (image px) or None.

    A click is returned once, in the script run it triggers (a Streamlit trigger value); ``seq``
    counts the clicks of this component instance in the browser. ``on_click`` (optional) is called
    with the click *before* the script runs again, like a widget callback, so the page draws the
    result of the click in the same run. Other arguments as :func:`component_data`.
    """
    data = component_data(image, marks=marks, polygon=polygon, closed=closed, max_width=max_width,
                          preview_side=preview_side, alt=alt)
    width, height = data["width"], data["height"]

    def _callback() -> None:
        if on_click is None:
            return
        state = st.session_state.get(key)
        click = _checked_click(state.get("click") if state is not None else None, width, height)
        if click is not None:
            on_click(click)

    result = _COMPONENT(key=key, data=data, on_click_change=_callback)
    return _checked_click(result.get("click") if result is not None else None, width, height)
