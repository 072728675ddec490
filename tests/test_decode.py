"""Tests of tracker.imaging.decode: every format and mode, orientation, bad inputs, metadata stripping."""

from __future__ import annotations

import io
import os
import warnings
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image, ImageFile, ImageOps

from tests.bad_inputs import (
    BadInput,
    bad_inputs,
    heic_pattern,
    pattern,
    png_bomb,
    png_chunk,
    small_jpeg,
    small_png,
)
from tracker.errors import ImageRejected
from tracker.imaging.decode import (
    DecodedImage,
    decode_image,
    encode_clean,
    read_image_file,
    to_grey,
)
from tracker.imaging.frame import fast_jpeg_pixels, jpeg_complete, orient

FIXTURES = Path(__file__).parent / "fixtures"


# --------------------------------------------------------------------------- helpers


def _save(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _imencode(ext: str, array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, array)
    assert ok
    return buf.tobytes()


def _blocks(height: int = 48, width: int = 64) -> np.ndarray:
    """Flat colour blocks of unequal size: survive lossy codecs, tell every rotation and mirror apart."""
    img = np.empty((height, width, 3), np.uint8)
    img[: height // 3, : width // 4] = (220, 30, 30)
    img[: height // 3, width // 4 :] = (30, 200, 40)
    img[height // 3 :, : width // 4] = (30, 40, 210)
    img[height // 3 :, width // 4 :] = (240, 240, 240)
    img[height // 3 :, width // 2 : width // 2 + width // 8] = (20, 20, 20)
    return img


def _interior(a: np.ndarray, margin: int = 3) -> np.ndarray:
    """Pixels away from block edges (for lossy comparisons): mask of pixels whose neighbourhood is flat."""
    grey = (a[..., 0].astype(np.int32) << 16) | (a[..., 1].astype(np.int32) << 8) | a[..., 2]
    flat = np.ones(grey.shape, bool)
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            shifted = np.roll(np.roll(grey, dy, axis=0), dx, axis=1)
            flat &= shifted == grey
    flat[:margin] = flat[-margin:] = False
    flat[:, :margin] = flat[:, -margin:] = False
    return flat


# --------------------------------------------------------------------------- formats and modes

U16_GREY = (np.arange(6 * 8).reshape(6, 8) * 1391 % 65536).astype(np.uint16)
U16_GREY[0, :4] = (0, 128, 129, 65535)  # rounding edges: 128/257 -> 0, 129/257 -> 1
U16_RGB = (np.arange(6 * 8 * 3).reshape(6, 8, 3) * 977 % 65536).astype(np.uint16)  # stored as RGB


def _grey_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _palette_transparent() -> tuple[bytes, np.ndarray]:
    index = np.array([[0, 1, 2, 3]] * 3, np.uint8)
    img = Image.fromarray(index, mode="P")
    palette = [10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200]
    img.putpalette(palette + [0] * (768 - len(palette)))
    data = _save(img, "PNG", transparency=0)  # index 0 fully transparent
    expected = np.array([[255, 255, 255], [200, 0, 0], [0, 200, 0], [0, 0, 200]], np.uint8)[index]
    return data, expected


def _rgba() -> tuple[bytes, np.ndarray]:
    rgba = np.zeros((2, 4, 4), np.uint8)
    rgba[..., :3] = (100, 50, 0)
    rgba[..., 3] = [[0, 128, 255, 64], [255, 255, 0, 200]]
    alpha = rgba[..., 3:].astype(np.float64) / 255
    expected = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return _save(Image.fromarray(rgba, "RGBA"), "PNG"), expected


def _la() -> tuple[bytes, np.ndarray]:
    la = np.zeros((2, 3, 2), np.uint8)
    la[..., 0] = 40
    la[..., 1] = [[0, 255, 128], [255, 51, 0]]
    alpha = la[..., 1].astype(np.float64) / 255
    grey = np.rint(40 * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return _save(Image.fromarray(la, "LA"), "PNG"), _grey_rgb(grey)


def _bilevel() -> tuple[bytes, np.ndarray]:
    bits = np.array([[0, 1, 1, 0, 1], [1, 0, 0, 1, 1]], bool)
    data = _save(Image.fromarray(bits), "PNG")
    return data, _grey_rgb(np.where(bits, 255, 0).astype(np.uint8))


def _cmyk_jpeg() -> tuple[bytes, np.ndarray]:
    cmyk = np.zeros((32, 32, 4), np.uint8)
    cmyk[:16, :16] = (255, 0, 0, 0)  # cyan
    cmyk[:16, 16:] = (0, 255, 0, 0)  # magenta
    cmyk[16:, :16] = (0, 0, 255, 0)  # yellow
    cmyk[16:, 16:] = (0, 0, 0, 128)  # grey
    data = _save(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95)
    expected = np.zeros((32, 32, 3), np.uint8)
    expected[:16, :16] = (0, 255, 255)
    expected[:16, 16:] = (255, 0, 255)
    expected[16:, :16] = (255, 255, 0)
    expected[16:, 16:] = (127, 127, 127)
    return data, expected


def _tiff16() -> tuple[bytes, np.ndarray]:
    return _save(Image.fromarray(U16_GREY), "TIFF"), _grey_rgb(np.rint(U16_GREY / 257).astype(np.uint8))


def _animated_gif() -> tuple[bytes, np.ndarray]:
    first = np.zeros((8, 8, 3), np.uint8)
    first[:, :4] = (255, 0, 0)
    first[:, 4:] = (0, 0, 255)
    second = np.full((8, 8, 3), (0, 255, 0), np.uint8)
    frames = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE) for f in (first, second)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return data, first


def _apng() -> tuple[bytes, np.ndarray]:
    first, second = _blocks(12, 16), 255 - _blocks(12, 16)
    data = _save(Image.fromarray(first), "PNG", save_all=True, append_images=[Image.fromarray(second)])
    return data, first


def _multipage_tiff() -> tuple[bytes, np.ndarray]:
    first, second = _blocks(12, 16), 255 - _blocks(12, 16)
    data = _save(Image.fromarray(first), "TIFF", save_all=True, append_images=[Image.fromarray(second)])
    return data, first


def _mpo() -> tuple[bytes, np.ndarray]:
    first, second = _blocks(), 255 - _blocks()
    try:
        data = _save(Image.fromarray(first), "MPO", save_all=True, append_images=[Image.fromarray(second)],
                     quality=95, subsampling=0)
    except (KeyError, ValueError, OSError) as exc:  # pragma: no cover - depends on the Pillow build
        pytest.skip(f"this Pillow cannot write MPO: {exc}")
    return data, first


# name -> (builder, format, source_mode, bit depth, lossy, tolerance (max abs error in flat areas))
CASES = {
    "jpeg_baseline": (
        lambda: (_save(Image.fromarray(_blocks()), "JPEG", quality=95, subsampling=0), _blocks()),
        "JPEG", "RGB", 8, True, 6,
    ),
    "jpeg_progressive": (lambda: (_save(Image.fromarray(_blocks()), "JPEG", quality=95, progressive=True,
                                        subsampling=0), _blocks()), "JPEG", "RGB", 8, True, 6),
    "jpeg_grey": (lambda: (_save(Image.fromarray(_blocks()[..., 0]), "JPEG", quality=95),
                           _grey_rgb(_blocks()[..., 0])), "JPEG", "L", 8, True, 6),
    "png_grey8": (lambda: (_save(Image.fromarray(_blocks()[..., 1]), "PNG"), _grey_rgb(_blocks()[..., 1])),
                  "PNG", "L", 8, False, 0),
    "png_grey16": (lambda: (_imencode(".png", U16_GREY), _grey_rgb(np.rint(U16_GREY / 257).astype(np.uint8))),
                   "PNG", "I;16", 16, False, 0),
    "png_rgb8": (lambda: (_save(Image.fromarray(pattern()), "PNG"), pattern()), "PNG", "RGB", 8, False, 0),
    # Pillow 13 opens a 16-bit RGB PNG as 8-bit "RGB", keeping the high byte of each sample (v >> 8);
    # that is within 1 of round(v / 257), checked separately below.
    "png_rgb16": (lambda: (_imencode(".png", U16_RGB[..., ::-1]), (U16_RGB >> 8).astype(np.uint8)),
                  "PNG", "RGB", 16, False, 0),
    "png_palette_transparent": (_palette_transparent, "PNG", "P", 8, False, 0),
    "png_rgba_over_white": (_rgba, "PNG", "RGBA", 8, False, 1),
    "png_la_over_white": (_la, "PNG", "LA", 8, False, 1),
    "png_bilevel": (_bilevel, "PNG", "1", 8, False, 0),
    "jpeg_cmyk": (_cmyk_jpeg, "JPEG", "CMYK", 8, True, 4),
    "tiff_grey16": (_tiff16, "TIFF", "I;16", 16, False, 0),
    "tiff_rgb16": (lambda: (_imencode(".tiff", U16_RGB[..., ::-1]), (U16_RGB >> 8).astype(np.uint8)),
                   "TIFF", "RGB", 16, False, 0),
    "tiff_multipage_first": (_multipage_tiff, "TIFF", "RGB", 8, False, 0),
    "webp_lossless": (lambda: (_save(Image.fromarray(pattern()), "WEBP", lossless=True), pattern()),
                      "WEBP", "RGB", 8, False, 0),
    "webp_lossy": (lambda: (_save(Image.fromarray(_blocks()), "WEBP", quality=95), _blocks()),
                   "WEBP", "RGB", 8, True, 8),
    "gif_animated_first_frame": (_animated_gif, "GIF", "P", 8, False, 0),
    "apng_first_frame": (_apng, "PNG", "RGB", 8, False, 0),
    "bmp": (lambda: (_save(Image.fromarray(pattern()), "BMP"), pattern()), "BMP", "RGB", 8, False, 0),
    "mpo_first_frame": (_mpo, "MPO", "RGB", 8, True, 6),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_formats_and_modes_decode_to_expected_rgb(case: str) -> None:
    builder, fmt, mode, depth, lossy, tolerance = CASES[case]
    data, expected = builder()
    decoded = decode_image(data, name=f"{case}.bin")
    assert isinstance(decoded, DecodedImage)
    assert decoded.format == fmt
    assert decoded.source_mode == mode
    assert decoded.source_bit_depth == depth
    assert decoded.lossy is lossy
    assert decoded.orientation == 1
    assert decoded.captured_at is None
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8 and pixels.shape == expected.shape
    assert pixels.flags.c_contiguous and pixels.flags.owndata and pixels.flags.writeable
    if tolerance == 0:
        assert_array_equal(pixels, expected)
    else:
        inside = _interior(expected) if lossy else np.ones(expected.shape[:2], bool)
        assert inside.sum() > 0.3 * inside.size
        diff = np.abs(pixels.astype(int) - expected.astype(int))[inside]
        assert diff.max() <= tolerance, f"max error {diff.max()} > {tolerance}"


def test_rgb16_png_within_one_level_of_full_range_scaling() -> None:
    decoded = decode_image(_imencode(".png", U16_RGB[..., ::-1]))
    assert_allclose(decoded.pixels, U16_RGB / 257, atol=1.0)


def test_grey16_scaling_rounds_by_full_range() -> None:
    decoded = decode_image(_imencode(".png", U16_GREY))
    assert_array_equal(decoded.pixels[0, :4, 0], [0, 0, 1, 255])


# --------------------------------------------------------------------------- HEIC fixtures


@pytest.mark.parametrize(
    ("fixture", "orientation", "expected", "captured_at"),
    [
        ("pattern.heic", 1, heic_pattern(), None),
        # orientation 6 = rotate 90 degrees clockwise to display (stored as an irot box by the encoder)
        ("pattern_orientation6.heic", 6, np.rot90(heic_pattern(), k=-1), datetime(2024, 5, 6, 7, 8, 9)),
    ],
)
def test_heic_fixture_decodes_upright_exactly_once(fixture, orientation, expected, captured_at) -> None:
    decoded = read_image_file(FIXTURES / fixture)
    assert decoded.format == "HEIF"
    assert decoded.lossy is True
    assert decoded.orientation == orientation
    assert decoded.captured_at == captured_at
    assert decoded.pixels.shape == expected.shape  # a double rotation would swap the shape back
    inside = _interior(expected)
    diff = np.abs(decoded.pixels.astype(int) - expected.astype(int))[inside]
    assert diff.max() <= 6


# --------------------------------------------------------------------------- EXIF orientation


def _orient_truth(a: np.ndarray, orientation: int) -> np.ndarray:
    """What the viewer must show for a stored array ``a`` and an EXIF orientation (TIFF/EXIF spec)."""
    return {
        1: a,
        2: a[:, ::-1],  # mirror horizontal
        3: a[::-1, ::-1],  # rotate 180
        4: a[::-1, :],  # mirror vertical
        5: a.transpose(1, 0, 2),  # mirror horizontal and rotate 270 CW = transpose
        6: np.rot90(a, k=-1),  # rotate 90 CW
        7: np.rot90(a[:, ::-1], k=-1),  # mirror horizontal and rotate 90 CW
        8: np.rot90(a, k=1),  # rotate 270 CW
    }[orientation]


def _with_exif(fmt: str, a: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[36867] = "2023:11:05 14:30:59"
    options = {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {}
    return _save(Image.fromarray(a), fmt, exif=exif, **options)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_once(fmt: str, orientation: int) -> None:
    stored = _blocks(40, 64)
    decoded = decode_image(_with_exif(fmt, stored, orientation), name=f"o{orientation}.{fmt.lower()}")
    expected = _orient_truth(stored, orientation)
    assert decoded.orientation == orientation
    assert decoded.captured_at == datetime(2023, 11, 5, 14, 30, 59)
    assert decoded.pixels.shape == expected.shape
    if fmt == "PNG":
        assert_array_equal(decoded.pixels, expected)
    else:
        inside = _interior(expected)
        assert np.abs(decoded.pixels.astype(int) - expected.astype(int))[inside].max() <= 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023:11:05 14:30:59", datetime(2023, 11, 5, 14, 30, 59)),
        ("2023:11:05 14:30:59\x00", datetime(2023, 11, 5, 14, 30, 59)),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("yesterday", None),
        ("2023:13:45 99:99:99", None),
    ],
)
def test_captured_at_tolerates_junk(value: str, expected: datetime | None) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = value
    # bytes: an Exif object without IFD0 entries is falsy, and Pillow would silently not write it
    data = _save(Image.fromarray(_blocks()), "PNG", exif=exif.tobytes())
    assert decode_image(data).captured_at == expected


def test_junk_exif_is_tolerated_without_warnings() -> None:
    png = small_png()
    at = png.index(b"IDAT") - 4
    junk = png_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12")  # IFD cut short
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = decode_image(png[:at] + junk + png[at:])
    assert [str(w.message) for w in caught] == []
    assert decoded.orientation == 1 and decoded.captured_at is None
    assert_array_equal(decoded.pixels, pattern())


@pytest.mark.parametrize("junk", [0, 9, 65535])
def test_out_of_range_orientation_is_ignored(junk: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = junk
    decoded = decode_image(_save(Image.fromarray(_blocks()), "PNG", exif=exif))
    assert decoded.orientation == 1
    assert_array_equal(decoded.pixels, _blocks())


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("case", bad_inputs(), ids=lambda c: c.name)
def test_bad_inputs_are_rejected_with_one_line_naming_the_file(case: BadInput) -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(case.data, name=case.name, **case.options)
    message = str(info.value)
    assert message.startswith(f"{case.name}: ")
    assert case.reason in message
    assert "\n" not in message and "\r" not in message
    assert isinstance(info.value, ValueError)  # ImageRejected is also a ValueError


def test_png_bomb_rejected_from_the_header() -> None:
    data = png_bomb()
    assert len(data) < 500_000
    expected = r"bomb\.png: image too large \(20000 x 20000 = 400\.0 MP > 100\.0 MP limit\)$"
    with pytest.raises(ImageRejected, match=expected):
        decode_image(data, name="bomb.png")


def test_bomb_check_uses_our_limit_between_pillows_warning_and_error() -> None:
    # 10000 x 9000 = 90 MP: above Pillow's warning threshold (89.5 MP), below its error (179 MP).
    data = png_bomb(10000, 9000, complete=False)
    with pytest.raises(ImageRejected, match=r"10000 x 9000 = 90\.0 MP > 50\.0 MP limit"):
        decode_image(data, name="b.png", max_pixels=50_000_000)
    assert Image.MAX_IMAGE_PIXELS < 90_000_000 < 2 * Image.MAX_IMAGE_PIXELS


def test_no_global_pillow_or_warning_state_changed() -> None:
    filters_before = list(warnings.filters)
    for case in bad_inputs()[:8]:
        with pytest.raises(ImageRejected):
            decode_image(case.data, name=case.name)
    decode_image(small_jpeg())
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert list(warnings.filters) == filters_before


def test_rejection_keeps_the_cause_chained() -> None:
    data = small_jpeg()
    with pytest.raises(ImageRejected) as info:
        decode_image(data[: len(data) // 2], name="cut.jpg")
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("bad", [{"max_pixels": 0}, {"max_bytes": -1}])
def test_bad_limits_raise_value_error(bad: dict) -> None:
    with pytest.raises(ValueError, match="positive"):
        decode_image(small_png(), **bad)


def test_non_bytes_raises_type_error() -> None:
    with pytest.raises(TypeError):
        decode_image("IMG_0001.jpg")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- files


def test_read_image_file_reads_and_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    path.write_bytes(small_png())
    assert_array_equal(read_image_file(path).pixels, pattern())
    assert_array_equal(read_image_file(str(path)).pixels, pattern())


def test_read_image_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0042.jpg"
    with pytest.raises(ImageRejected, match=r"IMG_0042\.jpg: no such file$"):
        read_image_file(path)


def test_read_image_file_checks_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as fh:  # sparse: 2 GB on paper, nothing on disk
        fh.truncate(2 * 1024**3)
    with pytest.raises(ImageRejected, match=r"huge\.jpg: file too large \(2048\.0 MB > 60\.0 MB limit\)"):
        read_image_file(path)


def test_read_image_file_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="not a regular file"):
        read_image_file(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read unreadable files")
def test_read_image_file_unreadable(tmp_path: Path) -> None:  # pragma: no cover - not run as root
    path = tmp_path / "locked.png"
    path.write_bytes(small_png())
    path.chmod(0)
    with pytest.raises(ImageRejected, match="cannot read file"):
        read_image_file(path)


# --------------------------------------------------------------------------- metadata and encode_clean

SECRETS = (
    b"SN-4Q7Z-998877", b"Clinic Camera Owner", b"SECRET-COMMENT-XYZ", b"xmpmeta", b"2023:01:02 03:04:05",
    b"GPS-SECRET", b"Exif", b"ICC-SECRET",
)


def _jpeg_with_everything() -> bytes:
    exif = Image.Exif()
    exif[0x013B] = "Clinic Camera Owner"  # Artist
    exif[0x0132] = "2023:01:02 03:04:05"  # DateTime
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[36867] = "2023:01:02 03:04:05"  # DateTimeOriginal
    exif_ifd[0xA431] = "SN-4Q7Z-998877"  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    gps[27] = b"ASCII\x00\x00\x00GPS-SECRET"  # GPSProcessingMethod
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b"<rdf:Description>SN-4Q7Z-998877</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    icc = b"\x00" * 128 + b"ICC-SECRET"  # not a valid profile, but carried as bytes
    return _save(Image.fromarray(_blocks()), "JPEG", quality=95, exif=exif, xmp=xmp,
                 comment=b"SECRET-COMMENT-XYZ", icc_profile=icc)


def test_source_fixture_really_carries_the_metadata() -> None:
    data = _jpeg_with_everything()
    for secret in SECRETS:
        assert secret in data, secret
    decoded = decode_image(data)
    assert decoded.captured_at == datetime(2023, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("lossy", [True, False])
def test_encode_clean_drops_every_metadata_field(lossy: bool) -> None:
    decoded = decode_image(_jpeg_with_everything(), name="meta.jpg")
    data, media_type = encode_clean(decoded, lossy=lossy)
    assert media_type == ("image/jpeg" if lossy else "image/png")
    for secret in SECRETS:
        assert secret not in data, secret
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.format == ("JPEG" if lossy else "PNG")
        assert not img.getexif()
        keys = ("exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "dpi", "photoshop", "adobe")
        for key in keys:
            assert key not in img.info, key
        assert not getattr(img, "applist", [])[1:]  # a JPEG holds at most the bare JFIF APP0
        assert all(marker == "APP0" for marker, _ in getattr(img, "applist", []))


def test_encode_clean_follows_the_source_and_is_deterministic() -> None:
    jpeg_source = decode_image(small_jpeg())
    png_source = decode_image(small_png())
    jpeg_a, jpeg_type = encode_clean(jpeg_source)
    jpeg_b, _ = encode_clean(jpeg_source)
    png_a, png_type = encode_clean(png_source)
    assert (jpeg_type, png_type) == ("image/jpeg", "image/png")
    assert jpeg_a == jpeg_b
    assert png_a == encode_clean(png_source)[0]
    assert_array_equal(decode_image(png_a).pixels, pattern())  # lossless round trip
    again = decode_image(jpeg_a).pixels.astype(int)
    assert np.abs(again - jpeg_source.pixels.astype(int)).mean() < 1.5  # q95, no chroma subsampling
    with Image.open(io.BytesIO(jpeg_a)) as img:
        assert img.layer[0][1:3] == (1, 1)  # 4:4:4 sampling


@pytest.mark.parametrize(
    ("array", "lossy", "media_type"),
    [
        (pattern(), None, "image/png"),
        (pattern(), True, "image/jpeg"),
        (pattern()[..., 0].copy(), False, "image/png"),
    ],
)
def test_encode_clean_accepts_arrays(array: np.ndarray, lossy, media_type: str) -> None:
    before = array.copy()
    data, kind = encode_clean(array, lossy=lossy)
    assert kind == media_type
    assert_array_equal(array, before)
    if kind == "image/png":
        expected = array if array.ndim == 3 else _grey_rgb(array)
        assert_array_equal(decode_image(data).pixels, expected)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8),
     np.zeros(5, np.uint8)],
)
def test_encode_clean_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_clean(bad)


# --------------------------------------------------------------------------- to_grey


@pytest.mark.parametrize(
    ("rgb", "luma"),
    [((255, 0, 0), 76), ((0, 255, 0), 150), ((0, 0, 255), 29), ((255, 255, 255), 255), ((0, 0, 0), 0),
     ((100, 150, 200), 141)],
)
def test_to_grey_bt601(rgb: tuple[int, int, int], luma: int) -> None:
    image = np.full((3, 4, 3), rgb, np.uint8)
    grey = to_grey(image)
    assert grey.shape == (3, 4) and grey.dtype == np.uint8
    assert_array_equal(grey, luma)


def test_to_grey_matches_formula_and_does_not_mutate() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    before = image.copy()
    expected = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert_allclose(to_grey(image), expected, atol=0.51)
    assert_array_equal(image, before)
    grey = image[..., 0].copy()
    out = to_grey(grey)
    assert_array_equal(out, grey)
    assert out is not grey


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 2), np.uint8)])
def test_to_grey_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        to_grey(bad)


# --------------------------------------------------------------------------- fuzzing


def _check_decodes_or_rejects(data: bytes) -> None:
    try:
        decoded = decode_image(data, name="fuzz.bin", max_pixels=4_000_000)
    except ImageRejected as exc:
        assert str(exc).startswith("fuzz.bin: ") and "\n" not in str(exc)
        return
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.shape[0] * pixels.shape[1] <= 4_000_000


@st.composite
def _mutations(draw, source: bytes) -> bytes:
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif action == "cut":
            del data[pos:]
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos : pos + draw(st.integers(1, 32))]
    return bytes(data)


@pytest.mark.parametrize("source", ["jpeg", "png"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(data=st.data())
def test_mutated_bytes_decode_or_reject(source: str, data: st.DataObject) -> None:
    original = small_jpeg(24, 32) if source == "jpeg" else small_png(24, 32)
    _check_decodes_or_rejects(data.draw(_mutations(original)))


# --------------------------------------------------------------------------- the fast JPEG path (issue 7)

def _photo_like(height: int = 96, width: int = 128, seed: int = 3) -> np.ndarray:
    """Smooth gradients plus noise: every DCT coefficient and chroma upsampling step matters."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], axis=2)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _jpeg_variants() -> dict[str, bytes]:
    rgb = Image.fromarray(_photo_like())
    exif = Image.Exif()
    exif[0x0112] = 6
    thumb = _save(Image.fromarray(_photo_like(24, 32)), "JPEG")  # its EOI sits inside the EXIF segment
    with_thumb = bytearray(_save(rgb, "JPEG", quality=90))
    app1 = b"Exif\x00\x00" + exif.tobytes() + thumb
    with_thumb[2:2] = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    return {
        "baseline_420": _save(rgb, "JPEG", quality=90),
        "baseline_444": _save(rgb, "JPEG", quality=95, subsampling=0),
        "progressive": _save(rgb, "JPEG", quality=90, progressive=True),
        "restart_markers": _save(rgb, "JPEG", quality=90, restart_marker_blocks=1),
        "grey": _save(rgb.convert("L"), "JPEG", quality=90),
        "exif_rotated": _save(rgb, "JPEG", quality=90, exif=exif),
        "thumbnail_in_exif": bytes(with_thumb),
        "trailing_bytes": _save(rgb, "JPEG", quality=90) + b"SEFH trailer of a phone\x00\x01",
    }


@pytest.mark.parametrize("variant", sorted(_jpeg_variants()))
def test_fast_jpeg_decode_gives_pillows_pixels(variant: str) -> None:
    data = _jpeg_variants()[variant]
    img = Image.open(io.BytesIO(data))
    assert jpeg_complete(data)
    assert fast_jpeg_pixels(data, img) is not None  # the fast path is taken for these
    truth = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    decoded = decode_image(data, name=f"{variant}.jpg")
    assert_array_equal(decoded.pixels, truth)
    assert decoded.pixels.flags.c_contiguous and decoded.pixels.flags.owndata


@pytest.mark.parametrize("variant", ["baseline_420", "progressive", "thumbnail_in_exif", "restart_markers"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, -2])
def test_truncated_jpeg_is_left_to_pillow_and_rejected(variant: str, keep: float) -> None:
    data = _jpeg_variants()[variant]
    cut = data[:keep] if keep < 0 else data[: int(len(data) * keep)]
    assert not jpeg_complete(cut)
    assert fast_jpeg_pixels(cut, Image.open(io.BytesIO(cut))) is None
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        decode_image(cut, name="cut.jpg")


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff\xd8", b"\xff\xd8\xff\xd9", b"\xff\xd8\xff\xe0\x00\x01", b"\xff\xd8\xff\xe0\xff\xff\x00",
     b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xda\x00\x08abcdef"],
    ids=["empty", "soi_only", "no_scan", "short_length", "length_past_end", "png", "scan_without_end"],
)
def test_jpeg_complete_refuses_incomplete_structures(data: bytes) -> None:
    assert not jpeg_complete(data)


@pytest.mark.parametrize("mode", ["CMYK"])
def test_fast_path_leaves_other_modes_to_pillow(mode: str) -> None:
    data = _save(Image.fromarray(_photo_like()).convert(mode), "JPEG", quality=95)
    assert fast_jpeg_pixels(data, Image.open(io.BytesIO(data))) is None
    truth = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert_array_equal(decode_image(data).pixels, truth)


@pytest.mark.parametrize("orientation", range(0, 10))
@pytest.mark.parametrize("channels", [None, 3])
def test_orient_matches_pillows_exif_transpose(orientation: int, channels: int | None) -> None:
    stored = _photo_like(5, 7)
    if channels is None:
        stored = np.ascontiguousarray(stored[..., 0])
    before = stored.copy()
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert_array_equal(orient(stored, orientation), expected)
    assert_array_equal(stored, before)  # input not mutated


def test_import_tracker_caps_opencv_allocations() -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    code = ("import tracker, os, cv2, numpy as np\n"
            "from tests.bad_inputs import png_bomb\n"
            "print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])\n"
            "try:\n    cv2.imdecode(np.frombuffer(png_bomb(11000, 10000), np.uint8), cv2.IMREAD_COLOR)\n"
            "except cv2.error:\n    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == [str(100_000_000), "refused"], out.stderr
