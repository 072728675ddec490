"""Binary clean-up of the close-up hair mask: shape test of drop_blobs on drawn bars of known size."""

from __future__ import annotations

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
