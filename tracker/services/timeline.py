"""A patient's measurements across visits, as a table for charts, reports and CSV export."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tracker.services.access import Actor, audit, require_patient_access
from tracker.services.patients import treatment_summary
from tracker.store import Analysis, Correction, Patient, Photo, Store, Visit

#: The main figure of each kind of photo, the one a progress chart follows.
PRIMARY_METRIC = {"closeup": "density_per_cm2", "global": "hair_coverage"}
#: Flags that still make a hand-corrected photo a retake: the clinician's marks fix the count, not the image.
IMAGE_FAILURE_FLAGS = frozenset({"blurred", "underexposed", "overexposed"})

TIMELINE_COLUMNS = [
    "patient_code", "visit_id", "visit_date", "session_number", "treatments", "photo_id", "kind",
    "view_or_site", "analysis_id", "pipeline_version", "hair_count", "hair_count_sd", "density_per_cm2",
    "density_per_cm2_sd", "mean_shaft_width_um", "mean_shaft_width_um_sd", "vellus_fraction",
    "vellus_fraction_sd", "terminal_fraction", "cumulative_thickness_mm_per_cm2", "hair_coverage",
    "hair_coverage_sd", "px_per_mm", "aligned", "retake", "reasons", "corrected", "change_from_baseline_pct",
    "change_exceeds_noise",
]


def timeline(store: Store, patient_id: int, *, actor: Actor, audited: bool = True) -> pd.DataFrame:
    """One row per analysed photo of a patient (newest analysis of each photo), oldest visit first.

    ``change_from_baseline_pct`` compares the photo's primary metric (density for close-ups,
    coverage for global views) with the first charted photo of the same view/site;
    ``change_exceeds_noise`` is True when that change is larger than twice the combined
    standard deviation of the two measurements. Photos flagged for retake get no change figures.
    A close-up corrected by hand shows the newest correction's metrics (``corrected`` True; the
    uncertainty stays the automatic one) and is charted unless the image itself failed (blur or
    exposure); its quality flags and reasons are kept as measured.
    The view is audited unless ``audited`` is False (for callers that audit a larger action).
    """
    require_patient_access(actor, patient_id)
    if audited:
        audit(store, actor, "view_timeline", object_type="patient", object_id=patient_id)
    with store.session() as session:
        code = session.scalar(select(Patient.code).where(Patient.id == patient_id))
        newest = (
            select(func.max(Analysis.id))
            .join(Photo, Analysis.photo_id == Photo.id)
            .join(Visit, Photo.visit_id == Visit.id)
            .where(Visit.patient_id == patient_id)
            .group_by(Analysis.photo_id)
        )
        rows = session.execute(
            select(Analysis, Photo, Visit)
            .join(Photo, Analysis.photo_id == Photo.id)
            .join(Visit, Photo.visit_id == Visit.id)
            .where(Analysis.id.in_(newest))
            .options(selectinload(Visit.treatments))
            .order_by(Visit.visit_date, Visit.id, Photo.id)
        ).all()
        corrections = {
            c.analysis_id: c
            for c in session.scalars(
                select(Correction)
                .where(Correction.analysis_id.in_([analysis.id for analysis, _, _ in rows]))
                .order_by(Correction.id)
            )
        }
        records = [_record(code, analysis, photo, visit, corrections.get(analysis.id))
                   for analysis, photo, visit in rows]
    frame = pd.DataFrame.from_records(records, columns=TIMELINE_COLUMNS[:-2])
    return _add_change(frame)


def _record(code: str, analysis: Analysis, photo: Photo, visit: Visit, correction: Correction | None) -> dict:
    metrics = (correction.metrics if correction is not None else analysis.metrics) or {}
    sd = analysis.uncertainty or {}
    quality = analysis.quality or {}
    retake = bool(quality.get("retake"))
    if correction is not None:
        retake = bool(IMAGE_FAILURE_FLAGS.intersection(quality.get("flags", [])))
    alignment = quality.get("alignment")
    return {
        "patient_code": code,
        "visit_id": visit.id,
        "visit_date": pd.Timestamp(visit.visit_date),
        "session_number": visit.session_number,
        "treatments": treatment_summary(visit.treatments),
        "photo_id": photo.id,
        "kind": photo.kind,
        "view_or_site": photo.view_or_site,
        "analysis_id": analysis.id,
        "pipeline_version": analysis.pipeline_version,
        "hair_count": metrics.get("hair_count"),
        "hair_count_sd": sd.get("hair_count_sd"),
        "density_per_cm2": metrics.get("density_per_cm2"),
        "density_per_cm2_sd": sd.get("density_per_cm2_sd"),
        "mean_shaft_width_um": metrics.get("mean_shaft_width_um"),
        "mean_shaft_width_um_sd": sd.get("mean_shaft_width_um_sd"),
        "vellus_fraction": metrics.get("vellus_fraction"),
        "vellus_fraction_sd": sd.get("vellus_fraction_sd"),
        "terminal_fraction": metrics.get("terminal_fraction"),
        "cumulative_thickness_mm_per_cm2": metrics.get("cumulative_thickness_mm_per_cm2"),
        "hair_coverage": metrics.get("hair_coverage"),
        "hair_coverage_sd": sd.get("hair_coverage_sd"),
        "px_per_mm": photo.px_per_mm,
        "aligned": None if alignment is None else bool(alignment.get("ok")),
        "retake": retake,
        "reasons": "; ".join(quality.get("reasons", [])),
        "corrected": correction is not None,
    }


def _add_change(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["change_from_baseline_pct"] = float("nan")
    frame["change_exceeds_noise"] = pd.Series([pd.NA] * len(frame), dtype="boolean")
    for (kind, _view), group in frame.groupby(["kind", "view_or_site"], sort=False):
        metric = PRIMARY_METRIC[kind]
        charted = group[~group["retake"] & group[metric].notna()]
        if charted.empty:
            continue
        first = charted.iloc[0]
        base_value, base_sd = float(first[metric]), first[f"{metric}_sd"]
        if base_value == 0:
            continue
        for index, row in charted.iterrows():
            change = (float(row[metric]) - base_value) / base_value * 100.0
            frame.loc[index, "change_from_baseline_pct"] = change
            sds = [s for s in (base_sd, row[f"{metric}_sd"]) if s is not None and pd.notna(s)]
            if len(sds) == 2 and index != first.name:
                noise = 2.0 * (sds[0] ** 2 + sds[1] ** 2) ** 0.5
                frame.loc[index, "change_exceeds_noise"] = abs(float(row[metric]) - base_value) > noise
    return frame


#: Columns left out of a de-identified export: internal ids can be linked back to the clinic's records.
_IDENTIFYING = ["visit_id", "photo_id", "analysis_id"]


def export_csv(
    store: Store, patient_ids: list[int] | None = None, *, actor: Actor, deidentify: bool = False
) -> str:
    """Measurements of the given patients (all the actor may see when None) as CSV text; audited.

    With ``deidentify`` the export keeps the pseudonymous patient code, reduces each visit date to
    its month and the number of days since the patient's first visit, and drops internal ids. (Names
    never appear in an export.)
    """
    with store.session() as session:
        ids = patient_ids
        if ids is None:
            query = select(Patient.id).order_by(Patient.code)
            if actor.role == "patient":
                query = query.where(Patient.id == actor.patient_id)
            ids = list(session.scalars(query))
    for pid in ids:
        require_patient_access(actor, pid)
    audit(store, actor, "export_csv", object_type="patients",
          details={"patient_ids": list(ids), "deidentified": deidentify})
    frames = [timeline(store, pid, actor=actor, audited=False) for pid in ids]
    frames = [f for f in frames if not f.empty]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIMELINE_COLUMNS)
    if deidentify and not table.empty:
        first = table.groupby("patient_code")["visit_date"].transform("min")
        table.insert(table.columns.get_loc("visit_date") + 1, "days_since_first_visit",
                     (table["visit_date"] - first).dt.days)
        table["visit_date"] = table["visit_date"].dt.strftime("%Y-%m")
        table = table.rename(columns={"visit_date": "visit_month"}).drop(columns=_IDENTIFYING)
    elif "visit_date" in table and not table.empty:
        table["visit_date"] = table["visit_date"].dt.date
    return table.to_csv(index=False, float_format="%.6g")
