"""Metadata stripping (issue 6, privacy): what a camera writes into a photo never reaches storage or export.

Photos carrying GPS coordinates, the camera's BodySerialNumber, DateTimeOriginal, make/model, XMP and a
JPEG comment (and a PNG with eXIf / tEXt / iTXt XMP chunks, a WEBP with EXIF and XMP, the HEIC fixture with
its DateTimeOriginal) go in through ``tracker.services.ingest_photo``. The stored blob must contain
none of the marker strings, and its structure must hold only pixel segments: for JPEG only the JFIF
APP0, quantisation / Huffman tables, frame and scan headers; for PNG only IHDR, PLTE, tRNS, IDAT, IEND.

Export path: images leave the tracker through :func:`tracker.imaging.decode.encode_clean` (the pixels of
``tracker.services.load_pixels`` re-encoded); the same checks are applied to its output, lossy and
lossless. The clinical capture time is kept in the database (``Photo.captured_at``) by design, not in
any image bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from tracker.config import Settings
from tracker.imaging.decode import encode_clean
from tracker.services import Actor, create_patient, ingest_photo, load_pixels, open_visit
from tracker.store import Store

ACTOR = Actor.system("test")
FIXTURES = Path(__file__).parent / "fixtures"

SERIAL = "SN-93F7K2XQ-BODY"
WHEN = "2023:07:14 09:26:53"
XMP_SECRET = "xmp-secret-patient-4711"
COMMENT = "comment-secret-Jane-Doe"
GPS_TEXT = "gps-secret-track-51N"
MAKE = "SecretCamMaker"
MARKERS = [SERIAL, WHEN, XMP_SECRET, COMMENT, GPS_TEXT, MAKE, "http://ns.adobe.com/xap/1.0/", "Exif\x00\x00"]

_JPEG_ALLOWED = {0xE0, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDA, 0xDD}  # APP0 JFIF, DQT, DHT, SOF0-2, SOS, DRI
_PNG_ALLOWED = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = MAKE  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0132] = WHEN  # DateTime
    ifd = exif.get_ifd(0x8769)  # Exif IFD
    ifd[0x9003] = WHEN  # DateTimeOriginal
    ifd[0xA431] = SERIAL  # BodySerialNumber
    ifd[0x9286] = b"ASCII\x00\x00\x00" + COMMENT.encode()  # UserComment
    gps = exif.get_ifd(0x8825)  # GPS IFD
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.12)
    gps[3] = "E"
    gps[4] = (2.0, 21.0, 7.5)
    gps[27] = b"ASCII\x00\x00\x00" + GPS_TEXT.encode()  # GPSProcessingMethod
    return exif


def _xmp() -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>{XMP_SECRET}'
            f"</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>").encode()


def _pixels() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:96]
    return np.stack([x * 2, y * 3, (x + y) % 256], axis=-1).astype(np.uint8)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(_pixels()).save(out, "JPEG", quality=92, exif=_exif(), xmp=_xmp(), comment=COMMENT.encode())
    return out.getvalue()


def _png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", COMMENT)
    info.add_text("Author", MAKE)
    info.add_itxt("XML:com.adobe.xmp", _xmp().decode() + " http://ns.adobe.com/xap/1.0/")
    out = io.BytesIO()
    Image.fromarray(_pixels()).save(out, "PNG", pnginfo=info, exif=_exif())
    return out.getvalue()


def _webp() -> bytes:
    out = io.BytesIO()
    Image.fromarray(_pixels()).save(out, "WEBP", lossless=True, exif=_exif(), xmp=_xmp())
    return out.getvalue()


def _jpeg_markers(data: bytes) -> list[int]:
    """Marker codes of every segment before the first scan, and the scan itself (then stop)."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    markers, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF, f"bad segment at {pos}"
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xE0:
            assert data[pos + 4 : pos + 9] == b"JFIF\x00"
        pos += 2 + length
    tail = data[data.rindex(b"\xff\xd9") + 2 :]
    assert tail == b"", "bytes after the end-of-image marker"
    return markers


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def assert_clean(data: bytes) -> None:
    """No marker string, and nothing but pixel structure, in an image file's bytes."""
    found = [m for m in MARKERS if m.encode() in data]
    assert found == [], f"metadata survived: {found}"
    if data[:2] == b"\xff\xd8":
        assert set(_jpeg_markers(data)) <= _JPEG_ALLOWED
    else:
        assert set(_png_chunks(data)) <= _PNG_ALLOWED
    with Image.open(io.BytesIO(data)) as img:
        assert not img.getexif() and "xmp" not in img.info and "comment" not in img.info
        assert "icc_profile" not in img.info and "exif" not in img.info


