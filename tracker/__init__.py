"""Scalp photo progress tracker: safe ingest, alignment, hair measurement and storage.

The package is a plain library (it never imports streamlit); the dashboard in ``app.py`` and the
``tracker`` command are thin layers over :mod:`tracker.services`.

Importing the package stays light (the command line starts fast): submodules import what they need.
It sets ``OPENCV_IO_MAX_IMAGE_PIXELS`` (unless the environment sets it) to the default pixel limit,
because OpenCV reads it once, when cv2 is first imported: without it ``cv2.imdecode`` decodes a 48 KB
PNG bomb into 1.2 GB.
"""

import os as _os

from tracker.config import DEFAULT_MAX_PIXELS as _DEFAULT_MAX_PIXELS

_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(_DEFAULT_MAX_PIXELS))

__version__ = "0.1.0"

#: Version of the analysis pipeline written into every Analysis row. Bump it whenever a change to
#: ``tracker.imaging`` can change a stored measurement; re-analysis then adds rows, never overwrites.
PIPELINE_VERSION = "0.2.0"
