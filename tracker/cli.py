"""The ``tracker`` command: the pipeline and the store from the shell.

Contract (DESIGN section 6; extend, never break): ``analyze`` prints one JSON object per image on its own
line, in the order given; ``align`` prints one JSON object. Bad input gives one line per input on stderr,
the other inputs go on, and the exit status is non-zero only after every input was tried. No traceback
for bad input. Heavy modules are imported inside the commands so start-up stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracker.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    emit_json,
    error_line,
    finite,
    open_store,
    parse_polygon,
    positive_float,
    write_mask,
)


# --------------------------------------------------------------------------------------------- analyze
def cmd_analyze(args: argparse.Namespace) -> int:
    from tracker.config import Settings
    from tracker.errors import TrackerError
    from tracker.imaging.decode import read_image_file

    if args.mask_out and len(args.images) != 1:
        error_line("--mask-out takes exactly one image")
        return EXIT_USAGE
    if not args.sticker_mm >= 0:
        error_line("--sticker-mm must be a positive size in mm (or 0 to not look for the sticker)")
        return EXIT_USAGE
    settings = Settings.from_env()
    failures = 0
    for image_path in args.images:
        try:
            decoded = read_image_file(image_path, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes)
            result = _analyse_pixels(decoded.pixels, args)
        except (TrackerError, ValueError, OSError) as exc:
            failures += 1
            message = str(exc) if str(exc).startswith(str(image_path)) else f"{image_path}: {exc}"
            error_line(message)
            emit_json({"image": image_path, "error": message})
            continue
        if args.mask_out and not write_mask(args.mask_out, result.mask):
            failures += 1
        emit_json(finite(_analysis_record(image_path, decoded.pixels.shape, result)))
    return EXIT_BAD_INPUT if failures else EXIT_OK


def _analyse_pixels(pixels: Any, args: argparse.Namespace) -> Any:
    import numpy as np

    from tracker.pipeline import analyse_closeup, analyse_global

    if args.kind == "closeup":
        return analyse_closeup(pixels, px_per_mm=args.px_per_mm, vellus_um=args.vellus_um,
                               terminal_um=args.terminal_um, marker_size_mm=args.sticker_mm or None)
    roi = None
    if args.roi_polygon is not None:
        roi = np.asarray(args.roi_polygon, dtype=float)
    elif args.roi == "full":
        h, w = pixels.shape[:2]
        roi = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=float)
    return analyse_global(pixels, view=args.roi if args.roi != "full" else "vertex", roi=roi)


def _analysis_record(image_path: str, shape: tuple[int, ...], result: Any) -> dict[str, Any]:
    metrics = dict(result.metrics)
    record: dict[str, Any] = {
        "image": image_path,
        "kind": result.kind,
        # Strands in a global photo are not countable: the contract's integer is 0 there.
        "hair_count": int(metrics.pop("hair_count") or 0),
        "density_per_cm2": metrics.pop("density_per_cm2", None),
        "mean_shaft_width_um": metrics.pop("mean_shaft_width_um", None),
        "hair_coverage": metrics.pop("hair_coverage"),
        "vellus_fraction": metrics.pop("vellus_fraction", None),
        "quality": result.quality,
        "px_per_mm": metrics.pop("px_per_mm", None),
        "scale_source": metrics.pop("scale_source", None),  # manual | fiducial (the sticker) | null
    }
    record.update(metrics)
    record["uncertainty"] = result.uncertainty
    record["width"], record["height"] = int(shape[1]), int(shape[0])
    record["pipeline_version"] = result.pipeline_version
    if result.kind == "global":
        record["roi"] = result.parameters.get("roi")
    return record


# ----------------------------------------------------------------------------------------------- align
def cmd_align(args: argparse.Namespace) -> int:
    from tracker.config import Settings
    from tracker.errors import TrackerError
    from tracker.imaging.align import align_images, warp_to_reference
    from tracker.imaging.decode import read_image_file

    settings = Settings.from_env()
    images = []
    failures = 0
    for path in (args.reference, args.moving):
        try:
            images.append(read_image_file(path, max_pixels=settings.max_pixels, max_bytes=settings.max_bytes))
        except (TrackerError, ValueError, OSError) as exc:
            failures += 1
            error_line(str(exc) if str(exc).startswith(path) else f"{path}: {exc}")
    if failures:
        return EXIT_BAD_INPUT
    reference, moving = images
    masks = {}
    if args.kind == "global":  # hair moves between visits: register on everything else (as the pipeline does)
        from tracker.imaging.hair_region import hair_region

        masks = {"reference_mask": ~hair_region(reference.pixels), "moving_mask": ~hair_region(moving.pixels)}
    alignment = align_images(reference.pixels, moving.pixels, preset=args.kind or "global", **masks)
    record = {"reference": args.reference, "moving": args.moving, **alignment.as_dict()}
    if args.out:
        from PIL import Image

        warped = warp_to_reference(moving.pixels, alignment.matrix, reference_shape=reference.pixels.shape[:2])
        try:
            Image.fromarray(warped).save(args.out)
            record["out"] = args.out
        except (OSError, ValueError) as exc:
            error_line(f"{args.out}: could not write the warped image ({exc})")
            emit_json(finite(record))
            return EXIT_BAD_INPUT
    emit_json(finite(record))
    return EXIT_OK


# ----------------------------------------------------------------------------------- store commands
def cmd_demo(args: argparse.Namespace) -> int:
    from tracker.services import Actor, seed_demo

    store = open_store(args.home)

    def report(done: int, total: int, label: str) -> None:
        sys.stderr.write(f"\r[{done}/{total}] {label:<40}")
        sys.stderr.flush()

    counts = seed_demo(store, Path(args.samples), actor=Actor.system(), progress=report)
    sys.stderr.write("\n")
    print(
        f"demo store at {store.settings.home}: {counts['patients']} patients, {counts['visits']} visits, "
        f"{counts['photos']} photos added ({counts['skipped_patients']} patients already present)"
    )
    if args.accounts:
        from tracker.services.demo import DEMO_ACCOUNTS_FILE, seed_demo_accounts

        accounts = seed_demo_accounts(store, actor=Actor.system())
        print(f"demo accounts (also in {store.settings.home / DEMO_ACCOUNTS_FILE}):")
        for username, (role, password) in accounts.items():
            print(f"  {role:<10} user {username:<10} password {password}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from tracker.errors import NotFound
    from tracker.services import Actor, export_csv, get_patient

    store = open_store(args.home)
    actor = Actor.system()
    ids = None
    if args.patient:
        try:
            ids = [get_patient(store, code, actor=actor).id for code in args.patient]
        except NotFound as exc:
            error_line(str(exc))
            return EXIT_BAD_INPUT
    text = export_csv(store, ids, actor=actor, deidentify=args.deidentify)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_erase(args: argparse.Namespace) -> int:
    from tracker.services import Actor, erase_patient, get_patient

    if not args.yes:
        error_line(f"erasing {args.patient} deletes every record and photo of the patient: add --yes to confirm")
        return EXIT_USAGE
    store = open_store(args.home)
    actor = Actor.system()
    patient = get_patient(store, args.patient, actor=actor)
    counts = erase_patient(store, patient.id, actor=actor, reason=args.reason)
    print(f"erased {args.patient}: {counts['visits']} visits, {counts['photos']} photos, "
          f"{counts['analyses']} analyses, {counts['blobs_deleted']} image files, "
          f"{counts['accounts_disabled']} accounts disabled")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    # server.py is app.py behind the media guard (an st.App with middleware): never serve app.py bare.
    app = Path(__file__).resolve().parents[1] / "server.py"
    if not app.exists():
        error_line(f"{app}: the dashboard server script is missing (run from a source checkout)")
        return EXIT_BAD_INPUT
    from tracker.config import Settings

    env = dict(os.environ)
    # Resolved now: the server runs from the app's folder, and must use the store `tracker demo` built here.
    env["TRACKER_HOME"] = str(Settings.from_env(args.home).home)
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
               "--server.address", args.address, "--server.headless", "true"]
    print(f"dashboard: http://localhost:{args.port}  (Ctrl+C stops it)", flush=True)
    # Replace this process by Streamlit, so signals (Ctrl+C, a service manager's SIGTERM) reach the
    # server itself and no orphan is left behind. Streamlit reads .streamlit/config.toml from the cwd.
    os.chdir(app.parent)
    os.execve(sys.executable, command, env)
    return EXIT_OK  # not reached


# ------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description="Scalp photo progress tracker")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("analyze", help="measure hair in images (JSON Lines on stdout)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--px-per-mm", type=positive_float, default=None,
                   help="scale of close-ups (default: the fiducial sticker's when one is in the photo)")
    p.add_argument("--sticker-mm", type=float, default=2.54, metavar="MM",
                   help="printed marker side of the fiducial sticker (default 2.54; 0: do not look for it)")
    p.add_argument("--kind", choices=("closeup", "global"), default="closeup")
    p.add_argument("--json", action="store_true", help="JSON Lines output (the default and only format)")
    p.add_argument("--mask-out", metavar="FILE", help="write the hair mask (255 = hair); one image only")
    p.add_argument("--roi", default="full", metavar="VIEW",
                   help="global: 'full' (whole image, default) or a view name for its default ROI")
    p.add_argument("--roi-polygon", type=parse_polygon, default=None, metavar="'x,y;x,y;...'",
                   help="global: ROI polygon in pixels (overrides --roi)")
    p.add_argument("--vellus-um", type=positive_float, default=30.0, help="vellus below this width (um)")
    p.add_argument("--terminal-um", type=positive_float, default=60.0, help="terminal from this width (um)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("align", help="align MOVING to REFERENCE (JSON on stdout)")
    p.add_argument("reference", metavar="REFERENCE")
    p.add_argument("moving", metavar="MOVING")
    p.add_argument("--out", metavar="FILE", help="write MOVING warped into REFERENCE's frame")
    p.add_argument("--json", action="store_true", help="JSON output (the default and only format)")
    p.add_argument("--kind", choices=("global", "closeup"), default=None,
                   help="global: scalp photos, hair masked out of the features; closeup: dermoscope re-shots, "
                        "any rotation; default: generic photos (zoom 0.7-1.4, rotation < 45 deg, nothing masked)")
    p.set_defaults(func=cmd_align)

    home_help = "store folder (default: $TRACKER_HOME or ./tracker-data)"
    p = sub.add_parser("demo", help="build the demo store from the sample series")
    p.add_argument("--home", help=home_help)
    p.add_argument("--samples", default=str(Path(__file__).resolve().parents[1] / "sample_images"))
    p.add_argument("--accounts", action="store_true",
                   help="also create demo accounts with random passwords (printed, and kept in the store folder)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="start the dashboard")
    p.add_argument("--home", help=home_help)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.set_defaults(func=cmd_serve)


    p = sub.add_parser("export", help="measurements as CSV")
    p.add_argument("--patient", action="append", help="patient code (repeatable; default all)")
    p.add_argument("--out", help="file to write (default stdout)")
    p.add_argument("--deidentify", action="store_true",
                   help="months and days since the first visit instead of dates, no internal ids")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("erase", help="erase a patient and all their photos on request (audited)")
    p.add_argument("patient", metavar="CODE", help="patient code")
    p.add_argument("--reason", required=True, help="why, e.g. 'patient request of 2026-11-20'")
    p.add_argument("--yes", action="store_true", help="confirm: this cannot be undone (backups aside)")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_erase)

    from tracker import cli_devices, cli_import, cli_storage, cli_users

    cli_users.register(sub, home_help)
    cli_storage.register(sub, home_help)
    cli_devices.register(sub, home_help)
    cli_import.register(sub, home_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        from tracker.errors import TrackerError

        if isinstance(exc, (TrackerError, ValueError, OSError)):
            error_line(str(exc))
            return EXIT_BAD_INPUT
        error_line(f"internal error: {type(exc).__name__}: {exc} (set TRACKER_DEBUG=1 for details)")
        if os.environ.get("TRACKER_DEBUG"):
            raise
        return 3


if __name__ == "__main__":
    sys.exit(main())
