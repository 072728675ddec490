"""Does the pipeline's working resolution (issue 7) change results? Full size vs working size, against truth.

The speed work analyses reduced copies of large photos (:mod:`tracker.pipeline_work`): close-ups at
``CLOSEUP_PX_PER_MM`` (the default), global photos at ``GLOBAL_LONG_SIDE`` (an option). The accuracy and
registration benchmarks call the detectors directly on photos of the sample size, so they do not see
this; this script runs :func:`tracker.pipeline.analyse_closeup` and :func:`analyse_global` on large
rendered phantoms at full size and at working size, and prints the errors against the rendered truth
side by side, with the time of each.

``closeup``  phantoms at 300 px/mm (2000 x 1500, JPEG q90) over widths 31-90 um, vellus share 0-50 %,
             density 100-250/cm2: count error %, mean width error (um), vellus share error, coverage error.
``global``   vertex phantoms at 3200 x 2400 (a baseline and a re-posed follow-up per seed): ROI coverage
             error against truth (truth ROI) and the follow-up's alignment corner error against the
             rendered poses (px); all at full size (the default), alignment on 1600 px copies
             (``working_long_side=1600``), and coverage on that copy too (``coverage_long_side=1600``).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/speed_accuracy.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

CLOSEUP_CASES = (  # (seed, mean width um, vellus share, density per cm2)
    (1, 65.0, 0.15, 180.0), (2, 45.0, 0.5, 180.0), (3, 31.0, 0.3, 150.0), (4, 90.0, 0.0, 100.0),
    (5, 65.0, 0.3, 250.0), (6, 55.0, 0.15, 200.0), (7, 75.0, 0.1, 120.0), (8, 40.0, 0.4, 220.0),
)
CLOSEUP_SHAPE = (1500, 2000)
VERTEX_SHAPE = (2400, 3200)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def closeup(quick: bool) -> None:
    from tracker.phantoms.closeup import render_closeup
    from tracker.pipeline import analyse_closeup

    cases = CLOSEUP_CASES[:4] if quick else CLOSEUP_CASES
    print(f"\n[closeup] {len(cases)} phantoms, 300 px/mm, {CLOSEUP_SHAPE[1]} x {CLOSEUP_SHAPE[0]}, q90: "
          "error against truth at full size | at working size")
    rows = {"full": [], "working": []}
    for seed, width, vellus, density in cases:
        img, _, truth = render_closeup(seed=seed, px_per_mm=300.0, shape=CLOSEUP_SHAPE, mean_width_um=width,
                                       vellus_fraction=vellus, density_per_cm2=density, jpeg_quality=90)
        for name, option in (("full", None), ("working", 150.0)):
            result, seconds = _timed(lambda o=option, im=img: analyse_closeup(
                im, px_per_mm=300.0, marker_size_mm=None, working_px_per_mm=o))
            m = result.metrics
            rows[name].append((
                100.0 * (m["hair_count"] - truth.hair_count) / truth.hair_count,
                (m["mean_shaft_width_um"] or np.nan) - truth.mean_shaft_width_um,
                (m["vellus_fraction"] if m["vellus_fraction"] is not None else np.nan) - truth.vellus_fraction,
                m["hair_coverage"] - truth.hair_coverage,
                seconds,
            ))
        f, w = rows["full"][-1], rows["working"][-1]
        print(f"  seed {seed} width {width:>4.0f} vellus {vellus:.2f} density {density:>3.0f} "
              f"(truth {truth.hair_count:>3} hairs): count {f[0]:+6.1f} % | {w[0]:+6.1f} %, "
              f"width {f[1]:+5.1f} | {w[1]:+5.1f} um, "
              f"vellus {f[2]:+.3f} | {w[2]:+.3f}, coverage {f[3]:+.4f} | {w[3]:+.4f}, {f[4]:.2f} | {w[4]:.2f} s")
    for name, r in rows.items():
        a = np.array(r, float)
        print(f"  {name:<8} count MAPE {np.nanmean(np.abs(a[:, 0])):5.1f} %, bias {np.nanmean(a[:, 0]):+5.1f} %; "
              f"width MAE {np.nanmean(np.abs(a[:, 1])):.2f} um; vellus MAE {np.nanmean(np.abs(a[:, 2])):.3f}; "
              f"coverage MAE {np.nanmean(np.abs(a[:, 3])):.4f}; median time {np.median(a[:, 4]):.2f} s")


def global_(quick: bool) -> None:
    from tracker.imaging.geometry import image_corners, transform_points
    from tracker.phantoms.series import vertex_pose
    from tracker.phantoms.vertex import render_vertex
    from tracker.pipeline import analyse_global

    seeds = (21, 22) if quick else (21, 22, 23, 24, 25, 26, 27, 28)
    print(f"\n[global] {len(seeds)} vertex pairs at {VERTEX_SHAPE[1]} x {VERTEX_SHAPE[0]}: error against truth "
          "all at full size (the default) | alignment at 1600 px | alignment and coverage at 1600 px")
    rows = {"full": [], "working": [], "coverage 1600": []}
    s = VERTEX_SHAPE[1] / 1600.0
    scale = np.diag([s, s, 1.0])
    for seed in seeds:
        base, _, base_truth = render_vertex(seed=seed, hair_seed=1, shape=VERTEX_SHAPE, thinning=0.55)
        pose = scale @ vertex_pose(np.random.default_rng(seed), (1200, 1600)) @ np.linalg.inv(scale)
        follow, _, truth = render_vertex(seed=seed, hair_seed=2, shape=VERTEX_SHAPE, thinning=0.45,
                                         brightness=1.1, pose=pose / pose[2, 2])
        # follow-up px -> baseline px through the canonical frame
        true_h = np.linalg.inv(base_truth.transform_to_canonical) @ truth.transform_to_canonical
        corners = image_corners(follow.shape)
        true_roi = np.asarray(truth.roi_polygon)
        for name, option in (("full", (None, None)), ("working", (1600, None)), ("coverage 1600", (1600, 1600))):
            result, seconds = _timed(lambda o=option, im=follow, b=base, roi=true_roi: analyse_global(
                im, roi=roi, baseline=b, working_long_side=o[0], coverage_long_side=o[1]))
            err = np.nan
            if result.alignment and result.alignment["ok"]:
                err = float(np.max(np.linalg.norm(transform_points(corners, result.transform)
                                                  - transform_points(corners, true_h), axis=1)))
            rows[name].append((result.metrics["hair_coverage"] - truth.hair_coverage_roi, err, seconds))
        f, w, c = rows["full"][-1], rows["working"][-1], rows["coverage 1600"][-1]
        print(f"  seed {seed} (truth coverage {truth.hair_coverage_roi:.3f}): coverage {f[0]:+.4f} | {w[0]:+.4f} | "
              f"{c[0]:+.4f}, corner error {f[1]:.1f} | {w[1]:.1f} | {c[1]:.1f} px, "
              f"{f[2]:.2f} | {w[2]:.2f} | {c[2]:.2f} s")
    for name, r in rows.items():
        a = np.array(r, float)
        print(f"  {name:<8} coverage MAE {np.nanmean(np.abs(a[:, 0])):.4f}, bias {np.nanmean(a[:, 0]):+.4f}; "
              f"max corner error {np.nanmax(a[:, 1]):.1f} px (failed {int(np.isnan(a[:, 1]).sum())}); "
              f"median time {np.median(a[:, 2]):.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="half the cases")
    parser.add_argument("--only", nargs="+", choices=("closeup", "global"), default=["closeup", "global"])
    args = parser.parse_args(argv)
    if "closeup" in args.only:
        closeup(args.quick)
    if "global" in args.only:
        global_(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
