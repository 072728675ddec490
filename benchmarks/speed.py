"""Speed benchmark (issue 7): every figure as a ratio measured in one run, with its target beside it.

Sections (all on by default; ``--only NAME ...`` picks some):

``decode``    12 MP photo-like JPEGs (q90): the decode floor ``cv2.imdecode`` (full and half size), the
              tracker's :func:`tracker.imaging.decode.decode_image`, and Pillow's open + exif_transpose +
              convert + copy (the decode path before issue 7) for reference.
``analysis``  :func:`tracker.pipeline.analyse_closeup` and :func:`analyse_global` on a 12 MP follow-up
              against its 12 MP baseline, as ratios to the decode floor (targets: close-up <= 4x, global
              align + measure <= 3x), two ways: the service's (the follow-up decoded, the baseline's
              :class:`~tracker.pipeline_baseline.BaselineReference` read from its stored bytes: it was
              prepared once, when the baseline was analysed) and the CLI's with two files (both decoded,
              the baseline prepared each time). Whether the working resolution behind these figures
              changes results: ``benchmarks/speed_accuracy.py``.
``workers``   a 12-photo follow-up visit (6 global views + 6 close-up sites, sample-size photos, the
              baseline visit analysed beforehand) through the service layer: ingest, then
              :func:`tracker.services.batch.analyse_visit` with 1 and 2 workers (target >= 1.7x), and for
              reference 1 worker with OpenCV on one thread (one worker already uses both cores there).
``memory``    peak resident memory of one 12 MP analysis (decode of photo and baseline + analysis) in a
              child process (its VmHWM), minus a child that only imports (target <= 400 MB).
``timeline``  the Progress page's server-side time (streamlit AppTest, logged in as a clinician) with 10
              vs 1,000 patients of 20 visits each (2 analysed photos per visit, rows seeded in bulk
              through SQLAlchemy from one analysed visit), the two stores' runs taken in turn so a
              change of load hits both; also :func:`timeline`, the picker's :func:`list_patients`
              (at most 50) and the whole list, called directly (target: 1,000 <= 1.2x 10).
``cli``       ``tracker analyze`` on 20 images in one call vs 20 calls (start-up cost); the timeline and
              cli sections live in ``benchmarks/speed_service.py``.

The 12 MP phantoms take minutes to render, so they are cached (``--cache``, default a folder in the
temp dir). Machines shared with other jobs are noisy: every figure is a median over repeats, and
ratios of figures measured in the same run are what to compare.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/speed.py [--quick] [--only decode analysis ...]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from benchmarks._timing import REPO, SAMPLES, line, median_time, verdict
from benchmarks.speed_service import bench_cli, bench_timeline

SECTIONS = ("decode", "analysis", "workers", "memory", "timeline", "cli")
SHAPE_12MP = (3000, 4000)
CLOSEUP_PX_PER_MM = 300.0  # a 13 x 10 mm dermoscope field at 12 MP
GLOBAL_VIEWS = ("vertex", "frontal", "temporal_left", "temporal_right", "occipital", "midline_part")


# ----------------------------------------------------------------------------------------- test images
def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def photos_12mp(cache: Path) -> dict[str, Path]:
    """12 MP JPEGs (q90): close-up baseline + follow-up (re-shot, more hairs), vertex baseline + follow-up."""
    from tracker.phantoms.closeup import render_closeup
    from tracker.phantoms.series import vertex_pose
    from tracker.phantoms.vertex import render_vertex

    cache.mkdir(parents=True, exist_ok=True)
    h, w = SHAPE_12MP
    renders = {
        "closeup_base": lambda: render_closeup(seed=11, shot_seed=1, px_per_mm=CLOSEUP_PX_PER_MM, shape=SHAPE_12MP,
                                               density_per_cm2=150)[0],
        "closeup_follow": lambda: render_closeup(seed=11, shot_seed=2, px_per_mm=CLOSEUP_PX_PER_MM,
                                                 shape=SHAPE_12MP, density_per_cm2=175)[0],
        "vertex_base": lambda: render_vertex(seed=11, hair_seed=1, shape=SHAPE_12MP, thinning=0.55)[0],
        # The sample series' pose model, scaled from its 1600 x 1200 frame to 12 MP.
        "vertex_follow": lambda: render_vertex(
            seed=11, hair_seed=2, shape=SHAPE_12MP, thinning=0.45, brightness=1.1,
            pose=_scaled_pose(vertex_pose(np.random.default_rng(7), (1200, 1600)), w / 1600.0))[0],
    }
    paths = {}
    for name, render in renders.items():
        path = cache / f"{name}-{w}x{h}-q90.jpg"
        if not path.exists():
            print(f"  (rendering {path.name} once; cached in {cache})", flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(_jpeg(render()))
            tmp.replace(path)
        paths[name] = path
    return paths


def _scaled_pose(pose: np.ndarray, s: float) -> np.ndarray:
    scale = np.diag([s, s, 1.0])
    m = scale @ pose @ np.linalg.inv(scale)
    return m / m[2, 2]


# --------------------------------------------------------------------------------------------- decode
def _pillow_path(data: bytes) -> np.ndarray:
    """The decode path before issue 7: Pillow open + exif_transpose + convert + array copy."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return np.array(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.uint8, copy=True)


def bench_decode(paths: dict[str, Path], repeats: int) -> float:
    """Print decode figures; return the floor (median cv2.imdecode seconds over the test photos)."""
    from tracker.imaging.decode import decode_image

    print("\n[decode] 12 MP JPEG q90, median ms over the 4 test photos")
    blobs = [p.read_bytes() for p in paths.values()]

    def each(fn: Callable[[bytes], object]) -> float:
        return statistics.median(median_time(lambda d=d: fn(d), repeats) for d in blobs)

    floor = each(lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR))
    half = each(lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_REDUCED_COLOR_2))
    ours = each(lambda d: decode_image(d))
    pillow = each(_pillow_path)
    line("cv2.imdecode (the floor)", f"{floor * 1e3:.0f} ms")
    line("cv2.imdecode reduced 2 (half size)", f"{half * 1e3:.0f} ms")
    line("tracker decode_image", f"{ours * 1e3:.0f} ms = {ours / floor:.2f}x floor")
    line("Pillow open+transpose+convert+copy (decode before issue 7)", f"{pillow * 1e3:.0f} ms = "
         f"{pillow / floor:.2f}x floor")
    return floor


# ------------------------------------------------------------------------------------------- analysis
def bench_analysis(paths: dict[str, Path], floor: float, repeats: int) -> None:
    from tracker.imaging.decode import read_image_file
    from tracker.pipeline import analyse_closeup, analyse_global
    from tracker.pipeline_baseline import BaselineReference, prepare_baseline

    print(f"\n[analysis] 12 MP follow-up against its 12 MP baseline, median of {repeats}")
    results = {}

    def closeup() -> None:
        image = read_image_file(paths["closeup_follow"]).pixels
        baseline = read_image_file(paths["closeup_base"]).pixels
        results["closeup"] = analyse_closeup(image, px_per_mm=CLOSEUP_PX_PER_MM, baseline=baseline)

    def global_() -> None:
        image = read_image_file(paths["vertex_follow"]).pixels
        baseline = read_image_file(paths["vertex_base"]).pixels
        results["global"] = analyse_global(image, view="vertex", baseline=baseline)

    # The service's path: the baseline was prepared once (when it was analysed) and stored as bytes.
    stored = {kind: prepare_baseline(read_image_file(paths[f"{name}_base"]).pixels, kind=kind).to_bytes()
              for kind, name in (("closeup", "closeup"), ("global", "vertex"))}

    def closeup_stored() -> None:
        image = read_image_file(paths["closeup_follow"]).pixels
        reference = BaselineReference.from_bytes(stored["closeup"])
        results["closeup_stored"] = analyse_closeup(image, px_per_mm=CLOSEUP_PX_PER_MM, baseline=reference)

    def global_stored() -> None:
        image = read_image_file(paths["vertex_follow"]).pixels
        reference = BaselineReference.from_bytes(stored["global"])
        results["global_stored"] = analyse_global(image, view="vertex", baseline=reference)

    t_closeup = median_time(closeup, repeats, warmup=0)
    t_global = median_time(global_, repeats, warmup=0)
    t_closeup_stored = median_time(closeup_stored, repeats, warmup=0)
    t_global_stored = median_time(global_stored, repeats, warmup=0)
    t_decode2 = median_time(lambda: [read_image_file(paths[k]).pixels for k in ("closeup_follow", "closeup_base")],
                            repeats)
    print("  the service's path: the follow-up decoded, its baseline prepared once and read from its stored bytes")
    line("close-up analysis (quality, hairs, alignment, uncertainty)",
         f"{t_closeup_stored:.2f} s = {t_closeup_stored / floor:.1f}x",
         f"target <= 4x decode: {verdict(t_closeup_stored <= 4 * floor)}")
    line("global align + measure", f"{t_global_stored:.2f} s = {t_global_stored / floor:.1f}x",
         f"target <= 3x decode: {verdict(t_global_stored <= 3 * floor)}")
    line(f"  stored references: close-up {len(stored['closeup']) / 1e6:.2f} MB, "
         f"global {len(stored['global']) / 1e6:.2f} MB", "")
    print("  two photo files (the CLI's `analyze --baseline`): both decoded, the baseline prepared each time")
    line("decode of the two photos (inside both figures below)", f"{t_decode2:.2f} s = {t_decode2 / floor:.1f}x")
    line("close-up analysis", f"{t_closeup:.2f} s = {t_closeup / floor:.1f}x",
         f"target <= 4x decode: {verdict(t_closeup <= 4 * floor)}")
    line("global align + measure", f"{t_global:.2f} s = {t_global / floor:.1f}x",
         f"target <= 3x decode: {verdict(t_global <= 3 * floor)}")
    for kind in ("closeup", "global"):
        a, b = results[kind], results[f"{kind}_stored"]
        same = a.metrics == b.metrics and np.allclose(a.transform, b.transform)
        figure = (f"hairs {a.metrics.get('hair_count')}" if kind == "closeup"
                  else f"coverage {a.metrics.get('hair_coverage', float('nan')):.3f}")
        line(f"  {kind}: {figure}, aligned {bool(a.alignment and a.alignment.get('ok'))}; "
             f"same figures both ways: {same}", "")


