"""Skeleton graph -> hairs: sheen-split shafts (two parallel rims) count as one hair of the whole width."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from skimage.morphology import skeletonize

from tracker.imaging import hair_graph, hair_rims
from tracker.imaging.hair_graph import count_hairs
from tracker.imaging.hair_rims import fast_median, pair_split_rims


def _bar(mask: np.ndarray, p0, p1, width: float) -> None:
    cv2.line(mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1, thickness=int(width))


def _graph(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = mask.astype(bool)
    return skeletonize(m), cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)


def _split_shaft(rim: int, groove: int, length: int = 150, angle_deg: float = 20.0) -> np.ndarray:
    """Mask of one shaft whose bright core is missing: two parallel rims of ``rim`` px, ``groove`` px apart."""
    mask = np.zeros((260, 260), np.uint8)
    a = np.radians(angle_deg)
    d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    off = 0.5 * (rim + groove)
    c0 = np.array([50.0, 50.0])
    for s in (-1, 1):
        _bar(mask, c0 + s * off * n, c0 + s * off * n + length * d, rim)
    return mask


@pytest.mark.parametrize(("rim", "groove"), [(3, 5), (4, 6), (5, 8)])
def test_two_parallel_rims_are_one_hair_of_the_whole_width(rim, groove):
    skel, dist = _graph(_split_shaft(rim, groove))
    apart = count_hairs(skel, dist, min_length_px=30, max_split_px=0)
    assert len(apart) == 2  # without the pairing: two thin "hairs"
    hairs = count_hairs(skel, dist, min_length_px=30, max_split_px=30)
    assert len(hairs) == 1
    # Outer edge to outer edge: two rims and the groove (a rim of 3-5 px reads within about 1 px; cv2 lines
    # of even thickness are 1 px wider), far from one rim's width.
    assert_allclose(hairs[0]["width_px"], 2 * rim + groove, atol=2.5)
    # One rim's length (plus the round caps and the half widths at the free ends), not two rims' length.
    assert 140 <= hairs[0]["length_px"] <= 190


def test_default_spacing_limit_follows_min_length():
    skel, dist = _graph(_split_shaft(4, 6))
    assert len(count_hairs(skel, dist, min_length_px=30)) == 1


def test_rims_wider_apart_than_the_widest_shaft_stay_two_hairs():
    skel, dist = _graph(_split_shaft(4, 24))
    assert len(count_hairs(skel, dist, min_length_px=30, max_split_px=20)) == 2


def test_hairs_of_one_unit_fanning_out_are_not_paired():
    mask = np.zeros((260, 260), np.uint8)
    for ang in (10.0, 30.0):  # two hairs from one opening, 20 deg apart: their spacing grows
        a = np.radians(ang)
        _bar(mask, (40, 40), (40 + 180 * np.cos(a), 40 + 180 * np.sin(a)), 4)
    skel, dist = _graph(mask)
    assert len(count_hairs(skel, dist, min_length_px=30, max_split_px=30)) == 2


def test_rims_of_different_lengths_are_not_paired():
    """A short hair beside a long one is two hairs: the rims of one shaft span the same stretch."""
    mask = np.zeros((200, 260), np.uint8)
    _bar(mask, (20, 80), (240, 80), 4)
    _bar(mask, (20, 90), (80, 90), 4)
    skel, dist = _graph(mask)
    assert len(count_hairs(skel, dist, min_length_px=30, max_split_px=30)) == 2


def test_pair_split_rims_reports_indices_and_width():
    skel, dist = _graph(_split_shaft(4, 6, angle_deg=0.0))
    ys, xs = np.nonzero(skel)
    top, bottom = ys < ys.mean(), ys > ys.mean()
    paths = [np.column_stack([ys[sel], xs[sel]])[np.argsort(xs[sel])] for sel in (top, bottom)]
    pairs = pair_split_rims(paths, dist, max_split_px=30, min_rim_px=30)
    assert len(pairs) == 1
    i, j, width = pairs[0]
    assert {i, j} == {0, 1}
    assert_allclose(width, 14, atol=2.0)


def test_pair_split_rims_leaves_inputs_alone_and_handles_few_segments():
    dist = np.zeros((10, 10), np.float32)
    path = np.array([[1, 1], [1, 2]])
    before = path.copy()
    assert pair_split_rims([path], dist, max_split_px=5) == []
    np.testing.assert_array_equal(path, before)


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan")])
def test_pair_split_rims_rejects_bad_spacing_limit(bad):
    with pytest.raises(ValueError, match="max_split_px"):
        pair_split_rims([], np.zeros((4, 4), np.float32), max_split_px=bad)


# ---- Issue 7: the fast versions must give exactly what the straightforward ones gave. ----------------------
# The references below are the implementations the fast code replaced (set walks, full-image filters,
# scipy k-d trees, np.median); every comparison is exact (array_equal / ==), not approximate.

_NB = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _ref_order_path(pixels: set) -> list:
    def nbrs(p):
        return [(p[0] + a, p[1] + b) for a, b in _NB if (p[0] + a, p[1] + b) in pixels]

    start = next((p for p in pixels if len(nbrs(p)) <= 1), next(iter(pixels)))
    path, seen, cur = [start], {start}, start
    while True:
        cand = [q for q in nbrs(cur) if q not in seen]
        if not cand:
            return path
        cur = min(cand, key=lambda q: abs(q[0] - path[-1][0]) + abs(q[1] - path[-1][1]))
        path.append(cur)
        seen.add(cur)


def _ref_branches(skel: np.ndarray):
    sk = skel.astype(np.uint8)
    nb = cv2.filter2D(sk, cv2.CV_16S, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) - sk
    junction = skel & (nb >= 3)
    nj, jlab = cv2.connectedComponents(junction.astype(np.uint8), connectivity=8)
    jlab_d = cv2.dilate(jlab.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    jys, jxs = np.nonzero(junction)
    jl = jlab[jys, jxs]
    cnt = np.maximum(np.bincount(jl, minlength=nj), 1)
    jcent = np.column_stack([np.bincount(jl, jys, nj) / cnt, np.bincount(jl, jxs, nj) / cnt])
    nbr, blab = cv2.connectedComponents((skel & ~junction).astype(np.uint8), connectivity=8)
    bys, bxs = np.nonzero(blab)
    order = np.argsort(blab[bys, bxs], kind="stable")
    bys, bxs = bys[order], bxs[order]
    bounds = np.append(np.searchsorted(blab[bys, bxs], np.arange(1, nbr + 1)), len(bys))
    branches = []
    for b in range(nbr - 1):
        pts = set(zip(bys[bounds[b] : bounds[b + 1]].tolist(), bxs[bounds[b] : bounds[b + 1]].tolist(), strict=True))
        path = np.array(_ref_order_path(pts), dtype=np.int64)
        branches.append((path, (int(jlab_d[tuple(path[0])]), int(jlab_d[tuple(path[-1])]))))
    return branches, jcent


def _ref_pair_split_rims(paths, dist, *, max_split_px, min_rim_px=6.0):
    from scipy.spatial import cKDTree

    cand = [i for i, p in enumerate(paths) if len(p) >= min_rim_px]
    if len(cand) < 2:
        return []
    widths = {i: float(np.median(2.0 * dist[paths[i][:, 0], paths[i][:, 1]] - 0.5)) for i in cand}
    cand = [i for i in cand if widths[i] <= hair_rims.RIM_SHARE * max_split_px]
    if len(cand) < 2:
        return []
    lo = np.array([paths[i].min(axis=0) for i in cand], float) - max_split_px
    hi = np.array([paths[i].max(axis=0) for i in cand], float) + max_split_px
    best = {}
    for a in range(len(cand)):
        for b in range(a + 1, len(cand)):
            if np.any(lo[a] > hi[b] - max_split_px) or np.any(lo[b] > hi[a] - max_split_px):
                continue
            i, j = cand[a], cand[b]
            if len(paths[i]) > len(paths[j]):
                i, j = j, i
            d, _ = cKDTree(paths[j]).query(paths[i], distance_upper_bound=max_split_px)
            near = d[np.isfinite(d)]
            if near.size < hair_rims.MIN_OVERLAP * len(d):
                continue
            back, _ = cKDTree(paths[i]).query(paths[j], distance_upper_bound=max_split_px)
            if np.isfinite(back).mean() < hair_rims.MIN_BACK:
                continue
            spacing = float(np.median(near))
            rims = max(widths[i], widths[j])
            spread = float(np.percentile(near, 90) - np.percentile(near, 10))
            width = spacing + 0.5 * (widths[i] + widths[j])
            if (
                spacing >= 2.0
                and min(widths[i], widths[j]) >= hair_rims.RIM_ALIKE * rims
                and hair_rims.RIM_MIN_SHARE * spacing <= rims <= hair_rims.RIM_SHARE * spacing
                and spread <= hair_rims.SPREAD_SHARE * spacing + 1.0
                and width <= max_split_px
                and (i not in best or spacing < best[i][0])
            ):
                best[i] = (spacing, j, width)
    return [(i, j, w) for i, (_, j, w) in sorted(best.items())]


def _ref_split_at_bends(path, eps, min_piece):
    if len(path) < 5:
        return [path]
    poly = cv2.approxPolyDP(path[:, ::-1].astype(np.int32).reshape(-1, 1, 2), eps, False).reshape(-1, 2)
    if len(poly) < 3:
        return [path]
    index = {(int(x), int(y)): i for i, (y, x) in enumerate(path)}
    idx = [index[(int(x), int(y))] for x, y in poly]
    cuts = [0]
    for k in range(1, len(idx) - 1):
        v1, v2 = path[idx[k]] - path[idx[k - 1]], path[idx[k + 1]] - path[idx[k]]
        cosang = float(np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2) + 1e-9))
        if (
            cosang < np.cos(np.radians(hair_graph.BEND_DEG))
            and hair_graph._path_length(path[cuts[-1] : idx[k] + 1]) >= min_piece
            and hair_graph._path_length(path[idx[k] : idx[-1] + 1]) >= min_piece
        ):
            cuts.append(idx[k])
    cuts.append(len(path) - 1)
    return [path[a : b + 1] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _hair_field(seed: int, shape=(240, 320), n=14) -> np.ndarray:
    """Mask of random straight and bent shafts, crossings, units and parallel rim pairs."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    h, w = shape
    for _ in range(n):
        p0 = rng.uniform((0, 0), (w, h))
        a, length, width = rng.uniform(0, np.pi), rng.uniform(20, 200), int(rng.integers(2, 8))
        d = np.array([np.cos(a), np.sin(a)])
        p1 = p0 + length * d
        if rng.random() < 0.3:  # bent
            p2 = p1 + rng.uniform(20, 80) * np.array([np.cos(a + 1.2), np.sin(a + 1.2)])
            _bar(mask, p1, p2, width)
        if rng.random() < 0.3:  # sheen-split: two rims a groove apart
            off = np.array([-d[1], d[0]]) * rng.uniform(3, 10)
            _bar(mask, p0 + off, p1 + off, width)
        _bar(mask, p0, p1, width)
    return mask


