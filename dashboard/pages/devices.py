"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.devices_page."""

from dashboard.devices_page import render

render()
