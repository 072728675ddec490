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
    field = np.ones((height, width), bool) if field_mask is None else np.asarray(field_mask, bool)
    if field.shape != (height, width):
        raise ValueError(f"field_mask shape {field.shape} does not match image shape {(height, width)}")
    y_edges = np.linspace(0, height, rows + 1).round().astype(int)
    x_edges = np.linspace(0, width, cols + 1).round().astype(int)
    area = np.zeros(rows * cols)
    pixels = np.zeros(rows * cols)
    values = None if pixel_values is None else np.asarray(pixel_values, np.float64) * field
    for r in range(rows):
        for c in range(cols):
            window = (slice(y_edges[r], y_edges[r + 1]), slice(x_edges[c], x_edges[c + 1]))
            area[r * cols + c] = field[window].sum()
            if values is not None:
                pixels[r * cols + c] = values[window].sum()
    point_sums = np.zeros(rows * cols)
    if points is not None and len(points):
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        weights = np.ones(len(pts)) if point_values is None else np.asarray(point_values, np.float64)
        xi = np.clip(pts[:, 0].astype(int), 0, width - 1)
        yi = np.clip(pts[:, 1].astype(int), 0, height - 1)
        inside = field[yi, xi]
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
