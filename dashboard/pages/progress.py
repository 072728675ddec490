"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.timeline_page."""

from dashboard.timeline_page import render

render()
