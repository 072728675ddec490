"""What a decoded frame holds: 8-bit RGB pixels, source bit depth, lossiness, EXIF facts, orientation.

Internal helper of :func:`tracker.imaging.decode.decode_image`, which opens, limits and loads the image
and then uses these functions on the (possibly not yet loaded) Pillow image:

* :func:`bit_depth` and :func:`is_lossy` describe the source (read from the header, decoder tile or the
  raw bytes, before pixels are decoded);
* :func:`exif_facts` reads the EXIF orientation and ``DateTimeOriginal`` without ever raising;
* :func:`to_rgb_array` brings every pixel mode to a fresh C-contiguous (H, W, 3) uint8 RGB array: alpha
  and colour-key transparency are composited onto white, 16-bit and 32-bit integer grey is scaled by
  ``/ 257``, float grey is scaled from [0, 1], [0, 255] or 16-bit range, everything else goes through
  Pillow's ``convert("RGB")`` (CMYK, YCbCr, palette, bilevel, ...);
* :func:`fast_jpeg_pixels` decodes the pixels of a complete 8-bit RGB or grey JPEG with
  ``cv2.imdecode`` (measured on a 12 MP photo: 69 ms against 140-160 ms for Pillow's load + copy, and
  the same pixels), EXIF orientation ignored; anything else returns None and Pillow decodes it;
* :func:`orient` is the one orientation rule, applied to the pixels of both decoders.
"""

from __future__ import annotations

import re
from datetime import datetime

import cv2
import numpy as np
from PIL import Image

__all__ = ["LOSSY_FORMATS", "bit_depth", "exif_facts", "fast_jpeg_pixels", "is_lossy", "jpeg_complete", "orient",
            "to_rgb_array"]

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


# A JPEG marker inside or after entropy-coded data: 0xFF followed by anything but a stuffed zero, a
# restart marker (RST0-7) or another 0xFF (fill byte).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI = 0xDA, 0xD9
_CV2_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION


def jpeg_complete(data: bytes) -> bool:
    """Whether the first JPEG image in ``data`` is structurally whole: every segment, then an EOI.

    libjpeg (in ``cv2.imdecode``) fills a truncated stream with grey and only warns, where Pillow
    raises; a stream that this walk cannot follow to its end marker is therefore left to Pillow.
    Marker segments are skipped by their length and entropy-coded data by searching for the next
    real marker, so EOI bytes inside an EXIF thumbnail or a comment are never mistaken for the end.
    For an MPO file this checks the first (primary) image, the one that is decoded.

    Parameters
    ----------
    data : bytes
        The whole file.

    Returns
    -------
    bool
        False for anything unusual (no SOI, a marker out of place, a length past the end, no EOI).
    """
    size = len(data)
    if not data.startswith(b"\xff\xd8"):
        return False
    pos, scanned = 2, False
    while True:
        if scanned:
            match = _JPEG_MARKER.search(data, pos)
            if match is None:
                return False
            pos = match.start()
        while pos < size and data[pos] == 0xFF and pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 2 > size or data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == _EOI:
            return scanned
        if marker == 0xD8 or marker == 0x01 or 0xD0 <= marker <= 0xD7 or pos + 4 > size:
            return False  # no length-less marker is expected here
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > size:
            return False
        pos += 2 + length
        scanned = scanned or marker == _SOS


def fast_jpeg_pixels(data: bytes, img: Image.Image) -> np.ndarray | None:
    """The stored (not yet oriented) pixels of a plain JPEG, decoded by ``cv2.imdecode``; else None.

    Used only for a JPEG or MPO whose Pillow mode is ``RGB`` or ``L`` (8-bit; CMYK and YCCK go to
    Pillow) and whose first image is complete (:func:`jpeg_complete`). Both libraries decode with
    libjpeg-turbo's defaults, so the pixels equal Pillow's. The size must match the header Pillow
    read (and checked against the pixel limit); ``OPENCV_IO_MAX_IMAGE_PIXELS`` (set by
    :mod:`tracker.imaging.decode`) caps what OpenCV may allocate in any case.

    Parameters
    ----------
    data : bytes
        The whole file.
    img : PIL.Image.Image
        The same file opened by Pillow (header read, pixels not loaded); not modified.

    Returns
    -------
    ndarray, shape (H, W, 3), dtype uint8, or None
        RGB pixels, C-contiguous, a fresh array; None when Pillow must decode the file.
    """
    if img.format not in ("JPEG", "MPO") or img.mode not in ("RGB", "L") or not jpeg_complete(data):
        return None
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS)
    except cv2.error:
        return None
    width, height = img.size
    if pixels is None or pixels.shape != (height, width, 3) or pixels.dtype != np.uint8:
        return None
    return np.ascontiguousarray(pixels)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to stored pixels, as ``PIL.ImageOps.exif_transpose`` does.

    Parameters
    ----------
    pixels : ndarray, shape (H, W, C) or (H, W)
        Pixels as stored in the file; not modified.
    orientation : int
        EXIF orientation; 1 (or anything outside 2..8) leaves the pixels as they are.

    Returns
    -------
    ndarray
        Upright pixels: the input itself for orientation 1, else a new C-contiguous array (5-8 swap
        height and width).
    """
    if orientation == 2:
        return cv2.flip(pixels, 1)  # mirrored left-right
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(pixels, 0)  # mirrored top-bottom
    if orientation == 5:
        return np.ascontiguousarray(np.swapaxes(pixels, 0, 1))  # transpose
    if orientation == 6:
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return np.ascontiguousarray(np.swapaxes(pixels, 0, 1)[::-1, ::-1])  # transverse
    if orientation == 8:
        return cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels
