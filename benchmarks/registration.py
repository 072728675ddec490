"""Registration benchmark for :func:`tracker.imaging.align.align_images`.

Sections:

1. Known warps of scikit-image photos (bundled, no download) at about 1000 px: random rotation
   (+-30 deg), zoom (0.8-1.25), shift, mild perspective, gain/gamma, noise and JPEG. Success = ``ok``
   and every corner of MOVING within 2 px of the truth. Median / p95 corner error over accepted pairs,
   time per pair; with and without ECC refinement.
2. False accepts on unrelated pairs (different photos, noise).
3. Sample vertex phantoms (``tracker.phantoms.vertex.render_vertex``, when present): two visits with
   moved hair and different phone poses; hair masked out (dilated) vs not masked.
4. Real same-lesion dermoscopy re-shots (``../shared/data/lesion-pairs``, when present): lesion-mask Dice
   after registration vs identity, as defined in that folder's README; cross-lesion false accepts.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/registration.py [--quick]``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from tracker.imaging.align import align_images
from tracker.imaging.geometry import image_corners, resize_matrix, transform_points

LESION_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "lesion-pairs"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def _source(name: str, long_side: int = 1500) -> np.ndarray:
    img = getattr(data, name)()
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)


def view_matrix(
    src_shape, view_shape, angle_deg=0.0, zoom=1.0, shift=(0.0, 0.0), persp=(0.0, 0.0)
) -> np.ndarray:
    """Homography from VIEW pixels to SOURCE pixels: a camera looking at the source's centre."""
    vh, vw = view_shape[:2]
    sh, sw = src_shape[:2]
    centre = np.array([[1, 0, -(vw - 1) / 2], [0, 1, -(vh - 1) / 2], [0, 0, 1.0]])
    p = np.array([[1, 0, 0], [0, 1, 0], [persp[0] / vw, persp[1] / vh, 1.0]])
    a = np.deg2rad(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    z = np.diag([1 / zoom, 1 / zoom, 1.0])
    back = np.array([[1, 0, (sw - 1) / 2 + shift[0]], [0, 1, (sh - 1) / 2 + shift[1]], [0, 0, 1.0]])
    return back @ r @ z @ p @ centre


def render_view(src: np.ndarray, a: np.ndarray, view_shape) -> np.ndarray:
    return cv2.warpPerspective(
        src, a, (view_shape[1], view_shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )


def photometric(img: np.ndarray, rng: np.random.Generator, *, gain=1.0, gamma=1.0, noise=0.0, jpeg=None):
    f = np.clip(gain * (img.astype(np.float64) / 255.0) ** gamma, 0, 1) * 255
    if noise:
        f = f + rng.normal(0, noise, f.shape)
    out = np.clip(np.round(f), 0, 255).astype(np.uint8)
    if jpeg:
        _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg)])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def corner_error(h_est: np.ndarray, h_true: np.ndarray, shape) -> float:
    c = image_corners(shape)
    return float(np.linalg.norm(transform_points(c, h_est) - transform_points(c, h_true), axis=1).max())


def _timed(*args, **kwargs):
    t = time.perf_counter()
    result = align_images(*args, **kwargs)
    return result, time.perf_counter() - t


def _summary(errors, oks, times, label):
    errors, oks = np.asarray(errors), np.asarray(oks, bool)
    success = oks & (errors < 2.0)
    acc = errors[oks]
    med = np.median(acc) if acc.size else float("nan")
    p95 = np.percentile(acc, 95) if acc.size else float("nan")
    wrong = int((oks & (errors >= 2.0)).sum())
    print(
        f"  {label:24s} n={len(oks):3d} success(<2px)={success.mean():.1%} ok={oks.mean():.1%} "
        f"accepted-but->=2px={wrong} median={med:.2f}px p95={p95:.2f}px "
        f"time median={np.median(times) * 1000:.0f}ms max={np.max(times) * 1000:.0f}ms"
    )


