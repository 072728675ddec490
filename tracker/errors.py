"""The project's own exceptions.

Every error a user can cause (a bad upload, an unknown id, a forbidden request) is a subclass of
:class:`TrackerError`, so the CLI and the dashboard can show one clear line instead of a traceback.
"""


class TrackerError(Exception):
    """Base class of all errors the tracker raises on purpose."""


class ImageRejected(TrackerError, ValueError):
    """An input could not be accepted as an image (unreadable, truncated, too large, not an image).

    The message always names the input, e.g. ``"IMG_001.jpg: not an image (PDF document)"``.
    """


class StorageError(TrackerError):
    """The store could not read or write something (missing blob, hash mismatch, disk error)."""


class NotFound(TrackerError, LookupError):
    """A requested record (patient, visit, photo, analysis) does not exist."""


class PermissionDenied(TrackerError):
    """The acting user may not read or change the requested record."""
