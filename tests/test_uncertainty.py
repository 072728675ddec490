import numpy as np
import pytest

from tracker.imaging.uncertainty import bootstrap_ratio_sd, tile_sums


def test_tile_sums_partition_the_image():
    rng = np.random.default_rng(1)
    values = rng.random((97, 131)) > 0.7
    points = rng.random((50, 2)) * [131, 97]
    sums = tile_sums((97, 131), pixel_values=values, points=points, grid=(3, 5))
    assert sums["area"].sum() == 97 * 131
    assert sums["pixels"].sum() == values.sum()
    assert sums["points"].sum() == 50


def test_tile_sums_respect_field_mask():
    field = np.zeros((40, 40), bool)
    field[:20] = True
    points = np.array([[5.0, 5.0], [5.0, 35.0]])  # second point outside the field
    sums = tile_sums((40, 40), field_mask=field, points=points, pixel_values=np.ones((40, 40)))
    assert sums["area"].sum() == 800 and sums["pixels"].sum() == 800 and sums["points"].sum() == 1


def test_uniform_tiles_have_zero_spread_and_uneven_tiles_do_not():
    assert bootstrap_ratio_sd(np.full(16, 10.0), np.full(16, 100.0)) == pytest.approx(0.0, abs=1e-12)
    uneven = np.array([0, 20, 5, 15] * 4, float)
    sd = bootstrap_ratio_sd(uneven, np.full(16, 100.0))
    # Standard error of the mean of tile ratios: population sd / sqrt(n).
    expected = np.std(uneven / 100.0) / np.sqrt(16)
    assert sd == pytest.approx(expected, rel=0.15)


def test_bootstrap_is_deterministic_and_handles_empty():
    a = bootstrap_ratio_sd(np.arange(16.0), np.full(16, 50.0), seed=3)
    assert a == bootstrap_ratio_sd(np.arange(16.0), np.full(16, 50.0), seed=3)
    assert bootstrap_ratio_sd(np.array([1.0]), np.array([2.0])) is None
    with pytest.raises(ValueError):
        bootstrap_ratio_sd(np.ones(3), np.ones(4))
