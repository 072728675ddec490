"""Custom Streamlit components of the dashboard; each ships its own HTML, CSS and JavaScript (no CDN)."""
