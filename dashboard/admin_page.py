"""Administrator page: accounts (create, disable, reset password) and the audit log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.state import get_store, require_actor
from tracker.accounts import (
    create_user,
    disable_user,
    enable_user,
    find_patient_id,
    list_users,
    recent_audit_events,
    set_password,
    verify_audit,
)
from tracker.errors import TrackerError


def render() -> None:
    store = get_store()
    actor = require_actor()
    st.title("Accounts and audit")
    users = list_users(store, actor=actor)
    table = pd.DataFrame([{"User": u.username, "Role": u.role, "Patient": u.patient_code or "",
                           "Disabled": u.disabled, "Failed logins": u.failed_logins} for u in users])
    st.dataframe(table, hide_index=True, width="stretch")

    with st.expander("Create an account"), st.form("create_user", clear_on_submit=True):
        username = st.text_input("User name")
        role = st.selectbox("Role", ["clinician", "patient", "admin"])
        patient_code = st.text_input("Patient code (patient accounts only)")
        password = st.text_input("Initial password (at least 12 characters)", type="password")
        if st.form_submit_button("Create account"):
            try:
                patient_id = find_patient_id(store, patient_code.strip()) if role == "patient" else None
                create_user(store, username=username, role=role, password=password, patient_id=patient_id,
                            actor=actor)
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Account {username} created.")

    names = [u.username for u in users if u.username != actor.username]
    if names:
        with st.expander("Disable, enable or reset an account"):
            name = st.selectbox("Account", names)
            cols = st.columns(3)
            try:
                if cols[0].button("Disable"):
                    disable_user(store, name, actor=actor)
                    st.success(f"{name} disabled: its open sessions end at their next action.")
                if cols[1].button("Enable"):
                    enable_user(store, name, actor=actor)
                    st.success(f"{name} enabled.")
                new_password = cols[2].text_input("New password", type="password", key="reset_pw")
                if cols[2].button("Set password") and new_password:
                    set_password(store, name, new_password, actor=actor)
                    st.success(f"Password of {name} changed.")
            except (TrackerError, ValueError) as exc:
                st.error(str(exc))

    st.subheader("Audit log")
    check = verify_audit(store, actor=actor)
    if check.ok:
        st.success(f"Audit chain intact: {check.events} events, head {check.head[:16]}…")
    else:
        st.error(f"Audit chain BROKEN: {check.problem}")
    events = recent_audit_events(store, actor=actor, limit=100)
    st.dataframe(pd.DataFrame(events), hide_index=True, width="stretch")
