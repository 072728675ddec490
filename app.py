"""Scalp photo progress tracker: the clinic dashboard (Streamlit).

Start it with ``tracker serve`` (which runs ``server.py``: this app behind the media guard). The store is
the one in ``$TRACKER_HOME`` (default ``./tracker-data``). Pages only lay out widgets and call
tracker.services with the logged-in user, and the services check every access.
"""

import streamlit as st

from dashboard.auth import current_actor, login_page, logout_page

st.set_page_config(page_title="Scalp progress tracker", layout="wide")

actor = current_actor()
logout = st.Page(logout_page, title="Log out", url_path="logout")
if actor is None:
    pages = [st.Page(login_page, title="Log in", url_path="login", default=True)]
elif actor.role == "clinician":
    pages = [
        st.Page("dashboard/pages/progress.py", title="Progress", url_path="progress", default=True),
        st.Page("dashboard/pages/compare.py", title="Compare visits", url_path="compare"),
        st.Page("dashboard/pages/visit.py", title="Visit photos", url_path="visit"),
        st.Page("dashboard/pages/correct.py", title="Check and correct", url_path="correct"),
        st.Page("dashboard/pages/new_visit.py", title="New visit", url_path="new-visit"),
        st.Page("dashboard/pages/patients.py", title="Patients", url_path="patients"),
        st.Page("dashboard/pages/devices.py", title="Scale and devices", url_path="devices"),
        logout,
    ]
elif actor.role == "patient":
    pages = [
        st.Page("dashboard/pages/progress.py", title="My progress", url_path="progress", default=True),
        st.Page("dashboard/pages/compare.py", title="Before and after", url_path="compare"),
        st.Page("dashboard/pages/visit.py", title="My photos", url_path="visit"),
        logout,
    ]
else:  # admin: accounts and the audit log, no clinical records
    pages = [
        st.Page("dashboard/pages/admin.py", title="Accounts and audit", url_path="admin", default=True),
        logout,
    ]
if actor is not None:
    st.sidebar.caption(f"Logged in as **{actor.username}** ({actor.role})")
st.navigation(pages).run()
