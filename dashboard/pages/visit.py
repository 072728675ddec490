"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.visit_page."""

from dashboard.visit_page import render

render()