def _skeletons():
    for seed in range(6):
        yield skeletonize(_hair_field(seed).astype(bool))
    rng = np.random.default_rng(7)
    for density in (0.08, 0.3, 0.6):  # arbitrary pixel sets: loops, lone pixels, blobs of junctions
        yield rng.random((60, 90)) < density
    yield np.zeros((30, 40), bool)
    edge = np.zeros((12, 12), bool)
    edge[0, :] = edge[:, 0] = edge[-1, 3:9] = True  # along the image's edges (no wrap-around)
    yield edge


@pytest.mark.parametrize("k", range(11))
def test_branches_equal_the_straightforward_walk(k):
    skel = list(_skeletons())[k]
    got, jcent = hair_graph._branches(skel)
    want, ref_jcent = _ref_branches(skel)
    np.testing.assert_array_equal(jcent, ref_jcent)
    assert len(got) == len(want)
    for (p, ends), (q, ref_ends) in zip(got, want, strict=True):
        assert ends == ref_ends
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limit", [9.0, 10.0, 14.5, 30.0])
def test_pair_split_rims_equals_the_kdtree_reference(seed, limit):
    mask = _hair_field(seed)
    skel, dist = _graph(mask)
    paths = [p for p, _ in hair_graph._branches(skel)[0]]
    for min_rim in (6.0, 20.0):
        got = pair_split_rims(paths, dist, max_split_px=limit, min_rim_px=min_rim)
        assert got == _ref_pair_split_rims(paths, dist, max_split_px=limit, min_rim_px=min_rim)


