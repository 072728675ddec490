"""Sheen-split shafts: two parallel skeleton rims of ONE hair (used by :mod:`tracker.imaging.hair_graph`).

A shaft lit from above shows a bright core (the specular sheen and the lit cylinder) between two darker
rims. When the core is about as bright as the skin (dark hair on dark skin), the hair mask holds the two
rims only, and their skeletons look like two thin hairs lying side by side. They are told from two real
hairs by geometry alone:

- the spacing is below the widest shaft looked for and nearly constant along the rims (spread under
  ``SPREAD_SHARE`` of it: hairs of one follicular unit fan out, so their spacing grows from the opening);
- the rims are alike (the thinner at least ``RIM_ALIKE`` of the wider), each narrower than ``RIM_SHARE``
  of the spacing (else they would touch) and not a hair-line edge (``RIM_MIN_SHARE``);
- both rims are at least as long as the shortest hair counted and run beside each other over most of
  their lengths (``MIN_OVERLAP`` of the shorter, ``MIN_BACK`` of the longer): the rims of one shaft span
  the same stretch, while a short hair lying beside a long one does not.

Measured (issue 3): on phantoms the darkest skin went from +103 % to +64 % count error (width 30.6 ->
42.6 um, truth 57.5), the other quick strata unchanged but the 31 um and 100 um width strata (one hair
fewer each); real trichoscopy fields unchanged (the rims there are shorter than the shortest hair).
Known limit: two real hairs lying exactly parallel, as long as each other and closer than a shaft width,
are taken for one.

Such a pair is one hair of width ``spacing + mean rim width`` (outer edge to outer edge).

Speed (issue 7): candidate pairs come from one vectorised bounding-box test, and the rim-to-rim distances
are exact squared integer distances between the points inside each other's grown boxes (no k-d tree, so no
scipy import: 0.35-0.4 s of every CLI start). Same pairs and widths as the k-d tree version, bit for bit
(tests/test_hair_graph.py keeps it as the reference); 12 MP phantoms: 0.24 / 0.40 s -> 0.02 / 0.03 s.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_OVERLAP", "RIM_SHARE", "fast_median", "pair_split_rims"]

#: Each rim's width (``2 * distance - 0.5``) is at most this share of the rim-to-rim spacing.
RIM_SHARE = 0.75
#: ... and at least this share of it (rims much thinner than their spacing are the edges of other things).
RIM_MIN_SHARE = 0.1
#: The thinner rim is at least this share of the wider one's width (one shaft's rims are alike).
RIM_ALIKE = 0.4
#: Share of the longer rim's skeleton within the spacing limit of the shorter one (rims span one shaft).
MIN_BACK = 0.7
#: Share of the shorter rim's skeleton that must lie within the spacing limit of the other rim.
MIN_OVERLAP = 0.7
#: The spread of the spacing (90th - 10th percentile) is at most this share of the median spacing (+1 px).
SPREAD_SHARE = 0.2
#: Above this many values :func:`fast_median` selects once and takes the lower middle as a maximum.
_ONE_KTH = 4096
#: Above this many values :func:`fast_median` first selects within a bracket read off a sample ...
_BRACKET = 1 << 16
#: ... of about this many values.
_BRACKET_SAMPLE = 1 << 14
#: The bracket reaches this many times the square root of the sample size in sample ranks either side of the
#: middle (the sample rank of the true middle strays by about half of that root: a miss is very unlikely).
_BRACKET_SIGMAS = 4.0
#: Point pairs compared at once (bounds the memory of one rim-to-rim distance block: 4 bytes each).
_BLOCK = 1 << 20


def fast_median(values: np.ndarray) -> np.floating:
    """``np.median`` of a 1-D float array, bit for bit, without its per-call overhead (about 10x faster).

    Parameters
    ----------
    values : (N,) float ndarray
        Not modified. Empty, non-float or NaN-holding input is handed to ``np.median`` itself.

    Returns
    -------
    numpy floating scalar
        The middle value, or the mean of the two middle values (in the input's dtype, as ``np.median``).
    """
    n = values.size
    if n == 0 or values.ndim != 1 or values.dtype.kind != "f":
        return np.median(values)
    k = n // 2
    if n > _BRACKET:
        middle = _bracketed_median(values, k)
        if middle is not None:
            return middle
    if n > _ONE_KTH:
        # Large arrays: one selection, the lower middle is the largest value below it (issue 7: a 3 MP
        # field's median 69 -> 44 ms); a NaN sorts last, so it shows in the upper part's maximum.
        part = np.partition(values, k)
        if np.isnan(part[k:].max()):
            return np.median(values)
        return part[k] if n % 2 else (part[:k].max() + part[k]) / 2
    part = np.partition(values, (k - 1, k, n - 1) if n % 2 == 0 else (k, n - 1))
    if np.isnan(part[-1]):  # NaNs sort last
        return np.median(values)
    return part[k] if n % 2 else (part[k - 1] + part[k]) / 2


def _bracketed_median(values: np.ndarray, k: int) -> np.floating | None:
    """:func:`fast_median` of a large array by selecting within a bracket read off a strided sample.

    The sample (about :data:`_BRACKET_SAMPLE` values) gives two values whose ranks very likely enclose the
    middle rank ``k``; counting the values under the lower one and selecting only among the values between
    the two finds the exact middle (issue 7: a 3 MP field about 24 -> 8 ms). None when the bracket misses the
    middle (an unlucky sample) or the input holds a NaN (it compares false both ways): the caller then
    selects over everything.
    """
    n = values.size
    sample = np.sort(values[:: max(1, n // _BRACKET_SAMPLE)])
    m = sample.size
    j, spread = (k * m) // n, int(_BRACKET_SIGMAS * np.sqrt(m)) + 2
    lo, hi = sample[max(0, j - spread)], sample[min(m - 1, j + spread)]
    below = int(np.count_nonzero(values < lo))
    inside = values[(values >= lo) & (values <= hi)]
    odd = n % 2 == 1
    if below > k - (0 if odd else 1) or below + inside.size <= k:
        return None
    if below + inside.size + int(np.count_nonzero(values > hi)) != n:  # a NaN: none of the three
        return None
    kk = k - below
    if odd:
        return np.partition(inside, kk)[kk]
    part = np.partition(inside, (kk - 1, kk))
    return (part[kk - 1] + part[kk]) / 2


def _width(path: np.ndarray, dist: np.ndarray) -> float:
    return float(fast_median(2.0 * dist[path[:, 0], path[:, 1]] - 0.5))


def _near_distances(short: np.ndarray, long: np.ndarray, limit: float, limit2: float) -> np.ndarray | None:
    """Distances (px) from the points of ``short`` to the nearest point of ``long``, those under ``limit``.

    ``None`` when under ``MIN_OVERLAP`` of ``short`` or under ``MIN_BACK`` of ``long`` lie within ``limit`` of
    the other path. Exact (squared integer distances, one square root each): only points inside the other
    path's bounding box grown by ``limit`` are compared, the others are farther than ``limit`` anyway.
    """
    s_lo, s_hi = short.min(axis=0) - limit, short.max(axis=0) + limit
    l_lo, l_hi = long.min(axis=0) - limit, long.max(axis=0) + limit
    s_in = short[np.all((short >= l_lo) & (short <= l_hi), axis=1)]
    if len(s_in) < MIN_OVERLAP * len(short):
        return None
    l_in = long[np.all((long >= s_lo) & (long <= s_hi), axis=1)]
    if len(l_in) / len(long) < MIN_BACK:
        return None
    # Any offset is at most span along an axis, so its square sum fits int32 for any usual image.
    span = int(np.ptp(s_in, axis=0).max() + np.ptp(l_in, axis=0).max() + np.abs(s_in[0] - l_in[0]).max())
    kind = np.int32 if span < 30_000 else np.int64
    s_in, l_in = s_in.astype(kind), l_in.astype(kind)
    near2 = np.empty(len(s_in), kind)
    back2 = np.full(len(l_in), np.iinfo(kind).max, kind)
    step = max(1, _BLOCK // max(len(l_in), 1))  # rows per block: bounded memory for very long rims
    for r in range(0, len(s_in), step):
        dy = s_in[r : r + step, None, 0] - l_in[None, :, 0]
        d2 = dy * dy
        dx = s_in[r : r + step, None, 1] - l_in[None, :, 1]
        d2 += dx * dx
        near2[r : r + step] = d2.min(axis=1)
        np.minimum(back2, d2.min(axis=0), out=back2)
    near2 = near2[near2 < limit2]  # strictly closer than the limit
    if near2.size < MIN_OVERLAP * len(short):
        return None
    if np.count_nonzero(back2 < limit2) / len(long) < MIN_BACK:
        return None
    return np.sqrt(near2.astype(np.float64))


def pair_split_rims(
    paths: list[np.ndarray], dist: np.ndarray, *, max_split_px: float, min_rim_px: float = 6.0
) -> list[tuple[int, int, float]]:
    """Find pairs of skeleton segments that are the two rims of one sheen-split shaft.

    Parameters
    ----------
    paths : list of (N, 2) int ndarray
        Ordered skeleton segments, rows and columns.
    dist : (H, W) float32 ndarray
        Distance to the background of the hair mask the skeleton came from.
    max_split_px : float
        Widest shaft looked for (px): a pair's outer width (spacing + rim width) must stay under it.
    min_rim_px : float
        Segments shorter than this (px of skeleton) are not considered.

    Returns
    -------
    list of (int, int, float)
        ``(shorter, longer, width_px)`` per pair: indices into ``paths`` and the width of the whole shaft.
        A segment is the shorter member of at most one pair.

    Raises
    ------
    ValueError
        ``max_split_px`` not positive.
    """
    if not max_split_px > 0:
        raise ValueError(f"max_split_px must be positive, got {max_split_px!r}")
    cand = [i for i, p in enumerate(paths) if len(p) >= min_rim_px]
    if len(cand) < 2:
        return []
    widths = {i: _width(paths[i], dist) for i in cand}
    # Only thin segments can be rims: a rim is under RIM_SHARE of a spacing that is under max_split_px.
    cand = [i for i in cand if widths[i] <= RIM_SHARE * max_split_px]
    if len(cand) < 2:
        return []
    lo = np.array([paths[i].min(axis=0) for i in cand], float) - max_split_px
    hi = np.array([paths[i].max(axis=0) for i in cand], float) + max_split_px
    # Candidate pairs: bounding boxes (grown by the spacing limit) that overlap, in (a, b) order.
    apart = np.any(lo[:, None, :] > hi[None, :, :] - max_split_px, axis=2)
    near_boxes = ~(apart | apart.T)
    limit2 = max_split_px * max_split_px
    best: dict[int, tuple[float, int, float]] = {}
    for a, b in zip(*np.nonzero(np.triu(near_boxes, 1)), strict=True):
        i, j = cand[a], cand[b]
        if len(paths[i]) > len(paths[j]):
            i, j = j, i
        near = _near_distances(paths[i], paths[j], max_split_px, limit2)
        if near is None:
            continue
        spacing = float(fast_median(near))
        rims = max(widths[i], widths[j])
        alike = min(widths[i], widths[j]) >= RIM_ALIKE * rims
        spread = float(np.percentile(near, 90) - np.percentile(near, 10))
        width = spacing + 0.5 * (widths[i] + widths[j])
        if (
            spacing >= 2.0
            and alike
            and RIM_MIN_SHARE * spacing <= rims <= RIM_SHARE * spacing
            and spread <= SPREAD_SHARE * spacing + 1.0
            and width <= max_split_px
            and (i not in best or spacing < best[i][0])
        ):
            best[i] = (spacing, j, width)
    return [(i, j, w) for i, (_, j, w) in sorted(best.items())]
