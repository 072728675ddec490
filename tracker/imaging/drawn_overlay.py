"""Graphics a device's software drew into a close-up: measurement text, circles, lines, ink marks.

Trichoscope software often burns annotations into the exported image: a measuring circle and its radius
in pure red, a translucent panel of blue text ("C=15.8 mm, A=19.9 mm^2"), coloured text in its banner.
Their strokes are dark against the skin in the grey level the hair detector looks at, and thin and long
like shafts, so letters were counted as hairs: on the 380 real 70x fields of ../shared/data, the 33 with
such a text panel read 0.97 hairs high on average where the rest read 0.5 low (count MAE 2.97 against
2.07 hairs). A skin marker's ink is no hair either.

:func:`drawn_overlay` finds them by colour: drawn graphics are near-pure primaries or secondaries (one
or two channels near zero, the rest bright), which neither skin nor hair is. Warm pure colours (red,
orange, yellow, crimson: the hues of skin, blood and red or blond hair) count only as thin strokes; cold
ones (blue, green, cyan, magenta: ink and software colours) count at any size. Thin yellow or orange strokes on light
skin keep too little colour after a JPEG to be found (they are also too pale to pass for hair).
:func:`fill_overlay` then fills the found pixels in from the skin and hair around them, so that a hair a
line crosses stays one hair (leaving them out of the field instead cut such hairs in two at a field edge).

Plain functions on numpy arrays; inputs are never mutated.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracker.imaging.hair_banner import grey_mean
from tracker.imaging.hair_rims import fast_median

__all__ = [
    "LABEL_FILL", "LABEL_MIN_PX", "LABEL_TEXT_SHARE", "LINK_PX", "MARGIN_PX", "MAX_SHARE", "MAX_WARM_STROKE_PX",
    "MIN_EXTENT_PX", "MIN_VALUE", "MIN_WARM_EXTENT_PX", "PURITY", "SATURATION", "STEP_WEIGHT", "TILE_PX",
    "WEAK_PURITY", "WEAK_SATURATION", "drawn_labels", "drawn_overlay", "fill_overlay",
]

#: A pixel's brightest channel must reach this (0-1): dark pixels (hair, shadow) have no reliable hue.
MIN_VALUE = 0.45
#: A drawn colour's saturation ``(max - min) / max`` is at least SATURATION, and its middle channel lies
#: under PURITY of ``max`` (a primary) or over ``1 - PURITY`` of it (a secondary). Red hair (about
#: 160/70/40) has its middle channel at 0.44 of its maximum; the cores of JPEG-blurred red strokes lie
#: under 0.3. Pixels that pass the looser WEAK_* values join a piece that has pure pixels (the stroke's
#: fringe, where the JPEG mixed its colour with the skin's), except yellow and orange ones: brown skin
#: and hair (about 120/97/56) are a dull yellow.
SATURATION, PURITY = 0.7, 0.3
WEAK_SATURATION, WEAK_PURITY = 0.5, 0.45
#: A drawn piece is at least this long (px, bounding-box side): single pure pixels are noise.
MIN_EXTENT_PX = 12
#: Warm pieces must be long (px, bounding-box side): a measuring circle or its radius, not a few red
#: speckles that happen to lie in a row.
MIN_WARM_EXTENT_PX = 40
#: Warm pieces must be thin strokes: wider than this (px, twice the largest inner distance, before the
#: LINK_PX linking) they are skin, blood or a red lesion.
MAX_WARM_STROKE_PX = 8.0
#: Pieces this close (px) are one piece (the runs of a stroke a JPEG broke up).
LINK_PX = 2
#: Graphics are a small part of a photo: when more than this share of it looks drawn, the photo is just
#: colourful (a test card, noise) and nothing is reported.
MAX_SHARE = 0.2
#: Margin (px) added around the found graphics: the blend of stroke and skin a JPEG leaves beside them.
MARGIN_PX = 3
#: A hair-mask piece that fills at least this share of its axis-aligned bounding box, both sides at least
#: LABEL_MIN_PX, and holds bright text on at least LABEL_TEXT_SHARE of the box, is a drawn label.
LABEL_FILL, LABEL_MIN_PX, LABEL_TEXT_SHARE = 0.9, 8, 0.08
#: A fill step replaces the overlay pixels whose Gaussian neighbourhood is at least this share known.
STEP_WEIGHT = 0.25
#: Side (px) of the tiles a fill step works on.
TILE_PX = 64
_PRECHECK_STEP = 3


def _pure(rgb: np.ndarray, *, saturation: float, purity: float, warm_secondaries: bool = True
          ) -> tuple[np.ndarray, np.ndarray]:
    """Pure-colour pixels of a float RGB image (primaries and secondaries; yellow and orange only when
    ``warm_secondaries``) and, among them, the warm ones (red is the brightest channel and blue under
    half of it: yellow, orange, red and crimson, the hues of skin, blood and red hair)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    mid = r + g + b - mx - mn
    warm = (r >= mx) & (b < 0.5 * r)  # red to yellow, and crimson (blood) short of magenta
    secondary = mid >= (1 - purity) * mx
    if not warm_secondaries:
        secondary &= ~warm
    pure = (mx >= MIN_VALUE) & (mx - mn >= saturation * mx) & ((mid <= purity * mx) | secondary)
    return pure, pure & warm