def test_the_rim_reference_comparison_sees_pairs():
    """The comparison above is not vacuous: the random fields hold sheen-split pairs."""
    found = 0
    for seed in range(6):
        skel, dist = _graph(_hair_field(seed))
        paths = [p for p, _ in hair_graph._branches(skel)[0]]
        found += len(_ref_pair_split_rims(paths, dist, max_split_px=30.0, min_rim_px=20.0))
    assert found >= 3


@pytest.mark.parametrize("seed", range(4))
def test_split_at_bends_equals_the_reference(seed):
    skel, dist = _graph(_hair_field(seed))
    for path, _ in hair_graph._branches(skel)[0]:
        for eps in (1.5, 3.0):
            got = hair_graph._split_at_bends(path, eps, 10.0)
            want = _ref_split_at_bends(path, eps, 10.0)
            assert len(got) == len(want)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)


@settings(max_examples=300, deadline=None)
@given(
    arrays(
        st.sampled_from([np.float32, np.float64]),
        st.integers(0, 41),
        elements=st.floats(width=32),
    )
)
def test_fast_median_is_np_median_bit_for_bit(values):
    before = values.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the median of nothing
        got, want = fast_median(values), np.median(values)
    np.testing.assert_array_equal(values, before)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("limit", "paired"), [(14.0, False), (14.001, True)])
