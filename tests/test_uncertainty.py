import numpy as np
import pytest

from tracker.imaging.uncertainty import bootstrap_ratio_sd, tile_sums


def test_tile_sums_partition_the_image():
    rng = np.random.default_rng(1)
    values = rng.random((97, 131)) > 0.7
    points = rng.random((50, 2)) * [131, 97]
    sums = tile_sums((97, 131), pixel_values=values, points=points, grid=(3, 5))
    assert sums["area"].sum() == 97 * 131
    assert sums["pixels"].sum() == values.sum()
    assert sums["points"].sum() == 50


def test_tile_sums_respect_field_mask():
    field = np.zeros((40, 40), bool)
    field[:20] = True
    points = np.array([[5.0, 5.0], [5.0, 35.0]])  # second point outside the field
    sums = tile_sums((40, 40), field_mask=field, points=points, pixel_values=np.ones((40, 40)))
    assert sums["area"].sum() == 800 and sums["pixels"].sum() == 800 and sums["points"].sum() == 1


def test_uniform_tiles_have_zero_spread_and_uneven_tiles_do_not():
    assert bootstrap_ratio_sd(np.full(16, 10.0), np.full(16, 100.0)) == pytest.approx(0.0, abs=1e-12)
    uneven = np.array([0, 20, 5, 15] * 4, float)
    sd = bootstrap_ratio_sd(uneven, np.full(16, 100.0))
    # Standard error of the mean of tile ratios: population sd / sqrt(n).
    expected = np.std(uneven / 100.0) / np.sqrt(16)
    assert sd == pytest.approx(expected, rel=0.15)


def test_bootstrap_is_deterministic_and_handles_empty():
    a = bootstrap_ratio_sd(np.arange(16.0), np.full(16, 50.0), seed=3)
    assert a == bootstrap_ratio_sd(np.arange(16.0), np.full(16, 50.0), seed=3)
    assert bootstrap_ratio_sd(np.array([1.0]), np.array([2.0])) is None
    with pytest.raises(ValueError):
        bootstrap_ratio_sd(np.ones(3), np.ones(4))


# ------------------------------------------------------------------- re-shot noise: hairs at the field edge
from tracker.imaging.uncertainty import border_turnover_sd  # noqa: E402


def _q(x: float, d: float = 10.0) -> float:
    return (1 - (x + 0.5) / d) / 2  # a pixel centre at x lies x + 0.5 px inside the image's edge


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([[50.0, 50.0]], 0.0),  # far from every edge: always counted
        ([[0.0, 50.0]], np.sqrt(2 * _q(0) * (1 - _q(0)))),  # out with q, and its unseen mirror in with q
        ([[5.0, 50.0]], np.sqrt(2 * _q(5) * (1 - _q(5)))),
        ([[50.0, 50.0], [0.0, 50.0], [5.0, 50.0]], np.sqrt(2 * (_q(0) * (1 - _q(0)) + _q(5) * (1 - _q(5))))),
    ],
)
def test_turnover_of_single_hairs(points, expected):
    assert border_turnover_sd(np.array(points), (101, 101), reposition_px=10.0) == pytest.approx(expected, abs=0.01)


def test_turnover_weights_and_field_mask():
    edge = np.sqrt(2 * _q(0) * (1 - _q(0)))
    one = border_turnover_sd(np.array([[0.0, 50.0]]), (101, 101), reposition_px=10.0, weights=np.array([0.5]))
    assert one == pytest.approx(0.5 * edge, abs=0.01)  # a hair counted 1/2 moves the count by 1/2
    field = np.zeros((101, 101), bool)
    field[:, 40:] = True  # the field's edge now runs between x = 39 and 40
    assert border_turnover_sd(np.array([[40.0, 50.0]]), (101, 101), reposition_px=10.0,
                              field_mask=field) == pytest.approx(edge, abs=0.01)
    assert border_turnover_sd(np.zeros((0, 2)), (10, 10), reposition_px=3.0) == 0.0


def test_turnover_predicts_the_spread_of_re_shot_counts():
    """Poisson hairs on skin; a 400 x 300 field re-shot many times, shifted by up to d px each way."""
    rng = np.random.default_rng(7)
    d, (h, w) = 30.0, (300, 400)
    predicted, observed, tiles = [], [], []
    for _ in range(6):
        skin = rng.uniform(-100, 600, size=(rng.poisson(0.002 * 700 * 700), 2))
        shifts = 50 + rng.uniform(-d, d, size=(600, 2))
        counts = [np.sum(np.all((skin >= s) & (skin < s + [w, h]), axis=1)) for s in shifts]
        inside = skin[np.all((skin >= 50) & (skin < [50 + w, 50 + h]), axis=1)] - 50
        predicted.append(border_turnover_sd(inside, (h, w), reposition_px=d))
        observed.append(np.std(counts))
        sums = tile_sums((h, w), points=inside)
        tiles.append(bootstrap_ratio_sd(sums["points"], sums["area"]) * h * w)
    ratio = np.sqrt(np.mean(np.square(predicted)) / np.mean(np.square(observed)))
    assert 0.8 < ratio < 1.25  # measured 0.96 (the model ignores that one shift moves all edge hairs together)
    # the tile bootstrap measures another thing (different fields of the skin): several times larger
    assert np.mean(tiles) > 2.5 * np.mean(observed)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_turnover_bad_reposition(bad):
    with pytest.raises(ValueError, match="reposition_px"):
        border_turnover_sd(np.array([[1.0, 1.0]]), (5, 5), reposition_px=bad)


