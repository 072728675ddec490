"""Phantom grid of the accuracy benchmark: strata of close-up render parameters and re-shot variants.

Each stratum varies ONE factor of :data:`BASE` (the keyword arguments of
:func:`tracker.phantoms.closeup.render_closeup`), so a stratum's error tells which factor hurts. The
``thin`` level of the width stratum is the exception: the renderer's non-vellus mean width starts at
31 um, so the thin end of 12-100 um is reached by a 31 um field that is half vellus (14-28 um hairs).

:func:`reshoot_variants` makes the pose / light / noise variants of one scalp used for repeatability:
a contact-dermoscope re-shot of the same site, as in :mod:`tracker.phantoms.series`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Base case: every stratum varies one of these around it.
BASE: dict = dict(
    density_per_cm2=180.0,
    mean_width_um=65.0,
    vellus_fraction=0.15,
    hair_length_mm=1.0,
    long_fraction=0.03,
    skin_tone=2,
    hair_colour="brown",
    light_falloff=0.3,
    blur_sigma_px=0.0,
    noise_sigma=2.0,
    jpeg_quality=None,
    px_per_mm=200.0,
)


@dataclass(frozen=True)
class Level:
    """One level of a stratum: a label and the render arguments that differ from :data:`BASE`."""

    label: str
    params: dict
    quick: bool = False  # part of the ``--quick`` subset


def _levels(key: str, values, quick=(), fmt: str = "{}") -> tuple[Level, ...]:
    return tuple(Level(f"{key}={fmt.format(v)}", {key: v}, v in quick) for v in values)


#: Strata: name -> levels (the base case is added to every stratum by the benchmark).
STRATA: dict[str, tuple[Level, ...]] = {
    "density /cm2": _levels("density_per_cm2", (40.0, 80.0, 120.0, 240.0, 320.0), quick=(40.0, 320.0)),
    "mean width um": _levels("mean_width_um", (31.0, 45.0, 85.0, 100.0), quick=(31.0, 100.0))
    + (Level("thin: 31um, vellus 0.5", {"mean_width_um": 31.0, "vellus_fraction": 0.5}),),
    "vellus share": _levels("vellus_fraction", (0.0, 0.3, 0.5), quick=(0.5,)),
    "clipped / long": (
        Level("clipped 0.5 mm", {"hair_length_mm": 0.5}),
        Level("short 2 mm", {"hair_length_mm": 2.0}),
        Level("long hairs 20 %", {"long_fraction": 0.2}, quick=True),
    ),
    "skin tone": _levels("skin_tone", (0, 1, 3, 4, 5), quick=(0, 5)),
    "hair colour": _levels("hair_colour", ("black", "grey", "white", "blond"), quick=("grey", "white")),
    "light falloff": _levels("light_falloff", (0.0, 0.6, 0.85), quick=(0.85,)),
    "blur px": _levels("blur_sigma_px", (0.8, 1.5, 2.5), quick=(1.5,)),
    "noise sigma": _levels("noise_sigma", (1.0, 5.0, 8.0), quick=(8.0,)),
    "JPEG quality": _levels("jpeg_quality", (95, 80, 60), quick=(60,)),
    "scale px/mm": _levels("px_per_mm", (120.0, 300.0)),
}

#: Scalps of the repeatability section: (seed, render arguments that differ from BASE).
SCALPS: tuple[tuple[int, dict], ...] = (
    (201, {}),
    (202, {"density_per_cm2": 110.0, "skin_tone": 4, "hair_colour": "black"}),
    (203, {"density_per_cm2": 260.0, "vellus_fraction": 0.3, "skin_tone": 1, "hair_colour": "grey"}),
    (204, {"density_per_cm2": 150.0, "mean_width_um": 50.0, "skin_tone": 0, "hair_colour": "brown"}),
    # Four more (issue 3, session 15): sparse and dense fields, the darkest skin and blond hair, where the first
    # four had flattered the figure (12 random scalps gave a mean CV of 5.0 %, same patch 6.1 %).
    (205, {"density_per_cm2": 90.0, "mean_width_um": 75.0, "skin_tone": 3, "hair_colour": "black"}),
    (206, {"density_per_cm2": 300.0, "mean_width_um": 55.0, "vellus_fraction": 0.3, "skin_tone": 2}),
    (207, {"density_per_cm2": 180.0, "skin_tone": 5, "hair_colour": "black"}),
    (208, {"density_per_cm2": 140.0, "mean_width_um": 45.0, "skin_tone": 1, "hair_colour": "blond"}),
)


def closeup_pose(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Re-shot of a marked site with a contact dermoscope (as :mod:`tracker.phantoms.series`).

    A (3, 3) similarity about the image centre: rotation +-5 deg, scale 0.98-1.02, shift +-30 px.
    """
    h, w = shape
    ang = np.deg2rad(rng.uniform(-5.0, 5.0))
    sc = rng.uniform(0.98, 1.02)
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    r = np.array([[sc * np.cos(ang), -sc * np.sin(ang), 0], [sc * np.sin(ang), sc * np.cos(ang), 0], [0, 0, 1]])
    t = np.array([[1, 0, w / 2 + rng.uniform(-30, 30)], [0, 1, h / 2 + rng.uniform(-30, 30)], [0, 0, 1]])
    return t @ r @ c


def reshoot_variants(seed: int, n: int, shape: tuple[int, int] = (1024, 1280)) -> list[dict]:
    """``n`` re-shots of scalp ``seed``: pose, light (falloff, shot light) and noise differ per shot.

    Returns render keyword arguments (``pose``, ``shot_seed``, ``light_falloff``, ``noise_sigma``).
    The first shot is the unposed field.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 31]))
    out = []
    for k in range(n):
        pose = np.eye(3) if k == 0 else closeup_pose(rng, shape)
        out.append(
            dict(
                pose=pose,
                shot_seed=seed * 1000 + k,
                light_falloff=round(float(rng.uniform(0.2, 0.5)), 3),
                noise_sigma=round(float(rng.uniform(1.5, 3.0)), 3),
            )
        )
    return out


def pearson(a, b) -> float:
    """Pearson r of two sequences (NaN with fewer than 3 values or no spread)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two bool masks (both 1 when both are empty)."""
    inter = float((pred & truth).sum())
    total = float(pred.sum() + truth.sum())
    union = float((pred | truth).sum())
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / union
