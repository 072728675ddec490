"""Downloads beside a patient's progress: the PDF consultation report and the CSV of the measurements.

Both files are made only when asked ("Prepare ..."), because making one is an audited export: the PDF
takes a few seconds (charts, aligned photo pairs), and an export must not be logged at every rerun of
the page. The prepared bytes are kept in the session state for this patient and these options only,
then offered with ``st.download_button`` (served through the media guard, like every download).
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from tracker.errors import TrackerError
from tracker.services import Actor, export_csv
from tracker.services.reports import consultation_report
from tracker.store import Patient, Store

_STATE = "report_downloads"


def _prepared(kind: str, options: tuple) -> bytes | None:
    entry = st.session_state.get(_STATE, {}).get(kind)
    return entry[1] if entry is not None and entry[0] == options else None


def _keep(kind: str, options: tuple, data: bytes) -> None:
    st.session_state.setdefault(_STATE, {})[kind] = (options, data)


def _file_stem(patient: Patient) -> str:
    return f"{patient.code}_{dt.date.today():%Y-%m-%d}"


def report_downloads(store: Store, patient: Patient, actor: Actor) -> None:
    """The "Downloads" section for one patient: PDF report (name printed on request) and CSV.

    Clinicians may print the patient's name on the report and choose a de-identified CSV (month of
    each visit, days since the first one, no internal ids). A patient downloads their own report and
    measurements; the service layer refuses any other patient's.
    """
    st.subheader("Downloads")
    pdf_column, csv_column = st.columns(2)
    with pdf_column:
        st.markdown("**Consultation report (PDF)**")
        label = "Print my name on the report" if actor.role == "patient" else "Print the patient's name"
        include_name = st.checkbox(label, value=False, key=f"report_name_{patient.id}",
                                   help="Without it the report shows only the pseudonymous patient code.")
        options = (patient.id, include_name)
        if st.button("Prepare report", key=f"report_prepare_{patient.id}"):
            with st.spinner("Making the report: charts and aligned photo pairs…"):
                try:
                    _keep("pdf", options, consultation_report(store, patient.id, actor=actor,
                                                              include_name=include_name))
                except (ValueError, TrackerError) as exc:
                    st.warning(f"No report: {exc}")
        pdf = _prepared("pdf", options)
        if pdf is not None:
            st.download_button("Download the report (PDF)", data=pdf, file_name=f"{_file_stem(patient)}_report.pdf",
                               mime="application/pdf", key=f"report_download_{patient.id}", on_click="ignore")
    with csv_column:
        st.markdown("**Measurements (CSV)**")
        deidentify = False
        if actor.role != "patient":
            deidentify = st.checkbox("De-identified", value=False, key=f"csv_deidentify_{patient.id}",
                                     help="Visit month and days since the first visit instead of dates; "
                                          "no internal ids. Names never appear in the CSV.")
        options = (patient.id, deidentify)
        if st.button("Prepare CSV", key=f"csv_prepare_{patient.id}"):
            try:
                text = export_csv(store, [patient.id], actor=actor, deidentify=deidentify)
                _keep("csv", options, text.encode("utf-8"))
            except (ValueError, TrackerError) as exc:
                st.warning(f"No CSV: {exc}")
        data = _prepared("csv", options)
        if data is not None:
            suffix = "_deidentified" if deidentify else ""
            st.download_button("Download the measurements (CSV)", data=data,
                               file_name=f"{_file_stem(patient)}_measurements{suffix}.csv", mime="text/csv",
                               key=f"csv_download_{patient.id}", on_click="ignore")