def drawn_overlay(image: np.ndarray, *, margin_px: int = MARGIN_PX) -> np.ndarray:
    """Pixels of graphics drawn into the photo (software annotations, ink marks), with a margin.

    Parameters
    ----------
    image : (H, W, 3) ndarray, uint8, uint16 or float in [0, 1], or (H, W) ndarray
        The photo (RGB); a grey image has no colour to tell graphics by, so nothing is found.
    margin_px : int
        Pixels added around each found piece (>= 0).

    Returns
    -------
    (H, W) bool ndarray
        True on drawn graphics and their margin (all False when more than :data:`MAX_SHARE` of the image
        would be: a colourful image, not an annotated photo).

    Raises
    ------
    ValueError
        Not an (H, W) or (H, W, 3) image, an unsupported dtype, or a negative margin.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3) or min(img.shape[:2]) < 1:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {img.shape}")
    if margin_px < 0:
        raise ValueError(f"margin_px must be >= 0, got {margin_px}")
    out = np.zeros(img.shape[:2], dtype=bool)
    if img.ndim == 2:
        return out
    if img.dtype in (np.uint8, np.uint16):
        rgb = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    elif img.dtype.kind == "f":
        rgb = img
    else:
        raise ValueError(f"expected a uint8, uint16 or float image, got dtype {img.dtype}")
    # Nearly every photo has none: a sparse look first (a stroke 3 px wide is seen on every third row).
    sparse = rgb[::_PRECHECK_STEP, ::_PRECHECK_STEP]
    if not _pure(sparse, saturation=SATURATION, purity=PURITY)[0].any():
        return out
    strong, warm = _pure(rgb, saturation=SATURATION, purity=PURITY)
    weak = _pure(rgb, saturation=WEAK_SATURATION, purity=WEAK_PURITY, warm_secondaries=False)[0] | strong
    k = 2 * LINK_PX + 1
    linked = cv2.dilate(weak.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(linked, connectivity=8)
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong])] = True  # a piece needs pure pixels; its fringe alone is not enough
    keep &= extent >= MIN_EXTENT_PX
    keep[0] = False
    warm_ids = np.unique(labels[warm])
    if warm_ids.size:
        # A warm piece counts only as a stroke: its inner distance stays small all along.
        # Measured on the linked piece: red speckles (blood, a vascular lesion) are each thin, but linked
        # they make a blot.
        dist = cv2.distanceTransform(linked, cv2.DIST_L2, 3)
        widest = np.zeros(n, np.float64)  # a field with no background gets FLT_MAX
        inside = linked.astype(bool)
        np.maximum.at(widest, labels[inside], dist[inside])
        keep[warm_ids] &= (2.0 * widest[warm_ids] <= MAX_WARM_STROKE_PX + 2 * LINK_PX) & (
            extent[warm_ids] >= MIN_WARM_EXTENT_PX)
    found = keep[labels] & weak
    if np.count_nonzero(found) > MAX_SHARE * found.size:
        return out
    if margin_px and found.any():
        k = 2 * margin_px + 1
        found = cv2.dilate(found.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
    return found


def _tile_any(mask: np.ndarray, tile: int) -> np.ndarray:
    """(ceil(H / tile), ceil(W / tile)) bool: which tiles of ``mask`` hold a True pixel."""
    h, w = mask.shape
    padded = np.zeros((-(-h // tile) * tile, -(-w // tile) * tile), bool)
    padded[:h, :w] = mask
    return padded.reshape(padded.shape[0] // tile, tile, padded.shape[1] // tile, tile).any(axis=(1, 3))


def fill_overlay(image: np.ndarray, overlay: np.ndarray, *, sigma_px: float = 1.5, steps: int = 8) -> np.ndarray:
    """The image with the ``overlay`` pixels replaced from the pixels around them, from the rim inwards.

    Each step replaces the overlay pixels next to known ones by a Gaussian mean over the known pixels
    (a normalised convolution), which then count as known: a hair that a drawn line crosses is continued
    across it (its own pixels above and below fill the gap), so it is neither cut in two nor shortened.
    What ``steps`` steps leave (the inside of a blob of ink) takes a mean 16x as wide, taken on a copy
    reduced 16x.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) float32 ndarray
        The photo.
    overlay : (H, W) bool ndarray
        Pixels to replace (:func:`drawn_overlay`).
    sigma_px : float
        Gaussian sigma of a step's mean (px, > 0).
    steps : int
        Steps from the rim inwards (>= 1); each one reaches about ``sigma_px`` further.

    Returns
    -------
    ndarray
        A new float32 array like ``image``; equal to it outside ``overlay``.
    """
    img = np.asarray(image)
    mask = np.asarray(overlay, dtype=bool)
    if mask.shape != img.shape[:2]:
        raise ValueError(f"overlay shape {mask.shape} does not match the image's {img.shape[:2]}")
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be positive, got {sigma_px}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out = np.array(img, dtype=np.float32, copy=True)
    if not mask.any():
        return out
    # Only the overlay's bounding box (plus a step's reach) is touched.
    reach = int(np.ceil(4 * sigma_px))
    ys, xs = np.nonzero(mask)
    y0, y1 = max(int(ys.min()) - reach, 0), min(int(ys.max()) + reach + 1, mask.shape[0])
    x0, x1 = max(int(xs.min()) - reach, 0), min(int(xs.max()) + reach + 1, mask.shape[1])
    box, todo = out[y0:y1, x0:x1], mask[y0:y1, x0:x1].copy()
    known = (~todo).astype(np.float32)
    if not known.any():
        box[...] = 0.5
        return out

    def per_pixel(a: np.ndarray) -> np.ndarray:
        return a if box.ndim == 2 else a[..., None]

    # Each step works only on the tiles that still hold overlay pixels (a measuring circle crosses a few
    # dozen of a field's tiles): blurring the whole box at every step cost 0.26 s on a 1280 x 1024 field.
    r = int(np.ceil(3 * sigma_px))
    values = box * per_pixel(known)
    h, w = todo.shape
    tiles = list(zip(*np.nonzero(_tile_any(todo, TILE_PX)), strict=True))
    for _ in range(steps):
        filled = []
        for ty, tx in tiles:
            y, x = ty * TILE_PX, tx * TILE_PX
            here = (slice(y, min(y + TILE_PX, h)), slice(x, min(x + TILE_PX, w)))
            if not todo[here].any():
                continue
            ya, yb, xa, xb = max(y - r, 0), min(y + TILE_PX + r, h), max(x - r, 0), min(x + TILE_PX + r, w)
            inner = (slice(y - ya, here[0].stop - ya), slice(x - xa, here[1].stop - xa))
            weight = cv2.GaussianBlur(known[ya:yb, xa:xb], (0, 0), sigma_px, borderType=cv2.BORDER_CONSTANT)[inner]
            ok = todo[here] & (weight >= STEP_WEIGHT)
            if ok.any():
                total = cv2.GaussianBlur(values[ya:yb, xa:xb], (0, 0), sigma_px, borderType=cv2.BORDER_CONSTANT)
                filled.append((here, ok, (total[inner] / per_pixel(np.maximum(weight, 1e-6)))[ok]))
        if not filled:
            break
        # Filled pixels count as known from the next step on (not within it, so tiles do not depend on order).
        for here, ok, mean in filled:
            box[here][ok] = mean
            values[here][ok] = mean
            known[here][ok] = 1.0
            todo[here][ok] = False
    if not todo.any():
        return out
    # What the steps left (the inside of a blob): a mean 16x as wide, on a copy reduced 16x, of the blob's
    # surroundings only.
    ys, xs = np.nonzero(todo)
    far = int(16 * r)
    y0, y1 = max(int(ys.min()) - far, 0), min(int(ys.max()) + far + 1, h)
    x0, x1 = max(int(xs.min()) - far, 0), min(int(xs.max()) + far + 1, w)
    part, left, part_known = box[y0:y1, x0:x1], todo[y0:y1, x0:x1], known[y0:y1, x0:x1]
    size = (max(1, (x1 - x0) // 16), max(1, (y1 - y0) // 16))
    weight = cv2.GaussianBlur(cv2.resize(part_known, size, interpolation=cv2.INTER_AREA), (0, 0), sigma_px)
    mean = cv2.GaussianBlur(cv2.resize(values[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA), (0, 0), sigma_px)
    mean = cv2.resize(mean / per_pixel(np.maximum(weight, 1e-6)), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(weight, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    ok = left & (weight > 1e-3)
    part[ok] = mean[ok]
    left &= ~ok
    if left.any():
        part[left] = np.median(box[known > 0], axis=0)
    return out


def drawn_labels(mask: np.ndarray, image: np.ndarray, *, field_mask: np.ndarray | None = None) -> np.ndarray:
    """Text labels a device drew as opaque boxes (a scale bar's "1.0 mm"), found among the hair mask's pieces.

    Such a box is grey, so :func:`drawn_overlay` cannot tell it by colour, and dark, so the hair mask takes
    it in as one piece. It is told by its shape and content: the piece fills its axis-aligned bounding box
    (at least :data:`LABEL_FILL`; a hair lying exactly along an axis with square ends filled 0.94 of its box,
    the real fields' labels 0.97-1.0, no phantom piece more than 0.84) and the box holds bright text (at
    least :data:`LABEL_TEXT_SHARE` of it brighter than the field's median: 0.17 in the labels, 0.02 in that
    hair). A label that a hair runs into makes one piece with the hair and is not found.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        Hair mask.
    image : (H, W, 3) or (H, W) float ndarray in [0, 1]
        The photo the mask was found on.
    field_mask : (H, W) bool ndarray, optional
        Analysed field (its median brightness is the reference; default the whole image).

    Returns
    -------
    (H, W) bool ndarray
        The label boxes, with a margin of :data:`MARGIN_PX`.
    """
    m = np.asarray(mask, dtype=bool)
    img = np.asarray(image)
    if m.ndim != 2 or img.shape[:2] != m.shape:
        raise ValueError(f"mask {m.shape} and image {img.shape} must be (H, W) and (H, W[, 3]) of one size")
    out = np.zeros(m.shape, bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.view(np.uint8), connectivity=8)
    if n <= 1:
        return out
    w, h, area = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
    boxes = np.flatnonzero((w >= LABEL_MIN_PX) & (h >= LABEL_MIN_PX) & (area >= LABEL_FILL * w * h))
    boxes = boxes[boxes > 0]
    if boxes.size == 0:
        return out
    # The field's median brightness from a sparse grid of pixels, and the brightness of the boxes only.
    fm = np.ones(m.shape, bool) if field_mask is None else np.asarray(field_mask, dtype=bool)
    step = max(1, int(np.sqrt(m.size / 20_000)))
    sparse = grey_mean(img[::step, ::step])[fm[::step, ::step]]
    median = float(fast_median(sparse.ravel())) if sparse.size else 0.5
    for k in boxes:
        x, y, bw, bh = (int(v) for v in stats[k, :4])
        if np.mean(grey_mean(img[y : y + bh, x : x + bw]) > median) >= LABEL_TEXT_SHARE:
            out[max(y - MARGIN_PX, 0) : y + bh + MARGIN_PX, max(x - MARGIN_PX, 0) : x + bw + MARGIN_PX] = True
    return out
