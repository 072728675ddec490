"""`tracker import FOLDER`: a folder of photos as one visit of a patient, analysed several at a time."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tracker.cli_common import EXIT_BAD_INPUT, EXIT_OK, error_line, open_store, positive_float


def cmd_import(args: argparse.Namespace) -> int:
    import datetime as dt

    from tracker.errors import TrackerError
    from tracker.services import (
        Actor,
        TreatmentInput,
        create_patient,
        get_patient,
        ingest_photo,
        open_visit,
    )
    from tracker.services.batch import analyse_visit
    from tracker.services.importing import classify_filename, image_files

    folder = Path(args.folder)
    if not folder.is_dir():
        error_line(f"{folder}: not a folder")
        return EXIT_BAD_INPUT
    store = open_store(args.home)
    actor = Actor.system()
    try:
        patient = get_patient(store, args.patient, actor=actor)
    except TrackerError:
        if not args.name:
            error_line(f"no patient {args.patient!r}: give --name to create one")
            return EXIT_BAD_INPUT
        patient = create_patient(store, actor=actor, code=args.patient, display_name=args.name)
        print(f"created patient {patient.code}")
    device_id = None
    if args.device:
        from tracker.cli_devices import find_profile

        device_id = find_profile(store, args.device, actor=actor)["id"]
    treatments = [TreatmentInput(type=args.treatment, product=args.product, dose=args.dose)] if args.treatment else []
    visit_date = dt.date.fromisoformat(args.date) if args.date else dt.date.today()
    visit = open_visit(store, patient.id, actor=actor, visit_date=visit_date, session_number=args.session,
                       treatments=treatments)
    failures = 0
    stored: dict[int, tuple[str, str, str]] = {}  # photo id -> file name, kind, view
    for path in image_files(folder):
        try:
            kind, view = classify_filename(path.name, kind=args.kind, view=args.view)
            result = ingest_photo(
                store, visit.id, path.read_bytes(), actor=actor, name=path.name, kind=kind, view_or_site=view,
                px_per_mm=args.px_per_mm if kind == "closeup" else None,
                device_profile_id=device_id if kind == "closeup" else None,
            )
        except (TrackerError, ValueError, OSError) as exc:
            failures += 1
            error_line(str(exc) if str(exc).startswith(path.name) else f"{path.name}: {exc}")
            continue
        if result.duplicate:
            print(f"{path.name}: already stored (photo {result.photo.id}), skipped")
        else:
            stored[result.photo.id] = (path.name, kind, view)
    # Analysis of the stored photos, several at a time (worker processes; baselines first).
    outcomes = []
    if stored:
        outcomes = analyse_visit(store, visit.id, actor=actor, workers=args.workers, photo_ids=list(stored))
    for outcome in outcomes:
        name, kind, view = stored[outcome.photo_id]
        if not outcome.ok:
            failures += 1
            error_line(f"{name}: {outcome.error}")
            continue
        quality = outcome.analysis.quality
        flag = f"RETAKE: {'; '.join(quality.get('reasons', []))}" if quality.get("retake") else "ok"
        print(f"{name}: {kind} {view}, photo {outcome.photo_id}, {flag}")
    print(f"visit {visit.id} of {patient.code} on {visit_date.isoformat()}")
    return EXIT_BAD_INPUT if failures else EXIT_OK


def register(sub: Any, home_help: str) -> None:
    """Add the ``import`` command to the ``tracker`` argument parser."""
    p = sub.add_parser("import", help="import a folder of photos as one visit of a patient")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--patient", required=True, help="patient code")
    p.add_argument("--name", help="display name, to create the patient if missing")
    p.add_argument("--date", help="visit date YYYY-MM-DD (default today)")
    p.add_argument("--session", type=int, help="session number in the series")
    p.add_argument("--kind", choices=("closeup", "global"), help="kind of every photo (default: from file names)")
    p.add_argument("--view", help="view or site of every photo (default: from file names)")
    p.add_argument("--px-per-mm", type=positive_float, help="scale of the close-ups (wins over --device)")
    p.add_argument("--device", metavar="NAME|ID", help="device profile the close-ups were taken with")
    p.add_argument("--treatment", help="treatment type given at this visit, e.g. mesotherapy")
    p.add_argument("--product", default="")
    p.add_argument("--dose", default="")
    p.add_argument("--workers", type=int, help="photos analysed at once (default: one per CPU core)")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_import)
