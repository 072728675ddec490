"""Per-hair clean-up of the close-up hair list: pale wisps, bands of touching hairs, border weights."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.imaging.hair_units import _edge_distance, drop_pale, weigh_border_hairs


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


def _ref_weigh_border_hairs(found, fm, *, edge_px):
    """The straightforward version (a distance transform of the whole field), kept as the reference."""
    h, w = fm.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = fm
    to_edge = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    out = []
    for hair in found:
        if not fm[int(round(hair["y"])), int(round(hair["x"]))]:
            continue
        cut = sum(to_edge[int(round(y)), int(round(x))] <= r + edge_px for x, y, r in hair.get("free_ends", ()))
        weight = 1.0 if cut == 0 else (0.5 if cut == 1 or hair.get("unit_exit") else 0.0)
        if hair.get("unit_exit") and cut == 1:
            weight = 1.0
        if weight > 0:
            out.append({**{k: v for k, v in hair.items() if k != "free_ends"}, "weight": weight})
    return out


def _random_field(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = rng.integers(40, 160, 2)
    fm = np.ones((h, w), np.uint8)
    for _ in range(rng.integers(0, 5)):  # a sticker, a banner, holes
        cv2.circle(fm, tuple(int(v) for v in rng.integers(0, (w, h))), int(rng.integers(2, 25)), 0, -1)
    if rng.random() < 0.4:
        fm[: rng.integers(1, 15)] = 0
    return fm.astype(bool)


@pytest.mark.parametrize("seed", range(12))
def test_edge_distance_equals_the_whole_field_transform_within_reach(seed):
    fm = _random_field(seed)
    h, w = fm.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = fm
    full = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    rng = np.random.default_rng(100 + seed)
    for y, x in zip(rng.integers(0, h, 150), rng.integers(0, w, 150), strict=True):
        reach = float(rng.uniform(0.0, 30.0))
        got = _edge_distance(fm, int(y), int(x), reach)
        assert (got <= reach) == (full[y, x] <= reach)
        if full[y, x] <= reach:
            assert got == float(full[y, x])


def _random_hairs(seed: int, shape) -> tuple[list[dict], float]:
    h, w = shape
    rng = np.random.default_rng(200 + seed)
    found = []
    for _ in range(40):
        ends = [(float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1)), float(rng.uniform(0.5, 12)))
                for _ in range(rng.integers(0, 3))]
        found.append(_hair(x=float(rng.uniform(0, w - 1)), y=float(rng.uniform(0, h - 1)), free_ends=ends,
                           unit_exit=bool(rng.random() < 0.3)))
    return found, float(rng.uniform(0, 6))


@pytest.mark.parametrize("seed", range(12))
def test_weigh_border_hairs_equals_the_whole_field_reference(seed):
    fm = _random_field(seed)
    found, edge = _random_hairs(seed, fm.shape)
    assert weigh_border_hairs(found, fm, edge_px=edge) == _ref_weigh_border_hairs(found, fm, edge_px=edge)


def test_the_border_reference_comparison_sees_every_weight():
    """The comparison above is not vacuous: its cases keep hairs at 1 and 1/2 and drop others."""
    dropped, weights = 0, set()
    for seed in range(12):
        fm = _random_field(seed)
        found, edge = _random_hairs(seed, fm.shape)
        out = _ref_weigh_border_hairs(found, fm, edge_px=edge)
        dropped += len(found) - len(out)
        weights |= {h["weight"] for h in out}
    assert weights == {0.5, 1.0}
    assert dropped > 0
