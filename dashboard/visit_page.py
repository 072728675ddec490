"""The photos of one visit with their measurements and quality notes."""

from __future__ import annotations

import streamlit as st

from dashboard.state import fit_long_side, get_store, patient_picker, require_actor
from tracker.services import latest_analysis, list_visits, load_pixels, treatment_summary

PREVIEW_LONG_SIDE = 900


def render() -> None:
    store = get_store()
    actor = require_actor()
    patient = patient_picker(actor)
    st.title("Visit photos")
    if patient is None:
        st.info("Add a patient first.")
        return
    visits = list_visits(store, patient.id, actor=actor)
    if not visits:
        st.info("No visits recorded yet: your clinic adds your photos at your visits." if actor.role == "patient"
                else f"{patient.code} has no visits yet: record one on “New visit”.")
        return
    labels = {
        v.id: f"{v.visit_date:%d %b %Y}" + (f" · session {v.session_number}" if v.session_number else "")
        for v in visits
    }
    visit_id = st.selectbox("Visit", [v.id for v in reversed(visits)], format_func=labels.get)
    visit = next(v for v in visits if v.id == visit_id)
    if visit.treatments:
        st.markdown(f"**Treatments:** {treatment_summary(visit.treatments)}")
    if visit.notes:
        st.markdown(f"**Notes:** {visit.notes}")
    if not visit.photos:
        st.info("No photos in this visit.")
        return
    for photo in visit.photos:
        analysis = latest_analysis(store, photo.id, actor=actor)
        cols = st.columns([3, 2])
        with cols[0]:
            st.image(fit_long_side(load_pixels(store, photo.id, actor=actor), PREVIEW_LONG_SIDE),
                     caption=f"{photo.kind} · {photo.view_or_site} · {photo.width}×{photo.height}")
        with cols[1]:
            st.subheader(photo.view_or_site)
            if analysis is None:
                st.info("Not analysed yet.")
                continue
            metrics, quality = analysis.metrics, analysis.quality
            if quality.get("retake"):
                st.error("Retake: " + "; ".join(quality.get("reasons", [])))
            elif quality.get("reasons"):
                st.warning("; ".join(quality["reasons"]))
            else:
                st.success("Quality ok")
            if photo.kind == "closeup":
                density = metrics.get("density_per_cm2")
                st.metric("Hairs in field", metrics.get("hair_count"))
                st.metric("Density", f"{density:.0f} /cm²" if density is not None else "no scale")
                width = metrics.get("mean_shaft_width_um")
                st.metric("Mean shaft width", f"{width:.1f} µm" if width is not None else "—")
                vellus = metrics.get("vellus_fraction")
                st.metric("Vellus share", f"{vellus:.0%}" if vellus is not None else "—")
            else:
                st.metric("Hair coverage of ROI", f"{metrics.get('hair_coverage', 0):.1%}")
            st.caption(f"pipeline {analysis.pipeline_version} · analysed {analysis.created_at:%d %b %Y %H:%M}")
