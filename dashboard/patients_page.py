"""Patients: search, the paged list (visits, last visit, next session, trend), add and edit a patient."""

from __future__ import annotations

import datetime as dt
import functools

import pandas as pd
import streamlit as st

from dashboard.state import get_store, require_actor
from tracker.errors import NotFound, TrackerError
from tracker.services import Actor, create_patient, get_patient
from tracker.services.patients import SEXES, patient_overview, update_patient
from tracker.store import Store

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 50
ARROWS = {"up": "↑", "down": "↓", "flat": "→", None: "–"}
MEASURE_WORDS = {"density_per_cm2": "density", "hair_coverage": "coverage"}
_SIDEBAR_PICKER_KEY = "patient_select"  # dashboard.state.patient_picker's selector


def trend_text(row: dict) -> str:
    """The list's trend cell, e.g. ``"↑ +12.0 % density (vertex-1)"``; ``"–"`` without enough data."""
    change = row.get("latest_change_pct")
    if change is None:
        return ARROWS[None]
    word = MEASURE_WORDS.get(row.get("trend_metric"), "")
    verdict = "" if row.get("trend") is not None else " (noise unknown)"
    return f"{ARROWS[row.get('trend')]} {change:+.1f} % {word} ({row.get('trend_view')}){verdict}"


def next_session_text(row: dict) -> str:
    """``"2026-07-01"``, ``"2026-05-01 (overdue)"`` or ``""``."""
    date = row.get("next_session_date")
    if date is None:
        return ""
    return f"{date.isoformat()} (overdue)" if row.get("overdue") else date.isoformat()


def _make_current(patient_id: int) -> None:
    st.session_state["patient_id"] = patient_id
    st.session_state.pop(_SIDEBAR_PICKER_KEY, None)  # the sidebar selector re-reads the current patient


def _on_table_select(ids: list[int]) -> None:
    rows = st.session_state["patients_table"].selection.rows
    if rows:
        _make_current(ids[rows[0]])


def _on_choice() -> None:
    if st.session_state.get("patients_current") is not None:
        _make_current(st.session_state["patients_current"])


def _set_offset(offset: int) -> None:
    st.session_state["patients_offset"] = max(0, offset)


def _fetch(store: Store, actor: Actor):
    """The page of the list to show (back to the first page when the search changed; kept in range)."""
    state = st.session_state
    search = state.get("patient_search", "")
    if state.get("_patients_last_search") != search:
        state["_patients_last_search"] = search
        state["patients_offset"] = 0
    size = state.get("patients_page_size", DEFAULT_PAGE_SIZE)
    offset = state.get("patients_offset", 0) // size * size  # whole pages, also after a change of page size
    page = patient_overview(store, actor=actor, search=search, limit=size, offset=offset)
    if offset and offset >= page.total:  # the list shrank (search, fewer rows per page): last page instead
        offset = max(0, (page.total - 1) // size * size)
        state["patients_offset"] = offset
        page = patient_overview(store, actor=actor, search=search, limit=size, offset=offset)
    return page


def _show_list(page) -> None:
    search = st.session_state.get("patient_search", "")
    size, offset = page.limit, page.offset
    if not page.rows:
        if search:
            st.info("No patient matches this search.")
        else:
            st.info("No patients yet: add the first one below, or run `tracker demo` to load the demo series.")
        return
    table = pd.DataFrame({
        "Code": [r["code"] for r in page.rows],
        "Name": [r["display_name"] for r in page.rows],
        "Visits": [r["visits"] for r in page.rows],
        "Last visit": [r["last_visit"] for r in page.rows],
        "Next session": [next_session_text(r) for r in page.rows],
        "Trend": [trend_text(r) for r in page.rows],
    })
    ids = [r["id"] for r in page.rows]
    st.dataframe(table, hide_index=True, width="stretch", key="patients_table", selection_mode="single-row",
                 placeholder="–",
                 on_select=functools.partial(_on_table_select, ids))
    st.caption("Trend: newest follow-up vs the first photo of the same site (close-up density, else coverage); "
               "→ means within measurement noise, – not enough data. Select a row to make it the current patient.")
    cols = st.columns([3, 1, 1, 2], vertical_alignment="bottom")
    last = min(offset + size, page.total)
    cols[0].markdown(f"Patients {offset + 1}–{last} of {page.total}")
    cols[1].button("◀ Previous", disabled=offset == 0, key="patients_prev", on_click=_set_offset,
                   args=(offset - size,))
    cols[2].button("Next ▶", disabled=last >= page.total, key="patients_next", on_click=_set_offset,
                   args=(offset + size,))
    cols[3].selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(DEFAULT_PAGE_SIZE),
                      key="patients_page_size")
    labels = {r["id"]: f"{r['code']} · {r['display_name']}" for r in page.rows}
    current = st.session_state.get("patient_id")
    st.session_state["patients_current"] = current if current in labels else None
    st.selectbox("Current patient", ids, format_func=labels.get, key="patients_current", on_change=_on_choice,
                 placeholder="Choose the patient to work on")


