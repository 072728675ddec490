"""The pipeline's alignment step (tracker.pipeline_align): manual points first, then features, per kind."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tracker.imaging.align import homography_from_points
from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.series import vertex_pose
from tracker.phantoms.vertex import render_vertex
from tracker.pipeline_align import align_closeup, align_global
from tracker.pipeline_baseline import prepare_baseline
from tracker.pipeline_scale import find_sticker
from tracker.pipeline_work import working_for_long_side

from .poses import centred_pose

SHAPE = (600, 750)


@pytest.fixture(scope="module")
def closeups():
    base, _, _ = render_closeup(seed=5, density_per_cm2=180, px_per_mm=150, shape=SHAPE)
    pose = centred_pose(SHAPE, 6.0, scale=1.03, dx=15.0, dy=-10.0)
    follow, _, _ = render_closeup(seed=5, shot_seed=3, density_per_cm2=180, px_per_mm=150, shape=SHAPE, pose=pose)
    other, _, _ = render_closeup(seed=91, density_per_cm2=120, px_per_mm=150, shape=SHAPE, skin_tone=4)
    return prepare_baseline(base, kind="closeup"), follow, other, pose


def test_closeup_follow_up_lands_on_its_baseline(closeups):
    baseline, follow, _, pose = closeups
    alignment, flags = align_closeup(baseline, follow, find_sticker(follow), None)
    assert alignment.ok and flags == []
    # the render maps canonical (baseline) pixels into the photo by `pose`: the transform is its inverse
    corners = np.array([[0, 0], [749, 0], [749, 599], [0, 599]], float)
    truth = np.linalg.inv(pose)
    mapped = np.c_[corners, np.ones(4)] @ truth.T
    expected = mapped[:, :2] / mapped[:, 2:]
    got = np.c_[corners, np.ones(4)] @ np.asarray(alignment.matrix).T
    assert_allclose(got[:, :2] / got[:, 2:], expected, atol=1.0)


def test_closeup_of_another_spot_is_a_note(closeups):
    baseline, _, other, _ = closeups
    alignment, flags = align_closeup(baseline, other, find_sticker(other), None)
    assert not alignment.ok and flags == ["not_aligned"]


@pytest.mark.parametrize("kind", ["closeup", "global"])
def test_without_a_baseline_there_is_nothing_to_align(closeups, kind):
    _, follow, _, _ = closeups
    if kind == "closeup":
        assert align_closeup(None, follow, None, None) == (None, [])
    else:
        working = working_for_long_side(follow.shape, None)
        assert align_global(None, follow, working, None) == (None, [])


@pytest.mark.parametrize("good", [True, False])
def test_picked_points_win_over_features(closeups, good):
    baseline, follow, _, _ = closeups
    moving = np.array([[100, 100], [600, 120], [620, 500], [90, 480]], float)
    reference = moving + 7.0 if good else moving[:, ::-1].copy()  # x and y swapped: a mirror, refused
    manual = homography_from_points(moving, reference)
    assert manual.ok is good
    working = working_for_long_side(follow.shape, None)
    for (alignment, flags), failure in (
        (align_closeup(baseline, follow, None, None, manual=manual), "not_aligned"),
        (align_global(None, follow, working, None, manual=manual), "alignment_failed"),
    ):
        assert alignment is manual
        assert flags == ([] if good else [failure])


def test_global_view_aligns_with_the_hair_masked_out():
    shape = (900, 1200)
    rng = np.random.default_rng(4)
    pa, pb = vertex_pose(rng, shape), vertex_pose(rng, shape)
    a, _, ta = render_vertex(seed=2, thinning=0.2, shape=shape, pose=pa, hair_seed=12)
    b, _, tb = render_vertex(seed=2, thinning=0.4, shape=shape, pose=pb, hair_seed=22, brightness=0.85)
    working = working_for_long_side(b.shape, None)
    alignment, flags = align_global(prepare_baseline(a, kind="global"), b, working, None)
    assert alignment.ok and flags == []
    truth = np.linalg.inv(ta.transform_to_canonical) @ tb.transform_to_canonical
    corners = np.array([[0, 0], [1199, 0], [1199, 899], [0, 899]], float)
    expected = np.c_[corners, np.ones(4)] @ truth.T
    got = np.c_[corners, np.ones(4)] @ np.asarray(alignment.matrix).T
    assert_allclose(got[:, :2] / got[:, 2:], expected[:, :2] / expected[:, 2:], atol=2.0)
