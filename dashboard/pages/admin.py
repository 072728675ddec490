"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.admin_page."""

from dashboard.admin_page import render

render()
