"""Camera poses for rendered test scenes: a similarity about the image centre."""

from __future__ import annotations

import numpy as np


def centred_pose(shape: tuple[int, int], angle_deg: float, *, scale: float = 1.0, dx: float = 0.0,
                 dy: float = 0.0) -> np.ndarray:
    """(3, 3) map of canonical pixels to photo pixels: turn by ``angle_deg`` and zoom by ``scale`` about the
    centre of an (H, W) ``shape``, then shift by (``dx``, ``dy``) px."""
    h, w = shape
    a = np.deg2rad(angle_deg)
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    rotate = np.array([[scale * np.cos(a), -scale * np.sin(a), 0], [scale * np.sin(a), scale * np.cos(a), 0],
                       [0, 0, 1]])
    return np.array([[1, 0, w / 2 + dx], [0, 1, h / 2 + dy], [0, 0, 1]], float) @ rotate @ centre
