"""Scalp photo progress tracker: the clinic dashboard (Streamlit).

Start it with ``tracker serve`` (or ``streamlit run app.py``); the store is the one in
``$TRACKER_HOME`` (default ``./tracker-data``). Pages only lay out widgets and call tracker.services.
"""

import streamlit as st

st.set_page_config(page_title="Scalp progress tracker", layout="wide")

navigation = st.navigation(
    [
        st.Page("dashboard/pages/progress.py", title="Progress", url_path="progress", default=True),
        st.Page("dashboard/pages/visit.py", title="Visit photos", url_path="visit"),
        st.Page("dashboard/pages/new_visit.py", title="New visit", url_path="new-visit"),
        st.Page("dashboard/pages/patients.py", title="Patients", url_path="patients"),
    ]
)
navigation.run()
