"""Per-hair clean-up of the close-up hair list (steps 4 and 4b of :mod:`tracker.imaging.hair`).

Plain functions on the list of hair dicts produced by :func:`tracker.imaging.hair_graph.count_hairs`:

- :func:`drop_pale`: pale wisps (pigment halos, skin furrows) far below the field's real shafts of the
  same polarity are dropped;
- :func:`weigh_border_hairs`: hairs cut by the field's edge are weighted (an unbiased counting frame).

Inputs are never mutated; each function returns a new list.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["drop_pale", "weigh_border_hairs"]


def drop_pale(found: list[dict], *, min_rel_contrast: float) -> list[dict]:
    """Drop hairs whose median contrast is under ``min_rel_contrast`` of the field's 90th percentile.

    Dark and light (grey / white) shafts are judged apart (``polarity`` -1 / +1): a white hair among
    black ones has a lower colour contrast than they have, yet it is a hair.
    """
    out = []
    for sign in (-1, 1):
        group = [h for h in found if h.get("polarity", -1) == sign]
        if not group:
            continue
        ref = found if len(group) < 3 else group
        floor = min_rel_contrast * float(np.percentile([h["contrast"] for h in ref], 90))
        out += [h for h in group if h["contrast"] >= floor]
    return out


def weigh_border_hairs(found: list[dict], fm: np.ndarray, *, edge_px: float) -> list[dict]:
    """Weight each hair by the chance that its exit lies in the field (an unbiased counting frame).

    A hair whose every end lies inside the field (or that leaves a unit's shared opening inside it)
    weighs 1. A hair cut by the field's edge at one free end weighs 1/2: its exit is inside when the
    part beyond the edge is the tip and outside when it is the root, and over a field both happen
    equally often (every hair stream entering the field on one side leaves it on the other). A hair cut
    at both ends passes through the field: its exit is outside, weight 0. The exit estimate of a
    weighted hair must lie in the field. Free ends are ``(x, y, half_width)`` in ``free_ends``.
    """
    h, w = fm.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = fm
    to_edge = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    out = []
    for hair in found:
        if not fm[int(round(hair["y"])), int(round(hair["x"]))]:
            continue
        cut = sum(
            to_edge[int(round(y)), int(round(x))] <= r + edge_px for x, y, r in hair.get("free_ends", ())
        )
        weight = 1.0 if cut == 0 else (0.5 if cut == 1 or hair.get("unit_exit") else 0.0)
        if hair.get("unit_exit") and cut == 1:
            weight = 1.0
        if weight > 0:
            out.append({**{k: v for k, v in hair.items() if k != "free_ends"}, "weight": weight})
    return out
