"""Prepared baselines (tracker.pipeline_baseline): same analyses as with the photo, through bytes and back."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.geometry import image_corners, transform_points
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.fiducial import place_sticker
from tracker.phantoms.vertex import render_vertex
from tracker.pipeline import analyse_closeup, analyse_global
from tracker.pipeline_baseline import BaselineReference, prepare_baseline, reference_version

from .poses import centred_pose

SHAPE = (600, 800)
PPM = 120.0


@pytest.fixture(scope="module")
def vertex_pair():
    base, _, _ = render_vertex(seed=31, thinning=0.5, shape=SHAPE, hair_seed=1)
    follow, _, truth = render_vertex(seed=31, thinning=0.5, shape=SHAPE, hair_seed=2, brightness=0.9,
                                     pose=centred_pose(SHAPE, 7.0, dx=18.0, dy=-9.0))
    return base, follow, truth


@pytest.fixture(scope="module")
def closeup_pair():
    base, _, _ = render_closeup(seed=5, density_per_cm2=180, px_per_mm=PPM, shape=SHAPE)
    follow, _, truth = render_closeup(seed=5, density_per_cm2=180, px_per_mm=PPM, shape=SHAPE,
                                      pose=centred_pose(SHAPE, -10.0, dx=12.0, dy=8.0), shot_seed=3)
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
@pytest.mark.parametrize("kind", ["global", "closeup"])
def test_analysis_with_a_reference_equals_with_the_photo(vertex_pair, closeup_pair, kind, through_bytes):
    base, follow, truth = vertex_pair if kind == "global" else closeup_pair
    reference = prepare_baseline(base, kind=kind)
    if through_bytes:
        reference = BaselineReference.from_bytes(reference.to_bytes())
    if kind == "global":
        direct, prepared = (analyse_global(follow, view="vertex", baseline=b) for b in (base, reference))
    else:
        direct, prepared = (analyse_closeup(follow, px_per_mm=PPM, baseline=b) for b in (base, reference))
    assert direct.alignment["ok"], direct.alignment["reason"]
    _same(direct, prepared)
    corners = image_corners(SHAPE)
    error = transform_points(corners, prepared.transform) - transform_points(corners, truth.transform_to_canonical)
    assert np.abs(error).max() < 2.0


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