# -------------------------------------------------------------------------------------------- workers
def _distinct_jpeg(path: Path, salt: int) -> bytes:
    """The photo with invisible +-1 noise, so that each copy has its own sha256 (uploads are deduplicated)."""
    from tracker.imaging.decode import read_image_file

    rgb = read_image_file(path).pixels.astype(np.int16)
    rgb += np.random.default_rng(salt).integers(-1, 2, rgb.shape, dtype=np.int16)
    return _jpeg(np.clip(rgb, 0, 255).astype(np.uint8), 92)


def _visit_files(folder: Path, salt: int) -> list[tuple[str, str, bytes]]:
    files = [("global", view, _distinct_jpeg(folder / "vertex.jpg", salt + i)) for i, view in enumerate(GLOBAL_VIEWS)]
    files += [("closeup", f"site-{i + 1}", _distinct_jpeg(folder / "closeup-vertex-1.jpg", salt + 10 + i))
              for i in range(6)]
    return files


def bench_workers(repeats: int) -> None:
    from tracker.config import Settings
    from tracker.services import Actor, create_patient, ingest_photo, open_visit
    from tracker.services.batch import analyse_visit
    from tracker.store import Store

    print(f"\n[workers] a 12-photo follow-up visit (sample-size photos), service layer, median of {repeats}")
    actor = Actor.system("bench")
    base_files = _visit_files(SAMPLES / "DEMO-001" / "visit-1_2026-01-12", 100)
    runs: dict[str, list[tuple[float, float]]] = {"1": [], "1-thread": [], "2": []}
    with tempfile.TemporaryDirectory(prefix="speed-workers-") as tmp:
        store = Store(Settings.from_env(Path(tmp) / "home"))
        for rep in range(repeats):
            for config in ("1", "1-thread", "2"):
                workers = 2 if config == "2" else 1
                patient = create_patient(store, actor=actor, code=f"W{config}-{rep}", display_name="Bench")
                first = open_visit(store, patient.id, actor=actor, visit_date=dt.date(2026, 1, 12))
                for kind, view, data in base_files:
                    ingest_photo(store, first.id, data, actor=actor, name=f"{view}.jpg", kind=kind,
                                 view_or_site=view, px_per_mm=200.0 if kind == "closeup" else None)
                analyse_visit(store, first.id, actor=actor, workers=2)  # the baseline visit, not timed
                files = _visit_files(SAMPLES / "DEMO-001" / "visit-2_2026-02-09", 1000 * rep + 500)
                visit = open_visit(store, patient.id, actor=actor, visit_date=dt.date(2026, 2, 9))
                start = time.perf_counter()
                for kind, view, data in files:
                    ingest_photo(store, visit.id, data, actor=actor, name=f"{view}.jpg", kind=kind,
                                 view_or_site=view, px_per_mm=200.0 if kind == "closeup" else None)
                ingested = time.perf_counter()
                threads = cv2.getNumThreads()
                if config == "1-thread":
                    cv2.setNumThreads(1)
                try:
                    outcomes = analyse_visit(store, visit.id, actor=actor, workers=workers)
                finally:
                    cv2.setNumThreads(threads)
                done = time.perf_counter()
                if not all(o.ok for o in outcomes):
                    raise RuntimeError([o.error for o in outcomes if not o.ok])
                runs[config].append((ingested - start, done - ingested))
    ingest = statistics.median(r[0] for r in runs["1"] + runs["2"])
    one, single, two = (statistics.median(r[1] for r in runs[c]) for c in ("1", "1-thread", "2"))
    line("ingest 12 photos (serial, same for both)", f"{ingest:.2f} s")
    line("analyse_visit, 1 worker", f"{one:.2f} s")
    line("analyse_visit, 1 worker with OpenCV on one thread (for reference)", f"{single:.2f} s")
    line("analyse_visit, 2 workers (each process's OpenCV on one thread)", f"{two:.2f} s")
    line("speed-up of the analysis, 2 vs 1 workers", f"{one / two:.2f}x",
         f"target >= 1.7x: {verdict(one / two >= 1.7)}")
    line("speed-up of ingest + analysis, 2 vs 1 workers", f"{(ingest + one) / (ingest + two):.2f}x",
         f"target >= 1.7x: {verdict((ingest + one) / (ingest + two) >= 1.7)}")
    line("2 workers vs 1 worker with OpenCV on one thread", f"{single / two:.2f}x",
         "(how much of the 1-worker run OpenCV's own threads already parallelise)")


