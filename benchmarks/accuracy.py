"""Accuracy of the hair measurement (first version): phantoms, real trichoscopy counts, real hair masks.

Run from the repository root::

    PYTHONPATH=. .venv/bin/python benchmarks/accuracy.py [--quick] [--data ../shared/data]

Sections (each skipped cleanly when its inputs are missing):

1. close-up phantoms (``tracker.phantoms.closeup``) over a small grid of densities, widths, skin tones
   and hair colours: count MAPE, width MAE (um), vellus-fraction MAE, coverage MAE, Pearson r of counts,
   hair-mask Dice;
2. vertex phantoms (``tracker.phantoms.vertex``): ROI coverage MAE and the coverage drift under a light
   change (brightness x0.7 / x1.3, a colour cast);
3. ``trichoscopy-counts`` (real 1280x1024 70x fields, no mm scale): count MAE, MAPE, bias, Pearson r,
   share within +-2, errors by count bucket;
4. ``hair-masks`` (real 128x128 patches, scored on a 4x bicubic upscale, the mask brought back by area
   interpolation and a 0.5 threshold): Dice, IoU, hair-fraction error.

The real data are for evaluation only: nothing read here is written anywhere.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np

from tracker.imaging.coverage import measure_coverage
from tracker.imaging.hair import hair_mask, measure_closeup

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    inter = float((pred & truth).sum())
    total = float(pred.sum() + truth.sum())
    union = float((pred | truth).sum())
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / union


def closeup_phantoms(quick: bool) -> None:
    try:
        from tracker.phantoms.closeup import render_closeup
    except ImportError:
        print("close-up phantoms: skipped (tracker.phantoms.closeup not available)")
        return
    grid = [
        dict(density_per_cm2=120, mean_width_um=65, skin_tone=1, hair_colour="black"),
        dict(density_per_cm2=180, mean_width_um=65, skin_tone=2, hair_colour="brown"),
        dict(density_per_cm2=260, mean_width_um=55, skin_tone=3, hair_colour="brown"),
        dict(density_per_cm2=180, mean_width_um=45, vellus_fraction=0.3, skin_tone=2, hair_colour="brown"),
        dict(density_per_cm2=180, mean_width_um=75, skin_tone=4, hair_colour="black"),
        dict(density_per_cm2=150, mean_width_um=65, skin_tone=1, hair_colour="blond"),
        dict(density_per_cm2=180, mean_width_um=65, skin_tone=2, hair_colour="brown", blur_sigma_px=1.2,
             jpeg_quality=85),
        dict(density_per_cm2=350, mean_width_um=60, skin_tone=2, hair_colour="black"),
    ]
    seeds = [11] if quick else [11, 12]
    if quick:
        grid = grid[:4]
    rows = []
    print("\n== close-up phantoms (px_per_mm given)")
    print(f"{'case':<58} {'count':>9} {'width um':>13} {'vellus':>11} {'coverage':>13} {'dice':>5} {'s':>5}")
    for params in grid:
        for seed in seeds:
            img, truth_mask, truth = render_closeup(seed=seed, **params)
            t0 = time.perf_counter()
            m = measure_closeup(img, px_per_mm=truth.px_per_mm)
            dt = time.perf_counter() - t0
            dice, _ = _dice_iou(m.mask, truth_mask)
            rows.append((truth.hair_count, m.hair_count, truth.mean_shaft_width_um, m.mean_shaft_width_um,
                         truth.vellus_fraction, m.vellus_fraction, truth.hair_coverage, m.hair_coverage, dice))
            label = ",".join(f"{k[:6]}={v}" for k, v in params.items()) + f",s={seed}"
            w = m.mean_shaft_width_um
            print(f"{label[:58]:<58} {m.hair_count:>4}/{truth.hair_count:<4} "
                  f"{(w if w is not None else float('nan')):6.1f}/{truth.mean_shaft_width_um:<6.1f} "
                  f"{(m.vellus_fraction or 0):.2f}/{truth.vellus_fraction:.2f}  "
                  f"{m.hair_coverage:.3f}/{truth.hair_coverage:.3f} {dice:.3f} {dt:5.2f}")
    a = np.array([[np.nan if v is None else v for v in r] for r in rows], float)
    ape = np.abs(a[:, 1] - a[:, 0]) / a[:, 0]
    print(f"count MAPE {100 * ape.mean():.1f} % (bias {np.mean(a[:, 1] - a[:, 0]):+.1f} hairs), "
          f"Pearson r {_pearson(a[:, 0], a[:, 1]):.3f}; width MAE {np.nanmean(np.abs(a[:, 3] - a[:, 2])):.1f} um "
          f"(bias {np.nanmean(a[:, 3] - a[:, 2]):+.1f}); vellus MAE {np.nanmean(np.abs(a[:, 5] - a[:, 4])):.3f}; "
          f"coverage MAE {np.mean(np.abs(a[:, 7] - a[:, 6])):.4f}; Dice mean {a[:, 8].mean():.3f}")


def vertex_phantoms(quick: bool) -> None:
    try:
        from tracker.phantoms.vertex import render_vertex
    except ImportError:
        print("vertex phantoms: skipped (tracker.phantoms.vertex not available)")
        return
    print("\n== vertex phantoms (ROI coverage)")
    print(f"{'case':<34} {'truth':>6} {'meas':>6} {'x0.7':>6} {'x1.3':>6} {'cast':>6} {'gamma.8':>7}")
    errs, drifts = [], []
    cases = [(1, 0.2, "brown", 1), (1, 0.5, "brown", 1), (1, 0.8, "brown", 1)]
    if not quick:
        cases += [(2, 0.5, "black", 2), (3, 0.7, "black", 3), (4, 0.4, "brown", 0), (5, 0.6, "blond", 1)]
    for seed, thinning, colour, tone in cases:
        kw = dict(seed=seed, thinning=thinning, hair_colour=colour, skin_tone=tone)
        img, truth_mask, truth = render_vertex(**kw)
        roi = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(roi, [np.round(np.array(truth.roi_polygon)).astype(np.int32)], 1)
        roi = roi.astype(bool)
        base = measure_coverage(img, roi_mask=roi).hair_coverage
        variants = []
        for extra in (dict(brightness=0.7), dict(brightness=1.3), dict(white_balance=(1.2, 1.0, 0.8))):
            v_img, _, _ = render_vertex(**kw, **extra)
            variants.append(measure_coverage(v_img, roi_mask=roi).hair_coverage)
        gamma = (255 * (img / 255.0) ** 0.8).astype(np.uint8)
        variants.append(measure_coverage(gamma, roi_mask=roi).hair_coverage)
        errs.append(base - truth.hair_coverage_roi)
        drifts += [abs(v - base) for v in variants]
        label = f"seed={seed},thin={thinning},{colour},tone={tone}"
        print(f"{label:<34} {truth.hair_coverage_roi:6.3f} {base:6.3f} " + " ".join(f"{v:6.3f}" for v in variants))
    errs = np.array(errs)
    print(f"coverage MAE {np.abs(errs).mean():.4f} (bias {errs.mean():+.4f}); "
          f"max drift under light/colour/gamma change {max(drifts):.4f}")


def trichoscopy_counts(root: Path, quick: bool) -> None:
    folder = root / "trichoscopy-counts"
    if not (folder / "counts.csv").is_file():
        print(f"\ntrichoscopy-counts: skipped ({folder} not found)")
        return
    with open(folder / "counts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if quick:
        rows = rows[::8]
    truth, pred, failed, times = [], [], 0, []
    for r in rows:
        img = cv2.imread(str(folder / "images" / r["image"]), cv2.IMREAD_COLOR)
        if img is None:
            failed += 1
            continue
        t0 = time.perf_counter()
        m = measure_closeup(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        times.append(time.perf_counter() - t0)
        truth.append(int(r["n_hairs"]))
        pred.append(m.hair_count)
    t, p = np.array(truth, float), np.array(pred, float)
    err = p - t
    print(f"\n== trichoscopy-counts: {len(t)} images (failed {failed}), no scale (assumed px/mm for limits)")
    print(f"count MAE {np.abs(err).mean():.2f}, MAPE {100 * np.mean(np.abs(err) / t):.1f} %, "
          f"bias {err.mean():+.2f}, Pearson r {_pearson(t, p):.3f}, "
          f"within +-2: {100 * np.mean(np.abs(err) <= 2):.0f} %, "
          f"median time {np.median(times):.2f} s")
    for lo, hi in ((0, 10), (10, 15), (15, 100)):
        sel = (t >= lo) & (t < hi)
        if sel.any():
            print(f"  truth {lo:>2}-{hi - 1:<3} n={sel.sum():3d}  mean truth {t[sel].mean():5.1f}  "
                  f"mean pred {p[sel].mean():5.1f}  MAE {np.abs(err[sel]).mean():5.2f}")


def hair_masks(root: Path, quick: bool) -> None:
    folder = root / "hair-masks"
    if not (folder / "index.csv").is_file():
        print(f"\nhair-masks: skipped ({folder} not found)")
        return
    with open(folder / "index.csv", newline="") as f:
        ids = [r["id"] for r in csv.DictReader(f)]
    if quick:
        ids = ids[::4]
    dices, ious, ferr, failed = [], [], [], 0
    for i in ids:
        img = cv2.imread(str(folder / "images" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        truth = cv2.imread(str(folder / "masks" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        if img is None or truth is None:
            failed += 1
            continue
        truth = truth > 127
        big = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        pred_big = hair_mask(big)
        pred = cv2.resize(pred_big.astype(np.float32), truth.shape[::-1], interpolation=cv2.INTER_AREA) >= 0.5
        d, u = _dice_iou(pred, truth)
        dices.append(d)
        ious.append(u)
        ferr.append(pred.mean() - truth.mean())
    ferr = np.array(ferr)
    print(f"\n== hair-masks: {len(dices)} patches (failed {failed}), scored on a 4x bicubic upscale")
    print(f"Dice {np.mean(dices):.3f} (median {np.median(dices):.3f}), IoU {np.mean(ious):.3f}, "
          f"hair-fraction error MAE {np.abs(ferr).mean():.4f}, bias {ferr.mean():+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset of every section")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the real data sets")
    args = parser.parse_args()
    closeup_phantoms(args.quick)
    vertex_phantoms(args.quick)
    trichoscopy_counts(args.data, args.quick)
    hair_masks(args.data, args.quick)


if __name__ == "__main__":
    main()
