"""A patient's progress: charts per view/site across the session series, and the table."""

from __future__ import annotations

import streamlit as st

from dashboard.state import get_store, patient_picker, require_actor
from tracker.reports.charts import progress_chart
from tracker.services import timeline
from tracker.services.reports import summary_sentences


def render() -> None:
    store = get_store()
    actor = require_actor()
    patient = patient_picker(actor)
    st.title("My progress" if actor.role == "patient" else "Progress")
    if patient is None:
        st.info("Add a patient first (Patients page) or load the demo series with `tracker demo`.")
        return
    st.caption(f"{patient.code} · {patient.display_name}")
    frame = timeline(store, patient.id, actor=actor)
    if frame.empty:
        st.info("No analysed photos yet: your clinic adds them at your visits." if actor.role == "patient"
                else "No analysed photos yet for this patient: upload the first visit on “New visit”.")
        return
    closeups = frame[frame["kind"] == "closeup"]
    globals_ = frame[frame["kind"] == "global"]
    st.markdown("\n".join(f"- {sentence}" for sentence in summary_sentences(frame)))
    st.caption("Bars: ± measurement noise (1 sd). ◇ with a %: change since the first visit beyond measurement "
               "noise. Hollow grey: photo flagged for retake, not charted. Dashed lines: sessions.")
    if not closeups.empty:
        metric = "density_per_cm2" if closeups["density_per_cm2"].notna().any() else "hair_count"
        st.subheader("Close-ups: hair density")
        st.altair_chart(progress_chart(closeups, metric=metric), width="stretch")
        shafts = [m for m in ("mean_shaft_width_um", "vellus_fraction") if closeups[m].notna().any()]
        if shafts:
            st.subheader("Close-ups: shaft width and vellus share")
            for column, shaft_metric in zip(st.columns(len(shafts)), shafts, strict=True):
                column.altair_chart(progress_chart(closeups, metric=shaft_metric), width="stretch")
    if not globals_.empty:
        st.subheader("Global views: hair coverage")
        st.altair_chart(progress_chart(globals_, metric="hair_coverage"), width="stretch")
    retakes = frame[frame["retake"]]
    if not retakes.empty:
        st.warning(f"{len(retakes)} photo(s) flagged for retake are shown hollow and not charted.")
    st.subheader("Measurements")
    columns = {
        "visit_date": "Visit", "session_number": "Session", "treatments": "Treatments", "view_or_site": "View/site",
        "hair_count": "Hairs", "density_per_cm2": "Hairs/cm²", "mean_shaft_width_um": "Width µm",
        "vellus_fraction": "Vellus", "hair_coverage": "Coverage", "change_from_baseline_pct": "Δ % vs first",
        "retake": "Retake", "reasons": "Quality notes",
    }
    table = frame[list(columns)].rename(columns=columns)
    table["Visit"] = table["Visit"].dt.date
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Hairs/cm²": st.column_config.NumberColumn(format="%.0f"),
        "Width µm": st.column_config.NumberColumn(format="%.1f"),
        "Vellus": st.column_config.NumberColumn(format="%.2f"),
        "Coverage": st.column_config.NumberColumn(format="%.3f"),
        "Δ % vs first": st.column_config.NumberColumn(format="%+.1f"),
    })
    from dashboard.report_widgets import report_downloads

    report_downloads(store, patient, actor)
