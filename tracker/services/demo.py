"""Seed a store with the shipped synthetic sample series (sample_images/series.json)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from tracker.services.access import Actor
from tracker.services.patients import TreatmentInput, create_patient, open_visit
from tracker.services.photos import analyse_photo, ingest_photo
from tracker.store import Patient, Store

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def load_manifest(samples_dir: Path = DEFAULT_SAMPLES) -> dict:
    """Read ``series.json`` of a sample folder; ValueError with a clear message when absent or invalid."""
    path = Path(samples_dir) / "series.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(
            f"{path}: no sample series manifest (regenerate with python -m tracker.phantoms.series)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON ({exc.msg})") from exc
    if not isinstance(manifest.get("patients"), list):
        raise ValueError(f"{path}: manifest has no 'patients' list")
    return manifest


def seed_demo(
    store: Store,
    samples_dir: Path = DEFAULT_SAMPLES,
    *,
    actor: Actor | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, int]:
    """Create the demo patients, visits and photos, and analyse every photo.

    Patients already in the store (same code) are left untouched, so seeding twice is harmless.

    Returns
    -------
    counts : dict
        ``{"patients": created, "visits": created, "photos": created, "skipped_patients": n}``.
    """
    actor = actor or Actor.system("demo")
    samples_dir = Path(samples_dir)
    manifest = load_manifest(samples_dir)
    todo = [(p, v, ph) for p in manifest["patients"] for v in p["visits"] for ph in v["photos"]]
    counts = {"patients": 0, "visits": 0, "photos": 0, "skipped_patients": 0}
    done = 0
    for entry in manifest["patients"]:
        with store.session() as session:
            exists = session.scalar(select(Patient.id).where(Patient.code == entry["code"])) is not None
        if exists:
            counts["skipped_patients"] += 1
            done += sum(len(v["photos"]) for v in entry["visits"])
            continue
        patient = create_patient(
            store, actor=actor, code=entry["code"], display_name=entry["display_name"],
            birth_year=entry.get("birth_year"), sex=entry.get("sex"), notes="synthetic demo patient",
        )
        counts["patients"] += 1
        for visit_entry in entry["visits"]:
            visit = open_visit(
                store, patient.id, actor=actor,
                visit_date=dt.date.fromisoformat(visit_entry["date"]),
                session_number=visit_entry.get("session_number"),
                treatments=[TreatmentInput(**t) for t in visit_entry.get("treatments", [])],
                notes=visit_entry.get("notes", ""),
            )
            counts["visits"] += 1
            for photo_entry in visit_entry["photos"]:
                path = samples_dir / photo_entry["file"]
                result = ingest_photo(
                    store, visit.id, path.read_bytes(), actor=actor, name=path.name,
                    kind=photo_entry["kind"], view_or_site=photo_entry["view_or_site"],
                    px_per_mm=photo_entry.get("px_per_mm"), scale_source=photo_entry.get("scale_source"),
                )
                analyse_photo(store, result.photo.id, actor=actor)
                counts["photos"] += 1
                done += 1
                if progress is not None:
                    progress(done, len(todo), f"{entry['code']} {visit_entry['date']} {photo_entry['view_or_site']}")
    return counts


DEMO_ACCOUNTS_FILE = "demo-accounts.txt"


def seed_demo_accounts(store: Store, *, actor: Actor | None = None) -> dict[str, tuple[str, str]]:
    """Accounts to try the demo with: a clinician, an administrator and one account per demo patient.

    Passwords are random (there is no default password anywhere) and written once to
    ``$TRACKER_HOME/demo-accounts.txt`` (mode 0600); existing accounts are left alone and the file is
    read back, so running it again prints the same credentials.

    Returns
    -------
    accounts : dict
        ``{username: (role, password)}``.
    """
    from tracker.accounts import create_user, find_patient_id

    actor = actor or Actor.system("demo")
    path = store.settings.home / DEMO_ACCOUNTS_FILE
    if path.exists():
        return _read_accounts(path)
    manifest = load_manifest()
    wanted = [("clinician", "clinician", None), ("admin", "admin", None)]
    wanted += [(entry["code"].lower(), "patient", entry["code"]) for entry in manifest["patients"]]
    accounts = {}
    for username, role, code in wanted:
        password = secrets.token_urlsafe(12)
        patient_id = find_patient_id(store, code) if code else None
        create_user(store, username=username, role=role, password=password, patient_id=patient_id, actor=actor)
        accounts[username] = (role, password)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# Demo accounts of this synthetic store: user name, role, password\n")
        for username, (role, password) in accounts.items():
            handle.write(f"{username}\t{role}\t{password}\n")
    return accounts


def _read_accounts(path: Path) -> dict[str, tuple[str, str]]:
    accounts = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            username, role, password = line.split("\t")
            accounts[username] = (role, password)
    return accounts