def test_turnover_bad_shapes():
    with pytest.raises(ValueError, match="field_mask"):
        border_turnover_sd(np.array([[1.0, 1.0]]), (5, 5), reposition_px=2.0, field_mask=np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="weights"):
        border_turnover_sd(np.array([[1.0, 1.0]]), (5, 5), reposition_px=2.0, weights=np.ones(2))


# ------------------------------------------- speed (issue 7): the same figures as the whole-image versions
def _ref_tile_sums(shape, *, field_mask=None, pixel_values=None, points=None, point_values=None, grid=(4, 4)):
    """tile_sums before issue 7 (a float64 copy of the pixel values, an array of ones without a field)."""
    height, width = shape[0], shape[1]
    rows, cols = grid
    field = np.ones((height, width), bool) if field_mask is None else np.asarray(field_mask, bool)
    y_edges = np.linspace(0, height, rows + 1).round().astype(int)
    x_edges = np.linspace(0, width, cols + 1).round().astype(int)
    area, pixels = np.zeros(rows * cols), np.zeros(rows * cols)
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


def _ref_border_turnover_sd(points, shape, *, reposition_px, weights=None, field_mask=None):
    """border_turnover_sd before issue 7 (the distance transform of the whole padded field)."""
    import cv2

    height, width = shape[0], shape[1]
    field = np.ones((height, width), bool) if field_mask is None else np.asarray(field_mask, bool)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    w = np.ones(len(pts)) if weights is None else np.asarray(weights, np.float64)
    if not len(pts):
        return 0.0
    padded = np.zeros((height + 2, width + 2), np.uint8)
    padded[1:-1, 1:-1] = field
    to_edge = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    xi = np.clip(np.rint(pts[:, 0]).astype(int), 0, width - 1)
    yi = np.clip(np.rint(pts[:, 1]).astype(int), 0, height - 1)
    x = np.maximum(to_edge[yi, xi] - 0.5, 0.0)
    q = np.where(x < reposition_px, (1.0 - x / reposition_px) / 2.0, 0.0)
    return float(np.sqrt(2.0 * np.sum(w**2 * q * (1.0 - q))))


def _random_field(rng, shape):
    import cv2

    field = cv2.GaussianBlur(rng.random(shape), (0, 0), 8) > 0.47  # ragged, with holes and islands
    field[: shape[0] // 3, : shape[1] // 2] = True
    return field


@pytest.mark.parametrize("seed", range(8))
def test_tile_sums_and_turnover_as_before(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(40, 300)), int(rng.integers(40, 300)))
    field = None if seed % 2 else _random_field(rng, shape)
    mask = rng.random(shape) > 0.8
    pts = rng.random((int(rng.integers(0, 400)), 2)) * [shape[1] + 4, shape[0] + 4] - 2
    wts = rng.choice([0.5, 1.0], len(pts))
    for values in (mask, mask.astype(np.float32) * 0.7, None):
        got = tile_sums(shape, field_mask=field, pixel_values=values, points=pts, point_values=wts, grid=(3, 5))
        want = _ref_tile_sums(shape, field_mask=field, pixel_values=values, points=pts, point_values=wts, grid=(3, 5))
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    for reposition in (0.5, 3.0, 12.5, 40.0, 500.0):  # 500: the windows cover the image (whole transform)
        got = border_turnover_sd(pts, shape, reposition_px=reposition, weights=wts, field_mask=field)
        assert got == _ref_border_turnover_sd(pts, shape, reposition_px=reposition, weights=wts, field_mask=field)


@pytest.mark.parametrize("with_field", [False, True])
def test_closeup_uncertainty_as_before_on_a_phantom(with_field):
    from tracker.imaging import uncertainty
    from tracker.imaging.hair import measure_closeup

    closeup = pytest.importorskip("tracker.phantoms.closeup")
    img = closeup.render_closeup(seed=7, shape=(300, 400), px_per_mm=150.0, density_per_cm2=320.0)[0]
    field = _random_field(np.random.default_rng(7), img.shape[:2]) if with_field else None
    m = measure_closeup(img, px_per_mm=150.0, field_mask=field)
    got = uncertainty.closeup_uncertainty(img.shape, m.hairs, m.mask, px_per_mm=150.0, field_mask=field)
    with pytest.MonkeyPatch.context() as mp:  # the same function on the old building blocks
        mp.setattr(uncertainty, "tile_sums", _ref_tile_sums)
        mp.setattr(uncertainty, "border_turnover_sd", _ref_border_turnover_sd)
        want = uncertainty.closeup_uncertainty(img.shape, m.hairs, m.mask, px_per_mm=150.0, field_mask=field)
    assert got == want
    assert len(m.hairs) > 10
