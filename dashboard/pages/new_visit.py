"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.upload_page."""

from dashboard.upload_page import render

render()
