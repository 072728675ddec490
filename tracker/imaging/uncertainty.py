"""Per-photo uncertainty of field measurements by a bootstrap over image tiles.

A field measurement such as density is a ratio of sums over the analysed field (hairs / area, hair
pixels / area, width sum / hairs). Cutting the field into tiles and resampling the tiles with replacement
gives the spread of that ratio that comes from *where* hairs happen to lie: the sampling noise of one
photo. A chart draws it as an error bar; a change from baseline smaller than about twice the combined
spread is not called a change.
"""

from __future__ import annotations

import numpy as np


def tile_sums(
    shape: tuple[int, ...],
    *,
    field_mask: np.ndarray | None = None,
    pixel_values: np.ndarray | None = None,
    points: np.ndarray | None = None,
    point_values: np.ndarray | None = None,
    grid: tuple[int, int] = (4, 4),
) -> dict[str, np.ndarray]:
    """Sum pixels and points per tile of a regular grid.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W[, C])`` of the image.
    field_mask : (H, W) bool ndarray, optional
        Analysed pixels; ``None`` means the whole image.
    pixel_values : (H, W) ndarray, optional
        Per-pixel values (e.g. the hair mask) summed inside the field per tile.
    points : (N, 2) ndarray, optional
        ``(x, y)`` positions (e.g. hair exits); points outside the field are ignored.
    point_values : (N,) ndarray, optional
        Value per point (default 1, i.e. a count).
    grid : (rows, cols)
        Tile grid.

    Returns
    -------
    sums : dict of (rows * cols,) float64 ndarrays
        ``"area"`` (field pixels), ``"pixels"`` (sum of pixel_values), ``"points"`` (sum of point_values).
    """
    height, width = shape[0], shape[1]
    rows, cols = grid
    if rows < 1 or cols < 1:
        raise ValueError(f"grid must be positive, got {grid!r}")
    field = None if field_mask is None else np.asarray(field_mask, bool)
    if field is not None and field.shape != (height, width):
        raise ValueError(f"field_mask shape {field.shape} does not match image shape {(height, width)}")
    y_edges = np.linspace(0, height, rows + 1).round().astype(int)
    x_edges = np.linspace(0, width, cols + 1).round().astype(int)
    area = np.zeros(rows * cols)
    pixels = np.zeros(rows * cols)
    # Without a field mask no (H, W) array of ones is made; a bool image (the hair mask) is counted, not
    # converted to float64 and summed: the same whole numbers (issue 7). Other values are summed as before.
    values = None if pixel_values is None else np.asarray(pixel_values)
    counted = values is not None and values.dtype == bool and values.shape == (height, width)
    if values is not None and not counted:
        values = np.asarray(values, np.float64) * (np.ones((height, width), bool) if field is None else field)
    for r in range(rows):
        for c in range(cols):
            window = (slice(y_edges[r], y_edges[r + 1]), slice(x_edges[c], x_edges[c + 1]))
            if field is None:
                area[r * cols + c] = (y_edges[r + 1] - y_edges[r]) * (x_edges[c + 1] - x_edges[c])
            else:
                area[r * cols + c] = np.count_nonzero(field[window])
            if counted:
                inside = values[window] if field is None else values[window] & field[window]
                pixels[r * cols + c] = np.count_nonzero(inside)
            elif values is not None:
                pixels[r * cols + c] = values[window].sum()
    point_sums = np.zeros(rows * cols)
    if points is not None and len(points):
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        weights = np.ones(len(pts)) if point_values is None else np.asarray(point_values, np.float64)
        xi = np.clip(pts[:, 0].astype(int), 0, width - 1)
        yi = np.clip(pts[:, 1].astype(int), 0, height - 1)
        inside = np.ones(len(pts), bool) if field is None else field[yi, xi]
        tile_r = np.clip(np.searchsorted(y_edges, yi, side="right") - 1, 0, rows - 1)
        tile_c = np.clip(np.searchsorted(x_edges, xi, side="right") - 1, 0, cols - 1)
        np.add.at(point_sums, (tile_r * cols + tile_c)[inside], weights[inside])
    return {"area": area, "pixels": pixels, "points": point_sums}


def bootstrap_ratio_sd(
    numerators: np.ndarray, denominators: np.ndarray, *, n_resamples: int = 400, seed: int = 0
) -> float | None:
    """Standard deviation of ``sum(numerators) / sum(denominators)`` under tile resampling.

    Parameters
    ----------
    numerators, denominators : (T,) array_like of float
        Per-tile sums. Tiles whose denominator is 0 are dropped.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed, so the same photo always gets the same figure.

    Returns
    -------
    sd : float or None
        ``None`` when fewer than two tiles carry data.
    """
    num = np.asarray(numerators, np.float64)
    den = np.asarray(denominators, np.float64)
    if num.shape != den.shape or num.ndim != 1:
        raise ValueError("numerators and denominators must be 1-D arrays of the same length")
    keep = den > 0
    num, den = num[keep], den[keep]
    if len(num) < 2:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(num), size=(n_resamples, len(num)))
    totals = den[picks].sum(axis=1)
    ratios = num[picks].sum(axis=1) / np.where(totals > 0, totals, np.nan)
    return float(np.nanstd(ratios, ddof=1))


