"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.patients_page."""

from dashboard.patients_page import render

render()
