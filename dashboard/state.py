"""Shared state of the dashboard: the store, the selected patient."""

from __future__ import annotations

import streamlit as st

from tracker.config import Settings
from tracker.errors import NotFound
from tracker.services import Actor, get_patient, list_patients
from tracker.store import Patient, Store


@st.cache_resource(show_spinner=False)
def _open_store(key: tuple, _settings: Settings) -> Store:
    return Store(_settings)


def get_store() -> Store:
    """The store configured by the environment (one per server process and configuration)."""
    settings = Settings.from_env()
    key = (str(settings.home), settings.database_url, settings.storage_url, settings.max_pixels, settings.max_bytes)
    return _open_store(key, settings)


def require_actor() -> Actor:
    """The logged-in user; stops the page when nobody is (navigation normally prevents that)."""
    from dashboard.auth import current_actor

    actor = current_actor()
    if actor is None:
        st.warning("Please log in.")
        st.stop()
    return actor


def patient_picker(actor: Actor) -> Patient | None:
    """The current patient: a sidebar selector for clinicians, the own record for a patient."""
    store = get_store()
    patients = list_patients(store, actor=actor)
    if not patients:
        st.sidebar.info("No patients yet.")
        return None
    if actor.role == "patient":
        return get_patient(store, patients[0]["id"], actor=actor)
    labels = [f"{p['code']} · {p['display_name']}" for p in patients]
    ids = [p["id"] for p in patients]
    current = st.session_state.get("patient_id")
    index = ids.index(current) if current in ids else 0
    label = st.sidebar.selectbox("Patient", labels, index=index, key="patient_select")
    chosen = ids[labels.index(label)]
    st.session_state["patient_id"] = chosen
    try:
        return get_patient(store, int(chosen), actor=actor)
    except NotFound:
        st.session_state.pop("patient_id", None)
        return None
