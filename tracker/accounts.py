"""Local accounts: login with lockout, first-admin bootstrap, session timeouts, audit log access.

Rules (DESIGN section 8, issue 6):

- Passwords are checked and hashed by :mod:`tracker.passwords` (argon2id, :data:`HASH_PARAMETERS`),
  whose public names are re-exported here. A login with a hash made under other parameters re-hashes
  the password.
- :func:`authenticate` fails with ONE message (:data:`LOGIN_FAILED_MESSAGE`) for an unknown user, a
  wrong password, a disabled or a locked account, and spends one argon2 verification in every case
  (a dummy hash for unknown users), so neither the message nor the time tells which user names exist.
- After :attr:`LockoutPolicy.threshold` consecutive wrong passwords the account is locked, for a time
  that doubles with each further failure (30 s, 60 s, 120 s ... capped at one hour). Attempts during a
  lock are refused without checking the password's result and do not extend the lock. A successful
  login, or a password set by an administrator, resets the count.
- There is no default password anywhere: the first administrator is created by :func:`create_first_admin`,
  which works only while no admin account exists (a disabled admin still counts, and the last enabled
  admin cannot be disabled, so the first-run form never reopens on a live installation).
- Every account change and every login success or failure appends an audit event (``user_created``,
  ``password_changed``, ``user_disabled``, ``user_enabled``, ``login``, ``login_failed`` with the
  reason in ``details``, ``audit_viewed``).

Account management needs an administrator (or the ``system`` actor of the command line): any object with
``username``, ``role`` and ``user_id`` attributes, such as :class:`tracker.services.access.Actor`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.errors import NotFound, PermissionDenied, TrackerError
from tracker.passwords import (
    HASH_PARAMETERS,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PasswordRejected,
    check_password_policy,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from tracker.store import AuditEvent, Patient, Store, User
from tracker.store.audit import append_event, chain_head, verify_chain
from tracker.store.models import ROLES, utcnow

__all__ = [
    "HASH_PARAMETERS", "LOGIN_FAILED_MESSAGE", "MIN_PASSWORD_LENGTH", "AuthenticationFailed",
    "AuditCheck", "LockoutPolicy", "PasswordRejected", "SessionPolicy", "UserInfo", "active_user",
    "authenticate", "check_password_policy", "create_first_admin", "create_user", "disable_user",
    "enable_user", "find_patient_id", "hash_password", "list_users", "needs_first_admin",
    "normalise_username", "recent_audit_events", "set_password", "verify_audit",
]

LOGIN_FAILED_MESSAGE = "Login failed: wrong user name or password, or the account is locked or disabled."
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,79}")
_ADMIN_ROLES = frozenset({"admin", "system"})


class AuthenticationFailed(TrackerError):
    """A login was refused; the message is always :data:`LOGIN_FAILED_MESSAGE`."""

    def __init__(self) -> None:
        super().__init__(LOGIN_FAILED_MESSAGE)


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


@dataclass(frozen=True)
class LockoutPolicy:
    """Lock after ``threshold`` consecutive failures for ``base_s * 2**(failures - threshold)`` seconds,
    at most ``max_s``."""

    threshold: int = 5
    base_s: float = 30.0
    max_s: float = 3600.0

    def lock_seconds(self, failures: int) -> float:
        """Length of the lock after ``failures`` consecutive failures (0 below the threshold)."""
        if failures < self.threshold:
            return 0.0
        return min(self.base_s * 2.0 ** min(failures - self.threshold, 60), self.max_s)


@dataclass(frozen=True)
class SessionPolicy:
    """Idle and absolute limits of a logged-in session, in seconds."""

    idle_timeout_s: float = 900.0
    absolute_timeout_s: float = 43200.0

    def __post_init__(self) -> None:
        if not (0 < self.idle_timeout_s <= self.absolute_timeout_s):
            raise ValueError("need 0 < idle_timeout_s <= absolute_timeout_s")

    def is_expired(self, started_at: float | dt.datetime, last_seen: float | dt.datetime,
                   now: float | dt.datetime) -> bool:
        """True when the session has been idle ``idle_timeout_s`` or has lasted ``absolute_timeout_s``.

        Times are epoch seconds (``time.time()``) or timezone-aware datetimes. A clock running backwards
        past the start or the last activity also expires the session (fail closed).
        """
        start, seen, current = (_seconds(v) for v in (started_at, last_seen, now))
        idle, age = current - seen, current - start
        return idle < 0 or age < 0 or idle >= self.idle_timeout_s or age >= self.absolute_timeout_s


DEFAULT_LOCKOUT = LockoutPolicy()


def _seconds(value: float | dt.datetime) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("session times must be timezone-aware datetimes or epoch seconds")
        return value.timestamp()
    return float(value)


# ------------------------------------------------------------------------------------------ user names
def normalise_username(username: str) -> str:
    """The stored form of a user name (trimmed, lower case); ``ValueError`` when not allowed.

    Allowed: 1-80 characters of ``a-z 0-9 . _ @ -``, starting with a letter or digit.
    """
    if not isinstance(username, str):
        raise ValueError("user name must be a string")
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise ValueError(f"user name {username[:80]!r} not allowed: use 1-80 of a-z 0-9 . _ @ - "
                         "starting with a letter or digit")
    return name


# ------------------------------------------------------------------------------------------ sessions
def _write_lock(session: Session) -> None:
    """Take the database write lock before reading what the write depends on (see store/audit.py)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("UPDATE users SET id = id WHERE 0"))
    elif dialect == "postgresql":
        session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))


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


