"""Skeleton graph of a hair mask -> individual hairs (step 4 of :mod:`tracker.imaging.hair`).

The skeleton is cut into branches between junctions; short links between junctions are merged (an X
crossing skeletonises into two 3-way junctions) and short spurs are pruned; each branch is split where it
bends sharply (a V of two hairs from one opening); at a junction the branches that continue each other in
a straight line are paired (a hair crossing another stays one hair), a shared trunk joins one of its arms,
every other branch is a hair of its own (a follicular unit of 2-4 hairs from one opening counts 2-4);
aligned pieces across a short gap are joined (one broken shaft is one hair); two thin parallel rims of one
shaft whose bright core was lost (a sheen as bright as the skin) are one hair
(:mod:`tracker.imaging.hair_rims`).

Width of a hair = median over its skeleton of ``2 * distance_to_background - 0.5``.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.imaging.hair_rims import pair_split_rims
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


def _order_path(pixels: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Order the pixels of a junction-free skeleton branch from one end to the other."""

    def nbrs(p: tuple[int, int]) -> list[tuple[int, int]]:
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


def _path_length(path: np.ndarray) -> float:
    return float(np.sum(np.hypot(*np.diff(path, axis=0).T))) if len(path) > 1 else 0.0


def _split_at_bends(path: np.ndarray, eps: float, min_piece: float) -> list[np.ndarray]:
    """Split an ordered (N, 2) row/col path where its simplified polyline turns by more than BEND_DEG."""
    if len(path) < 5:
        return [path]
    xy = path[:, ::-1].astype(np.int32).reshape(-1, 1, 2)
    poly = cv2.approxPolyDP(xy, eps, False).reshape(-1, 2)
    if len(poly) < 3:
        return [path]
    index = {(int(x), int(y)): i for i, (y, x) in enumerate(path)}
    idx = [index[(int(x), int(y))] for x, y in poly]
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
    bounds = np.searchsorted(blab[bys, bxs], np.arange(1, nbr + 1))
    bounds = np.append(bounds, len(bys))

    branches = []  # (path (N,2) rows/cols, end node ids (start, end); 0 = free)
    for b in range(nbr - 1):
        pts = set(zip(bys[bounds[b] : bounds[b + 1]].tolist(), bxs[bounds[b] : bounds[b + 1]].tolist(),
                      strict=True))
        path = np.array(_order_path(pts), dtype=np.int64)
        ends = (int(jlab_d[tuple(path[0])]), int(jlab_d[tuple(path[-1])]))
        branches.append((path, ends))

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
        eps = max(1.5, 0.5 * float(np.median(dist[path[:, 0], path[:, 1]])))
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
    for items in incident.values():
        cands = []
        for p in range(len(items)):
            for q in range(p + 1, len(items)):
                d1, d2 = items[p][1], items[q][1]
                c = float(np.dot(d1, d2) / (np.linalg.norm(d1) * np.linalg.norm(d2) + 1e-9))
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
        width = float(np.median(rim_pairs)) if rim_pairs else float(np.median(np.concatenate(widths)))
        hair = {"x": float(x), "y": float(y), "width_px": width,
                "length_px": float(length), "unit_exit": bool(node_ends),
                "free_ends": [(float(p[1]), float(p[0]), float(dist[tuple(p)])) for p in free_ends]}
        if contrast is not None and profile_widths:
            prof = shaft_width_px(contrast, paths, radius_px=0.5 * hair["width_px"])
            hair["width_profile_px"] = prof["width"]
            hair["blur_sigma_px"] = prof["sigma"]
        if cvals:
            hair["contrast"] = float(np.median(np.concatenate(cvals)))
        if lvals:
            hair["polarity"] = -1 if float(np.median(np.concatenate(lvals))) < 0 else 1
        hairs.append(hair)
    return hairs
