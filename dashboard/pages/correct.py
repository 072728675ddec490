"""Page script (file-based so it can be opened by URL and by AppTest); the layout lives in dashboard.correct_page."""

from dashboard.correct_page import render

render()
