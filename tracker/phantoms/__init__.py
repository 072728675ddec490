"""Synthetic scalp photos with exact ground truth: trichoscopy close-ups and global vertex views.

Used by the shipped demo series (``sample_images/``, rebuilt by ``python -m tracker.phantoms.series``)
and by the tests and accuracy benchmarks of hair measurement and registration.
"""

from tracker.phantoms.closeup import CloseupTruth, render_closeup
from tracker.phantoms.vertex import VertexTruth, default_vertex_roi, render_vertex

__all__ = ["CloseupTruth", "VertexTruth", "default_vertex_roi", "render_closeup", "render_vertex"]
