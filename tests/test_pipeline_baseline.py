"""Prepared baselines (tracker.pipeline_baseline): same analyses as with the photo, through bytes and back."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.fiducial import place_sticker
from tracker.phantoms.vertex import render_vertex
from tracker.pipeline import analyse_closeup, analyse_global
from tracker.pipeline_baseline import BaselineReference, prepare_baseline, reference_version

SHAPE = (600, 800)
PPM = 120.0


def _pose(angle_deg: float, dx: float, dy: float) -> np.ndarray:
    h, w = SHAPE
    a = np.deg2rad(angle_deg)
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    rotate = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return np.array([[1, 0, w / 2 + dx], [0, 1, h / 2 + dy], [0, 0, 1]], float) @ rotate @ centre


@pytest.fixture(scope="module")
def vertex_pair():
    base, _, _ = render_vertex(seed=31, thinning=0.5, shape=SHAPE, hair_seed=1)
    follow, _, truth = render_vertex(seed=31, thinning=0.5, shape=SHAPE, hair_seed=2, brightness=0.9,
                                     pose=_pose(7.0, 18.0, -9.0))
    return base, follow, truth


@pytest.fixture(scope="module")
def closeup_pair():
    base, _, _ = render_closeup(seed=5, density_per_cm2=180, px_per_mm=PPM, shape=SHAPE)
    follow, _, truth = render_closeup(seed=5, density_per_cm2=180, px_per_mm=PPM, shape=SHAPE,
                                      pose=_pose(-10.0, 12.0, 8.0), shot_seed=3)
    return base, follow, truth


def _same(a, b) -> None:
    """Two analyses agree on every figure and transform."""
    assert a.alignment["ok"] == b.alignment["ok"]
    assert_allclose(np.asarray(a.transform, float), np.asarray(b.transform, float), atol=1e-9)
    assert a.quality == b.quality
    for key, value in a.metrics.items():
        if isinstance(value, float):
            assert_allclose(value, b.metrics[key], rtol=1e-12, err_msg=key)
        else:
            assert value == b.metrics[key], key


@pytest.mark.parametrize("through_bytes", [False, True])
def test_global_with_a_reference_equals_with_the_photo(vertex_pair, through_bytes):
    base, follow, truth = vertex_pair
    reference = prepare_baseline(base, kind="global")
    if through_bytes:
        reference = BaselineReference.from_bytes(reference.to_bytes())
    direct = analyse_global(follow, view="vertex", baseline=base)
    prepared = analyse_global(follow, view="vertex", baseline=reference)
    assert direct.alignment["ok"], direct.alignment["reason"]
    _same(direct, prepared)
    corners = np.array([[0, 0], [SHAPE[1], 0], [SHAPE[1], SHAPE[0]], [0, SHAPE[0]]], float)

    def mapped(m: np.ndarray) -> np.ndarray:
        p = np.c_[corners, np.ones(4)] @ np.asarray(m, float).T
        return p[:, :2] / p[:, 2:]

    assert np.abs(mapped(prepared.transform) - mapped(truth.transform_to_canonical)).max() < 2.0


@pytest.mark.parametrize("through_bytes", [False, True])
def test_closeup_with_a_reference_equals_with_the_photo(closeup_pair, through_bytes):
    base, follow, _ = closeup_pair
    reference = prepare_baseline(base, kind="closeup")
    if through_bytes:
        reference = BaselineReference.from_bytes(reference.to_bytes())
    direct = analyse_closeup(follow, px_per_mm=PPM, baseline=base)
    prepared = analyse_closeup(follow, px_per_mm=PPM, baseline=reference)
    assert direct.alignment["ok"], direct.alignment["reason"]
    _same(direct, prepared)


def test_a_baseline_sticker_survives_the_round_trip(closeup_pair):
    base, _, _ = closeup_pair
    with_sticker, _ = place_sticker(base, px_per_mm=PPM, centre_xy=(505.0, 300.0), rotation_deg=20.0, marker_id=3,
                                    seed=1, noise_sigma=2.0)
    reference = prepare_baseline(with_sticker, kind="closeup")
    assert reference.sticker is not None and reference.sticker.found
    again = BaselineReference.from_bytes(reference.to_bytes())
    assert again.sticker.found and again.sticker.marker_id == reference.sticker.marker_id
    assert_allclose(again.sticker.corners, reference.sticker.corners)
    assert_allclose(again.sticker.px_per_mm, reference.sticker.px_per_mm)
    assert (again.kind, again.shape, again.version) == ("closeup", SHAPE, reference_version())
    assert_allclose(again.sharpness, reference.sharpness)
    # the sticker is masked out of the features the follow-ups are matched with
    x, y = (np.asarray(reference.sticker.corners).mean(axis=0) * np.diag(reference.alignment.to_work)[:2]).astype(int)
    assert reference.alignment.mask[y, x] == 0


@pytest.mark.parametrize("data", [b"", b"not an npz", b"PK\x03\x04 broken zip"])
def test_bad_bytes_are_refused(data):
    with pytest.raises(ValueError, match="baseline reference"):
        BaselineReference.from_bytes(data)


def test_bad_inputs_are_refused(vertex_pair):
    base, follow, _ = vertex_pair
    with pytest.raises(ValueError, match="kind"):
        prepare_baseline(base, kind="dermoscopy")
    with pytest.raises(ValueError, match="uint8"):
        prepare_baseline(base.astype(np.float32), kind="global")
    with pytest.raises(ValueError, match="working_long_side"):
        analyse_global(follow, baseline=prepare_baseline(base, kind="global"), working_long_side=400)
    with pytest.raises(ValueError, match="prepared for a global photo"):
        analyse_closeup(follow, px_per_mm=PPM, baseline=prepare_baseline(base, kind="global"))
    base_copy = base.copy()
    prepare_baseline(base, kind="global")
    assert np.array_equal(base, base_copy)  # input not mutated
