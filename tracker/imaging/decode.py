"""Decode an uploaded photo once, one way, into an upright 8-bit RGB array.

Every image that enters the tracker goes through :func:`decode_image` (or :func:`read_image_file`):

1. the byte size is checked before anything is parsed, and empty input is refused;
2. Pillow reads the header only (``Image.open`` is lazy) from an allow-list of photo formats, and the
   pixel count is checked against ``max_pixels`` before a single pixel is decoded. Pillow's own
   ``DecompressionBombWarning`` is turned into an error while decoding, so no plugin allocates a huge
   frame behind our back. HEIF/AVIF files (pi-heif, Pillow's AVIF plugin) are opened, checked and
   decoded in a short-lived child process, because a malformed HEIC can crash pi-heif's C code
   (measured: a one-byte change to a valid file segfaults pi-heif 1.4.0); a crash there only rejects
   the file (about 0.1 s extra per HEIC);
3. the first frame is fully decoded. A plain 8-bit RGB or grey JPEG whose stream is complete (every
   segment up to the end marker) is decoded by ``cv2.imdecode`` with EXIF orientation ignored (about
   half the time of Pillow's load + convert + copy at 12 MP, the same pixels); everything else by
   Pillow (``load``; ``Image.verify`` lets truncated JPEGs through, and the global
   ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left alone, so truncated data is an error).
   ``import tracker`` sets ``OPENCV_IO_MAX_IMAGE_PIXELS`` (unless already set; OpenCV reads it once,
   when cv2 is imported) so OpenCV itself never allocates more than the default pixel limit;
4. every pixel mode is brought to 8-bit RGB (alpha composited onto white, 16-bit grey scaled by
   ``/ 257``) in a fresh C-contiguous array, which carries no metadata at all;
5. the EXIF orientation is applied once, by one rule for both decoders
   (:func:`tracker.imaging.frame.orient`; HEIF: pi-heif has already applied the ``irot``/``imir``
   boxes and reset the EXIF tag, so nothing is rotated twice).

Anything that goes wrong becomes :class:`~tracker.errors.ImageRejected` with a one-line message that
names the input, e.g. ``"IMG_001.jpg: truncated or corrupt image data"``.

:func:`encode_clean` re-encodes decoded pixels for storage without any metadata (no EXIF, GPS, serial
numbers, XMP, ICC profile or comments).

Helpers, one concern each: :mod:`tracker.imaging.rejection` (the one-line messages, and what non-image
data looks like), :mod:`tracker.imaging.heif_child` (the crash-isolated HEIF/AVIF decode) and
:mod:`tracker.imaging.frame` (bit depth, lossiness, EXIF facts and pixel-mode conversion of a frame).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from tracker.config import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from tracker.errors import ImageRejected
from tracker.imaging.frame import bit_depth, exif_facts, fast_jpeg_pixels, is_lossy, orient, to_rgb_array
from tracker.imaging.heif_child import open_isolated, wants_isolation
from tracker.imaging.rejection import bomb_size, megapixels, reject, sniff, too_large

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "decode_image",
    "encode_clean",
    "read_image_file",
    "to_grey",
]


#: Pillow format names accepted as photos. Anything else (EPS, PSD, ICO, fonts, ...) is refused before
#: its plugin sees the data.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "HEIF", "AVIF", "WEBP", "TIFF", "GIF", "BMP")
# Opened in this process. MPO has no opener of its own (the JPEG opener returns an MPO image when it
# finds an MP index); HEIF and AVIF are opened in a child process (see tracker.imaging.heif_child).
_OPEN_FORMATS = tuple(fmt for fmt in ALLOWED_FORMATS if fmt not in ("MPO", "HEIF", "AVIF"))

_JPEG_QUALITY = 95
_PNG_COMPRESS_LEVEL = 3


@dataclass(frozen=True)
class DecodedImage:
    """An upright 8-bit RGB photo and what was learnt about its source file.

    Attributes
    ----------
    pixels : ndarray, shape (H, W, 3), dtype uint8
        RGB pixels, C-contiguous, a fresh array (shares nothing with Pillow), EXIF orientation applied.
    format : str
        Pillow format name of the source: ``"JPEG"``, ``"PNG"``, ``"HEIF"``, ``"MPO"``, ``"TIFF"``, ...
    source_mode : str
        Pillow mode before conversion (``"RGB"``, ``"I;16"``, ``"CMYK"``, ``"P"``, ``"LA"``, ...).
    source_bit_depth : int
        8 or 16 bits per channel in the source (16 also for 32-bit integer and float sources).
    orientation : int
        EXIF orientation found in the file (1..8; 1 when absent or unreadable). The pixels are always
        upright, whatever this says.
    captured_at : datetime or None
        EXIF ``DateTimeOriginal`` as a naive datetime (camera local time), None when absent or junk.
    lossy : bool
        True when the source was lossy-compressed (JPEG, MPO, HEIF, AVIF, lossy WEBP, JPEG-in-TIFF).
    """

    pixels: np.ndarray
    format: str
    source_mode: str
    source_bit_depth: int
    orientation: int
    captured_at: datetime | None
    lossy: bool

    @property
    def height(self) -> int:
        """Height of :attr:`pixels` in pixels."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Width of :attr:`pixels` in pixels."""
        return int(self.pixels.shape[1])


