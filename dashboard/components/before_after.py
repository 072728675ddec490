"""A before/after slider for the dashboard: a Streamlit custom component (v2) that works offline.

The HTML, CSS and JavaScript ship beside this module (``before_after.html``, ``.css``, ``.js``) and are
passed inline to :func:`streamlit.components.v2.component`: nothing is loaded from a CDN or any other
host. The two photos travel inside the component's data as ``data:image/jpeg;base64`` URLs made here from
arrays the page already obtained through the access-checked services, so they never get a public URL.

The split moves by mouse or touch drag, by a click, and by the keyboard (arrow keys, Shift or Page Up/Down
for big steps, Home/End) on a focusable ``role="slider"`` with ARIA value text; when a drag ends or the
keys rest, the position is sent back to Python and returned by :func:`before_after`, so an exported wipe
can use the same split.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import cv2
import numpy as np
import streamlit as st
from PIL import Image

from tracker.imaging.display import checked_rgb

__all__ = ["before_after", "encode_data_url"]

_HERE = Path(__file__).resolve().parent
_COMPONENT = st.components.v2.component(
    "scalp_tracker_before_after",
    html=(_HERE / "before_after.html").read_text(encoding="utf-8"),
    css=(_HERE / "before_after.css").read_text(encoding="utf-8"),
    js=(_HERE / "before_after.js").read_text(encoding="utf-8"),
)


def encode_data_url(image: np.ndarray, *, max_side: int = 1400, quality: int = 88) -> tuple[str, int, int]:
    """A ``data:image/jpeg;base64,...`` URL of an RGB array, shrunk to MAX_SIDE, with no metadata.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB pixels. Not modified.
    max_side : int
        Longest side of the encoded image in pixels (larger images are shrunk with area averaging).
    quality : int
        JPEG quality, 50-95.

    Returns
    -------
    (url, width, height) : (str, int, int)
        The data URL and the encoded size.
    """
    pixels = checked_rgb(image)
    if not 64 <= int(max_side) <= 8000:
        raise ValueError(f"max_side must be between 64 and 8000, got {max_side}")
    if not 50 <= int(quality) <= 95:
        raise ValueError(f"quality must be between 50 and 95, got {quality}")
    height, width = pixels.shape[:2]
    scale = min(1.0, int(max_side) / max(height, width))
    if scale < 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=int(quality))
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), width, height


def _noop() -> None:
    """The position is read from the component's result; the callback only registers the state key."""


def before_after(
    before: np.ndarray,
    after: np.ndarray,
    *,
    labels: tuple[str, str] = ("Before", "After"),
    position: float = 0.5,
    key: str = "before_after",
    max_side: int = 1400,
) -> float:
    """Show the before/after slider and return the split the user chose.

    Parameters
    ----------
    before, after : (H, W, 3) uint8 ndarray
        Photos in one frame (AFTER warped to BEFORE), same shape; BEFORE is shown left of the split.
    labels : (str, str)
        Tags shown in the top corners and used in the alt and ARIA texts (dates, sessions).
    position : float
        Split as a fraction of the width in [0, 1] when the slider first appears (the user's later
        choice is kept across reruns).
    key : str
        Streamlit key of this slider instance (one per page and pair of photos).
    max_side : int
        Longest side of the images sent to the browser.

    Returns
    -------
    float
        The current split as a fraction of the width in [0, 1] (``position`` until the user moves it).
    """
    b, a = checked_rgb(before, name="before"), checked_rgb(after, name="after")
    if b.shape != a.shape:
        raise ValueError(f"before and after must be in one frame (same shape): {b.shape} vs {a.shape}")
    if not isinstance(position, int | float) or not 0.0 <= float(position) <= 1.0:
        raise ValueError(f"position must be a fraction in [0, 1], got {position!r}")
    if len(labels) != 2 or not all(isinstance(t, str) for t in labels):
        raise ValueError("labels must be two strings (before, after)")
    start = _current(key, float(position))
    before_url, width, height = encode_data_url(b, max_side=max_side)
    after_url, _, _ = encode_data_url(a, max_side=max_side)
    data = {"before": before_url, "after": after_url, "width": width, "height": height,
            "labels": list(labels), "position": start}
    result = _COMPONENT(key=key, data=data, default={"position": start}, on_position_change=_noop)
    value = getattr(result, "position", None)
    return float(value) if _is_fraction(value) else start


def _is_fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0


def _current(key: str, fallback: float) -> float:
    """The split the browser last reported for this instance (its widget state), else FALLBACK.

    Sending it back as the data's position keeps a remounted slider (page switch, new photos) where the
    user left it, and never moves a slider the user is dragging: the browser only follows a position
    that differs from the one it was last sent.
    """
    try:
        state = st.session_state.get(key)
    except (KeyError, AttributeError):
        state = None
    value = state.get("position") if isinstance(state, dict) else None
    return float(value) if _is_fraction(value) else fallback
