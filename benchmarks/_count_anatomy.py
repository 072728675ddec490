"""Where a close-up count goes wrong: the clinicians' boxes matched to the pieces of the hair mask.

Used by ``benchmarks/accuracy.py`` section 4 (../shared/data/trichoscopy-counts has one box per hair).
Each box centre is given to the mask piece nearest to it (when one lies within the median width of the
field's counted hairs, at least 6 px); each counted hair to the piece its exit estimate lies on (or nearest
to). Per piece
the counted weight (a hair cut by the field's edge weighs 1/2 or 0, see ``weigh_border_hairs``) is then
compared with the boxes it holds. The errors fall into: pieces inside the field counted high or low,
pieces touching the image's edge counted high or low, and boxes that no piece holds (the mask missed the
hair). For each kind, the summary prints the field count error that would remain if that kind alone were
counted exactly (the field's reported count corrected by that kind's hairs; the reported count is rounded to
a whole hair, so "every piece exact" keeps that rounding): the work left, in the order it pays.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from benchmarks._phantom_grid import pearson

KINDS = {
    "inside, counted high": "io",
    "inside, counted low": "iu",
    "at the edge, counted high": "eo",
    "at the edge, counted low": "eu",
    "boxed, not in the mask": "miss",
}
#: Sign of each kind's contribution to (counted - boxed).
_SIGN = {"io": 1, "iu": -1, "eo": 1, "eu": -1, "miss": -1}


def field_anatomy(mask: np.ndarray, hairs: tuple[dict, ...] | list[dict], boxes: list[tuple[float, ...]]) -> dict:
    """Per-field error parts (hairs) of one counted field against its boxes.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        The hair mask of the measurement.
    hairs : sequence of dict
        Counted hairs (``x``, ``y``, ``weight``, ``width_px``).
    boxes : list of (xmin, ymin, xmax, ymax)
        The clinicians' boxes (pixels).

    Returns
    -------
    dict
        ``io``, ``iu``, ``eo``, ``eu``, ``miss`` (hairs, >= 0), and ``pairs``: ``(boxed, counted)`` for each
        piece inside the field.
    """
    h, w = mask.shape
    labels, n = ndi.label(mask, structure=np.ones((3, 3), int))
    out = dict.fromkeys(_SIGN, 0.0)
    out["pairs"] = []
    if n == 0:
        out["miss"] = float(len(boxes))
        return out
    dist, (iy, ix) = ndi.distance_transform_edt(~mask, return_indices=True)
    widths = [hair["width_px"] for hair in hairs]
    radius = max(6.0, float(np.median(widths)) if widths else 0.0)

    def nearest(x: float, y: float) -> tuple[int, float]:
        c, r = min(max(int(round(x)), 0), w - 1), min(max(int(round(y)), 0), h - 1)
        return int(labels[iy[r, c], ix[r, c]]), float(dist[r, c])

    boxed = np.zeros(n + 1)
    for x0, y0, x1, y1 in boxes:
        k, d = nearest((x0 + x1) / 2, (y0 + y1) / 2)
        if d <= radius:
            boxed[k] += 1
        else:
            out["miss"] += 1
    counted = np.zeros(n + 1)
    for hair in hairs:
        counted[nearest(hair["x"], hair["y"])[0]] += hair["weight"]
    edge = np.zeros(n + 1, bool)
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        edge[k] = sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == h or sl[1].stop == w
    err = counted - boxed
    for k in range(1, n + 1):
        kind = ("e" if edge[k] else "i") + ("o" if err[k] > 0 else "u")
        out[kind] += abs(float(err[k]))
        if not edge[k]:
            out["pairs"].append((int(boxed[k]), float(counted[k])))
    return out


def print_anatomy(parts: list[dict], truth: np.ndarray, pred: np.ndarray) -> None:
    """Totals of each kind over the fields, and the field count error left if that kind were exact."""
    mean = float(truth.mean())

    def figures(p: np.ndarray) -> str:
        return f"MAE {np.abs(p - truth).mean() / mean * 100:4.1f} % of the mean, r {pearson(truth, p):.3f}"

    print(f"  where the count error lies (boxes matched to mask pieces; {len(parts)} fields): now {figures(pred)}")
    per = {key: np.array([part[key] for part in parts]) for key in _SIGN}
    for name, key in KINDS.items():
        print(f"    {name:<28} {per[key].sum():7.0f} hairs; counted exactly: {figures(pred - _SIGN[key] * per[key])}")
    for label, keys in (("all inside", ("io", "iu")), ("all at the edge", ("eo", "eu")),
                        ("every piece", ("io", "iu", "eo", "eu"))):
        fixed = pred - sum(_SIGN[key] * per[key] for key in keys)
        print(f"    {label + ' exact':<28} {'':>13} {figures(fixed)}")
    pairs = np.array([pair for part in parts for pair in part["pairs"]], float).reshape(-1, 2)
    for n_boxed in (1, 2, 3):
        sel = pairs[:, 0] == n_boxed
        if sel.any():
            low = int((pairs[sel, 1] < n_boxed - 0.25).sum())
            high = int((pairs[sel, 1] > n_boxed + 0.25).sum())
            print(f"    inside pieces holding {n_boxed} boxed hair{'s' if n_boxed > 1 else ''}: {sel.sum():5d}, "
                  f"counted low {low}, high {high}")
    sel = pairs[:, 0] == 0
    print(f"    inside pieces holding no box: {sel.sum()}, counted as {pairs[sel, 1].sum():.0f} hairs")