def known_warps(n_per_photo: int, rng: np.random.Generator) -> None:
    print("1. known warps of scikit-image photos (views 750x1000, 30 % of MOVING resampled to 600x800)")
    cases = []
    for name in PHOTOS:
        src = _source(name)
        for _ in range(n_per_photo):
            shape = (750, 1000)
            a_r = view_matrix(src.shape, shape)
            a_m = view_matrix(
                src.shape,
                shape,
                rng.uniform(-30, 30),
                rng.uniform(0.8, 1.25),
                rng.uniform(-80, 80, 2),
                rng.uniform(-0.1, 0.1, 2),
            )
            ref = render_view(src, a_r, shape)
            mov = render_view(src, a_m, shape)
            h = np.linalg.inv(a_r) @ a_m
            if rng.random() < 0.3:  # another camera: same framing, 600x800 pixels
                small = cv2.resize(mov, (800, 600), interpolation=cv2.INTER_AREA)
                h = h @ np.linalg.inv(resize_matrix(mov.shape, small.shape))
                mov = small
            mov = photometric(
                mov,
                rng,
                gain=rng.uniform(0.75, 1.25),
                gamma=rng.uniform(0.8, 1.25),
                noise=rng.uniform(0, 6),
                jpeg=rng.choice([None, 90, 60]),
            )
            cases.append((ref, mov, h / h[2, 2]))
    for refine in (True, False):
        errs, oks, times = [], [], []
        for ref, mov, h in cases:
            res, dt = _timed(ref, mov, refine=refine)
            errs.append(corner_error(res.matrix, h, mov.shape) if res.ok else np.inf)
            oks.append(res.ok)
            times.append(dt)
        _summary(errs, oks, times, f"refine={refine}")


def unrelated(rng: np.random.Generator, quick: bool) -> None:
    print("2. unrelated pairs (false accepts)")
    names = [
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "camera",
        "brick",
        "grass",
        "gravel",
        "moon",
        "coins",
        "immunohistochemistry",
        "retina",
        "cell",
        "clock",
        "hubble_deep_field",
    ]
    if quick:
        names = names[:8]
    imgs = {n: getattr(data, n)() for n in names}
    imgs["noise-a"] = rng.integers(0, 256, (600, 800), dtype=np.uint8)
    imgs["noise-b"] = rng.integers(0, 256, (600, 800), dtype=np.uint8)
    accepted, times = [], []
    pairs = list(itertools.combinations(imgs, 2))
    for a, b in pairs:
        res, dt = _timed(imgs[a], imgs[b])
        times.append(dt)
        if res.ok:
            accepted.append((a, b))
    print(
        f"  pairs={len(pairs)} false accepts={len(accepted)} ({len(accepted) / len(pairs):.1%}) {accepted} "
        f"time median={np.median(times) * 1000:.0f}ms"
    )


def vertex_phantoms(n: int, rng: np.random.Generator) -> None:
    try:
        from tracker.phantoms.series import vertex_pose
        from tracker.phantoms.vertex import render_vertex
    except ImportError:
        print("3. vertex phantoms: tracker.phantoms.vertex not available, skipped")
        return
    print(
        "3. vertex phantoms: two visits (hair re-grown and thinner, new phone pose, exposure, white balance,"
    )
    print("   blur, noise, JPEG, random skin tone and hair colour); truth from transform_to_canonical")
    shape = (900, 1200)
    cases = []
    for k in range(n):
        pa, pb = vertex_pose(rng, shape), vertex_pose(rng, shape)
        colour = str(rng.choice(["black", "brown", "blond", "grey"]))
        look = {"skin_tone": int(rng.integers(0, 6)), "hair_colour": colour}
        thin = float(rng.uniform(0.0, 0.6))
        a, ma, ta = render_vertex(seed=k, thinning=thin, shape=shape, pose=pa, hair_seed=100 + k, **look)
        b, mb, tb = render_vertex(
            seed=k,
            thinning=thin + 0.3,
            shape=shape,
            pose=pb,
            hair_seed=200 + k,
            brightness=float(rng.uniform(0.7, 1.4)),
            white_balance=tuple(rng.uniform(0.85, 1.15, 3)),
            blur_sigma_px=float(rng.uniform(0, 1.5)),
            noise_sigma=float(rng.uniform(1, 5)),
            jpeg_quality=int(rng.integers(60, 95)),
            **look,
        )
        h = np.linalg.inv(ta.transform_to_canonical) @ tb.transform_to_canonical
        cases.append((a, ma, b, mb, h / h[2, 2]))
    for label, dilation in (
        ("hair masked (dilated 25)", 25),
        ("hair masked (exact mask)", 1),
        ("hair NOT masked", 0),
    ):
        errs, oks, times = [], [], []
        for a, ma, b, mb, h in cases:
            kw = {}
            if dilation:
                kernel = np.ones((dilation, dilation), np.uint8)
                kw = {
                    "reference_mask": cv2.dilate(ma.astype(np.uint8), kernel) == 0,
                    "moving_mask": cv2.dilate(mb.astype(np.uint8), kernel) == 0,
                }
            res, dt = _timed(a, b, **kw)
            errs.append(corner_error(res.matrix, h, b.shape) if res.ok else np.inf)
            oks.append(res.ok)
            times.append(dt)
        _summary(errs, oks, times, label)


