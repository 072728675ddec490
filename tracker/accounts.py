"""Local accounts: first-admin bootstrap, account changes, audit log access.

Rules (DESIGN section 8, issue 6):

- Passwords are checked and hashed by :mod:`tracker.passwords` (argon2id, :data:`HASH_PARAMETERS`),
  whose public names are re-exported here.
- Logins (:func:`authenticate` with lockout) and session timeouts (:class:`SessionPolicy`) are in
  :mod:`tracker.login`, whose public names are re-exported here too.
- There is no default password anywhere: the first administrator is created by :func:`create_first_admin`,
  which works only while no admin account exists (a disabled admin still counts, and the last enabled
  admin cannot be disabled, so the first-run form never reopens on a live installation).
- Every account change appends an audit event (``user_created``, ``password_changed``,
  ``user_disabled``, ``user_enabled``, ``audit_viewed``); the login events are in :mod:`tracker.login`.

Account management needs an administrator (or the ``system`` actor of the command line): any object with
``username``, ``role`` and ``user_id`` attributes, such as :class:`tracker.services.access.Actor`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.errors import NotFound, PermissionDenied
from tracker.login import (
    DEFAULT_LOCKOUT,
    LOGIN_FAILED_MESSAGE,
    AuthenticationFailed,
    LockoutPolicy,
    SessionPolicy,
    _write_lock,
    authenticate,
    authenticate_external,
    normalise_username,
)
from tracker.passwords import (
    HASH_PARAMETERS,
    MIN_PASSWORD_LENGTH,
    PasswordRejected,
    check_password_policy,
    hash_password,
    verify_password,
)
from tracker.store import AuditEvent, Patient, Store, User
from tracker.store.audit import append_event, chain_head, verify_chain
from tracker.store.models import ROLES

__all__ = [
    "DEFAULT_LOCKOUT", "HASH_PARAMETERS", "LOGIN_FAILED_MESSAGE", "MIN_PASSWORD_LENGTH",
    "AuthenticationFailed", "AuditCheck", "LockoutPolicy", "PasswordRejected", "SessionPolicy", "UserInfo",
    "active_user", "authenticate", "authenticate_external", "check_password_policy", "create_first_admin",
    "create_user", "disable_user", "enable_user", "find_patient_id", "hash_password", "list_users", "needs_first_admin",
    "normalise_username", "recent_audit_events", "set_password", "verify_audit",
]

_ADMIN_ROLES = frozenset({"admin", "system"})


class ActorLike(Protocol):
    username: str
    role: str
    user_id: int | None


@dataclass(frozen=True)
class UserInfo:
    """An account as listed to administrators (never the password hash)."""

    id: int
    username: str
    role: str
    patient_code: str | None
    has_password: bool
    external_identity: str | None
    disabled: bool
    failed_logins: int
    locked_until: dt.datetime | None
    created_at: dt.datetime


# ------------------------------------------------------------------------------------------ helpers
def _require_admin(actor: ActorLike) -> None:
    if getattr(actor, "role", None) not in _ADMIN_ROLES:
        raise PermissionDenied("this needs an administrator account")


def _audit(session: Session, actor: ActorLike, action: str, user: User, **details: Any) -> None:
    append_event(session, action=action, username=actor.username, user_id=actor.user_id,
                 object_type="user", object_id=str(user.id), details={"username": user.username, **details})


def _get_user(session: Session, username: str) -> User:
    try:
        name = normalise_username(username)
    except ValueError:
        name = None
    user = session.scalar(select(User).where(User.username == name)) if name else None
    if user is None:
        raise NotFound(f"no user {str(username)[:80]!r}")
    return user


def _admin_exists(session: Session, *, enabled_only: bool = False) -> bool:
    stmt = select(func.count()).select_from(User).where(User.role == "admin")
    if enabled_only:
        stmt = stmt.where(User.disabled.is_(False))
    return bool(session.scalar(stmt))


# ------------------------------------------------------------------------------------ account changes
def create_user(store: Store, *, username: str, role: str, password: str | None = None,
                patient_id: int | None = None, external_identity: str | None = None,
                actor: ActorLike) -> User:
    """Create an account (administrators only).

    Parameters
    ----------
    username : str
        See :func:`normalise_username`; stored trimmed and in lower case.
    role : {"clinician", "patient", "admin"}
    password : str, optional
        Checked by :func:`check_password_policy`. Without it (and without ``external_identity``) the
        account cannot log in until :func:`set_password`.
    patient_id : int, optional
        Required for a ``patient`` account (the id of an existing :class:`Patient`), refused otherwise.
    external_identity : str, optional
        Subject of an external identity provider (OIDC) mapped to this account.

    Raises
    ------
    PermissionDenied, ValueError (PasswordRejected for the password), NotFound (patient)
    """
    _require_admin(actor)
    name = normalise_username(username)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role == "patient" and patient_id is None:
        raise ValueError("a patient account must be linked to a patient")
    if role != "patient" and patient_id is not None:
        raise ValueError(f"a {role} account cannot be linked to a patient")
    if external_identity is not None and not (isinstance(external_identity, str)
                                              and 0 < len(external_identity) <= 255):
        raise ValueError("external identity must be 1-255 characters")
    password_hash = None
    if password is not None:
        check_password_policy(password, username=name)
        password_hash = hash_password(password)
    try:
        with store.session() as session, session.begin():
            _write_lock(session)
            if patient_id is not None and session.get(Patient, patient_id) is None:
                raise NotFound(f"no patient with id {patient_id}")
            if session.scalar(select(User.id).where(User.username == name)) is not None:
                raise ValueError(f"user name {name!r} is already taken")
            user = User(username=name, role=role, patient_id=patient_id, password_hash=password_hash,
                        external_identity=external_identity, failed_logins=0, disabled=False)
            session.add(user)
            session.flush()
            _audit(session, actor, "user_created", user, role=role, patient_id=patient_id)
    except IntegrityError as exc:  # a concurrent creation of the same name or identity
        raise ValueError(f"user name {name!r} or its external identity is already taken") from exc
    return user


def needs_first_admin(store: Store) -> bool:
    """True while no administrator account exists (a new installation)."""
    with store.session() as session:
        return not _admin_exists(session)


def create_first_admin(store: Store, *, username: str, password: str) -> User:
    """Create the first administrator; refused (:class:`PermissionDenied`) once any admin exists."""
    name = normalise_username(username)
    check_password_policy(password, username=name)
    password_hash = hash_password(password)
    with store.session() as session, session.begin():
        _write_lock(session)
        if _admin_exists(session):
            raise PermissionDenied("an administrator account already exists")
        if session.scalar(select(User.id).where(User.username == name)) is not None:
            raise ValueError(f"user name {name!r} is already taken")
        user = User(username=name, role="admin", password_hash=password_hash, failed_logins=0, disabled=False)
        session.add(user)
        session.flush()
        append_event(session, action="user_created", username=name, user_id=user.id, object_type="user",
                     object_id=str(user.id), details={"username": name, "role": "admin", "first_admin": True})
    return user


def set_password(store: Store, username: str, password: str, *, actor: ActorLike,
                 current_password: str | None = None) -> None:
    """Set a user's password: by an administrator, or by the user themselves with ``current_password``.

    An administrator's reset also clears the failure count and any lock.
    """
    self_service = getattr(actor, "role", None) not in _ADMIN_ROLES
    with store.session() as session:
        if self_service:  # only one's own account, found by id (no probing of other names)
            user = session.get(User, actor.user_id) if actor.user_id is not None else None
            if user is None or user.username != str(username).strip().lower():
                raise PermissionDenied("this needs an administrator account")
        else:
            user = _get_user(session, username)
        name, old_hash = user.username, user.password_hash
    check_password_policy(password, username=name)
    if self_service and (current_password is None or old_hash is None
                         or not verify_password(old_hash, current_password)):
        raise PermissionDenied("the current password is wrong")
    new_hash = hash_password(password)
    with store.session() as session, session.begin():
        user = _get_user(session, name)
        user.password_hash = new_hash
        if not self_service:
            user.failed_logins, user.locked_until = 0, None
        _audit(session, actor, "password_changed", user, by="self" if self_service else "admin")


def _set_disabled(store: Store, username: str, disabled: bool, actor: ActorLike) -> None:
    _require_admin(actor)
    with store.session() as session, session.begin():
        _write_lock(session)
        user = _get_user(session, username)
        if user.disabled == disabled:
            return
        user.disabled = disabled
        session.flush()
        if disabled and user.role == "admin" and not _admin_exists(session, enabled_only=True):
            raise PermissionDenied("refusing to disable the last enabled administrator")
        _audit(session, actor, "user_disabled" if disabled else "user_enabled", user)


def disable_user(store: Store, username: str, *, actor: ActorLike) -> None:
    """Disable an account (it can no longer log in); the last enabled admin cannot be disabled."""
    _set_disabled(store, username, True, actor)


def enable_user(store: Store, username: str, *, actor: ActorLike) -> None:
    """Enable a disabled account again."""
    _set_disabled(store, username, False, actor)


def list_users(store: Store, *, actor: ActorLike) -> list[UserInfo]:
    """Every account, by user name (administrators only)."""
    _require_admin(actor)
    with store.session() as session:
        rows = session.execute(select(User, Patient.code).outerjoin(Patient, User.patient_id == Patient.id)
                               .order_by(User.username)).all()
        return [UserInfo(id=u.id, username=u.username, role=u.role, patient_code=code,
                         has_password=u.password_hash is not None, external_identity=u.external_identity,
                         disabled=u.disabled, failed_logins=u.failed_logins, locked_until=u.locked_until,
                         created_at=u.created_at) for u, code in rows]


def active_user(store: Store, user_id: int) -> User | None:
    """The account of a logged-in session if it may still be used (exists, not disabled), else None.

    Check it on every request, so disabling an account ends its open sessions.
    """
    with store.session() as session:
        user = session.get(User, user_id)
        return None if user is None or user.disabled else user


# ------------------------------------------------------------------------------------------- audit log
def recent_audit_events(store: Store, *, actor: ActorLike, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` audit events, newest first, as plain dicts (administrators only).

    Reading the log is itself audited (``audit_viewed``).
    """
    _require_admin(actor)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive whole number, got {limit!r}")
    with store.session() as session, session.begin():
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
        rows = [{"id": e.id, "at": e.at.isoformat(), "username": e.username, "user_id": e.user_id,
                 "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
                 "details": e.details} for e in events]
        append_event(session, action="audit_viewed", username=actor.username, user_id=actor.user_id,
                     details={"limit": limit})
    return rows


class AuditCheck(NamedTuple):
    """Result of :func:`verify_audit`: ``problem`` names the first broken row when ``ok`` is False."""

    ok: bool
    problem: str | None
    events: int
    head: str


def verify_audit(store: Store, *, actor: ActorLike) -> AuditCheck:
    """Check the whole audit chain (:func:`tracker.store.audit.verify_chain`); administrators only.

    ``head`` is the newest event's hash: record it elsewhere (a backup manifest, a printed report) to
    detect a later rewrite of the whole tail.
    """
    _require_admin(actor)
    with store.session() as session:
        ok, problem = verify_chain(session)
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        return AuditCheck(ok=ok, problem=problem, events=events, head=chain_head(session))


def find_patient_id(store: Store, code: str) -> int:
    """The id of the patient with pseudonymous ``code`` (to link a patient account); NotFound if none."""
    with store.session() as session:
        patient_id = session.scalar(select(Patient.id).where(Patient.code == code))
    if patient_id is None:
        raise NotFound(f"no patient {code!r}")
    return patient_id