#: Default re-positioning error of a close-up between visits (mm): how far the field's edge moves when the
#: same marked site is photographed again. 0.25 mm is the re-shot jitter of the repeatability benchmark
#: (shift +-30 px, rotation +-5 deg, zoom +-2 % at 200 px/mm); clinics with looser site marking should raise it.
REPOSITION_MM = 0.25


def _edge_distances(
    field: np.ndarray | None, shape: tuple[int, int], yi: np.ndarray, xi: np.ndarray, *, reach: float
) -> np.ndarray:
    """(N,) float32 ``cv2.distanceTransform(DIST_L2, 5)`` of the zero-padded field at pixels ``(yi, xi)``.

    Exact wherever it is at most ``reach`` and over ``reach`` wherever the whole transform is: a chamfer
    path is at least as long as its chessboard length, so only the window within ``reach`` of a pixel
    matters; only that window is transformed, and not at all when it lies wholly inside the field (then
    the value is over ``reach``: inf). Issue 7: a 3 MP field took 25 ms. ``field`` None: the whole image.
    Many points (windows covering more than half the image) take the whole transform.
    """
    import cv2

    height, width = shape
    pad = int(np.ceil(max(reach, 0.0))) + 2
    if len(yi) * (2 * pad + 1) ** 2 > height * width // 2:
        padded = np.zeros((height + 2, width + 2), np.uint8)
        padded[1:-1, 1:-1] = 1 if field is None else field
        return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1][yi, xi]
    out = np.full(len(yi), np.inf, np.float32)
    for k, (y, x) in enumerate(zip(yi.tolist(), xi.tolist(), strict=True)):
        y0, y1, x0, x1 = max(y - pad, -1), min(y + pad + 1, height + 1), max(x - pad, -1), min(x + pad + 1, width + 1)
        iy0, iy1, ix0, ix1 = max(y0, 0), min(y1, height), max(x0, 0), min(x1, width)
        inner = None if field is None else field[iy0:iy1, ix0:ix1]
        if (iy0, iy1, ix0, ix1) == (y0, y1, x0, x1) and (inner is None or inner.all()):
            continue  # no pixel outside the field within pad: farther than reach
        window = np.zeros((y1 - y0, x1 - x0), np.uint8)
        window[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = 1 if inner is None else inner
        out[k] = cv2.distanceTransform(window, cv2.DIST_L2, 5)[y - y0, x - x0]
    return out


def border_turnover_sd(
    points: np.ndarray,
    shape: tuple[int, ...],
    *,
    reposition_px: float,
    weights: np.ndarray | None = None,
    field_mask: np.ndarray | None = None,
) -> float:
    """Standard deviation of a hair count between re-shots of the same site, from hairs near the field edge.

    Re-photographing a marked site moves the (fixed-size) field over the skin by up to about
    ``reposition_px``: hairs whose exit lies near the edge leave the count and others come in. Model:
    with the edge's normal displacement uniform in ``[-d, d]``, a hair at distance ``x < d`` inside the
    edge is out of a re-shot with probability ``q = (1 - x / d) / 2``, independently of the others
    (variance ``q (1 - q)``), and as many unseen hairs lie just outside the edge and may come in (same
    density), so ``var = 2 * sum(w**2 * q * (1 - q))``. Measured: 0.91x (per scalp 0.79-0.99) the spread of the
    measured density over re-shots of the repeatability benchmark (4 scalps x 8 re-shots: shift, rotation,
    zoom, light),
    and 0.96x on rigid shifts of random hair fields (6 fields x 600 shifts, tests/test_uncertainty.py).

    This is the noise a change between visits must exceed. It is not the tile bootstrap's figure
    (:func:`bootstrap_ratio_sd`), which is the spread between *different* fields of the same scalp and was
    measured 3.4-6.3x larger than the spread over re-shots of one site (benchmark: 4 scalps x 8 re-shots).

    Parameters
    ----------
    points : (N, 2) array_like of float
        ``(x, y)`` hair exits in pixels.
    shape : tuple of int
        ``(H, W[, C])`` of the image.
    reposition_px : float
        Largest displacement of the field's edge between re-shots, in pixels (> 0).
    weights : (N,) array_like of float, optional
        Counting weight of each hair (default 1).
    field_mask : (H, W) bool ndarray, optional
        Analysed field (default: the whole image); its edge is where hairs enter and leave.

    Returns
    -------
    sd : float
        Standard deviation of the (weighted) count, in hairs.
    """
    if not (np.isfinite(reposition_px) and reposition_px > 0):
        raise ValueError(f"reposition_px must be positive, got {reposition_px!r}")
    height, width = shape[0], shape[1]
    field = None if field_mask is None else np.asarray(field_mask, bool)
    if field is not None and field.shape != (height, width):
        raise ValueError(f"field_mask shape {field.shape} does not match image shape {(height, width)}")
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    w = np.ones(len(pts)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(pts),):
        raise ValueError("weights must have one value per point")
    if not len(pts):
        return 0.0
    xi = np.clip(np.rint(pts[:, 0]).astype(int), 0, width - 1)
    yi = np.clip(np.rint(pts[:, 1]).astype(int), 0, height - 1)
    # Beyond reposition_px + 0.5 (+1 of margin) q is 0 whatever the exact distance.
    to_edge = _edge_distances(field, (height, width), yi, xi, reach=reposition_px + 1.5)
    x = np.maximum(to_edge - 0.5, 0.0)  # from the pixel centre to the field's edge (a pixel border)
    q = np.where(x < reposition_px, (1.0 - x / reposition_px) / 2.0, 0.0)
    return float(np.sqrt(2.0 * np.sum(w**2 * q * (1.0 - q))))


def closeup_uncertainty(
    shape: tuple[int, ...],
    hairs: tuple[dict, ...],
    mask: np.ndarray,
    *,
    px_per_mm: float | None,
    vellus_um: float = 30.0,
    field_mask: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Standard deviations of a close-up's figures (``<metric>_sd``), all in one frame.

    Count and density: the noise between re-shots of the same site (:func:`border_turnover_sd`: hairs
    entering and leaving at the image edge), which a change between visits must exceed; the tile
    bootstrap (the spread between different fields of the scalp, 3.4-6.3x larger on re-shot phantoms)
    is kept as ``*_sampling_sd``. Coverage, mean width and vellus share: the tile bootstrap.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W[, C])`` of the frame the hairs and the mask are in.
    hairs : sequence of dict
        Counted hairs with ``x``, ``y``, ``width_px`` (px of that frame) and optional ``weight``.
    mask : (H, W) bool ndarray
        The hair mask.
    px_per_mm : float or None
        Scale of that frame; without it the figures in mm are None (and the re-shot shift assumes the
        detector's :data:`tracker.imaging.hair.ASSUMED_PX_PER_MM`).
    vellus_um : float
        Vellus threshold.
    field_mask : (H, W) bool ndarray, optional
        Analysed field (default: the whole frame).
    """
    points = np.array([[h["x"], h["y"]] for h in hairs], np.float64).reshape(-1, 2)
    widths = np.array([h["width_px"] for h in hairs], np.float64)
    counts = tile_sums(shape, field_mask=field_mask, pixel_values=mask, points=points)
    result: dict[str, float | None] = {
        "hair_coverage_sd": bootstrap_ratio_sd(counts["pixels"], counts["area"]),
        "hair_count_sd": None,
        "density_per_cm2_sd": None,
        "mean_shaft_width_um_sd": None,
        "vellus_fraction_sd": None,
    }
    if px_per_mm:
        reposition_px = REPOSITION_MM * px_per_mm
    else:
        from tracker.imaging.hair import ASSUMED_PX_PER_MM

        reposition_px = REPOSITION_MM * ASSUMED_PX_PER_MM
    weights = np.array([h.get("weight", 1.0) for h in hairs], np.float64)
    turnover = border_turnover_sd(points, shape, weights=weights, reposition_px=reposition_px)
    total_area = float(counts["area"].sum())
    result["hair_count_sd"] = turnover
    count_sd = bootstrap_ratio_sd(counts["points"], counts["area"])
    result["hair_count_sampling_sd"] = None if count_sd is None else count_sd * total_area
    if px_per_mm:
        px_per_cm2 = (px_per_mm * 10.0) ** 2
        result["density_per_cm2_sd"] = turnover / total_area * px_per_cm2
        result["density_per_cm2_sampling_sd"] = None if count_sd is None else count_sd * px_per_cm2
    if px_per_mm and len(widths):
        widths_um = widths / px_per_mm * 1000.0
        width_sums = tile_sums(shape, points=points, point_values=widths_um)["points"]
        vellus = tile_sums(shape, points=points, point_values=(widths_um < vellus_um).astype(float))["points"]
        result["mean_shaft_width_um_sd"] = bootstrap_ratio_sd(width_sums, counts["points"])
        result["vellus_fraction_sd"] = bootstrap_ratio_sd(vellus, counts["points"])
    return result
