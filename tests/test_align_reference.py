"""Tests of tracker.imaging.align_reference: a prepared baseline gives the same alignment, and serialises."""

from __future__ import annotations

import io
from functools import cache

import cv2
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from skimage import data

from tracker.imaging.align import QUICK_FEATURES, align_images
from tracker.imaging.align_reference import FORMAT_VERSION, AlignmentReference, prepare_reference
from tracker.imaging.features import _match, checked_grey, checked_mask, detect_features, working_image
from tracker.imaging.geometry import image_corners, transform_points

VIEW = (750, 1000)


@cache
def _source(name: str, long_side: int = 1300) -> np.ndarray:
    img = getattr(data, name)()
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)


def _pair(name: str, angle: float, zoom: float, shape=VIEW, long_side: int = 1300):
    """(reference, moving, true H moving->reference): two views of one photo, the second rotated/zoomed."""
    src = _source(name, long_side)
    sh, sw = src.shape[:2]

    def view(angle_deg: float, z: float) -> np.ndarray:
        a = np.deg2rad(angle_deg)
        centre = np.array([[1, 0, -(shape[1] - 1) / 2], [0, 1, -(shape[0] - 1) / 2], [0, 0, 1.0]])
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
        back = np.array([[1, 0, (sw - 1) / 2], [0, 1, (sh - 1) / 2], [0, 0, 1.0]])
        return back @ rot @ np.diag([1 / z, 1 / z, 1.0]) @ centre

    def render(a: np.ndarray) -> np.ndarray:
        return cv2.warpPerspective(src, a, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

    a_r, a_m = view(0.0, 1.0), view(angle, zoom)
    h = np.linalg.inv(a_r) @ a_m
    return render(a_r), render(a_m), h / h[2, 2]


def _ringed(image: np.ndarray) -> np.ndarray:
    """The photo seen through a dermoscope: black outside a circle slightly wider than the frame."""
    h, w = image.shape[:2]
    yy, xx = np.indices((h, w))
    out = image.copy()
    out[(xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2 > (0.55 * w) ** 2] = 8
    return out


def _same(a, b) -> None:
    assert_array_equal(a.matrix, b.matrix)
    assert a.as_dict() == b.as_dict()


def _cases():
    ref, mov, _ = _pair("astronaut", 12.0, 1.1)
    top = np.zeros(VIEW, dtype=bool)
    top[: VIEW[0] // 2 + 100] = True
    small_r, small_m, _ = _pair("coffee", -20.0, 0.9, shape=(150, 200), long_side=260)
    return {
        "global photo": (ref, mov, {}),
        "masked reference and moving": (ref, mov, {"reference_mask": top, "moving_mask": top}),
        "closeup through a dermoscope ring": (_ringed(ref), _ringed(mov), {"preset": "closeup"}),
        "small closeup (enlarged level)": (small_r, small_m, {"preset": "closeup"}),
        "grey reference": (cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY), mov, {}),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_prepared_reference_gives_identical_results(case):
    ref, mov, kwargs = _cases()[case]
    kwargs = dict(kwargs)
    moving_mask = kwargs.pop("moving_mask", None)
    direct = align_images(ref, mov, moving_mask=moving_mask, **kwargs)
    prepared = prepare_reference(ref, **kwargs)
    _same(direct, align_images(prepared, mov, moving_mask=moving_mask))
    restored = AlignmentReference.from_bytes(prepared.to_bytes())
    _same(direct, align_images(restored, mov, moving_mask=moving_mask))
    assert restored.preset == prepared.preset and restored.shape == ref.shape[:2]
    assert direct.ok, direct.reason  # (a refused pair: see the SIFT test below)


def test_sift_is_computed_when_needed_then_cached_and_serialised():
    # Different photos: ORB finds no consistent matches, so SIFT is tried as well (and the pair refused).
    ref, mov = _pair("astronaut", 0.0, 1.0)[0], _pair("coffee", 0.0, 1.0)[0]
    prepared = prepare_reference(ref)
    assert "sift" not in repr(prepared)
    direct = align_images(ref, mov)
    _same(direct, align_images(prepared, mov))
    assert "sift" in repr(prepared) and not direct.ok
    cached = prepared.features("sift")
    assert prepared.features("sift")[0] is cached[0]
    restored = AlignmentReference.from_bytes(prepared.to_bytes())
    assert "sift" in repr(restored)
    for got, want in zip(restored.features("sift"), cached, strict=True):
        assert_array_equal(got, want)
    _same(direct, align_images(restored, mov))


def test_serialised_reference_round_trips_and_is_compact():
    ref = _source("astronaut", 4000)[:3000]  # a 12 MP photo
    prepared = prepare_reference(ref)
    blob = prepared.to_bytes()
    assert len(blob) < 2_000_000
    restored = AlignmentReference.from_bytes(blob)
    assert restored.shape == (3000, 4000) and max(restored.grey.shape) == 1000
    assert_array_equal(restored.grey, prepared.grey)
    assert_array_equal(restored.mask, prepared.mask)
    for got, want in zip(restored.features("orb"), prepared.features("orb"), strict=True):
        assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert not restored.grey.flags.writeable


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@cache
def _good_arrays() -> dict[str, np.ndarray]:
    prepared = prepare_reference(_pair("astronaut", 0.0, 1.0, shape=(150, 200), long_side=260)[0])
    with np.load(io.BytesIO(prepared.to_bytes()), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize(
    "change",
    [
        {"format_version": np.array(FORMAT_VERSION + 1, dtype=np.int64)},
        {"format_version": None},
        {"preset": np.array("portrait")},
        {"grey": np.zeros((10, 10), np.uint8)},
        {"mask": np.full((300, 400), 7, np.uint8)},
        {"orb_descriptors": np.zeros((3, 32), np.uint8)},
        {"orb_order": np.zeros(1, np.int32)},
        {"shape": np.array([150], dtype=np.int64)},
    ],
)
def test_inconsistent_contents_are_refused(change):
    arrays = dict(_good_arrays())
    for key, value in change.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    with pytest.raises(ValueError, match="alignment reference"):
        AlignmentReference.from_bytes(_npz(**arrays))


def test_the_unchanged_contents_are_accepted():
    restored = AlignmentReference.from_bytes(_npz(**_good_arrays()))
    assert restored.preset == "global"


@pytest.mark.parametrize("data_", [b"", b"not an npz", b"PK\x03\x04broken zip", "text"])
def test_bad_bytes_are_refused(data_):
    with pytest.raises(ValueError):
        AlignmentReference.from_bytes(data_)


def test_pickled_objects_are_refused():
    arrays = dict(_good_arrays())
    arrays["preset"] = np.array([{"evil": 1}], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(ValueError):
        AlignmentReference.from_bytes(buffer.getvalue())


def test_prepared_reference_rejects_conflicting_options():
    ref, mov, _ = _pair("astronaut", 0.0, 1.0, shape=(150, 200), long_side=260)
    prepared = prepare_reference(ref, preset="closeup")
    with pytest.raises(ValueError, match="reference_mask"):
        align_images(prepared, mov, reference_mask=np.ones(ref.shape[:2], bool))
    with pytest.raises(ValueError, match="preset"):
        align_images(prepared, mov, preset="global")
    assert align_images(prepared, mov, preset="closeup").ok
    with pytest.raises(ValueError):
        prepare_reference(ref, preset="portrait")
    with pytest.raises(ValueError):
        prepare_reference(ref[:20])


def test_strong_pairs_are_matched_on_the_strongest_keypoints_first_without_losing_accuracy():
    ref, mov, h_true = _pair("astronaut", 20.0, 1.15)
    result = align_images(ref, mov)
    assert result.ok
    assert result.quality["keypoints_reference"] > QUICK_FEATURES  # the quick path was possible ...
    assert result.quality["matches"] <= QUICK_FEATURES  # ... and taken
    c = image_corners(mov.shape)
    assert_allclose(transform_points(c, result.matrix), transform_points(c, h_true), atol=0.5)


def test_mutual_matching_equals_matching_every_reference_descriptor():
    ref, mov, _ = _pair("chelsea", 15.0, 0.9)
    work = [working_image(checked_grey(x, name="x"), checked_mask(None, x.shape[:2], name="m")) for x in (ref, mov)]
    _, desc_r, _ = detect_features("orb", *work[0][:2])
    _, desc_m, _ = detect_features("orb", *work[1][:2])
    pairs, strict = _match("orb", desc_m, desc_r)
    # The plain formulation: nearest moving point of EVERY reference descriptor.
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    backward = {m.queryIdx: m.trainIdx for m in matcher.match(desc_r, desc_m)}
    expected = [
        (p[0].queryIdx, p[0].trainIdx)
        for p in matcher.knnMatch(desc_m, desc_r, k=2)
        if p[0].distance < 0.9 * p[1].distance and backward[p[0].trainIdx] == p[0].queryIdx
    ]
    assert pairs == expected and len(pairs) > 100 and len(strict) == len(pairs)


def test_large_photo_finds_the_vignette_on_the_reduced_copy():
    big = _ringed(_source("immunohistochemistry", 2000)[:1500])
    prepared = prepare_reference(big, preset="closeup")
    level = prepared.grey
    assert max(level.shape) == 1000
    assert not prepared.mask[level <= 10].any()  # the ring is out
    assert prepared.mask[level.shape[0] // 2, level.shape[1] // 2] == 255
    assert (prepare_reference(big).mask == 255).all()  # the global preset keeps it
