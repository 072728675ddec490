"""Who is asking: the acting user of every service call, scope checks and the audit trail.

Every service function that reads or writes patient data takes ``actor`` and checks it here, so a
patient can only ever reach their own records whatever the page, URL or query parameter asked for
(DESIGN section 8: isolation is enforced in the service layer, not by hiding pages).

Roles:

``clinician``  every patient's records (the clinic's staff)
``patient``    only the records of the one patient the account is linked to; read only
``admin``      accounts, backups and the audit log; no clinical records
``system``     the ``tracker`` command run by whoever has the server's files (a shell user can read
               the database anyway); every action is still audited under its name
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from tracker.errors import NotFound, PermissionDenied, TrackerError
from tracker.store import Store
from tracker.store.audit import append_event

ROLES = ("clinician", "patient", "admin", "system")
_CLINICAL = frozenset({"clinician", "system"})


@dataclass(frozen=True)
class Actor:
    """The user on whose behalf a service call runs."""

    username: str
    role: str
    user_id: int | None = None
    patient_id: int | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if self.role == "patient" and self.patient_id is None:
            raise ValueError("a patient actor must be linked to a patient")

    @classmethod
    def system(cls, name: str | None = None) -> Actor:
        """The actor of the command line: the operating-system user, audited as ``cli:<user>``."""
        if name is None:
            try:
                name = getpass.getuser()
            except (KeyError, OSError):
                name = "unknown"
        return cls(username=f"cli:{name}", role="system")


def require_patient_access(actor: Actor, patient_id: int, *, write: bool = False) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may read (or write) this patient's records."""
    if actor.role in _CLINICAL:
        return
    if actor.role == "patient" and not write and actor.patient_id == patient_id:
        return
    raise PermissionDenied("you do not have access to this record")


def missing(actor: Actor, what: str) -> TrackerError:
    """The error for a record that does not exist: :class:`NotFound` for clinical actors, and the same
    :class:`PermissionDenied` as for someone else's record otherwise (no probing which ids exist)."""
    if actor.role in _CLINICAL:
        return NotFound(f"no {what}")
    return PermissionDenied("you do not have access to this record")


def require_clinical(actor: Actor) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` works with all patients (clinician or system)."""
    if actor.role not in _CLINICAL:
        raise PermissionDenied("this needs a clinician account")


def require_admin(actor: Actor) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` administers the clinic (admin or system)."""
    if actor.role not in ("admin", "system"):
        raise PermissionDenied("this needs an administrator account")


def audit(
    store: Store,
    actor: Actor,
    action: str,
    *,
    object_type: str = "",
    object_id: int | str | None = None,
    details: dict | None = None,
) -> None:
    """Append an event to the hash-chained audit log in its own transaction."""
    with store.session() as session, session.begin():
        append_event(
            session,
            action=action,
            username=actor.username,
            user_id=actor.user_id,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            details=details or {},
        )
