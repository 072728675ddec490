"""Plane geometry for homographies: point and polygon transforms, resolution changes, plausibility figures.

Conventions used throughout the tracker:

- Pixel coordinates are ``(x, y)`` = (column, row) with the centre of the top-left pixel at ``(0, 0)``
  (the OpenCV convention; ``cv2.warpPerspective`` uses it too).
- A homography is a ``(3, 3)`` float64 array ``H`` mapping homogeneous ``(x, y, 1)`` of one image to
  the other: ``(u, v, w) = H @ (x, y, 1)``, point ``(u / w, v / w)``.

All functions are pure: inputs are never modified.
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np

__all__ = [
    "as_homography",
    "describe_homography",
    "fit_homography",
    "image_corners",
    "plausibility",
    "polygon_is_convex",
    "rescale_homography",
    "resize_matrix",
    "transform_points",
]


def as_homography(matrix: np.ndarray | list) -> np.ndarray:
    """Validate a homography and return it as a fresh ``(3, 3)`` float64 array normalised to ``H[2, 2] = 1``.

    Parameters
    ----------
    matrix : array_like, shape (3, 3)
        Finite, invertible homography. A ``(2, 3)`` affine matrix is accepted and completed with
        ``[0, 0, 1]``.

    Returns
    -------
    H : ndarray, shape (3, 3), float64
        Copy of the input, scaled so that ``H[2, 2] == 1`` when ``H[2, 2]`` is not zero.

    Raises
    ------
    ValueError
        Wrong shape, non-finite entries or a singular matrix.
    """
    h = np.array(matrix, dtype=np.float64, copy=True)
    if h.shape == (2, 3):
        h = np.vstack([h, [0.0, 0.0, 1.0]])
    if h.shape != (3, 3):
        raise ValueError(f"a homography must be a 3x3 (or 2x3 affine) matrix, got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("the homography contains NaN or infinite values")
    if abs(h[2, 2]) > 1e-12:
        h /= h[2, 2]
    scale = np.abs(h).max()
    if scale == 0 or abs(np.linalg.det(h / scale)) < 1e-14:
        raise ValueError("the homography is singular (it collapses the plane onto a line or a point)")
    return h


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map 2-D points through a homography.

    Parameters
    ----------
    points : array_like, shape (N, 2)
        ``(x, y)`` pixel coordinates (N may be 0). A single point of shape ``(2,)`` is accepted and
        returned with shape ``(1, 2)``.
    matrix : array_like, shape (3, 3)
        Homography mapping the points' image to the target image.

    Returns
    -------
    mapped : ndarray, shape (N, 2), float64
        Transformed coordinates. Points that the homography sends to infinity (``w == 0``) come back
        as ``inf``; points behind the camera (``w < 0``) are mapped algebraically.

    Raises
    ------
    ValueError
        Points not of shape (N, 2), non-finite points or an invalid matrix.
    """
    h = as_homography(matrix)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape == (2,):
        pts = pts[None, :]
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("points contain NaN or infinite values")
    homog = pts @ h[:, :2].T + h[:, 2]
    w = homog[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = homog[:, :2] / w
    out[np.abs(w[:, 0]) < 1e-15] = np.inf
    return out


def image_corners(shape: tuple[int, ...]) -> np.ndarray:
    """Centres of the four corner pixels of an image, clockwise from the top-left.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(H, W)`` or ``(H, W, C)``.

    Returns
    -------
    corners : ndarray, shape (4, 2), float64
        ``[[0, 0], [W-1, 0], [W-1, H-1], [0, H-1]]``.
    """
    if len(shape) < 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"not an image shape: {shape}")
    h, w = int(shape[0]), int(shape[1])
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)


def resize_matrix(from_shape: tuple[int, ...], to_shape: tuple[int, ...]) -> np.ndarray:
    """Homography taking pixel coordinates of an image to those of its resized copy.

    Uses the pixel-centre rule of ``cv2.resize``: ``x_to = (x_from + 0.5) * s_x - 0.5`` with
    ``s_x = W_to / W_from`` (likewise for y), so scaling is exact for any pair of sizes.

    Parameters
    ----------
    from_shape, to_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` of the original and of the resized image.

    Returns
    -------
    S : ndarray, shape (3, 3), float64
        Diagonal scaling with the half-pixel offsets.
    """
    sy = to_shape[0] / from_shape[0]
    sx = to_shape[1] / from_shape[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]], dtype=np.float64)


