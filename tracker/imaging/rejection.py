"""One-line rejection messages for uploaded data, including a guess at what non-image data is.

Internal helper of :mod:`tracker.imaging.decode` and :mod:`tracker.imaging.heif_child`; the public entry
points are :func:`tracker.imaging.decode.decode_image` and :func:`tracker.imaging.decode.read_image_file`.

* :func:`reject` builds an :class:`~tracker.errors.ImageRejected` whose message names the input and is
  always a single line, e.g. ``"IMG_001.jpg: truncated or corrupt image data"``.
* :func:`too_large`, :func:`megapixels` and :func:`bomb_size` word the "image too large" messages the
  same way wherever the pixel limit is hit.
* :func:`sniff` explains data that no allowed image plugin recognised, from the magic numbers of common
  non-image files (PDF, ZIP, executables, HTML, text, ...) and of unsupported image formats (PSD, SVG,
  JPEG 2000, DICOM, ...).
"""

from __future__ import annotations

import re

from tracker.errors import ImageRejected

__all__ = ["bomb_size", "megapixels", "reject", "sniff", "too_large"]


# Magic numbers of common non-image (or unsupported image) files, for a helpful rejection message.
_SNIFF: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "not an image (PDF document)"),
    (b"PK\x03\x04", "not an image (ZIP archive)"),
    (b"PK\x05\x06", "not an image (ZIP archive)"),
    (b"\x1f\x8b", "not an image (gzip archive)"),
    (b"7z\xbc\xaf\x27\x1c", "not an image (7-Zip archive)"),
    (b"Rar!", "not an image (RAR archive)"),
    (b"\x7fELF", "not an image (executable)"),
    (b"MZ", "not an image (executable)"),
    (b"\xd0\xcf\x11\xe0", "not an image (Office document)"),
    (b"SQLite format 3\x00", "not an image (SQLite database)"),
    (b"%!PS", "unsupported image format (PostScript)"),
    (b"8BPS", "unsupported image format (Photoshop PSD)"),
    (b"\x00\x00\x00\x0cjP  ", "unsupported image format (JPEG 2000)"),
    (b"\xff\x4f\xff\x51", "unsupported image format (JPEG 2000)"),
)
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_HEIF_BRANDS = frozenset(
    b"ftyp" + brand
    for brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")
)
_VIDEO_BRANDS = frozenset((b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"3gp5"))
_TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r\f\b"
# Pillow's DecompressionBombError message: "Image size (123456789 pixels) exceeds limit of ..."
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def reject(name: str, reason: str) -> ImageRejected:
    """The exception for a rejected input: ``"<name>: <reason>"``, whitespace collapsed to one line.

    Parameters
    ----------
    name : str
        How the input is named in messages (usually the file name).
    reason : str
        Why it was rejected.

    Returns
    -------
    ImageRejected
        Not raised here: the caller raises it (``raise reject(...) from exc``).
    """
    text = f"{name}: {reason}"
    return ImageRejected(" ".join(text.split()))  # always a single line


def megapixels(width: int, height: int) -> str:
    """An image size for messages: ``"12000 x 9000 = 108.0 MP"``."""
    return f"{width} x {height} = {width * height / 1e6:.1f} MP"


def bomb_size(message: str) -> str | None:
    """The pixel count quoted in a Pillow ``DecompressionBombError`` message as ``"108.0 MP"``, or None."""
    match = _BOMB_PIXELS.search(message)
    return f"{int(match.group(1)) / 1e6:.1f} MP" if match else None


def too_large(name: str, size: str, max_pixels: int) -> ImageRejected:
    """The rejection for an image over the pixel limit: ``"<name>: image too large (<size> > 100.0 MP limit)"``.

    Parameters
    ----------
    name : str
        How the input is named in messages.
    size : str
        The size found, e.g. from :func:`megapixels` or :func:`bomb_size`.
    max_pixels : int
        The limit that was exceeded (width x height).

    Returns
    -------
    ImageRejected
        Not raised here.
    """
    return reject(name, f"image too large ({size} > {max_pixels / 1e6:.1f} MP limit)")


def sniff(data: bytes) -> str:
    """A rejection reason for data that no allowed image plugin recognised.

    Parameters
    ----------
    data : bytes
        The whole input (only the first 4 KB are looked at).

    Returns
    -------
    str
        ``"truncated or corrupt image data"`` when the data starts like an allowed image format,
        ``"not an image (<kind>)"`` for recognised non-image files, ``"unsupported image format (<kind>)"``
        for recognised image formats that are not accepted, else ``"unsupported image format"``.
    """
    head = data[:64]
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if head.startswith(_IMAGE_MAGIC) or head[4:12] in _HEIF_BRANDS or webp:
        # An allowed format's signature, but its opener gave up on the header.
        return "truncated or corrupt image data"
    if head[4:8] == b"ftyp" and head[8:12] in _VIDEO_BRANDS:
        return "not an image (video)"
    for magic, reason in _SNIFF:
        if head.startswith(magic):
            return reason
    stripped = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "not an image (HTML document)"
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in stripped):
        return "unsupported image format (SVG)"
    if stripped.startswith(b"<?xml"):
        return "not an image (XML document)"
    if stripped.startswith((b"{", b"[")):
        return "not an image (text)"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "unsupported image format (DICOM)"
    sample = data[:4096]
    try:
        sample.decode("utf-8")
        is_text = True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        is_text = exc.start >= len(sample) - 3
    if is_text and not sample.translate(None, _TEXT_BYTES + bytes(range(128, 256))):
        return "not an image (text)"
    return "unsupported image format"