@pytest.fixture(scope="module")
def visit_store(tmp_path_factory):
    store = Store(Settings.from_env(tmp_path_factory.mktemp("privacy") / "home"))
    patient = create_patient(store, actor=ACTOR, code="PRIV-1", display_name="Privacy")
    visit = open_visit(store, patient.id, actor=ACTOR, visit_date=dt.date(2024, 1, 1))
    yield store, visit.id
    store.close()


@pytest.mark.parametrize("build", [_jpeg, _png, _webp], ids=["jpeg", "png", "webp"])
def test_stored_and_exported_bytes_carry_no_metadata(visit_store, build):
    store, visit_id = visit_store
    data = build()
    present = [m for m in (SERIAL, WHEN, XMP_SECRET, GPS_TEXT, MAKE) if m.encode() in data]
    assert len(present) == 5, f"the test photo lacks some metadata: only {present}"
    if build is not _webp:  # WEBP has no comment field
        assert COMMENT.encode() in data
    with Image.open(io.BytesIO(data)) as img:
        assert img.getexif().get_ifd(0x8825)[2] == (48.0, 51.0, 24.12)  # GPS really present

    photo = ingest_photo(store, visit_id, data, actor=ACTOR, name=f"meta.{build.__name__[1:]}",
                         kind="global", view_or_site="vertex").photo
    stored = store.blobs.get(photo.blob_key)
    assert_clean(stored)
    assert photo.captured_at == dt.datetime(2023, 7, 14, 9, 26, 53, tzinfo=dt.UTC)  # kept in the database

    pixels = load_pixels(store, photo.id, actor=ACTOR)
    for lossy in (True, False):
        exported, _ = encode_clean(pixels, lossy=lossy)
        assert_clean(exported)


def test_heic_capture_time_does_not_reach_the_stored_bytes(visit_store):
    path = FIXTURES / "pattern_orientation6.heic"
    if not path.is_file():
        pytest.skip("HEIC fixture absent")
    store, visit_id = visit_store
    data = path.read_bytes()
    assert b"2024:05:06 07:08:09" in data
    photo = ingest_photo(store, visit_id, data, actor=ACTOR, name="p.heic", kind="global",
                         view_or_site="frontal").photo
    stored = store.blobs.get(photo.blob_key)
    assert b"2024:05:06" not in stored
    assert_clean(stored)


@pytest.mark.parametrize("junk", [b"Exif\x00\x00" + b"\x00" * 40, b"Exif\x00\x00MM\x00*" + b"\xff" * 60])
def test_corrupt_exif_is_dropped_not_copied(visit_store, junk):
    """A JPEG whose APP1 EXIF block is garbage still stores clean bytes (or is refused, never copied)."""
    store, visit_id = visit_store
    clean = io.BytesIO()
    Image.fromarray(_pixels()[::-1].copy()).save(clean, "JPEG", quality=90)
    raw = clean.getvalue()
    data = raw[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + raw[2:]
    photo = ingest_photo(store, visit_id, data, actor=ACTOR, name="junk-exif.jpg", kind="global",
                         view_or_site="occipital").photo
    assert_clean(store.blobs.get(photo.blob_key))
