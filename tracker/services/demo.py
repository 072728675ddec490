"""Seed a store with the shipped synthetic sample series (sample_images/series.json)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

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
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, int]:
    """Create the demo patients, visits and photos, and analyse every photo.

    Patients already in the store (same code) are left untouched, so seeding twice is harmless.

    Returns
    -------
    counts : dict
        ``{"patients": created, "visits": created, "photos": created, "skipped_patients": n}``.
    """
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
            store, code=entry["code"], display_name=entry["display_name"],
            birth_year=entry.get("birth_year"), sex=entry.get("sex"), notes="synthetic demo patient",
        )
        counts["patients"] += 1
        for visit_entry in entry["visits"]:
            visit = open_visit(
                store, patient.id,
                visit_date=dt.date.fromisoformat(visit_entry["date"]),
                session_number=visit_entry.get("session_number"),
                treatments=[TreatmentInput(**t) for t in visit_entry.get("treatments", [])],
                notes=visit_entry.get("notes", ""),
            )
            counts["visits"] += 1
            for photo_entry in visit_entry["photos"]:
                path = samples_dir / photo_entry["file"]
                result = ingest_photo(
                    store, visit.id, path.read_bytes(), name=path.name,
                    kind=photo_entry["kind"], view_or_site=photo_entry["view_or_site"],
                    px_per_mm=photo_entry.get("px_per_mm"), scale_source=photo_entry.get("scale_source"),
                )
                analyse_photo(store, result.photo.id)
                counts["photos"] += 1
                done += 1
                if progress is not None:
                    progress(done, len(todo), f"{entry['code']} {visit_entry['date']} {photo_entry['view_or_site']}")
    return counts
