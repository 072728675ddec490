"""Skeleton graph of a hair mask -> individual hairs (step 4 of :mod:`tracker.imaging.hair`).

The skeleton is cut into branches between junctions; short links between junctions are merged (an X
crossing skeletonises into two 3-way junctions) and short spurs are pruned; two junctions joined by a
longer link whose four outer arms form two straight lines through it are a shallow crossing of two hairs;
each branch is split where it bends sharply (a V of two hairs from one opening); at a junction the
branches that continue each other in a straight line are paired (a hair crossing another stays one
hair), a shared trunk joins one of its arms, every other branch is a hair of its own (a follicular unit of
2-4 hairs from one opening counts 2-4); aligned pieces across a short gap are joined (one broken shaft is
one hair); two thin parallel rims of one shaft whose bright core was lost (a sheen as bright as the skin)
are one hair (:mod:`tracker.imaging.hair_rims`).

Width of a hair = median over its skeleton of ``2 * distance_to_background - 0.5``.

Speed (issue 7): the graph is built on the skeleton's pixels (neighbours looked up in the sorted flat
indices) instead of full-image filters, and branches are walked along precomputed neighbour tables instead
of Python sets; every path, in the same direction, and so every hair are exactly what the set-based walk
gave (tests/test_hair_graph.py keeps that walk as the reference). Measured on the two 12 MP phantoms of
``benchmarks/speed.py`` (full-resolution skeletons, median of 5): 0.71 / 0.95 s -> 0.16 / 0.25 s.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.imaging.hair_crossings import cosine, pair_crossings
from tracker.imaging.hair_crossings import path_length as _path_length
from tracker.imaging.hair_rims import fast_median, pair_split_rims
from tracker.imaging.shaft_width import shaft_width_px

__all__ = ["BEND_DEG", "GAP_DEG", "PAIR_DEG", "TRUNK_DEG", "count_hairs"]

#: Branches meeting at a junction continue each other (one hair) when their directions are within this
#: many degrees of opposite; a branch bending by more than BEND_DEG is split into two hairs.
PAIR_DEG, BEND_DEG = 40.0, 55.0
#: Broken pieces of one shaft are joined across a gap when both ends point at each other within this.
GAP_DEG = 25.0
#: A branch within this many degrees of opposite to the mean of the others is a shared trunk.
TRUNK_DEG = 50.0
_NB = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _neighbours(flat: np.ndarray, xs: np.ndarray, width: int) -> np.ndarray:
    """(N, 8) index into ``flat`` (sorted flat indices of the skeleton) of each pixel's neighbours, in ``_NB``
    order; -1 where the neighbour is not a skeleton pixel or lies beyond the image."""
    n = len(flat)
    nbrs = np.full((n, len(_NB)), -1, np.int64)
    if n == 0:
        return nbrs
    for k, (a, b) in enumerate(_NB):
        q = flat + (a * width + b)
        at = np.minimum(np.searchsorted(flat, q), n - 1)
        hit = (flat[at] == q) & (xs + b >= 0) & (xs + b < width)
        nbrs[:, k] = np.where(hit, at, -1)
    return nbrs


def _order_branches(bys: np.ndarray, bxs: np.ndarray, nbrs: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    """Order the pixels of each junction-free skeleton branch from one end to the other.

    ``bys``, ``bxs`` (N,) are the rows and columns of the branches' pixels, grouped by branch (branch ``b``
    is ``bounds[b]:bounds[b + 1]``, the last one runs to N), row-major within a branch; ``nbrs`` (N, 8) holds
    each pixel's neighbours within its branch (indices, -1: none, ``_NB`` order), at most two per pixel.
    Returns one index array per branch.
    The walk starts at the end met first when iterating the set of the branch's pixels (at the first pixel
    of that set for a closed loop, stepping to the nearer neighbour, the first in ``_NB`` order on a tie),
    so every path runs in the direction of the straightforward set-based walk.
    """
    n = len(nbrs)
    if len(bounds) == 0:
        return []
    bounds = np.append(bounds, n)
    valid = nbrs >= 0
    slot = np.argsort(~valid, axis=1, kind="stable")[:, :2]  # the (up to) two neighbours, in _NB order
    first = np.take_along_axis(nbrs, slot, axis=1)
    # At a closed loop's start, a diagonal step (L1 distance 2) loses a tie to a straight one (distance 1).
    straight = np.isin(slot, (1, 3, 4, 6))
    second_first = ((first[:, 1] >= 0) & straight[:, 1] & ~straight[:, 0]).tolist()
    n0, n1 = first[:, 0].tolist(), first[:, 1].tolist()
    ends = np.flatnonzero(valid.sum(axis=1) <= 1)
    end_at = np.searchsorted(ends, bounds).tolist()
    ends = ends.tolist()
    ys, xs = bys.tolist(), bxs.tolist()
    order: list[int] = []
    sizes = []
    for b in range(len(bounds) - 1):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        mine = ends[end_at[b] : end_at[b + 1]]
        if hi - lo == 1 or len(mine) == 1:
            start = mine[0]
        else:
            # Python's set order decides where the walk starts (kept so that the paths never change).
            pixels = set(zip(ys[lo:hi], xs[lo:hi], strict=True))
            if mine:
                wanted = {(ys[i], xs[i]): i for i in mine}
                start = wanted[next(p for p in pixels if p in wanted)]
            else:
                y, x = next(iter(pixels))
                start = next(i for i in range(lo, hi) if ys[i] == y and xs[i] == x)
        prev, cur = -1, start
        order.append(cur)
        nxt = n1[cur] if second_first[cur] else n0[cur]
        while nxt >= 0 and nxt != start:
            order.append(nxt)
            prev, cur = cur, nxt
            nxt = n0[cur]
            if nxt == prev:
                nxt = n1[cur]
        sizes.append(len(order))
    return np.split(np.array(order, np.int64), sizes[:-1])


def _split_at_bends(path: np.ndarray, eps: float, min_piece: float) -> list[np.ndarray]:
    """Split an ordered (N, 2) row/col path where its simplified polyline turns by more than BEND_DEG."""
    if len(path) < 5:
        return [path]
    xy = path[:, ::-1].astype(np.int32).reshape(-1, 1, 2)
    poly = cv2.approxPolyDP(xy, eps, False).reshape(-1, 2)
    if len(poly) < 3:
        return [path]
    keys = path[:, 0] * (int(path[:, 1].max()) + 1) + path[:, 1]  # a skeleton path visits a pixel once
    sorter = np.argsort(keys)
    idx = sorter[np.searchsorted(keys, poly[:, 1] * (int(path[:, 1].max()) + 1) + poly[:, 0], sorter=sorter)].tolist()
    cuts = [0]
    for k in range(1, len(idx) - 1):
        v1 = path[idx[k]] - path[idx[k - 1]]
        v2 = path[idx[k + 1]] - path[idx[k]]
        cosang = float(np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2) + 1e-9))
        if (
            cosang < np.cos(np.radians(BEND_DEG))
            and _path_length(path[cuts[-1] : idx[k] + 1]) >= min_piece
            and _path_length(path[idx[k] : idx[-1] + 1]) >= min_piece
        ):
            cuts.append(idx[k])
    cuts.append(len(path) - 1)
    return [path[a : b + 1] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _bridge_gaps(segments: list, groups: _Union, dist: np.ndarray, max_gap_px: float) -> None:
    """Join groups whose free ends face each other across a gap shorter than ``max_gap_px``."""
    ends = []
    for i, (path, s, e) in enumerate(segments):
        reach = min(len(path) - 1, 8)
        if reach < 2:
            continue
        if s == 0:
            ends.append((i, path[0].astype(float), (path[0] - path[reach]).astype(float)))
        if e == 0:
            ends.append((i, path[-1].astype(float), (path[-1] - path[-1 - reach]).astype(float)))
    if len(ends) < 2 or max_gap_px <= 0:
        return
    cos_gap = np.cos(np.radians(GAP_DEG))
    pts = np.array([p for _, p, _ in ends])
    dirs = np.array([d / (np.linalg.norm(d) + 1e-9) for _, _, d in ends])
    d2 = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    cands = []
    for a, b in zip(*np.nonzero(np.triu(d2 < max_gap_px, 1)), strict=True):
        ia, ib = ends[a][0], ends[b][0]
        if groups.find(ia) == groups.find(ib) or float(np.dot(dirs[a], dirs[b])) > -cos_gap:
            continue
        g = pts[b] - pts[a]
        gn = float(np.linalg.norm(g))
        if gn > 3.0 and (np.dot(dirs[a], g) / gn < cos_gap or np.dot(dirs[b], -g) / gn < cos_gap):
            continue
        cands.append((gn, ia, ib))
    for _, ia, ib in sorted(cands):
        if groups.find(ia) != groups.find(ib):
            groups.union(ia, ib)


def _branches(skel: np.ndarray) -> tuple[list[tuple[np.ndarray, tuple[int, int]]], np.ndarray]:
    """Cut a skeleton into branches between junctions (pixels with three or more neighbours).

    Returns the branches, each an ordered (N, 2) int64 path of rows and columns with the junction labels at
    its start and end (0: a free end; the highest label next to the end pixel), and the (J, 2) centroids
    (row, column) of the junctions by label (row 0 unused). Work is done on the skeleton's pixels only,
    apart from the two connected-component labellings, whose label order fixes the order of the branches.
    """
    h, w = skel.shape
    flat = np.flatnonzero(skel)  # skeleton pixels, row-major
    ys, xs = np.divmod(flat, w)
    nbrs = _neighbours(flat, xs, w)
    junction = np.count_nonzero(nbrs >= 0, axis=1) >= 3
    jmask = np.zeros((h, w), np.uint8)
    jmask.ravel()[flat[junction]] = 1
    nj, jlab = cv2.connectedComponents(jmask, connectivity=8)
    jys, jxs = ys[junction], xs[junction]
    jl = jlab[jys, jxs]
    cnt = np.maximum(np.bincount(jl, minlength=nj), 1)
    jcent = np.column_stack([np.bincount(jl, jys, nj) / cnt, np.bincount(jl, jxs, nj) / cnt])
    # Junction next to each skeleton pixel (the highest label in its 3 x 3 neighbourhood, 0: none).
    label_of = np.where(junction, jlab.ravel()[flat], 0)
    jnext = np.where(nbrs >= 0, label_of[nbrs], 0).max(axis=1)

    bmask = np.zeros((h, w), np.uint8)
    bsel = np.flatnonzero(~junction)
    bmask.ravel()[flat[bsel]] = 1
    nbr, blab = cv2.connectedComponents(bmask, connectivity=8)
    blabels = blab.ravel()[flat[bsel]]
    order = np.argsort(blabels, kind="stable")
    bidx = bsel[order]  # skeleton pixels of the branches, grouped by branch
    bounds = np.searchsorted(blabels[order], np.arange(1, nbr))
    pos = np.full(len(flat), -1, np.int64)
    pos[bidx] = np.arange(len(bidx))
    local = np.where(nbrs >= 0, pos[nbrs], -1)[bidx]  # neighbours within the branch (junctions left out)

    branches = []
    for k in _order_branches(ys[bidx], xs[bidx], local, bounds):
        path = np.column_stack([ys[bidx[k]], xs[bidx[k]]])
        branches.append((path, (int(jnext[bidx[k[0]]]), int(jnext[bidx[k[-1]]]))))
    return branches, jcent


def count_hairs(
    skel: np.ndarray,
    dist: np.ndarray,
    *,
    min_length_px: float,
    max_gap_px: float = 0.0,
    contrast: np.ndarray | None = None,
    luminance: np.ndarray | None = None,
    profile_widths: bool = False,
    max_split_px: float | None = None,
) -> list[dict]:
    """Turn a skeleton into hairs: prune spurs, split bends, pair straight continuations at junctions.

    Parameters
    ----------
    skel : (H, W) bool ndarray
        One-pixel-wide skeleton of the hair mask.
    dist : (H, W) float32 ndarray
        Euclidean distance to the background of the hair mask.
    min_length_px : float
        Hairs shorter than this (skeleton plus the half widths at free ends) are not counted.
    max_gap_px : float
        Free ends of two pieces closer than this that point at each other (within GAP_DEG) are joined:
        a shaft broken by a highlight or a faint stretch is one hair, not two.
    contrast : (H, W) float ndarray, optional
        Hair contrast image; when given, each hair also gets ``contrast`` (median along its skeleton).
    luminance : (H, W) float ndarray, optional
        Signed brightness difference to the skin; when given, each hair gets ``polarity``: -1 when the
        median along its skeleton is negative (a dark shaft), else +1.
    profile_widths : bool
        With ``contrast``: also read each hair's width from its mean cross-section
        (:func:`tracker.imaging.shaft_width.shaft_width_px`), stored as ``width_profile_px`` (NaN when no
        usable profile) and ``blur_sigma_px``. Off by default: on the calibration phantoms it did not beat
        the distance-transform width (see the module's notes); ``width_px`` is unchanged either way.
    max_split_px : float, optional
        Widest shaft looked for (px); two thin parallel rims closer than this are one sheen-split shaft
        (:func:`tracker.imaging.hair_rims.pair_split_rims`). Default: ``min_length_px`` (the shortest hair
        counted is about as long as the widest shaft is wide); 0 turns the pairing off.

    Returns
    -------
    list of dict
        One dict per hair: ``x``, ``y`` (exit estimate, px), ``width_px``, ``length_px``.
    """
    branches, jcent = _branches(skel)
    nj = len(jcent)

    # Merge junctions joined by a short link (an X crossing skeletonises into two 3-way junctions).
    nodes = _Union(nj)
    keep = []
    for path, (a, b) in branches:
        length = _path_length(path)
        if a and b and a != b:
            if length < 1.5 * max(dist[tuple(path[0])], dist[tuple(path[-1])]) + 2:
                nodes.union(a, b)
                continue
        elif (a or b) and not (a and b):  # spur: free end on one side
            j = a or b
            jr, jc = np.round(jcent[j]).astype(int)
            if length < 1.5 * float(dist[jr, jc]) + 3:
                continue
        keep.append((path, (a, b)))

    segments = []  # path, start node, end node (0: free end; negative: a bend, never paired)
    next_bend = 1
    for path, (a, b) in keep:
        a, b = (nodes.find(a) if a else 0), (nodes.find(b) if b else 0)
        eps = max(1.5, 0.5 * float(fast_median(dist[path[:, 0], path[:, 1]])))
        pieces = _split_at_bends(path, eps, 0.5 * min_length_px)
        for k, piece in enumerate(pieces):
            s = a if k == 0 else -(next_bend + k - 1)
            e = b if k == len(pieces) - 1 else -(next_bend + k)
            segments.append((piece, s, e))
        next_bend += len(pieces)

    groups = _Union(len(segments))
    split = min_length_px if max_split_px is None else max_split_px
    pairs = (pair_split_rims([p for p, _, _ in segments], dist, max_split_px=split, min_rim_px=min_length_px)
             if split > 0 else [])
    shadow = {i for i, _, _ in pairs}  # the shorter rim of a pair: no length, width or free end of its own
    pair_width: dict[int, float] = {}
    for i, j, w in pairs:
        groups.union(i, j)
        pair_width[i] = pair_width[j] = w
    incident: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, (path, s, e) in enumerate(segments):
        for node, end, inner in ((s, path[0], path), (e, path[-1], path[::-1])):
            if node > 0:
                reach = int(min(len(inner) - 1, max(5, 2 * dist[tuple(end)])))
                incident.setdefault(node, []).append((i, (inner[reach] - inner[0]).astype(float)))
    cos_pair = -np.cos(np.radians(PAIR_DEG))
    paired = pair_crossings(segments, incident, groups, dist, cos_pair=cos_pair)
    for node, items in incident.items():
        done = paired.get(node, set())
        items = [item for item in items if item[0] not in done]
        cands = []
        for p in range(len(items)):
            for q in range(p + 1, len(items)):
                c = cosine(items[p][1], items[q][1])
                if c < cos_pair:
                    cands.append((c, items[p][0], items[q][0]))
        used: set[int] = set()
        for _, i, j in sorted(cands):
            if i not in used and j not in used and groups.find(i) != groups.find(j):
                groups.union(i, j)
                used.update((i, j))
        if not used and len(items) >= 3:
            # No straight continuation: hairs of one unit leaving a shared trunk. The trunk points
            # away from the others' mean direction; it joins the arm closest to its opposite.
            unit = [d / (np.linalg.norm(d) + 1e-9) for _, d in items]
            best = None
            for p, (i, _) in enumerate(items):
                rest = np.mean([u for q, u in enumerate(unit) if q != p], axis=0)
                c = float(np.dot(unit[p], rest) / (np.linalg.norm(rest) + 1e-9))
                if c < -np.cos(np.radians(TRUNK_DEG)) and (best is None or c < best[0]):
                    arm = min((q for q in range(len(items)) if q != p), key=lambda q: float(np.dot(unit[p], unit[q])))
                    best = (c, i, items[arm][0])
            if best is not None:
                groups.union(best[1], best[2])

    _bridge_gaps(segments, groups, dist, max_gap_px)
    members: dict[int, list[int]] = {}
    for i in range(len(segments)):
        members.setdefault(groups.find(i), []).append(i)
    hairs = []
    for idx in members.values():
        length, widths, free_ends, node_ends, cvals, lvals, paths = 0.0, [], [], [], [], [], []
        for i in idx:
            path, s, e = segments[i]
            if i in shadow:
                node_ends += [(node, end) for node, end in ((s, path[0]), (e, path[-1])) if node < 0
                              or (node > 0 and len(incident.get(node, ())) > 1)]
                continue
            paths.append(path)
            length += _path_length(path)
            if contrast is not None:
                cvals.append(contrast[path[:, 0], path[:, 1]])
            if luminance is not None:
                lvals.append(luminance[path[:, 0], path[:, 1]])
            d = 2.0 * dist[path[:, 0], path[:, 1]] - 0.5
            widths.append(d[len(d) // 5 : len(d) - len(d) // 5] if len(d) >= 10 else d)
            for node, end in ((s, path[0]), (e, path[-1])):
                if node == 0:
                    free_ends.append(end)
                    length += float(dist[tuple(end)])
                elif node < 0 or len(incident.get(node, ())) > 1:
                    node_ends.append((node, end))
        if length < min_length_px:
            continue
        if node_ends:
            node, end = node_ends[0]
            y, x = jcent[node] if node > 0 else end
        elif free_ends:
            y, x = max(free_ends, key=lambda p: dist[tuple(p)])
        else:
            y, x = segments[idx[0]][0][0]
        rim_pairs = [pair_width[i] for i in idx if i in pair_width]
        width = float(np.median(rim_pairs)) if rim_pairs else float(fast_median(np.concatenate(widths)))
        hair = {"x": float(x), "y": float(y), "width_px": width,
                "length_px": float(length), "unit_exit": bool(node_ends),
                "free_ends": [(float(p[1]), float(p[0]), float(dist[tuple(p)])) for p in free_ends]}
        if contrast is not None and profile_widths:
            prof = shaft_width_px(contrast, paths, radius_px=0.5 * hair["width_px"])
            hair["width_profile_px"] = prof["width"]
            hair["blur_sigma_px"] = prof["sigma"]
        if cvals:
            hair["contrast"] = float(fast_median(np.concatenate(cvals)))
        if lvals:
            hair["polarity"] = -1 if float(fast_median(np.concatenate(lvals))) < 0 else 1
        hairs.append(hair)
    return hairs
