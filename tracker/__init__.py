"""Scalp photo progress tracker: safe ingest, alignment, hair measurement and storage.

The package is a plain library (it never imports streamlit); the dashboard in ``app.py`` and the
``tracker`` command are thin layers over :mod:`tracker.services`.
"""

__version__ = "0.1.0"

#: Version of the analysis pipeline written into every Analysis row. Bump it whenever a change to
#: ``tracker.imaging`` can change a stored measurement; re-analysis then adds rows, never overwrites.
PIPELINE_VERSION = "0.1.0"
