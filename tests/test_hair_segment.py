"""Binary clean-up of the close-up hair mask: shape test of drop_blobs on drawn bars of known size."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tracker.imaging.hair_segment import drop_blobs


def _bar(length, width, shape=(120, 160)):
    m = np.zeros(shape, bool)
    m[20 : 20 + width, 10 : 10 + length] = True
    return m


@pytest.mark.parametrize(
    ("length", "width", "elongation", "kept"),
    [
        (100, 5, 3.0, True),  # a shaft: 20 x as long as wide
        (100, 5, 15.0, True),
        (100, 10, 15.0, False),  # 10 x: a blot for the strict test, a shaft for the default one
        (100, 10, 3.0, True),
        (40, 20, 3.0, False),  # 2 x: a blot
        (20, 2, 3.0, False),  # shorter than min_length
    ],
)
def test_drop_blobs_keeps_long_thin_components(length, width, elongation, kept):
    m = _bar(length, width)
    before = m.copy()
    out = drop_blobs(m, min_area=20, min_length=30, elongation=elongation)
    assert np.array_equal(m, before)
    assert out.dtype == bool and out.shape == m.shape
    assert np.array_equal(out, m if kept else np.zeros_like(m))


# ------------------------------------------------- speed (issue 7): drop_blobs keeps exactly what it kept
def _ref_drop_blobs(mask, *, min_area, min_length, elongation=3.0):
    """drop_blobs before issue 7 (every pixel of a component handed to minAreaRect), kept as the reference."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    for i in range(1, n):
        area = stats[i, cv2.CC_STAT_AREA]
        if area < min_area:
            continue
        x, y, bw, bh = stats[i, :4]
        ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == i)
        (_, _), (rw, rh), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
        long_side = max(rw, rh) + 1
        if long_side < min_length or long_side**2 < elongation * area:
            continue
        keep[i] = True
    return keep[labels]


@functools.cache
def _masks():
    import cv2

    rng = np.random.default_rng(3)
    out = [cv2.GaussianBlur(rng.random((200, 260)), (0, 0), s) > t for s, t in ((1.5, 0.52), (3.0, 0.51), (6.0, 0.5))]
    closeup = pytest.importorskip("tracker.phantoms.closeup")
    from tracker.imaging.hair import hair_mask

    for seed, kw in ((1, {}), (2, {"density_per_cm2": 320.0, "hair_colour": "black"}), (3, {"skin_tone": 5})):
        img = closeup.render_closeup(seed=seed, shape=(300, 400), px_per_mm=150.0, **kw)[0]
        out.append(hair_mask(img, px_per_mm=150.0))
        out.append(hair_mask(img, px_per_mm=60.0))  # looser limits: more pieces, blots and dots
    return out


@pytest.mark.parametrize("elongation", [3.0, 15.0])
@pytest.mark.parametrize(("min_area", "min_length"), [(5, 8), (20, 30), (60, 15)])
def test_drop_blobs_as_before(min_area, min_length, elongation):
    for m in _masks():
        kw = {"min_area": min_area, "min_length": min_length, "elongation": elongation}
        np.testing.assert_array_equal(drop_blobs(m, **kw), _ref_drop_blobs(m, **kw))


def _ref_hysteresis(low, high):
    """hysteresis before issue 7 (np.unique of the seeded labels), kept as the reference."""
    import cv2

    n, labels = cv2.connectedComponents(low.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[high & low])] = True
    keep[0] = False
    return keep[labels]


@pytest.mark.parametrize("seed", range(4))
def test_hysteresis_as_before(seed):
    from tracker.imaging.hair_segment import hysteresis

    rng = np.random.default_rng(seed)
    for m in _masks()[:4]:
        high = rng.random(m.shape) > (0.5 + 0.12 * seed)
        np.testing.assert_array_equal(hysteresis(m, high), _ref_hysteresis(m, high))
    empty = np.zeros((30, 40), bool)
    np.testing.assert_array_equal(hysteresis(empty, ~empty), empty)