def rescale_homography(
    matrix: np.ndarray, *, reference: tuple[tuple[int, ...], tuple[int, ...]],
    moving: tuple[tuple[int, ...], tuple[int, ...]],
) -> np.ndarray:
    """A MOVING -> REFERENCE homography expressed between resized copies of the two images.

    Parameters
    ----------
    matrix : array_like, shape (3, 3)
        Homography from MOVING pixels to REFERENCE pixels (in the ``from`` shapes).
    reference, moving : ((H, W), (H, W))
        ``(from_shape, to_shape)`` of each image (the pixel-centre rule of :func:`resize_matrix`); swap the
        two shapes to map back.

    Returns
    -------
    ndarray, shape (3, 3), float64
        The homography between the ``to`` shapes, normalised to ``H[2, 2] = 1``.
    """
    h = resize_matrix(*reference) @ np.asarray(matrix, np.float64) @ np.linalg.inv(resize_matrix(*moving))
    return h / h[2, 2]


def polygon_is_convex(polygon: np.ndarray) -> bool:
    """Whether a closed polygon (vertices in order) is strictly convex and finite.

    Parameters
    ----------
    polygon : array_like, shape (N, 2)
        Vertices in order (either orientation), N >= 3.

    Returns
    -------
    bool
        True when every turn has the same sign and no vertex is infinite.
    """
    p = np.asarray(polygon, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3 or not np.all(np.isfinite(p)):
        return False
    edges = np.roll(p, -1, axis=0) - p
    nxt = np.roll(edges, -1, axis=0)
    cross = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


def describe_homography(matrix: np.ndarray, shape: tuple[int, ...]) -> dict[str, float]:
    """Plausibility figures of a homography over the image it maps from.

    The local linear part (Jacobian) of ``H`` at the image centre gives the scale and rotation; the
    spread of the local scale over the four corners measures perspective.

    Parameters
    ----------
    matrix : array_like, shape (3, 3)
        Homography from the image of ``shape`` to another image.
    shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` of the image the homography maps from.

    Returns
    -------
    figures : dict
        ``scale`` (sqrt of the Jacobian determinant at the centre; negative determinant gives a
        negative value), ``rotation_deg`` (rotation of the closest similarity, -180..180),
        ``anisotropy`` (ratio of the Jacobian's singular values, >= 1), ``perspective`` (max / min
        local scale over the corners, minus 1; 0 for an affine map, ``inf`` when a corner goes to or
        beyond infinity), ``min_w`` (smallest homogeneous w over the corners, after normalising
        ``H[2, 2]`` to 1; must be > 0 for a physically possible view).
    """
    h = as_homography(matrix)
    corners = image_corners(shape)
    centre = corners.mean(axis=0)

    def jacobian(pt: np.ndarray) -> tuple[np.ndarray, float]:
        x, y = pt
        u, v, w = h @ np.array([x, y, 1.0])
        jac = (h[:2, :2] * w - np.outer([u, v], h[2, :2])) / (w * w)
        return jac, w

    jac_c, _ = jacobian(centre)
    det_c = float(np.linalg.det(jac_c))
    scale = math.copysign(math.sqrt(abs(det_c)), det_c)
    rotation = math.degrees(math.atan2(jac_c[1, 0] - jac_c[0, 1], jac_c[0, 0] + jac_c[1, 1]))
    sv = np.linalg.svd(jac_c, compute_uv=False)
    anisotropy = float(sv[0] / sv[1]) if sv[1] > 0 else math.inf

    ws = corners @ h[2, :2] + h[2, 2]
    min_w = float(ws.min())
    if min_w <= 0:
        perspective = math.inf
    else:
        local = [abs(np.linalg.det(jacobian(c)[0])) for c in corners]
        perspective = math.sqrt(max(local) / min(local)) - 1.0 if min(local) > 0 else math.inf
    return {
        "scale": scale,
        "rotation_deg": rotation,
        "anisotropy": anisotropy,
        "perspective": float(perspective),
        "min_w": min_w,
    }


def plausibility(
    matrix: np.ndarray,
    moving_shape: tuple[int, ...],
    reference_shape: tuple[int, ...],
    *,
    scale_range: tuple[float, float],
    max_rotation_deg: float,
    max_anisotropy: float,
    max_perspective: float,
    min_overlap: float,
) -> tuple[dict[str, float], str | None]:
    """Judge whether a homography between two photos of the same view is physically plausible.

    Parameters
    ----------
    matrix : array_like, shape (3, 3)
        Homography from MOVING to REFERENCE pixels. Pass it between size-normalised frames (both long
        sides scaled to the same length) so that zoom means framing, not resolution.
    moving_shape, reference_shape : tuple of int
        ``(H, W)`` of the two (normalised) frames.
    scale_range, max_rotation_deg, max_anisotropy, max_perspective, min_overlap
        Limits (see :func:`describe_homography` for the figures). ``min_overlap`` is the share of the
        smaller image covered by the overlap of the two.

    Returns
    -------
    figures : dict
        :func:`describe_homography` figures plus ``overlap`` (0..1).
    reason : str or None
        Plain-language reason for the first limit broken, or None when plausible.
    """
    fig = describe_homography(matrix, moving_shape)
    quad = transform_points(image_corners(moving_shape), matrix)
    proper = fig["min_w"] > 0 and polygon_is_convex(quad)
    overlap = 0.0
    if proper:
        ref_quad = image_corners(reference_shape).astype(np.float32)
        area, _ = cv2.intersectConvexConvex(quad.astype(np.float32), ref_quad)
        small = min(abs(cv2.contourArea(quad.astype(np.float32))), cv2.contourArea(ref_quad))
        overlap = float(area) / small if small > 0 else 0.0
    fig["overlap"] = overlap
    if not proper:
        return fig, "implausible transform: the photo would be folded or seen from behind"
    if fig["scale"] <= 0:
        return fig, "implausible transform: the photo would be mirrored"
    if not scale_range[0] <= fig["scale"] <= scale_range[1]:
        return fig, (
            f"implausible transform: zoom {fig['scale']:.2f} outside {scale_range[0]}-{scale_range[1]}"
            " relative to the reference framing"
        )
    if abs(fig["rotation_deg"]) > max_rotation_deg or (
        max_rotation_deg < 180 and abs(fig["rotation_deg"]) == max_rotation_deg
    ):
        return (
            fig,
            f"implausible transform: rotation {fig['rotation_deg']:.0f} deg (limit {max_rotation_deg:.0f})",
        )
    if fig["anisotropy"] > max_anisotropy:
        return fig, f"implausible transform: stretched {fig['anisotropy']:.2f}x in one direction"
    if fig["perspective"] > max_perspective:
        return fig, f"implausible transform: strong perspective change ({fig['perspective']:.2f})"
    if overlap < min_overlap:
        return fig, f"the photos overlap too little ({overlap:.0%} of the smaller one)"
    return fig, None


def _collinear(points: np.ndarray, tol: float = 1e-3) -> bool:
    """Whether all points lie (nearly) on one line: smallest/largest singular value of the centred set."""
    sv = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return bool(sv[0] == 0 or sv[1] / sv[0] < tol)


def fit_homography(source_points: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """Homography from point pairs: exact affine for 3, exact homography for 4, least squares for more.

    Parameters
    ----------
    source_points, target_points : array_like, shape (N, 2)
        Corresponding ``(x, y)`` points, N >= 3.

    Returns
    -------
    H : ndarray, shape (3, 3), float64
        Maps source to target, normalised to ``H[2, 2] = 1``.

    Raises
    ------
    ValueError
        Fewer than 3 pairs, shapes that differ, non-finite values, duplicated or collinear points (for
        3 or 4 pairs: any three on one line), or a degenerate result.
    """
    src = np.asarray(source_points, dtype=np.float64)
    dst = np.asarray(target_points, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or dst.shape != src.shape:
        raise ValueError(f"point arrays must both have shape (N, 2); got {src.shape} and {dst.shape}")
    if len(src) < 3:
        raise ValueError(f"need at least 3 point pairs, got {len(src)}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise ValueError("points contain NaN or infinite values")
    for pts, name in ((src, "source"), (dst, "target")):
        triples = list(itertools.combinations(range(len(pts)), 3)) if len(pts) <= 4 else []
        if _collinear(pts) or any(_collinear(pts[list(t)]) for t in triples):
            raise ValueError(f"the {name} points are (nearly) collinear or repeated: pick points spread out")
    if len(src) == 3:  # exact affine map, solved in float64 (cv2.getAffineTransform works in float32)
        h = np.vstack([np.linalg.solve(np.c_[src, np.ones(3)], dst).T, [0.0, 0.0, 1.0]])
    else:  # normalised DLT: exact for 4 pairs, least squares for more
        h, _ = cv2.findHomography(src, dst, 0)
    if h is None or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
        raise ValueError("these points do not define a homography (degenerate configuration)")
    return as_homography(h)