def _add_form(store: Store, actor: Actor, expanded: bool) -> bool:
    """The form to add a patient (who becomes the current patient); True when one was added."""
    with st.expander("Add a patient", expanded=expanded), st.form("new_patient", clear_on_submit=True):
        code = st.text_input("Pseudonymous code", placeholder="e.g. P-0042")
        name = st.text_input("Display name")
        cols = st.columns(2)
        birth_year = cols[0].number_input("Birth year", min_value=1900, max_value=2100, value=None, step=1)
        sex = cols[1].selectbox("Sex", ["", *SEXES])
        notes = st.text_area("Notes")
        if st.form_submit_button("Add patient"):
            try:
                patient = create_patient(
                    store, actor=actor, code=code, display_name=name, sex=sex or None, notes=notes,
                    birth_year=int(birth_year) if birth_year else None,
                )
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))
            else:
                _make_current(patient.id)
                st.success(f"Added {patient.code}. Choose “New visit” to upload the first photos.")
                return True
    return False


def _edit_form(store: Store, actor: Actor) -> bool:
    """The form to edit the current patient; True when something was saved."""
    current = st.session_state.get("patient_id")
    if current is None:
        return False
    try:
        patient = get_patient(store, int(current), actor=actor)
    except (NotFound, ValueError):
        st.session_state.pop("patient_id", None)
        return False
    pid = patient.id
    with st.expander(f"Edit {patient.code} · {patient.display_name}"), st.form(f"edit_patient_{pid}"):
        name = st.text_input("Display name", value=patient.display_name, key=f"edit_name_{pid}")
        cols = st.columns(3)
        birth_year = cols[0].number_input("Birth year", min_value=1900, max_value=2100, value=patient.birth_year,
                                          step=1, key=f"edit_birth_{pid}")
        options = ["", *SEXES]
        sex = cols[1].selectbox("Sex", options, index=options.index(patient.sex or ""), key=f"edit_sex_{pid}")
        next_date = cols[2].date_input("Next session", value=patient.next_session_date, key=f"edit_next_{pid}",
                                       min_value=dt.date(2000, 1, 1))
        notes = st.text_area("Notes", value=patient.notes or "", key=f"edit_notes_{pid}")
        if st.form_submit_button("Save changes"):
            try:
                update_patient(store, pid, actor=actor, display_name=name, sex=sex or None, notes=notes,
                               birth_year=int(birth_year) if birth_year else None, next_session_date=next_date)
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved the changes to {patient.code}.")
                return True
    return False


def render() -> None:
    store = get_store()
    actor = require_actor()
    st.title("Patients")
    st.text_input("Search by code or name", key="patient_search")
    list_area = st.container()  # filled last, so an add or an edit below shows in the list at once
    page = _fetch(store, actor)
    changed = _add_form(store, actor, expanded=page.total == 0 and not st.session_state.get("patient_search"))
    changed = _edit_form(store, actor) or changed
    if changed:
        page = _fetch(store, actor)
    with list_area:
        _show_list(page)
