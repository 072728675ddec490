"""Patients: the list and a form to add one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.state import get_store, require_actor
from tracker.services import create_patient, list_patients


def render() -> None:
    store = get_store()
    actor = require_actor()
    st.title("Patients")
    search = st.text_input("Search by code or name", key="patient_search")
    patients = list_patients(store, actor=actor, search=search)
    if patients:
        table = pd.DataFrame(patients)[["code", "display_name", "birth_year", "sex", "visits", "last_visit"]]
        table.columns = ["Code", "Name", "Born", "Sex", "Visits", "Last visit"]
        st.dataframe(table, hide_index=True, width="stretch")
    elif search:
        st.info("No patient matches this search.")
    else:
        st.info("No patients yet: add the first one below, or run `tracker demo` to load the demo series.")

    with st.expander("Add a patient", expanded=not patients), st.form("new_patient", clear_on_submit=True):
        code = st.text_input("Pseudonymous code", placeholder="e.g. P-0042")
        name = st.text_input("Display name")
        cols = st.columns(2)
        birth_year = cols[0].number_input("Birth year", min_value=1900, max_value=2100, value=None, step=1)
        sex = cols[1].selectbox("Sex", ["", "F", "M", "X"])
        notes = st.text_area("Notes")
        if st.form_submit_button("Add patient"):
            try:
                patient = create_patient(
                    store, actor=actor, code=code, display_name=name, sex=sex or None, notes=notes,
                    birth_year=int(birth_year) if birth_year else None,
                )
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["patient_id"] = patient.id
                st.success(f"Added {patient.code}. Choose “New visit” to upload the first photos.")
