"""Decode HEIF/AVIF files in a short-lived child process, so a crashing decoder only rejects the file.

Internal helper of :func:`tracker.imaging.decode.decode_image`.

HEIF and AVIF files (ISO-BMFF, an ``ftyp`` box at offset 4) are opened, checked against the pixel limit
and fully decoded by pi-heif (or Pillow's AVIF plugin) in a child Python process. A malformed HEIC can
crash pi-heif's C code: measured, a one-byte change to a valid HEIC segfaults pi-heif 1.4.0 / libheif
1.23.0 inside ``Image.open`` (found by fuzzing), which would take the whole server down. In the child, a
crash only rejects the file, for about 0.1 s extra per HEIC.

The child sends back one JSON line (format, mode, size, orientation, bit depth, EXIF) followed by the raw
pixels; everything else (orientation, mode conversion, ...) runs in the parent, on an in-memory Pillow
image rebuilt from those bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from tracker.imaging.rejection import bomb_size, megapixels, reject, sniff, too_large

__all__ = ["open_isolated", "wants_isolation"]


# The child only opens, checks the size and loads; it never sees anything but the data on stdin.
_ISOLATED_OPEN = r"""
import io, json, sys, warnings
from PIL import Image
import pi_heif
pi_heif.register_heif_opener()
def reply(head, raw=b""):
    sys.stdout.buffer.write(json.dumps(head).encode() + b"\n" + raw)
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = Image.open(io.BytesIO(sys.stdin.buffer.read()), formats=("HEIF", "AVIF"))
        w, h = im.size
        if w * h > int(sys.argv[1]) or w <= 0 or h <= 0:
            reply({"size": [w, h]})
        else:
            im.load()
            exif = im.info.get("exif")
            reply({"format": im.format, "mode": im.mode, "size": [w, h],
                   "orientation": im.info.get("original_orientation"), "bit_depth": im.info.get("bit_depth"),
                   "exif": exif.hex() if isinstance(exif, bytes) else None}, im.tobytes())
except Exception as exc:
    reply({"error": type(exc).__name__, "message": str(exc)[:200],
           "unidentified": isinstance(exc, Image.UnidentifiedImageError)})
"""
_ISOLATED_TIMEOUT_S = 120


def wants_isolation(data: bytes) -> bool:
    """True when ``data`` is an ISO-BMFF file (HEIF, AVIF, ...) and a child interpreter can be started.

    Parameters
    ----------
    data : bytes
        The whole input.

    Returns
    -------
    bool
        Whether :func:`open_isolated` should decode it (``sys.executable`` is empty in some embedded
        interpreters, where no child can be started).
    """
    return data[4:8] == b"ftyp" and bool(sys.executable)


def open_isolated(data: bytes, *, name: str, max_pixels: int) -> Image.Image:
    """Open and fully decode a HEIF/AVIF file in a child process.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        How to name the input in error messages.
    max_pixels : int
        Largest accepted width x height, checked in the child before pixels are decoded.

    Returns
    -------
    PIL.Image.Image
        An in-memory image of the first frame, already loaded, with ``format`` set and ``info`` holding
        ``exif``, ``original_orientation`` and ``bit_depth`` when the decoder reported them.

    Raises
    ------
    ImageRejected
        The child crashed, failed or timed out, the data is not HEIF/AVIF, the image is over the pixel
        limit, or its pixel mode cannot be rebuilt.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-P", "-c", _ISOLATED_OPEN, str(max_pixels)],
            input=data,
            capture_output=True,
            timeout=_ISOLATED_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise reject(name, "truncated or corrupt image data (decoding timed out)") from exc
    head_line, _, raw = proc.stdout.partition(b"\n")
    try:
        head = json.loads(head_line)
    except ValueError:
        head = None
    if proc.returncode != 0 or not isinstance(head, dict):
        rc = proc.returncode
        cause = f"decoder crashed, signal {-rc}" if rc < 0 else f"decoder failed, exit status {rc}"
        raise reject(name, f"truncated or corrupt image data ({cause})")
    if head.get("unidentified"):
        raise reject(name, sniff(data))
    if "error" in head:
        size = bomb_size(str(head.get("message", "")))
        if head["error"] == "DecompressionBombError" and size is not None:
            raise too_large(name, size, max_pixels)
        raise reject(name, "truncated or corrupt image data")
    width, height = head["size"]
    if "mode" not in head:
        if width > 0 and height > 0:
            raise too_large(name, megapixels(width, height), max_pixels)
        raise reject(name, "truncated or corrupt image data")
    try:
        img = Image.frombytes(head["mode"], (width, height), raw)
    except (ValueError, TypeError) as exc:
        raise reject(name, f"unsupported pixel mode ({head['mode']})") from exc
    img.format = head["format"]
    if head.get("exif"):
        img.info["exif"] = bytes.fromhex(head["exif"])
    for key in ("orientation", "bit_depth"):
        if isinstance(head.get(key), int):
            img.info["original_orientation" if key == "orientation" else key] = head[key]
    return img