def _lesion_dice(h: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    warped = cv2.warpPerspective(mask_b, h, (mask_a.shape[1], mask_a.shape[0]), flags=cv2.INTER_LINEAR) >= 128
    a = mask_a > 127
    return float(2 * (warped & a).sum() / (warped.sum() + a.sum()))


def lesion_pairs(quick: bool, rng: np.random.Generator) -> None:
    if not (LESION_DIR / "pairs.csv").exists():
        print("4. lesion pairs: ../shared/data/lesion-pairs absent, skipped")
        return
    with open(LESION_DIR / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if quick:
        rows = rows[::3]

    def load(i):
        return cv2.cvtColor(cv2.imread(str(LESION_DIR / "images" / f"{i}.jpg")), cv2.COLOR_BGR2RGB)

    def mask(i):
        return cv2.imread(str(LESION_DIR / "masks" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)

    settings = {
        "default limits (zoom 0.7-1.4, rot<45)": {},
        "close-up limits (zoom 0.4-2.5, any rot)": {"scale_range": (0.4, 2.5), "max_rotation_deg": 180},
    }
    print(
        f"4. lesion pairs (real dermoscopy re-shots, 200x150), n={len(rows)}: lesion Dice after registration"
    )
    for label, kw in settings.items():
        d0, d1, oks, times = [], [], [], []
        for r in rows:
            res, dt = _timed(load(r["reference"]), load(r["moving"]), **kw)
            ma, mb = mask(r["reference"]), mask(r["moving"])
            d0.append(_lesion_dice(np.eye(3), ma, mb))
            d1.append(_lesion_dice(res.matrix if res.ok else np.eye(3), ma, mb))
            oks.append(res.ok)
            times.append(dt)
        d0, d1, oks = np.array(d0), np.array(d1), np.array(oks)
        print(
            f"  {label}: identity mean Dice={d0.mean():.3f} registered={d1.mean():.3f} "
            f"improved={(d1 > d0 + 1e-9).mean():.1%} worse>0.05={(d1 < d0 - 0.05).mean():.1%} "
            f"declined={1 - oks.mean():.1%}; "
            f"accepted only: identity {d0[oks].mean():.3f} -> {d1[oks].mean():.3f}; "
            f"time median={np.median(times) * 1000:.0f}ms"
        )
        refs = sorted({r["reference"] for r in rows})
        n_cross = 30 if quick else 100
        fa = 0
        for _ in range(n_cross):
            a, b = rng.choice(refs, 2, replace=False)
            fa += align_images(load(a), load(b), **kw).ok
        print(f"    cross-lesion (different lesions) false accepts: {fa}/{n_cross}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs (about a minute)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"OpenCV {cv2.__version__}; corner error = max over MOVING's 4 corners, full-resolution px")
    known_warps(3 if args.quick else 10, rng)
    unrelated(rng, args.quick)
    vertex_phantoms(3 if args.quick else 12, rng)
    lesion_pairs(args.quick, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
