"""The shipped demo series: 2 synthetic patients x 6 monthly visits, regenerated deterministically.

Run ``python -m tracker.phantoms.series OUT_DIR`` to rebuild ``sample_images/`` (byte-for-byte with the
same numpy / OpenCV versions). Each visit holds a global vertex photo and a trichoscopy close-up of site
``vertex-1``, each with a truth JSON beside it (the renderer's truth, ``transform_to_baseline`` mapping
this image's pixels to the visit-1 image of the same view, and the render parameters) and the exact
hair mask as a PNG (255 = hair). ``series.json`` is the manifest the app's demo import reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from tracker.phantoms.closeup import render_closeup
from tracker.phantoms.skin import encode_jpeg
from tracker.phantoms.vertex import render_vertex

VERTEX_SHAPE = (1200, 1600)
CLOSEUP_SHAPE = (1024, 1280)
CLOSEUP_PX_PER_MM = 200.0
VERTEX_JPEG_Q = 90
CLOSEUP_JPEG_Q = 92

#: name, sex, birth year, dates, seeds, looks, and the start -> end of the treated course.
PATIENTS: tuple[dict, ...] = (
    {
        "code": "DEMO-001",
        "display_name": "Alex Demo",
        "birth_year": 1984,
        "sex": "M",
        "dates": ("2026-01-12", "2026-02-09", "2026-03-09", "2026-04-06", "2026-05-04", "2026-06-01"),
        "seed": 101,
        "skin_tone": 1,
        "closeup_skin_tone": 1,
        "hair_colour": "brown",
        "thinning": (0.8, 0.45),
        "density": (150.0, 180.0),
        "width": (56.0, 63.0),
        "vellus": (0.24, 0.14),
    },
    {
        "code": "DEMO-002",
        "display_name": "Sam Sample",
        "birth_year": 1979,
        "sex": "F",
        "dates": ("2026-01-14", "2026-02-11", "2026-03-11", "2026-04-08", "2026-05-06", "2026-06-03"),
        "seed": 202,
        "skin_tone": 3,
        "closeup_skin_tone": 3,
        "hair_colour": "black",
        "thinning": (0.42, 0.39),
        "density": (170.0, 175.1),
        "width": (60.0, 61.0),
        "vellus": (0.18, 0.17),
    },
)

README = """# Sample images (synthetic)

Everything in this folder is **synthetic**: rendered by `tracker.phantoms`, no real person, no real
patient data. It is the demo series of the app and a regression set with exact ground truth.

## Content
Two demo patients, six monthly visits each, a course of mesotherapy:

- DEMO-001, Alex Demo (M, born 1984), a responder: crown hair coverage 0.62 -> 0.82 and close-up
  density 131 -> 160 /cm2 (+23 %) over the course.
- DEMO-002, Sam Sample (F, born 1979), a small change: the scalp patch gains 3 % hairs (170 -> 175 /cm2
  rendered); darker skin, black hair, one visit with PRP.

The close-up truths are those of each re-shot field: framing moves hairs in and out at the border, so
the field density of DEMO-002 wanders between 216 and 241 /cm2 (visit 1 -> 6: +8 %) although the
patch changed by +3 %: that is the real re-shoot noise a chart must show as uncertainty.

Per visit folder (`DEMO-001/visit-1_2026-01-12/` ...):

- `vertex.jpg`: global vertex photo (1600x1200, JPEG q90): head from above on a clinic cape, with pose,
  light, white balance, blur and noise varying between visits as with a phone; the hair strands move
  between visits, the head, ears, scalp marks and cape (snaps, seams) do not.
- `closeup-vertex-1.jpg`: trichoscopy field of the marked site `vertex-1` (1280x1024, JPEG q92, about
  200 px/mm): the same scalp patch re-shot at every visit, hairs appearing and thickening over the course.
