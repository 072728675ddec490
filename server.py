"""ASGI entry point of the dashboard: app.py behind the media guard.

``tracker serve`` runs ``streamlit run server.py``. Starting ``streamlit run app.py`` directly would
serve the pages without the media guard: don't.
"""

import streamlit as st
from starlette.middleware import Middleware

from dashboard.media_guard import MediaGuardMiddleware

app = st.App("app.py", middleware=[Middleware(MediaGuardMiddleware)])