def _mb(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header, for the message about an image Pillow refused as a bomb.

    Runs the allowed openers the way ``Image.open`` does, minus its size check; pixels are never read.
    """
    prefix = data[:16]
    for fmt in _OPEN_FORMATS:
        try:
            factory, accept = Image.OPEN[fmt]
            if accept is not None and not accept(prefix):
                continue
            with factory(io.BytesIO(data), None) as img:
                return int(img.size[0]), int(img.size[1])
        except Exception:
            continue
    return None


def _open_header(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and check the pixel count before anything is decoded."""

    def _open() -> Image.Image:
        return Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like: tolerated
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = _open()
            except Image.DecompressionBombWarning:
                # Above Pillow's warning threshold (Image.MAX_IMAGE_PIXELS) but below its hard error: read
                # the header again to apply OUR limit, which may be more generous (100 MP by default).
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = _open()
    except Image.DecompressionBombError as exc:
        dims = _header_size(data)
        size = megapixels(*dims) if dims is not None else bomb_size(str(exc)) or "too many pixels"
        raise too_large(name, size, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise reject(name, sniff(data)) from exc
    except Exception as exc:  # any parser error in a plugin's header code
        raise reject(name, "truncated or corrupt image data") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise reject(name, "truncated or corrupt image data")
    if width * height > max_pixels:
        raise too_large(name, megapixels(width, height), max_pixels)
    return img

def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DecodedImage:
    """Decode image bytes into an upright 8-bit RGB array, safely.

    Parameters
    ----------
    data : bytes
        The whole file as uploaded (JPEG, PNG, HEIC/HEIF, AVIF, WEBP, TIFF, GIF, BMP, MPO).
    name : str, optional
        How to name the input in error messages (usually the file name).
    max_pixels : int, optional
        Largest accepted width x height, checked from the header before pixels are decoded.
    max_bytes : int, optional
        Largest accepted size of ``data`` in bytes.

    Returns
    -------
    DecodedImage
        ``pixels`` of shape (H, W, 3), dtype uint8, plus what was learnt about the source.

    Raises
    ------
    ImageRejected
        Empty, too large in bytes or pixels, truncated or corrupt, not an image, or an unsupported
        format. The message is one line starting with ``name``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if max_pixels <= 0 or max_bytes <= 0:
        raise ValueError("max_pixels and max_bytes must be positive")
    size = len(data)
    if size > max_bytes:
        raise reject(name, f"file too large ({_mb(size)} > {_mb(max_bytes)} limit)")
    if size == 0:
        raise reject(name, "empty file")
    data = bytes(data)

    isolated = wants_isolation(data)  # HEIF/AVIF: crash-isolated (see tracker.imaging.heif_child)
    img = open_isolated(data, name=name, max_pixels=max_pixels) if isolated else _open_header(data, name, max_pixels)
    try:
        with img, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            fmt = str(img.format)
            source_mode = img.mode
            source_bit_depth = bit_depth(img)
            lossy = is_lossy(img, fmt, data)
            pixels = None if isolated else fast_jpeg_pixels(data, img)  # None: Pillow decodes it
            if pixels is None:
                img.load()  # first frame only; a truncated or corrupt stream raises here
                if img.size[0] * img.size[1] > max_pixels:  # a plugin may change size while loading
                    raise reject(name, "image too large (size changed while decoding)")
            orientation, captured_at = exif_facts(img)
            heif_orientation = img.info.get("original_orientation")
            if pixels is None:
                try:
                    pixels = to_rgb_array(img)
                except (ValueError, TypeError, KeyError) as exc:
                    raise reject(name, f"unsupported pixel mode ({img.mode})") from exc
            pixels = orient(pixels, orientation)  # once, never twice
            if isinstance(heif_orientation, int) and 1 <= heif_orientation <= 8:
                # pi-heif already applied irot/imir and reset the EXIF tag to 1: report what was found.
                orientation = heif_orientation
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise reject(name, f"image too large (> {max_pixels / 1e6:.1f} MP limit)") from exc
    except MemoryError as exc:
        raise reject(name, "image too large to decode (out of memory)") from exc
    except Exception as exc:  # OSError, SyntaxError, struct.error, ValueError, ... from any plugin
        raise reject(name, "truncated or corrupt image data") from exc

    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.size == 0:
        raise reject(name, "truncated or corrupt image data")
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        source_mode=source_mode,
        source_bit_depth=source_bit_depth,
        orientation=orientation,
        captured_at=captured_at,
        lossy=lossy,
    )


def read_image_file(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DecodedImage:
    """Read and decode an image file; the file size is checked before it is read.

    Parameters
    ----------
    path : str or path-like
        The file. Error messages name it as given.
    max_pixels, max_bytes : int, optional
        As in :func:`decode_image`.

    Returns
    -------
    DecodedImage

    Raises
    ------
    ImageRejected
        Missing or unreadable file, or any reason of :func:`decode_image`.
    """
    name = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise reject(name, "no such file") from exc
    except OSError as exc:
        raise reject(name, f"cannot read file ({exc.strerror or exc.__class__.__name__})") from exc
    if not os.path.isfile(path):
        raise reject(name, "not a regular file")
    if st.st_size > max_bytes:
        raise reject(name, f"file too large ({_mb(st.st_size)} > {_mb(max_bytes)} limit)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise reject(name, f"cannot read file ({exc.strerror or exc.__class__.__name__})") from exc
    return decode_image(data, name=name, max_pixels=max_pixels, max_bytes=max_bytes)


def _check_pixels(image: np.ndarray, *, allow_grey: bool) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    ok_rgb = image.ndim == 3 and image.shape[2] == 3
    ok_grey = allow_grey and image.ndim == 2
    if not (ok_rgb or ok_grey):
        expected = "(H, W, 3) or (H, W)" if allow_grey else "(H, W, 3)"
        raise ValueError(f"image must have shape {expected}, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty, shape {image.shape}")
    return image


def encode_clean(image: DecodedImage | np.ndarray, *, lossy: bool | None = None) -> tuple[bytes, str]:
    """Re-encode pixels for storage with no metadata at all.

    Parameters
    ----------
    image : DecodedImage or ndarray
        Decoded image, or pixels of shape (H, W, 3) (RGB) or (H, W), dtype uint8.
    lossy : bool, optional
        JPEG (quality 95, no chroma subsampling) when true, PNG (compress level 3) when false.
        Default: the source's :attr:`DecodedImage.lossy`; False for a bare array.

    Returns
    -------
    data : bytes
        The encoded file: no EXIF, GPS, serial numbers, timestamps, XMP, ICC profile or comments.
        The same pixels always give the same bytes.
    media_type : str
        ``"image/jpeg"`` or ``"image/png"``.
    """
    if isinstance(image, DecodedImage):
        pixels = image.pixels
        if lossy is None:
            lossy = image.lossy
    else:
        pixels = image
    pixels = _check_pixels(pixels, allow_grey=True)
    if lossy is None:
        lossy = False
    img = Image.fromarray(np.ascontiguousarray(pixels))
    out = io.BytesIO()
    if lossy:
        img.save(out, format="JPEG", quality=_JPEG_QUALITY, subsampling=0, optimize=False)
        return out.getvalue(), "image/jpeg"
    img.save(out, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return out.getvalue(), "image/png"


def to_grey(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB image: ``0.299 R + 0.587 G + 0.114 B``, rounded.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (H, W), dtype uint8
        RGB pixels (a grey image is returned as a copy).

    Returns
    -------
    ndarray, shape (H, W), dtype uint8
        A new array; the input is not modified.
    """
    image = _check_pixels(image, allow_grey=True)
    if image.ndim == 2:
        return image.copy()
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
