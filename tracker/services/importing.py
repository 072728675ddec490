"""Guessing the kind and view of a photo from its file name, for batch imports and upload forms."""

from __future__ import annotations

import re
from pathlib import Path

from tracker.imaging.roi import GLOBAL_VIEWS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".tif", ".tiff", ".webp", ".mpo", ".bmp")

_ALIASES = {
    "crown": "vertex", "top": "vertex", "front": "frontal", "hairline": "frontal",
    "temple_left": "temporal_left", "left_temple": "temporal_left", "temporal-left": "temporal_left",
    "temple_right": "temporal_right", "right_temple": "temporal_right", "temporal-right": "temporal_right",
    "back": "occipital", "part": "midline_part", "midline": "midline_part", "midline-part": "midline_part",
}
_CLOSEUP = re.compile(r"^(?:closeup|trichoscopy|tricho|dermoscopy|macro)[-_ ]+(?P<site>[a-z0-9][a-z0-9_-]*)$")


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside a folder (by suffix), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def classify_filename(name: str, *, kind: str | None = None, view: str | None = None) -> tuple[str, str]:
    """Return ``(kind, view_or_site)`` for a file, from explicit options or its name.

    ``vertex.jpg`` -> ("global", "vertex"); ``closeup-vertex-1.jpg`` -> ("closeup", "vertex-1");
    explicit ``kind``/``view`` win. ValueError when neither tells.
    """
    stem = Path(name).stem.lower().strip()
    if kind and view:
        return kind, view
    match = _CLOSEUP.match(stem)
    if match and kind in (None, "closeup"):
        return "closeup", view or match.group("site").replace(" ", "-")
    candidate = _ALIASES.get(stem, stem.replace("-", "_"))
    if candidate in GLOBAL_VIEWS and kind in (None, "global"):
        return "global", view or candidate
    if kind == "closeup" and view is None:
        return "closeup", re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-")[:40] or "site-1"
    if kind == "global" and view is None:
        raise ValueError(f"{name}: cannot tell the global view from the name; give --view")
    raise ValueError(
        f"{name}: cannot tell the kind of photo from the name "
        f"(use e.g. vertex.jpg or closeup-vertex-1.jpg, or give --kind and --view)"
    )
