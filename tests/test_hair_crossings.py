"""Shallow crossings of two hairs (:mod:`tracker.imaging.hair_crossings`), through ``count_hairs``."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tests.test_hair_graph import _bar, _graph
from tracker.imaging.hair_crossings import path_length
from tracker.imaging.hair_graph import count_hairs


def _crossing(wide: int, thin: int, angle_deg: float) -> np.ndarray:
    """A ``thin`` px hair crossing a ``wide`` px one at ``angle_deg`` through its middle (400 x 400)."""
    mask = np.zeros((400, 400), np.uint8)
    _bar(mask, (200, 20), (200, 380), wide)
    a, half = np.radians(angle_deg), 170
    _bar(mask, (200 - half * np.sin(a), 200 - half * np.cos(a)), (200 + half * np.sin(a), 200 + half * np.cos(a)), thin)
    return mask


@pytest.mark.parametrize("angle", [20, 30, 45, 60, 90])
@pytest.mark.parametrize(("wide", "thin"), [(14, 5), (14, 9), (10, 4), (8, 8), (20, 6)])
def test_a_hair_crossing_another_is_one_hair_at_any_angle(wide, thin, angle):
    # At shallow angles the crossing skeletonises into two junctions joined by a link longer than the
    # short-link merge; the crossing hair's two arms are joined across that link (they had counted as two).
    skel, dist = _graph(_crossing(wide, thin, angle))
    hairs = count_hairs(skel, dist, min_length_px=20, max_gap_px=10)
    assert len(hairs) == 2
    # The crossing hair does not own the stretch inside the wide one: its length is up to a tenth short.
    assert_allclose(sorted(h["length_px"] for h in hairs), [340, 360], rtol=0.1)


@pytest.mark.parametrize("spread", [15.0, 30.0, 50.0])
def test_arms_of_a_unit_beside_a_wide_hair_are_not_joined_across_it(spread):
    # Two hairs leaving one opening on the wide hair's edge to the same side: both stay hairs of their own.
    mask = np.zeros((400, 400), np.uint8)
    _bar(mask, (200, 20), (200, 380), 14)
    for ang in (90.0 - spread / 2, 90.0 + spread / 2):
        a = np.radians(ang)
        _bar(mask, (200, 200), (200 + 170 * np.sin(a), 200 + 170 * np.cos(a)), 5)
    skel, dist = _graph(mask)
    assert len(count_hairs(skel, dist, min_length_px=20, max_gap_px=10)) == 3


def test_two_parallel_hairs_touching_stay_two_straight_hairs():
    # An H: two hairs side by side, touching over a short stretch. Each passes its junction straight.
    mask = np.zeros((400, 400), np.uint8)
    _bar(mask, (180, 20), (180, 380), 8)
    _bar(mask, (198, 20), (198, 380), 8)
    _bar(mask, (180, 195), (198, 205), 8)
    skel, dist = _graph(mask)
    hairs = count_hairs(skel, dist, min_length_px=20, max_gap_px=10)
    assert len(hairs) == 2
    for hair in hairs:  # each runs down one side: its two free ends share a column
        (x0, _, _), (x1, _, _) = hair["free_ends"]
        assert abs(x0 - x1) <= 2


@pytest.mark.parametrize(("path", "length"), [([[0, 0]], 0.0), ([[0, 0], [0, 1], [1, 2]], 1 + np.sqrt(2))])
def test_path_length_sums_the_steps(path, length):
    assert_allclose(path_length(np.array(path)), length)
