"""Result of a registration (:class:`Alignment`), shared by :mod:`tracker.imaging.align`, the manual fallback
and the fiducial path of the pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Alignment"]


@dataclass(frozen=True)
class Alignment:
    """Result of a registration.

    Attributes
    ----------
    matrix : ndarray, shape (3, 3), float64
        Maps full-resolution pixel ``(x, y, 1)`` of MOVING to REFERENCE pixels. The identity when
        ``ok`` is False (the rejected candidate, if any, is in ``quality["rejected_matrix"]``).
    ok : bool
        False when the images could not be aligned confidently; the matrix is then not to be trusted.
    inliers : int
        Inliers of the feature stage (or number of point pairs for a manual alignment).
    reason : str or None
        Plain-language reason when ``ok`` is False, else None.
    quality : dict
        JSON-ready figures: ``method`` ("orb" | "sift" | "manual" | "identity"), ``inlier_ratio``,
        ``ecc_correlation``, ``scale``, ``rotation_deg``, ``perspective``, ``reprojection_rmse_px`` and
        more (see :func:`align_images`).
    """

    matrix: np.ndarray
    ok: bool
    inliers: int
    reason: str | None
    quality: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        matrix = np.array(self.matrix, dtype=np.float64)  # a private, read-only copy
        if matrix.shape != (3, 3):
            raise ValueError(f"matrix must be 3x3, got shape {matrix.shape}")
        matrix.flags.writeable = False
        object.__setattr__(self, "matrix", matrix)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"matrix": [[...] x3], "ok", "inliers", "reason", "quality"}``."""
        return {
            "matrix": [[float(v) for v in row] for row in np.asarray(self.matrix, dtype=np.float64)],
            "ok": bool(self.ok),
            "inliers": int(self.inliers),
            "reason": self.reason,
            "quality": _jsonable(self.quality),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
