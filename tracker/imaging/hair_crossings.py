"""Shallow crossings of two hairs in a skeleton graph (part of :func:`tracker.imaging.hair_graph.count_hairs`).

Two hairs crossing at a steep angle skeletonise into one 4-way junction (or two 3-way junctions a short
link apart, which the graph merges), where the straight continuations are paired. At a shallow angle the
link between the two junctions is several half-widths long; paired junction by junction, the crossing
counted as three or four hairs (the test cases: 20-45 degrees, 4-20 px wide hairs). :func:`pair_crossings`
takes such two junctions as one crossing when their four outer arms form two straight lines through the
link.

Measured (``benchmarks/accuracy.py``; session 12 of issue 3): the phantoms' clipped/long stratum (long
hairs lying across clipped ones) count MAPE 17.5 -> 14.9 %, count r 0.827 -> 0.834; the real fields were
unchanged (count error 17.1 % of the mean, r 0.694 -> 0.691). Those crossings had offset part of the
phantoms' under-count, so the overall phantom MAPE rose 18.3 -> 18.7 % (width MAE 4.99 -> 5.01 um).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["CROSSING_LINK", "cosine", "pair_crossings", "path_length"]

#: Two junctions joined by a link up to this many times the larger half-width at its ends may be one
#: crossing of two hairs (:func:`pair_crossings`); two 14 px hairs crossing at 20 degrees leave a link of
#: about 6 half-widths.
CROSSING_LINK = 8.0


class UnionFind(Protocol):
    """The grouping of segments into hairs (``find`` a group's root, ``union`` two groups)."""

    def find(self, i: int) -> int: ...

    def union(self, a: int, b: int) -> None: ...


def path_length(path: np.ndarray) -> float:
    """Length (px) of an (N, 2) pixel path: the sum of its steps (1 or sqrt 2)."""
    return float(np.sum(np.hypot(*np.diff(path, axis=0).T))) if len(path) > 1 else 0.0


def pair_crossings(
    segments: list, incident: dict, groups: UnionFind, dist: np.ndarray, *, cos_pair: float
) -> dict[int, set[int]]:
    """Pair the arms of two hairs that cross at a shallow angle; returns the segments paired, per node.

    Such a crossing skeletonises into two 3-way junctions joined by a link longer than the merge of short
    links allows (about the wider hair's width over the sine of the angle). Paired junction by junction,
    the link continues one hair at one end and may continue the other hair at the other end, and the
    crossing then counts as three or four hairs. Here the two junctions are taken as one crossing when
    their four outer arms pair off into two straight continuations, each from one junction to the other,
    while neither junction's own two arms continue each other (then a hair passes by, as in an H of two
    touching hairs): those arms are joined, and the link joins the straighter pair. The link may be up to
    :data:`CROSSING_LINK` times the larger half-width at its ends long (a crossing at about 20 degrees).
    Arms of one follicular unit fan out to one side, never in two straight lines through each other.

    Parameters
    ----------
    segments : list of (path, start node, end node)
        The graph's segments: (N, 2) row/column paths; node 0 is a free end, negative a bend.
    incident : dict
        Per junction node, ``(segment index, outward direction)`` of each segment ending there.
    groups : UnionFind
        The grouping of segments into hairs; the pairs found are joined in it.
    dist : (H, W) float32 ndarray
        Distance to the background of the hair mask.
    cos_pair : float
        Two outward directions with a cosine under this are opposite (a straight continuation).

    Returns
    -------
    dict of int to set of int
        Per junction node, the segments paired here (the per-junction pairing leaves them alone).
    """
    paired: dict[int, set[int]] = {}
    for i, (path, s, e) in enumerate(segments):
        if s <= 0 or e <= 0 or s == e or len(incident.get(s, ())) != 3 or len(incident.get(e, ())) != 3:
            continue
        if i in paired.get(s, ()) or i in paired.get(e, ()):
            continue
        if path_length(path) > CROSSING_LINK * max(dist[tuple(path[0])], dist[tuple(path[-1])]) + 2:
            continue
        arms_s = [(k, d) for k, d in incident[s] if k != i and k not in paired.get(s, ())]
        arms_e = [(k, d) for k, d in incident[e] if k != i and k not in paired.get(e, ())]
        if len(arms_s) != 2 or len(arms_e) != 2:
            continue
        if cosine(arms_s[0][1], arms_s[1][1]) < cos_pair or cosine(arms_e[0][1], arms_e[1][1]) < cos_pair:
            continue  # a hair passing straight by the junction (an H of two touching hairs): not a crossing
        best = None
        for (p1, d1), (p2, d2) in ((arms_s[0], arms_s[1]), (arms_s[1], arms_s[0])):
            c1, c2 = cosine(d1, arms_e[0][1]), cosine(d2, arms_e[1][1])
            if c1 < cos_pair and c2 < cos_pair and (best is None or max(c1, c2) < best[0]):
                best = (max(c1, c2), ((p1, arms_e[0][0], c1), (p2, arms_e[1][0], c2)))
        if best is None:
            continue
        pairs = best[1]
        if any(groups.find(a) == groups.find(b) for a, b, _ in pairs):
            continue
        for a, b, _ in pairs:
            groups.union(a, b)
        groups.union(i, min(pairs, key=lambda t: t[2])[0])
        ids = {i, *(a for a, _, _ in pairs), *(b for _, b, _ in pairs)}
        paired.setdefault(s, set()).update(ids)
        paired.setdefault(e, set()).update(ids)
    return paired


def cosine(d1: np.ndarray, d2: np.ndarray) -> float:
    """Cosine of the angle between two (2,) direction vectors (0 for a zero vector)."""
    return float(np.dot(d1, d2) / (np.linalg.norm(d1) * np.linalg.norm(d2) + 1e-9))
