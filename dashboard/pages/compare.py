"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.compare_page."""

from dashboard.compare_page import render

render()
