"""Shared state of the dashboard: the store, the selected patient."""

from __future__ import annotations

import cv2
import numpy as np
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


#: Patients offered by the sidebar picker at once (type in "Find patient" to reach the others).
PICKER_LIMIT = 50


def patient_picker(actor: Actor) -> Patient | None:
    """The current patient: a sidebar selector for clinicians, the own record for a patient.

    The selector lists at most :data:`PICKER_LIMIT` patients matching the sidebar search, plus the
    current patient, so the page costs the same whatever the size of the clinic.
    """
    store = get_store()
    if actor.role == "patient":
        patients = list_patients(store, actor=actor)
        if not patients:
            st.sidebar.info("No patient record is linked to this account.")
            return None
        return get_patient(store, patients[0]["id"], actor=actor)
    search = st.sidebar.text_input("Find patient", key="patient_find", placeholder="code or name")
    patients = list_patients(store, actor=actor, search=search, limit=PICKER_LIMIT)
    current = st.session_state.get("patient_id")
    if current is not None and current not in [p["id"] for p in patients]:
        patients = list_patients(store, actor=actor, ids=[current]) + patients
    if not patients:
        st.sidebar.info("No patient matches this search." if search.strip() else "No patients yet.")
        return None
    labels = [f"{p['code']} · {p['display_name']}" for p in patients]
    ids = [p["id"] for p in patients]
    index = ids.index(current) if current in ids else 0
    label = st.sidebar.selectbox("Patient", labels, index=index, key="patient_select")
    chosen = ids[labels.index(label)]
    st.session_state["patient_id"] = chosen
    try:
        return get_patient(store, int(chosen), actor=actor)
    except NotFound:
        st.session_state.pop("patient_id", None)
        return None


def fit_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """The image shrunk (never enlarged) so its longer side is at most ``long_side`` px, for display."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
