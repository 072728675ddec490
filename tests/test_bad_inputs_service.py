"""Every kind of odd or hostile upload through ``tracker.services.ingest_photo`` (issue 6).

Each input ends in :class:`ImageRejected` with a one-line message naming it, and then nothing at all
is stored (no row, no blob, no temporary file), or it ends in a stored photo whose pixels are the
correct upright 8-bit RGB image, with truth computed here independently of the decoder (numpy
flips and rotations for EXIF orientations, the compositing formula for alpha, ...).

Kinds: the 20 rejections of ``tests/bad_inputs.py`` (bomb, truncated JPEG/PNG/HEIC, renamed PDF, HTML,
ZIP, SVG, text, video, noise, empty, oversize in bytes and in pixels, bad CRC, corrupt header, zero
width, a HEIC that crashes libheif) plus accepted 16-bit, CMYK, palette, alpha (RGBA and LA), bilevel,
grey, progressive, animated GIF and PNG, TIFF, WEBP, BMP, HEIC with and without rotation, and EXIF
orientations 1-8.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image

from tests.bad_inputs import BadInput, bad_inputs, heic_pattern
from tracker.config import Settings
from tracker.errors import ImageRejected
from tracker.services import Actor, create_patient, ingest_photo, open_visit
from tracker.store import Photo, Store

ACTOR = Actor.system("test")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def visit_store(tmp_path_factory):
    home = tmp_path_factory.mktemp("bad-inputs") / "home"
    store = Store(Settings.from_env(home))
    patient = create_patient(store, actor=ACTOR, code="BAD-1", display_name="Bad Inputs")
    visit = open_visit(store, patient.id, actor=ACTOR, visit_date=dt.date(2024, 1, 1))
    yield store, visit.id
    store.close()


def _state(store: Store) -> tuple[int, list[str], list[Path]]:
    with store.session() as s:
        photos = s.query(Photo).count()
    temp = sorted(store.settings.home.rglob(".tmp-*"))
    return photos, sorted(store.blobs.keys()), temp


def _ingest(store: Store, visit_id: int, data: bytes, name: str) -> Photo:
    return ingest_photo(store, visit_id, data, actor=ACTOR, name=name, kind="closeup", view_or_site="vertex-1").photo


# ------------------------------------------------------------------------------------------ rejected
@pytest.mark.parametrize("case", bad_inputs(), ids=lambda c: c.name)
def test_bad_input_is_rejected_and_nothing_is_stored(visit_store, case: BadInput):
    store, visit_id = visit_store
    limits = {k: v for k, v in case.options.items() if k in ("max_pixels", "max_bytes")}
    assert limits == case.options  # every option of the corpus is a store setting
    target = Store(dataclasses.replace(store.settings, **limits)) if limits else store
    before = _state(store)
    with pytest.raises(ImageRejected) as info:
        _ingest(target, visit_id, case.data, case.name)
    message = str(info.value)
    assert message.startswith(case.name) and case.reason in message and "\n" not in message
    assert _state(store) == before


# ------------------------------------------------------------------------------------------ accepted
def _blocks(height: int = 48, width: int = 64) -> np.ndarray:
    """(H, W, 3) uint8 with 16 x 16 flat blocks of distinct colours: orientation is unambiguous."""
    rows, cols = np.mgrid[0:height, 0:width] // 16
    index = rows * (width // 16) + cols
    palette = np.array([[(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 200) % 256] for i in range(64)], np.uint8)
    return palette[index]


def _save(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


#: What a viewer does to the stored pixels P to show them upright, per EXIF orientation.
UPRIGHT = {
    1: lambda p: p,
    2: lambda p: p[:, ::-1],
    3: lambda p: p[::-1, ::-1],
    4: lambda p: p[::-1, :],
    5: lambda p: p.transpose(1, 0, 2),
    6: lambda p: np.rot90(p, -1),
    7: lambda p: np.rot90(p, 2).transpose(1, 0, 2),
    8: lambda p: np.rot90(p, 1),
}


def _grey16() -> tuple[bytes, np.ndarray]:
    values = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    grey = np.floor(values / 257.0 + 0.5).astype(np.uint8)
    return _save(Image.fromarray(values), "PNG"), np.repeat(grey[..., None], 3, axis=2)


def _cmyk() -> tuple[bytes, np.ndarray]:
    cmyk = np.zeros((48, 64, 4), np.uint8)
    cmyk[:, :32] = (200, 30, 0, 20)
    cmyk[:, 32:] = (0, 120, 220, 60)
    c, m, y, k = (cmyk[..., i].astype(float) for i in range(4))
    rgb = np.stack([(255 - c) * (255 - k), (255 - m) * (255 - k), (255 - y) * (255 - k)], axis=-1) / 255
    return _save(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95), rgb


def _palette() -> tuple[bytes, np.ndarray]:
    img = _blocks()
    pal = Image.fromarray(img).quantize(colors=12, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    expected = np.array(pal.getpalette(), np.uint8).reshape(-1, 3)[np.array(pal)]
    return _save(pal, "PNG"), expected


def _rgba() -> tuple[bytes, np.ndarray]:
    rgb = _blocks()
    alpha = (np.arange(64, dtype=np.uint16)[None, :].repeat(48, 0) * 4).astype(np.uint8)
    rgba = np.dstack([rgb, alpha])
    a = alpha[..., None] / 255.0
    return _save(Image.fromarray(rgba, "RGBA"), "PNG"), rgb * a + 255 * (1 - a)


def _la() -> tuple[bytes, np.ndarray]:
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))
    alpha = np.where(np.arange(48)[:, None] < 24, 255, 64).astype(np.uint8).repeat(64, 1)
    a = alpha / 255.0
    expected = grey * a + 255 * (1 - a)
    return _save(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"), np.repeat(expected[..., None], 3, 2)


def _bilevel() -> tuple[bytes, np.ndarray]:
    bits = (np.indices((48, 64)).sum(0) // 8) % 2 == 0
    return _save(Image.fromarray(bits), "PNG"), np.repeat(bits[..., None], 3, 2) * 255


def _animated(fmt: str) -> tuple[bytes, np.ndarray]:
    first, second = _blocks(), 255 - _blocks()
    frames = [Image.fromarray(first), Image.fromarray(second)]
    if fmt == "GIF":
        frames = [f.quantize(colors=64, dither=Image.Dither.NONE) for f in frames]
        expected = np.array(frames[0].convert("RGB"))
    else:
        expected = first
    data = _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2  # really animated
    return data, expected


def _plain(fmt: str, mode: str = "RGB", **options) -> tuple[bytes, np.ndarray]:
    img = Image.fromarray(_blocks())
    if mode == "L":
        img = img.convert("L")
        expected = np.repeat(np.array(img)[..., None], 3, 2)
    else:
        expected = _blocks()
    return _save(img, fmt, **options), expected


GOOD = {
    "16-bit grey PNG": (_grey16, 1, False),
    "CMYK JPEG": (_cmyk, 6, True),
    "palette PNG": (_palette, 0, False),
    "RGBA PNG (alpha on white)": (_rgba, 1, False),
    "LA PNG (grey + alpha)": (_la, 1, False),
    "bilevel PNG": (_bilevel, 0, False),
    "animated GIF (first frame)": (lambda: _animated("GIF"), 0, False),
    "animated PNG (first frame)": (lambda: _animated("PNG"), 0, False),
    "grey JPEG": (lambda: _plain("JPEG", "L", quality=95), 6, True),
    "progressive JPEG": (lambda: _plain("JPEG", quality=95, subsampling=0, progressive=True), 6, True),
    "TIFF (LZW)": (lambda: _plain("TIFF", compression="tiff_lzw"), 0, False),
    "WEBP lossless": (lambda: _plain("WEBP", lossless=True), 0, False),
    "BMP": (lambda: _plain("BMP"), 0, False),
}


def _check_stored(store: Store, photo: Photo, expected: np.ndarray, atol: float, lossy: bool) -> None:
    blob = store.blobs.get(photo.blob_key)
    with Image.open(io.BytesIO(blob)) as img:
        assert img.format == ("JPEG" if lossy else "PNG") and img.mode == "RGB"
        stored = np.array(img)
    assert photo.media_type == ("image/jpeg" if lossy else "image/png")
    assert (photo.height, photo.width) == expected.shape[:2] == stored.shape[:2]
    if atol == 0:
        assert_array_equal(stored, expected.astype(np.uint8))
    else:
        # JPEG twice (upload, then storage): flat blocks stay close, edges ring a little.
        assert np.abs(stored.astype(float) - expected).mean() < atol
        assert_allclose(np.median(stored.reshape(-1, 3), 0), np.median(expected.reshape(-1, 3), 0), atol=atol)


@pytest.mark.parametrize("kind", list(GOOD))
def test_odd_but_valid_image_is_stored_correctly(visit_store, kind):
    store, visit_id = visit_store
    build, atol, lossy = GOOD[kind]
    data, expected = build()
    photo = _ingest(store, visit_id, data, f"{kind}.img")
    _check_stored(store, photo, np.asarray(expected, float), atol, lossy)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_once(visit_store, orientation):
    store, visit_id = visit_store
    raw = _blocks(48, 64)
    data = _save(Image.fromarray(raw), "JPEG", quality=95, subsampling=0, exif=_exif(orientation))
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == orientation
    photo = _ingest(store, visit_id, data, f"orientation{orientation}.jpg")
    expected = UPRIGHT[orientation](raw).astype(float)
    _check_stored(store, photo, expected, 4, True)
    if orientation > 1:  # the truth really differs from the raw pixels
        assert expected.shape != raw.shape or np.abs(expected - raw).mean() > 20


@pytest.mark.parametrize("name", ["pattern.heic", "pattern_orientation6.heic"])
def test_heic_with_and_without_rotation(visit_store, name):
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"fixture {name} absent")
    store, visit_id = visit_store
    photo = _ingest(store, visit_id, path.read_bytes(), name)
    # orientation 6 (an irot box in the file) = rotate 90 degrees clockwise to display
    expected = heic_pattern() if name == "pattern.heic" else UPRIGHT[6](heic_pattern())
    _check_stored(store, photo, expected.astype(float), 5, True)


def test_duplicate_upload_stores_nothing_new(visit_store):
    store, visit_id = visit_store
    data, _ = _plain("PNG")
    first = _ingest(store, visit_id, data, "dup.png")
    before = _state(store)
    again = ingest_photo(store, visit_id, data, actor=ACTOR, name="dup.png", kind="closeup", view_or_site="vertex-1")
    assert again.duplicate and again.photo.id == first.id and _state(store) == before