# --------------------------------------------------------------------------------------------- memory
_MEMORY_CHILD = r"""
import sys
import numpy as np
from tracker.imaging.decode import read_image_file
from tracker.pipeline import analyse_closeup, analyse_global
import tracker.imaging.hair, tracker.imaging.align, tracker.imaging.coverage, tracker.imaging.hair_region
kind, image, baseline = sys.argv[1:4]
if kind == "closeup":
    analyse_closeup(read_image_file(image).pixels, px_per_mm=float(sys.argv[4]),
                    baseline=read_image_file(baseline).pixels)
elif kind == "global":
    analyse_global(read_image_file(image).pixels, view="vertex", baseline=read_image_file(baseline).pixels)
# VmHWM: this process's peak resident set (ru_maxrss would carry the parent's peak across fork + exec).
print([int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")][0])
"""


def _child_peak_mb(*args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, *args], capture_output=True, text=True, env=env,
                         check=True, cwd=REPO)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0  # kB


def bench_memory(paths: dict[str, Path]) -> None:
    print("\n[memory] peak resident memory of one 12 MP analysis (child process VmHWM - import-only child)")
    imports = _child_peak_mb("imports", "-", "-")
    line("child that only imports", f"{imports:.0f} MB")
    pairs = (("closeup", "closeup_follow", "closeup_base"), ("global", "vertex_follow", "vertex_base"))
    for kind, image, base in pairs:
        peak = _child_peak_mb(kind, str(paths[image]), str(paths[base]), str(CLOSEUP_PX_PER_MM))
        line(f"{kind} analysis with its baseline (decode of both included)", f"{peak - imports:.0f} MB",
             f"target <= 400 MB: {verdict(peak - imports <= 400)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tracker-speed-bench-v1",
                        help="folder for the rendered 12 MP phantoms")
    parser.add_argument("--patients", type=int, nargs=2, default=(10, 1000), metavar=("SMALL", "LARGE"))
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5
    print(f"speed benchmark (issue 7), {'quick' if args.quick else 'full'} run, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    paths = photos_12mp(args.cache) if {"decode", "analysis", "memory"} & set(args.only) else {}
    floor = None
    if "decode" in args.only or "analysis" in args.only:
        floor = bench_decode(paths, repeats * 2)
    if "analysis" in args.only:
        bench_analysis(paths, floor, 1 if args.quick else 3)
    if "workers" in args.only:
        bench_workers(1 if args.quick else 3)
    if "memory" in args.only:
        bench_memory(paths)
    if "timeline" in args.only:
        bench_timeline(repeats, tuple(args.patients))
    if "cli" in args.only:
        bench_cli(1 if args.quick else 3)
    print(json.dumps({"load_average_at_end": round(os.getloadavg()[0], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