- `*.json`: the exact truth of each image: the renderer's truth (`hair_count`, `density_per_cm2`,
  `mean_shaft_width_um`, `vellus_fraction`, `hair_coverage`, every hair's exit, angle, length and width for
  close-ups; `hair_coverage_roi` and the crown `roi_polygon` for vertex views), `transform_to_canonical`,
  `transform_to_baseline` (3x3, maps this image's pixels to the visit-1 image of the same view) and the
  render parameters.
- `*-mask.png`: the exact hair mask (255 = hair) of the rendered pixels before JPEG encoding.

`series.json` is the manifest (patients, visits, treatments, photos with kind, view or site and scale).

## Regenerate
```
python -m tracker.phantoms.series sample_images
```
The output is byte-for-byte identical with the same numpy and OpenCV versions (fixed seeds); other
versions may change pixels slightly, never the manifest. `--patient DEMO-001 --visits 2` renders a part.
"""

_MESO = "biotin/peptide cocktail (biotin, dexpanthenol, copper peptide, hyaluronic acid)"


def _treatments(code: str, visit: int) -> list[dict]:
    """Realistic treatment log of one visit (session ``visit`` of the course)."""
    if code == "DEMO-001":
        return [
            {
                "type": "mesotherapy",
                "product": _MESO,
                "dose": "2 ml",
                "notes": f"session {visit} of 6, crown and vertex, nappage technique, 4 mm needle depth",
            }
        ]
    items = [
        {
            "type": "mesotherapy",
            "product": "dutasteride 0.01 % + biotin/peptide cocktail",
            "dose": "1.5 ml",
            "notes": f"session {visit} of 6, vertex and part line, micro-papules",
        }
    ]
    if visit == 3:
        items.append(
            {
                "type": "prp",
                "product": "autologous platelet-rich plasma (single spin)",
                "dose": "4 ml",
                "notes": "vertex, tolerated well",
            }
        )
    return items


def _lerp(pair: tuple[float, float], t: float) -> float:
    return float(pair[0] + (pair[1] - pair[0]) * t)


def vertex_pose(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Phone pose of one visit: rotation, scale, shift and mild perspective about the image centre."""
    h, w = shape
    ang = np.deg2rad(rng.uniform(3.0, 13.0) * rng.choice([-1.0, 1.0]))
    sc = rng.uniform(0.92, 1.08)
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    r = np.array(
        [[sc * np.cos(ang), -sc * np.sin(ang), 0], [sc * np.sin(ang), sc * np.cos(ang), 0], [0, 0, 1]]
    )
    p = np.eye(3)
    p[2, :2] = rng.uniform(-2.5e-5, 2.5e-5, 2)
    t = np.array([[1, 0, w / 2 + rng.uniform(-70, 70)], [0, 1, h / 2 + rng.uniform(-50, 50)], [0, 0, 1]])
    m = t @ p @ r @ c
    return m / m[2, 2]


def _closeup_pose(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Re-shot of the marked (tattooed) site with a contact dermoscope.

    A similarity: rotation +-5 deg, scale 0.98-1.02, shift +-30 px.
    """
    h, w = shape
    ang = np.deg2rad(rng.uniform(-5.0, 5.0))
    sc = rng.uniform(0.98, 1.02)
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    r = np.array(
        [[sc * np.cos(ang), -sc * np.sin(ang), 0], [sc * np.sin(ang), sc * np.cos(ang), 0], [0, 0, 1]]
    )
    t = np.array([[1, 0, w / 2 + rng.uniform(-30, 30)], [0, 1, h / 2 + rng.uniform(-30, 30)], [0, 0, 1]])
    return t @ r @ c


def plan() -> list[dict]:
    """Every render of the series with its parameters (no pixels): the single source of the manifest."""
    out = []
    for pat in PATIENTS:
        rng = np.random.default_rng(np.random.SeedSequence([pat["seed"], 7]))
        n = len(pat["dates"])
        for k, date in enumerate(pat["dates"]):
            t = k / (n - 1)
            blur = float(rng.uniform(0.6, 1.1)) if rng.random() < 0.3 else 0.0
            vertex = {
                "seed": pat["seed"],
                "hair_seed": pat["seed"] * 100 + k,
                "shape": list(VERTEX_SHAPE),
                "thinning": round(_lerp(pat["thinning"], t) + float(rng.normal(0, 0.01)), 4),
                "pose": vertex_pose(rng, VERTEX_SHAPE).tolist(),
                "brightness": round(float(rng.uniform(0.82, 1.18)), 4),
                "white_balance": [round(float(v), 4) for v in rng.uniform(0.94, 1.06, 3)],
                "blur_sigma_px": round(blur, 3),
                "noise_sigma": round(float(rng.uniform(1.5, 3.0)), 3),
                "skin_tone": pat["skin_tone"],
                "hair_colour": pat["hair_colour"],
            }
            closeup = {
                "seed": pat["seed"] + 10,
                "shot_seed": pat["seed"] * 100 + 50 + k,
                "shape": list(CLOSEUP_SHAPE),
                "px_per_mm": CLOSEUP_PX_PER_MM,
                "density_per_cm2": round(_lerp(pat["density"], t), 3),
                "mean_width_um": round(_lerp(pat["width"], t), 3),
                "vellus_fraction": round(_lerp(pat["vellus"], t), 4),
                "pose": _closeup_pose(rng, CLOSEUP_SHAPE).tolist(),
                "blur_sigma_px": round(float(rng.uniform(0.5, 0.9)) if rng.random() < 0.3 else 0.4, 3),
                "noise_sigma": round(float(rng.uniform(1.5, 2.5)), 3),
                "light_falloff": round(float(rng.uniform(0.25, 0.4)), 3),
                "skin_tone": pat["closeup_skin_tone"],
                "hair_colour": pat["hair_colour"],
            }
            out.append({"patient": pat, "visit": k + 1, "date": date, "vertex": vertex, "closeup": closeup})
    return out


def _folder(item: dict) -> str:
    return f"{item['patient']['code']}/visit-{item['visit']}_{item['date']}"


def _baseline(items: list[dict], item: dict) -> dict:
    return next(i for i in items if i["patient"]["code"] == item["patient"]["code"] and i["visit"] == 1)


def _to_baseline(pose_base: list, pose_this: list) -> list:
    m = np.asarray(pose_base, float) @ np.linalg.inv(np.asarray(pose_this, float))
    return (m / m[2, 2]).tolist()


def build_manifest() -> dict:
    """The ``series.json`` manifest, computed from :func:`plan` without rendering."""
    items = plan()
    patients = []
    for pat in PATIENTS:
        visits = []
        for item in (i for i in items if i["patient"] is pat):
            folder = _folder(item)
            scale = float(np.hypot(*np.asarray(item["closeup"]["pose"])[:2, 0]))
            visits.append(
                {
                    "date": item["date"],
                    "session_number": item["visit"],
                    "treatments": _treatments(pat["code"], item["visit"]),
                    "photos": [
                        {
                            "file": f"{folder}/vertex.jpg",
                            "truth": f"{folder}/vertex.json",
                            "mask": f"{folder}/vertex-mask.png",
                            "kind": "global",
                            "view_or_site": "vertex",
                            "px_per_mm": None,
                        },
                        {
                            "file": f"{folder}/closeup-vertex-1.jpg",
                            "truth": f"{folder}/closeup-vertex-1.json",
                            "mask": f"{folder}/closeup-vertex-1-mask.png",
                            "kind": "closeup",
                            "view_or_site": "vertex-1",
                            "px_per_mm": round(CLOSEUP_PX_PER_MM * scale, 3),
                            "scale_source": "device",
                        },
                    ],
                }
            )
        patients.append(
            {
                "code": pat["code"],
                "display_name": pat["display_name"],
                "birth_year": pat["birth_year"],
                "sex": pat["sex"],
                "visits": visits,
            }
        )
    return {"generator": "tracker.phantoms.series", "format": 1, "synthetic": True, "patients": patients}


def render_item(item: dict, view: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render one planned photo (``view`` = "vertex" or "closeup"): image, mask and the truth JSON dict."""
    items = plan()
    base = _baseline(items, item)
    p = dict(item[view])
    if view == "vertex":
        img, mask, truth = render_vertex(
            seed=p["seed"],
            hair_seed=p["hair_seed"],
            shape=tuple(p["shape"]),
            thinning=p["thinning"],
            pose=np.asarray(p["pose"]),
            brightness=p["brightness"],
            white_balance=tuple(p["white_balance"]),
            blur_sigma_px=p["blur_sigma_px"],
            noise_sigma=p["noise_sigma"],
            skin_tone=p["skin_tone"],
            hair_colour=p["hair_colour"],
        )
        p["jpeg_quality"] = VERTEX_JPEG_Q
    else:
        img, mask, truth = render_closeup(
            seed=p["seed"],
            shot_seed=p["shot_seed"],
            shape=tuple(p["shape"]),
            px_per_mm=p["px_per_mm"],
            density_per_cm2=p["density_per_cm2"],
            mean_width_um=p["mean_width_um"],
            vellus_fraction=p["vellus_fraction"],
            pose=np.asarray(p["pose"]),
            blur_sigma_px=p["blur_sigma_px"],
            noise_sigma=p["noise_sigma"],
            light_falloff=p["light_falloff"],
            skin_tone=p["skin_tone"],
            hair_colour=p["hair_colour"],
        )
        p["jpeg_quality"] = CLOSEUP_JPEG_Q
    doc = truth.as_dict()
    doc["transform_to_baseline"] = _to_baseline(base[view]["pose"], p["pose"])
    doc["render"] = {"function": f"tracker.phantoms.render_{view}", **p}
    doc["note"] = "synthetic phantom; the mask is exact for the rendered pixels before JPEG encoding"
    return img, mask, doc


def _write_png(path: Path, mask: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    path.write_bytes(buf.tobytes())


def generate(
    out_dir: str | Path, *, patients: tuple[str, ...] | None = None, visits: int | None = None
) -> dict:
    """Render the series into ``out_dir`` (all of it by default) and write ``series.json``; return it."""
    out = Path(out_dir)
    for item in plan():
        if patients is not None and item["patient"]["code"] not in patients:
            continue
        if visits is not None and item["visit"] > visits:
            continue
        folder = out / _folder(item)
        folder.mkdir(parents=True, exist_ok=True)
        for view, stem, q in (
            ("vertex", "vertex", VERTEX_JPEG_Q),
            ("closeup", "closeup-vertex-1", CLOSEUP_JPEG_Q),
        ):
            img, mask, doc = render_item(item, view)
            (folder / f"{stem}.jpg").write_bytes(encode_jpeg(img, q).tobytes())
            _write_png(folder / f"{stem}-mask.png", mask)
            (folder / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    manifest = build_manifest()
    out.mkdir(parents=True, exist_ok=True)
    (out / "series.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "README.md").write_text(README)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tracker.phantoms.series OUT_DIR [--patient CODE] [--visits N]``."""
    ap = argparse.ArgumentParser(
        prog="python -m tracker.phantoms.series", description=__doc__.splitlines()[0]
    )
    ap.add_argument("out_dir")
    ap.add_argument("--patient", action="append", help="only this patient code (repeatable)")
    ap.add_argument("--visits", type=int, help="only the first N visits")
    args = ap.parse_args(argv)
    generate(args.out_dir, patients=tuple(args.patient) if args.patient else None, visits=args.visits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