# ------------------------------------------------------------------------------------------- login
def authenticate(store: Store, username: str, password: str, *, now: dt.datetime | None = None,
                 lockout: LockoutPolicy = DEFAULT_LOCKOUT) -> User:
    """Check a login; return the :class:`User` or raise :class:`AuthenticationFailed`.

    Parameters
    ----------
    username, password : str
        As typed. The user name is normalised like :func:`normalise_username`.
    now : datetime, optional
        Timezone-aware current time (default: the clock); used for locks.
    lockout : LockoutPolicy

    Raises
    ------
    AuthenticationFailed
        Same message for every reason; the reason goes to the audit log only.
    """
    now = utcnow() if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        name: str | None = normalise_username(username)
    except ValueError:
        name = None
    with store.session() as session:  # read, then end the read transaction before the slow hash
        user = session.scalar(select(User).where(User.username == name)) if name else None
        user_id = user.id if user is not None else None
        stored_hash = user.password_hash if user is not None else None
    valid_password = isinstance(password, str) and len(password) <= 4 * MAX_PASSWORD_LENGTH
    matches = verify_password(stored_hash or dummy_hash(), password if valid_password else "")
    matches = matches and valid_password and stored_hash is not None
    new_hash = hash_password(password) if matches and needs_rehash(stored_hash) else None

    result: User | None = None
    with store.session() as session, session.begin():
        _write_lock(session)
        user = session.get(User, user_id, populate_existing=True) if user_id is not None else None
        if user is None:
            reason = "unknown_user"
        elif user.disabled:
            reason = "disabled"
        elif user.password_hash is None:
            reason = "no_password"
        elif user.locked_until is not None and user.locked_until > now:
            reason = "locked"
        elif not matches or user.password_hash != stored_hash:
            reason = "wrong_password"
        else:
            reason = None
        details: dict[str, Any] = {}
        if reason == "wrong_password":
            user.failed_logins = (user.failed_logins or 0) + 1
            details["failures"] = user.failed_logins
            seconds = lockout.lock_seconds(user.failed_logins)
            if seconds:
                user.locked_until = now + dt.timedelta(seconds=seconds)
                details["locked_until"] = user.locked_until.isoformat()
        elif reason is None:
            user.failed_logins, user.locked_until = 0, None
            if new_hash is not None:
                user.password_hash = new_hash
                details["rehashed"] = True
            result = user
        attempted = name if name is not None else str(username)[:80] if isinstance(username, str) else ""
        append_event(session, action="login" if reason is None else "login_failed",
                     username=user.username if user is not None else attempted,
                     user_id=user.id if user is not None else None, object_type="user",
                     object_id=str(user.id) if user is not None else None,
                     details={**details, **({"reason": reason} if reason else {})})
    if result is None:
        raise AuthenticationFailed()
    return result


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
