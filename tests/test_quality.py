"""Tests of tracker.imaging.quality: blur, exposure, resolution, the report."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from skimage import data as skdata

from tracker.imaging.quality import (
    ABSOLUTE_SHARPNESS_FLOOR,
    MIN_SHORT_SIDE,
    QualityReport,
    assess_quality,
    sharpness,
)

TRICHOSCOPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "trichoscopy-counts" / "images"


def hair_drawing(seed: int = 0, height: int = 800, width: int = 1000, lines: int = 60) -> np.ndarray:
    """Synthetic close-up: dark anti-aliased 'hairs' of 2-6 px on skin-coloured ground, (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (200, 170, 150)
    for _ in range(lines):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle, length = rng.uniform(0, np.pi), rng.uniform(100, 400)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        thickness = int(rng.integers(2, 7))
        cv2.line(img, (int(x0), int(y0)), (int(x1), int(y1)), (60, 40, 30), thickness, cv2.LINE_AA)
    return img


def _at_1000(image: np.ndarray) -> np.ndarray:
    scale = 1000 / max(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


IMAGES = {
    "astronaut": skdata.astronaut,
    "coffee": skdata.coffee,
    "chelsea": skdata.chelsea,
    "astronaut_at_1000": lambda: _at_1000(skdata.astronaut()),
    "coffee_at_1000": lambda: _at_1000(skdata.coffee()),
    "hair_0": lambda: hair_drawing(0),
    "hair_1": lambda: hair_drawing(1, lines=25),
}


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0 else image.copy()


# --------------------------------------------------------------------------- blur


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("kind", ["closeup", "global"])
def test_sharp_passes_and_gross_blur_is_flagged(name: str, kind: str) -> None:
    image = IMAGES[name]()
    sharp = assess_quality(image, kind=kind, min_short_side=1)
    assert "blurred" not in sharp.flags, sharp.sharpness
    for sigma in (3, 5):
        blurred = assess_quality(_blur(image, sigma), kind=kind, min_short_side=1)
        assert "blurred" in blurred.flags, (sigma, blurred.sharpness)
        assert blurred.sharpness < ABSOLUTE_SHARPNESS_FLOOR[kind]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_sharpness_falls_with_every_blur_step(name: str) -> None:
    image = IMAGES[name]()
    values = [sharpness(_blur(image, sigma)) for sigma in (0, 0.7, 1, 2, 3, 5)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values


@pytest.mark.parametrize(
    ("sigma", "blurred"),
    # The variance of the Laplacian is dominated by the finest detail: on this drawing a Gaussian of
    # sigma 0.4 keeps 72 % of it, 0.5 keeps 41 %, 1.0 keeps 8 %; the limit is 25 % of the baseline.
    [(0, False), (0.3, False), (0.4, False), (0.5, False), (1.0, True), (3, True)],
)
def test_blur_relative_to_the_baseline(sigma: float, blurred: bool) -> None:
    baseline = hair_drawing(3)
    reference = sharpness(baseline)
    follow_up = _blur(hair_drawing(3), sigma)
    report = assess_quality(follow_up, reference_sharpness=reference)
    assert_allclose(report.relative_sharpness, sharpness(follow_up) / reference, rtol=1e-12)
    assert ("blurred" in report.flags) is blurred
    if blurred:
        assert report.relative_sharpness < 0.25
        assert "of the baseline photo" in report.reasons()[0]


def test_reference_overrides_the_absolute_floor() -> None:
    # A soft but steady series (all at sigma 2) is fine relative to its own soft baseline ...
    soft = _blur(skdata.chelsea(), 2)
    assert "blurred" in assess_quality(soft, min_short_side=1, kind="global").flags
    report = assess_quality(soft, min_short_side=1, kind="global", reference_sharpness=sharpness(soft))
    assert "blurred" not in report.flags
    assert_allclose(report.relative_sharpness, 1.0)


def test_flat_baseline_falls_back_to_the_absolute_floor() -> None:
    flat = np.full((600, 800, 3), 90, np.uint8)
    reference = sharpness(flat)
    assert reference == 0.0
    report = assess_quality(hair_drawing(2), reference_sharpness=reference)
    assert report.relative_sharpness is None and report.flags == ()
    blurred = assess_quality(_blur(hair_drawing(2), 4), reference_sharpness=reference)
    assert blurred.flags == ("blurred",) and "minimum 5" in blurred.reasons()[0]


def test_sharpness_is_measured_at_working_size() -> None:
    big = cv2.resize(hair_drawing(4), (3000, 2400), interpolation=cv2.INTER_CUBIC)
    working = cv2.resize(big, (1000, 800), interpolation=cv2.INTER_AREA)
    assert_allclose(sharpness(big), sharpness(working), rtol=1e-6)
    small = hair_drawing(4, 300, 400)  # never enlarged
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    expected = cv2.Laplacian(grey, cv2.CV_64F, ksize=1).var()
    assert_allclose(sharpness(small), expected, rtol=1e-5)


def test_grey_and_rgb_inputs_agree() -> None:
    image = skdata.astronaut()
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert_allclose(sharpness(image), sharpness(grey), rtol=1e-12)
    a, b = assess_quality(image), assess_quality(grey)
    for field in ("dark_clipped", "bright_clipped", "mean_brightness"):
        assert getattr(a, field) == getattr(b, field)


def test_flat_image_has_zero_sharpness() -> None:
    flat = np.full((600, 800, 3), 128, np.uint8)
    report = assess_quality(flat)
    assert report.sharpness == 0.0
    assert report.flags == ("blurred",)


# --------------------------------------------------------------------------- exposure


def test_clipped_fractions_and_mean_are_exact() -> None:
    grey = np.full((1000, 1000), 100, np.uint8)
    grey[:300] = 3  # 30 % dark (<= 5)
    grey[300:350] = 5  # +5 % dark: 5 counts as clipped
    grey[350:400] = 6  # not dark
    grey[900:] = 250  # 10 % bright (>= 250)
    grey[850:900] = 249  # not bright
    report = assess_quality(grey)
    assert_allclose(report.dark_clipped, 0.35)
    assert_allclose(report.bright_clipped, 0.10)
    assert_allclose(report.mean_brightness, grey.mean())


@pytest.mark.parametrize(
    ("transform", "flag"),
    [
        (lambda im: (im * 0.12).astype(np.uint8), "underexposed"),
        (lambda im: np.clip(im.astype(np.int16) - 150, 0, 255).astype(np.uint8), "underexposed"),
        (lambda im: np.clip(im.astype(np.float64) * 2.5 + 60, 0, 255).astype(np.uint8), "overexposed"),
        (lambda im: np.clip(im.astype(np.int16) + 140, 0, 255).astype(np.uint8), "overexposed"),
    ],
    ids=["dim", "crushed_blacks", "blown_out", "washed_out"],
)
@pytest.mark.parametrize("name", ["astronaut", "coffee", "hair_0"])
def test_bad_exposure_is_flagged(transform, flag: str, name: str) -> None:
    image = IMAGES[name]()
    assert not {"underexposed", "overexposed"} & set(assess_quality(image, min_short_side=1).flags)
    report = assess_quality(transform(image), min_short_side=1)
    assert flag in report.flags
    assert any(("too dark" if flag == "underexposed" else "too bright") in line for line in report.reasons())


def test_closeup_tolerates_a_dermoscope_vignette() -> None:
    image = hair_drawing(5, 768, 1024)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(mask, (512, 384), 384, 1, -1)  # round field spanning the short side: ~41 % black outside
    vignetted = image * mask[..., None]
    closeup = assess_quality(vignetted, kind="closeup")
    assert 0.35 < closeup.dark_clipped < 0.45
    assert "underexposed" not in closeup.flags
    assert "underexposed" in assess_quality(vignetted, kind="global", min_short_side=1).flags


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("shape", "kind", "min_short_side", "low"),
    [
        ((480, 640), "closeup", None, False),
        ((479, 640), "closeup", None, True),
        ((720, 960), "global", None, False),
        ((719, 960), "global", None, True),
        ((640, 480), "global", None, True),
        ((120, 160), "closeup", None, True),
        ((120, 160), "closeup", 100, False),
        ((1000, 1500), "closeup", 1200, True),
    ],
)
def test_resolution(shape: tuple[int, int], kind: str, min_short_side: int | None, low: bool) -> None:
    image = cv2.resize(hair_drawing(6), shape[::-1], interpolation=cv2.INTER_AREA)
    report = assess_quality(image, kind=kind, min_short_side=min_short_side)
    assert report.short_side == min(shape)
    assert ("low_resolution" in report.flags) is low
    if low:
        minimum = min_short_side or MIN_SHORT_SIDE[kind]
        assert f"minimum {minimum} px" in " ".join(report.reasons())


def test_tiny_image_gets_a_report_not_an_error() -> None:
    report = assess_quality(np.full((8, 8, 3), 120, np.uint8))
    assert report.retake and "low_resolution" in report.flags


# --------------------------------------------------------------------------- report and input checks


def test_report_as_dict_is_json_ready() -> None:
    image = _blur(hair_drawing(7), 4)
    report = assess_quality(image, reference_sharpness=sharpness(hair_drawing(7)))
    assert isinstance(report, QualityReport)
    assert report.retake and report.flags == ("blurred",)
    out = json.loads(json.dumps(report.as_dict()))
    assert out["retake"] is True and out["flags"] == ["blurred"]
    assert out["reasons"] == report.reasons() and len(out["reasons"]) == 1
    expected_keys = {"retake", "flags", "reasons", "kind", "sharpness", "relative_sharpness", "dark_clipped",
                     "bright_clipped", "mean_brightness", "short_side", "sharpness_floor", "min_short_side"}
    assert set(out) == expected_keys
    assert_allclose(out["relative_sharpness"], report.relative_sharpness, atol=1e-4)


def test_good_photo_has_no_flags_and_no_reasons() -> None:
    report = assess_quality(hair_drawing(8))
    assert report.flags == () and not report.retake and report.reasons() == []
    assert report.as_dict()["relative_sharpness"] is None


def test_input_is_not_mutated() -> None:
    image = hair_drawing(9)
    before = image.copy()
    assess_quality(image, reference_sharpness=100.0)
    sharpness(image)
    assert_array_equal(image, before)
    view = np.asfortranarray(image)[::2, ::2]  # non-contiguous input is fine too
    assess_quality(view, min_short_side=1)


@pytest.mark.parametrize(
    ("image", "options", "match"),
    [
        (np.zeros((50, 50, 3), np.uint8), {"kind": "trichoscopy"}, "kind"),
        (np.zeros((50, 50, 3), np.uint8), {"reference_sharpness": -1.0}, "reference_sharpness"),
        (np.zeros((50, 50, 3), np.uint8), {"reference_sharpness": float("nan")}, "reference_sharpness"),
        (np.zeros((50, 50, 3), np.uint8), {"min_short_side": 0}, "min_short_side"),
        (np.zeros((50, 50, 3), np.float32), {}, "uint8"),
        (np.zeros((50, 50, 4), np.uint8), {}, "shape"),
        (np.zeros((2, 50, 3), np.uint8), {}, "too small"),
    ],
)
def test_bad_arguments_raise_value_error(image: np.ndarray, options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        assess_quality(image, **options)


def test_sharpness_rejects_non_arrays() -> None:
    with pytest.raises(TypeError):
        sharpness([[1, 2], [3, 4]])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real close-ups (evaluation data)


@pytest.mark.shared_data
@pytest.mark.skipif(not TRICHOSCOPY.is_dir(), reason="../shared/data/trichoscopy-counts is absent")
def test_real_trichoscopy_fields_pass_and_their_blur_is_caught() -> None:
    from tracker.imaging.decode import read_image_file

    files = sorted(TRICHOSCOPY.glob("*.jpg"))[::16]  # 24 of 380 fields, to stay fast
    assert files
    for path in files:
        pixels = read_image_file(path).pixels
        report = assess_quality(pixels, kind="closeup")
        assert report.flags == (), (path.name, report.as_dict())
        working = cv2.resize(pixels, (1000, 800), interpolation=cv2.INTER_AREA)
        assert "blurred" in assess_quality(_blur(working, 3), kind="closeup").flags, path.name
