"""A corpus of bad and odd inputs, built in memory, for every test that must refuse them cleanly.

Use :func:`bad_inputs` for the whole list (each with the file name to report and a phrase the rejection
message must contain), or the builders (:func:`small_jpeg`, :func:`small_png`, :func:`png_bomb`, ...)
on their own. Nothing is written to disk and no file of ``../shared/data`` is used.

Example
-------
>>> from tests.bad_inputs import bad_inputs
>>> for case in bad_inputs():
...     with pytest.raises(ImageRejected, match=case.reason):
...         decode_image(case.data, name=case.name, **case.options)
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "BadInput",
    "bad_inputs",
    "corrupt_jpeg_header",
    "heic_crasher",
    "pattern",
    "png_bomb",
    "png_chunk",
    "small_jpeg",
    "small_png",
]


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class BadInput:
    """One bad input: what to call it, its bytes, and what the rejection must say."""

    name: str  # file name to pass as ``name=`` (the message must start with it)
    data: bytes
    reason: str  # a phrase the one-line message must contain
    options: dict = field(default_factory=dict)  # extra keyword arguments for decode_image

    def __repr__(self) -> str:  # short ids in pytest output
        return f"BadInput({self.name!r}, {len(self.data)} bytes)"


def pattern(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 test picture: smooth gradients plus a few flat blocks (compresses well)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), ((x + y) * 4) % 256], axis=-1
    ).astype(np.uint8)
    for _ in range(3):
        y0, x0 = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
        img[y0 : y0 + height // 4, x0 : x0 + width // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    return img


@functools.cache
def heic_pattern() -> np.ndarray:
    """(64, 96, 3) uint8 picture of tests/fixtures/*.heic, as tests/fixtures/make_heic_fixtures.py draws it:
    red top-left 24x40, green top-right, blue bottom-left, white bottom-right."""
    img = np.zeros((64, 96, 3), np.uint8)
    img[:24, :40] = (220, 30, 30)
    img[:24, 40:] = (30, 200, 40)
    img[24:, :40] = (30, 40, 210)
    img[24:, 40:] = (240, 240, 240)
    return img


def small_jpeg(height: int = 48, width: int = 64, progressive: bool = False) -> bytes:
    """A small valid baseline (or progressive) JPEG of :func:`pattern`."""
    out = io.BytesIO()
    Image.fromarray(pattern(height, width)).save(out, "JPEG", quality=90, progressive=progressive)
    return out.getvalue()


@functools.cache
def small_png(height: int = 48, width: int = 64) -> bytes:
    """A small valid RGB PNG of :func:`pattern`."""
    out = io.BytesIO()
    Image.fromarray(pattern(height, width)).save(out, "PNG")
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@functools.cache
def png_bomb(width: int = 20000, height: int = 20000, complete: bool = True) -> bytes:
    """A small grey PNG declaring ``width x height`` pixels of zeros (a decompression bomb).

    With ``complete`` the IDAT really holds every row (about 400 KB for 20000 x 20000, 400 MB once
    inflated); otherwise only the first rows, which keeps it tiny and makes it truncated as well.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    squash = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    rows = height if complete else min(height, 16)
    block = row * max(1, (1 << 20) // len(row))
    per_block = len(block) // len(row)
    parts = []
    done = 0
    while done + per_block <= rows:
        parts.append(squash.compress(block))
        done += per_block
    parts.append(squash.compress(row * (rows - done)))
    parts.append(squash.flush())
    idat = b"".join(parts)
    return (
        _PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def corrupt_jpeg_header(data: bytes | None = None) -> bytes:
    """A JPEG whose start-of-image marker is followed by garbage instead of valid segments."""
    data = small_jpeg() if data is None else data
    rng = np.random.default_rng(7)
    garbage = bytes(rng.integers(0, 256, 300, dtype=np.uint8))
    return data[:3] + garbage.replace(b"\xff", b"\x00") + data[303:]


def _zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IMG_0001.jpg", small_jpeg())
    return out.getvalue()


def _png_bad_crc() -> bytes:
    data = bytearray(small_png())
    data[29] ^= 0xFF  # inside the IHDR CRC (bytes 29..32)
    return bytes(data)


def heic_crasher() -> bytes | None:
    """tests/fixtures/pattern_orientation6.heic with one byte changed (offset 177: 0x78 -> 0xA3).

    Found by fuzzing: pi-heif 1.4.0 (libheif 1.23.0) segfaults in ``Image.open`` on it, so decoding it
    in-process would kill the server. None when the fixture is absent.
    """
    path = Path(__file__).parent / "fixtures" / "pattern_orientation6.heic"
    if not path.is_file():
        return None
    data = bytearray(path.read_bytes())
    data[177] = 0xA3
    return bytes(data)


def bad_inputs() -> list[BadInput]:
    """Every bad input of the corpus; each must raise ImageRejected with a one-line message."""
    jpeg = small_jpeg()
    png = small_png()
    zero_width = struct.pack(">IIBBBBB", 0, 10, 8, 0, 0, 0, 0)
    random_bytes = bytes(np.random.default_rng(12345).integers(0, 256, 4096, dtype=np.uint8))
    heic = heic_crasher()
    extra = []
    if heic:
        extra = [
            BadInput("crasher.heic", heic, "truncated or corrupt"),
            BadInput("truncated.heic", heic[: len(heic) // 2], "truncated or corrupt"),
        ]
    return extra + [
        BadInput("empty.jpg", b"", "empty file"),
        BadInput("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated or corrupt"),
        BadInput("truncated_progressive.jpg", small_jpeg(progressive=True)[:400], "truncated or corrupt"),
        BadInput("truncated.png", png[: len(png) // 2], "truncated or corrupt"),
        BadInput("header_only.png", png[:33], "truncated or corrupt"),
        BadInput("bad_crc.png", _png_bad_crc(), "truncated or corrupt"),
        BadInput("corrupt_header.jpg", corrupt_jpeg_header(), "truncated or corrupt"),
        BadInput("doc.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "(PDF"),
        BadInput(
            "page.jpg",
            b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body>Session expired</body></html>\n",
            "HTML document",
        ),
        BadInput("photos.jpg", _zip_archive(), "ZIP archive"),
        BadInput("noise.jpg", random_bytes, "unsupported image format"),
        BadInput("clip.jpg", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64), "(video)"),
        BadInput("notes.png", "Patient notes: vertex thinning, säule 3.\n".encode() * 20, "(text)"),
        BadInput("drawing.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        BadInput("bomb.png", png_bomb(), "20000 x 20000"),
        BadInput("bomb_small_limit.png", png_bomb(4000, 3000, complete=False), "image too large",
                 {"max_pixels": 10_000_000}),
        BadInput("big.jpg", jpeg + b"\x00" * 2048, "file too large", {"max_bytes": len(jpeg) + 1024}),
        BadInput("zero_width.png", _PNG_SIGNATURE + png_chunk(b"IHDR", zero_width), "truncated or corrupt"),
    ]
