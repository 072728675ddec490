"""Per-hair clean-up of the close-up hair list: pale wisps, bands of touching hairs, border weights."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.imaging.hair_units import drop_pale, weigh_border_hairs


def _hair(x=50.0, y=50.0, *, width=10.0, length=100.0, contrast=0.5, polarity=-1, free_ends=(), unit_exit=False):
    return dict(x=x, y=y, width_px=width, length_px=length, contrast=contrast, polarity=polarity,
                free_ends=list(free_ends), unit_exit=unit_exit)


@pytest.mark.parametrize(("contrast", "kept"), [(0.5, True), (0.25, True), (0.15, False), (0.05, False)])
def test_drop_pale_against_the_fields_shafts(contrast, kept):
    found = [_hair(contrast=0.5) for _ in range(5)] + [_hair(contrast=contrast)]
    out = drop_pale(found, min_rel_contrast=0.42)
    assert len(out) == 5 + kept


def test_drop_pale_judges_light_shafts_apart():
    dark = [_hair(contrast=0.6) for _ in range(5)]
    light = [_hair(contrast=0.15, polarity=1) for _ in range(3)]
    out = drop_pale(dark + light, min_rel_contrast=0.42)
    assert len(out) == 8
    assert drop_pale(dark + light[:1], min_rel_contrast=0.42) == dark  # one light wisp: judged with the dark


@pytest.mark.parametrize(
    ("free_ends", "unit_exit", "weight"),
    [
        ([(50, 50, 5), (80, 50, 5)], False, 1.0),  # both ends inside
        ([(2, 50, 5), (80, 50, 5)], False, 0.5),  # one end cut by the left edge
        ([(2, 50, 5), (97, 50, 5)], False, None),  # passes through: dropped
        ([(2, 50, 5)], True, 1.0),  # leaves a unit's opening inside the field
    ],
)
def test_weigh_border_hairs(free_ends, unit_exit, weight):
    fm = np.ones((100, 100), bool)
    out = weigh_border_hairs([_hair(free_ends=free_ends, unit_exit=unit_exit)], fm, edge_px=3.0)
    if weight is None:
        assert out == []
    else:
        assert [h["weight"] for h in out] == [weight]
        assert "free_ends" not in out[0]


def test_weigh_border_hairs_drops_exits_outside_the_field():
    fm = np.zeros((100, 100), bool)
    fm[:, 60:] = True
    assert weigh_border_hairs([_hair(x=30, y=50)], fm, edge_px=3.0) == []
