"""What a decoded Pillow frame holds: 8-bit RGB pixels, source bit depth, lossiness, EXIF facts.

Internal helper of :func:`tracker.imaging.decode.decode_image`, which opens, limits and loads the image
and then uses these functions on the (possibly not yet loaded) Pillow image:

* :func:`bit_depth` and :func:`is_lossy` describe the source (read from the header, decoder tile or the
  raw bytes, before pixels are decoded);
* :func:`exif_facts` reads the EXIF orientation and ``DateTimeOriginal`` without ever raising;
* :func:`to_rgb_array` brings every pixel mode to a fresh C-contiguous (H, W, 3) uint8 RGB array: alpha
  and colour-key transparency are composited onto white, 16-bit and 32-bit integer grey is scaled by
  ``/ 257``, float grey is scaled from [0, 1], [0, 255] or 16-bit range, everything else goes through
  Pillow's ``convert("RGB")`` (CMYK, YCbCr, palette, bilevel, ...).
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
from PIL import Image

__all__ = ["LOSSY_FORMATS", "bit_depth", "exif_facts", "is_lossy", "to_rgb_array"]

#: Pillow formats that are always lossy-compressed (WEBP and TIFF depend on the file).
LOSSY_FORMATS = frozenset({"JPEG", "MPO", "HEIF", "AVIF"})
_EXIF_IFD = 0x8769
_TAG_ORIENTATION = 0x0112
_TAG_DATETIME_ORIGINAL = 36867


def bit_depth(img: Image.Image) -> int:
    """Bits per channel of the source, read from the (not yet loaded) decoder tile or the mode.

    Parameters
    ----------
    img : PIL.Image.Image
        The opened image; not modified.

    Returns
    -------
    int
        16 for 16-bit, 32-bit integer and float sources and for HEIF deeper than 8 bits, else 8.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return 16
    for tile in getattr(img, "tile", None) or ():
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and re.search(r";16|;32|;F", rawmode):
            return 16
    reported = img.info.get("bit_depth")  # pi-heif reports 8, 10 or 12
    if isinstance(reported, int) and reported > 8:
        return 16
    return 8


def is_lossy(img: Image.Image, fmt: str, data: bytes) -> bool:
    """Whether the source was lossy-compressed.

    Parameters
    ----------
    img : PIL.Image.Image
        The opened image (its ``info["compression"]`` is read for TIFF); not modified.
    fmt : str
        Pillow format name of the source.
    data : bytes
        The whole file (searched for the VP8 / VP8L chunk of a WEBP).

    Returns
    -------
    bool
        True for JPEG, MPO, HEIF, AVIF, lossy WEBP and JPEG- or WEBP-compressed TIFF.
    """
    if fmt in LOSSY_FORMATS:
        return True
    if fmt == "WEBP":
        # RIFF....WEBP, then (after VP8X/ICCP in the extended form) "VP8 " = lossy, "VP8L" = lossless.
        lossy_at, lossless_at = data.find(b"VP8 ", 12), data.find(b"VP8L", 12)
        return lossy_at != -1 and (lossless_at == -1 or lossy_at < lossless_at)
    if fmt == "TIFF":
        return str(img.info.get("compression", "")).lower() in ("jpeg", "tiff_jpeg", "webp")
    return False


def exif_facts(img: Image.Image) -> tuple[int, datetime | None]:
    """EXIF orientation and ``DateTimeOriginal``; never raises.

    Parameters
    ----------
    img : PIL.Image.Image
        The opened image; not modified.

    Returns
    -------
    orientation : int
        1..8; 1 when absent or junk.
    captured_at : datetime or None
        Naive datetime (camera local time); None when absent or not a possible date.
    """
    try:
        exif = img.getexif()
    except Exception:
        return 1, None
    orientation = 1
    try:
        value = int(exif.get(_TAG_ORIENTATION, 1))
        if 1 <= value <= 8:
            orientation = value
    except Exception:
        orientation = 1
    captured_at = None
    try:
        captured_at = _parse_exif_datetime(exif.get_ifd(_EXIF_IFD).get(_TAG_DATETIME_ORIGINAL))
    except Exception:
        captured_at = None
    return orientation, captured_at


def _parse_exif_datetime(value: object) -> datetime | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    text = value.strip().strip("\x00").strip()
    match = re.match(r"(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})", text)
    if not match:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))
    except ValueError:  # "0000:00:00 00:00:00" and other impossible dates
        return None


def _composite_on_white(img: Image.Image) -> np.ndarray:
    rgba = np.asarray(img.convert("RGBA"), dtype=np.uint16)
    alpha = rgba[..., 3:4]
    rgb = rgba[..., :3]
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out, dtype=np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Bring any Pillow mode to a fresh 8-bit RGB array.

    Parameters
    ----------
    img : PIL.Image.Image
        A loaded image in any mode; not modified.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8
        C-contiguous, sharing no memory with Pillow.

    Raises
    ------
    ValueError, TypeError, KeyError
        From Pillow, for a mode it cannot convert.
    """
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8, copy=True, order="C")
    keyed = mode in ("P", "L", "RGB") and "transparency" in img.info  # palette or colour-key transparency
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or keyed:
        return _composite_on_white(img)
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img).astype(np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return _grey_to_rgb(grey)
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(values.max()) if values.size else 0.0
        scale = 255.0 if top <= 1.0 else (1.0 if top <= 255.0 else 1.0 / 257.0)
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return _grey_to_rgb(grey)
    return np.array(img.convert("RGB"), dtype=np.uint8, copy=True, order="C")