def test_pair_split_rims_spacing_limit_is_strict(limit, paired):
    """Seven points of the longer rim lie exactly ``limit`` from the shorter: only under the limit they count."""
    short = np.column_stack([np.zeros(13, int), np.arange(13)])
    beside, off = np.column_stack([np.full(13, 4), np.arange(13)]), np.column_stack([np.full(7, 14), np.arange(7)])
    long = np.vstack([beside, off])
    dist = np.ones((20, 20), np.float32)
    got = pair_split_rims([short, long], dist, max_split_px=limit)
    assert got == _ref_pair_split_rims([short, long], dist, max_split_px=limit)
    assert got == ([(0, 1, 5.5)] if paired else [])


def test_pair_split_rims_in_small_blocks_is_unchanged(monkeypatch):
    """Long rims are compared block by block (bounded memory); the block size never changes the answer."""
    skel, dist = _graph(_hair_field(3))
    paths = [p for p, _ in hair_graph._branches(skel)[0]]
    want = _ref_pair_split_rims(paths, dist, max_split_px=30.0, min_rim_px=20.0)
    monkeypatch.setattr(hair_rims, "_BLOCK", 7)
    assert pair_split_rims(paths, dist, max_split_px=30.0, min_rim_px=20.0) == want
    assert want


def _float_arrays(max_size: int) -> st.SearchStrategy:
    """1-D float32 / float64 arrays of 1..max_size values, with ties, zeros and NaNs likely."""
    return arrays(
        st.sampled_from([np.float32, np.float64]),
        st.integers(1, max_size),
        elements=st.floats(width=32) | st.sampled_from([0.0, 1.0, np.nan]),
    )


@settings(max_examples=200, deadline=None)
@given(_float_arrays(60))
def test_fast_median_one_selection_path_is_np_median_bit_for_bit(values):
    """The large-array path (one selection, lower middle as a maximum), forced on small arrays."""
    _assert_median_bit_for_bit(values, _ONE_KTH=0)


def _assert_median_bit_for_bit(values: np.ndarray, **limits: float) -> None:
    """``fast_median`` with ``hair_rims``' module limits set to ``limits`` equals ``np.median`` bit for bit
    (value and dtype) and leaves its input untouched."""
    before = values.copy()
    old = {name: getattr(hair_rims, name) for name in limits}
    for name, value in limits.items():
        setattr(hair_rims, name, value)
    try:
        got, want = fast_median(values), np.median(values)
    finally:
        for name, value in old.items():
            setattr(hair_rims, name, value)
    np.testing.assert_array_equal(values, before)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=300, deadline=None)
@given(_float_arrays(80), st.integers(1, 16), st.sampled_from([0.0, 0.5, 4.0]))
def test_fast_median_bracket_path_is_np_median_bit_for_bit(values, sample, sigmas):
    """The bracketed selection (a sample's bracket, then a selection inside it), forced on small arrays with
    small samples and narrow brackets, so that the bracket often misses: a miss or a NaN falls back, and
    every answer is exact."""
    _assert_median_bit_for_bit(values, _BRACKET=0, _BRACKET_SAMPLE=sample, _BRACKET_SIGMAS=sigmas)


@pytest.mark.parametrize("n", [70_000, 300_001])
@pytest.mark.parametrize("order", ["random", "sorted", "reversed", "ties"])
def test_fast_median_bracket_finds_the_middle_of_large_arrays(n, order):
    """On large arrays the bracket read off the sample holds the middle (no fall-back to a full selection)."""
    values = np.random.default_rng(n).normal(size=n).astype(np.float32)
    if order == "sorted":
        values = np.sort(values)
    elif order == "reversed":
        values = np.sort(values)[::-1].copy()
    elif order == "ties":
        values = np.round(values * 3) / 3
    got = hair_rims._bracketed_median(values, n // 2)
    assert got is not None
    np.testing.assert_array_equal(got, np.median(values))


@pytest.mark.parametrize("n", [4097, 10_000, 300_001])
@pytest.mark.parametrize("kind", ["normal", "ties", "nan"])
def test_fast_median_of_large_arrays(n, kind):
    rng = np.random.default_rng(n)
    values = rng.normal(size=n).astype(np.float32)
    if kind == "ties":
        values = np.round(values * 3) / 3
    elif kind == "nan":
        values[rng.integers(0, n, 3)] = np.nan
    got, want = fast_median(values), np.median(values)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(got, want)
