"""Record a new visit: date, session, treatments, photos; analyse them with a progress bar."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.state import get_store, patient_picker, require_actor
from tracker.errors import TrackerError
from tracker.imaging.roi import GLOBAL_VIEWS
from tracker.services import (
    TREATMENT_TYPES,
    TreatmentInput,
    analyse_photo,
    ingest_photo,
    list_visits,
    open_visit,
)
from tracker.services.importing import classify_filename

KIND_LABELS = {"global": "Global view", "closeup": "Close-up (trichoscopy)"}


def _last_scale(visits) -> float | None:
    for visit in reversed(visits):
        for photo in visit.photos:
            if photo.kind == "closeup" and photo.px_per_mm:
                return float(photo.px_per_mm)
    return None


def render() -> None:
    store = get_store()
    actor = require_actor()
    patient = patient_picker(actor)
    st.title("New visit")
    if patient is None:
        st.info("Add a patient first (Patients page).")
        return
    visits = list_visits(store, patient.id, actor=actor)
    next_session = max((v.session_number or 0 for v in visits), default=0) + 1
    st.caption(f"{patient.code} · {patient.display_name} · {len(visits)} earlier visit(s)")

    cols = st.columns(2)
    visit_date = cols[0].date_input("Visit date", value=dt.date.today(), max_value=dt.date.today())
    session_number = cols[1].number_input("Session number in the series", min_value=0, value=next_session, step=1)
    st.markdown("**Treatment given**")
    tcols = st.columns([2, 3, 2])
    treatment_type = tcols[0].selectbox("Type", ["(none)", *TREATMENT_TYPES])
    product = tcols[1].text_input("Product / cocktail")
    dose = tcols[2].text_input("Dose")
    notes = st.text_area("Notes")

    files = st.file_uploader(
        "Photos of this visit", type=["jpg", "jpeg", "png", "heic", "heif", "tif", "tiff", "webp", "mpo"],
        accept_multiple_files=True, key="visit_files",
    )
    default_scale = _last_scale(visits)
    plan = []
    for index, upload in enumerate(files or []):
        try:
            kind, view = classify_filename(upload.name)
        except ValueError:
            kind, view = "global", "vertex"
        row = st.columns([3, 2, 2, 2])
        row[0].markdown(f"`{upload.name}`")
        kind = row[1].selectbox("Kind", list(KIND_LABELS), index=list(KIND_LABELS).index(kind),
                                format_func=KIND_LABELS.get, key=f"kind_{index}")
        if kind == "global":
            view_index = GLOBAL_VIEWS.index(view) if view in GLOBAL_VIEWS else 0
            view = row[2].selectbox("View", GLOBAL_VIEWS, index=view_index, key=f"view_{index}")
            scale = None
        else:
            site_default = view if view not in GLOBAL_VIEWS else "vertex-1"
            view = row[2].text_input("Site", value=site_default, key=f"site_{index}")
            scale = row[3].number_input("px per mm", min_value=0.0, value=default_scale or 0.0, key=f"scale_{index}",
                                        help="Scale of the dermoscope at this magnification; 0 = unknown")
        plan.append((upload, kind, view.strip(), scale or None))

    if st.button("Save visit and analyse", type="primary", disabled=not plan):
        treatments = []
        if treatment_type != "(none)":
            treatments = [TreatmentInput(type=treatment_type, product=product, dose=dose)]
        visit = open_visit(store, patient.id, actor=actor, visit_date=visit_date,
                           session_number=int(session_number) or None, treatments=treatments, notes=notes)
        progress = st.progress(0.0, text="Analysing photos…")
        for number, (upload, kind, view, scale) in enumerate(plan, start=1):
            progress.progress((number - 1) / len(plan), text=f"Analysing {upload.name} ({number}/{len(plan)})")
            try:
                result = ingest_photo(store, visit.id, upload.getvalue(), actor=actor, name=upload.name, kind=kind,
                                      view_or_site=view, px_per_mm=scale,
                                      scale_source="device" if scale else None)
                if result.duplicate:
                    st.info(f"{upload.name}: this exact photo is already stored for this patient; not added again.")
                    continue
                analysis = analyse_photo(store, result.photo.id, actor=actor)
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))
                continue
            quality = analysis.quality
            if quality.get("retake"):
                st.error(f"{upload.name}: retake: " + "; ".join(quality.get("reasons", [])))
            elif quality.get("reasons"):
                st.warning(f"{upload.name}: " + "; ".join(quality["reasons"]))
            else:
                st.success(f"{upload.name}: analysed, quality ok")
        progress.progress(1.0, text="Done")
        st.success("Visit saved. Open “Progress” to see the new point on the chart.")
