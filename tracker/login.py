"""Login: the password check with lockout, and the time limits of a logged-in session.

Rules (DESIGN section 8, issue 6):

- :func:`authenticate` fails with ONE message (:data:`LOGIN_FAILED_MESSAGE`) for an unknown user, a
  wrong password, a disabled or a locked account, and spends one argon2 verification in every case
  (a dummy hash for unknown users), so neither the message nor the time tells which user names exist.
  A login with a hash made under other parameters re-hashes the password.
- After :attr:`LockoutPolicy.threshold` consecutive wrong passwords the account is locked, for a time
  that doubles with each further failure (30 s, 60 s, 120 s ... capped at one hour). Attempts during a
  lock are refused without checking the password's result and do not extend the lock. A successful
  login, or a password set by an administrator, resets the count.
- Every login success or failure appends an audit event (``login``, or ``login_failed`` with the reason
  in ``details``).

This module also holds the two helpers that account management (:mod:`tracker.accounts`, which
re-exports the public names here) shares with the login: :func:`normalise_username` and the database
write lock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tracker.errors import TrackerError
from tracker.passwords import MAX_PASSWORD_LENGTH, dummy_hash, hash_password, needs_rehash, verify_password
from tracker.store import Store, User
from tracker.store.audit import append_event
from tracker.store.models import utcnow

__all__ = [
    "DEFAULT_LOCKOUT", "LOGIN_FAILED_MESSAGE", "AuthenticationFailed", "LockoutPolicy", "SessionPolicy",
    "authenticate", "normalise_username",
]

LOGIN_FAILED_MESSAGE = "Login failed: wrong user name or password, or the account is locked or disabled."
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,79}")


class AuthenticationFailed(TrackerError):
    """A login was refused; the message is always :data:`LOGIN_FAILED_MESSAGE`."""

    def __init__(self) -> None:
        super().__init__(LOGIN_FAILED_MESSAGE)


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


# ---------------------------------------------------------------------------------- database write lock
def _write_lock(session: Session) -> None:
    """Take the database write lock before reading what the write depends on (see store/audit.py).

    Shared with :mod:`tracker.accounts`.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("UPDATE users SET id = id WHERE 0"))
    elif dialect == "postgresql":
        session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))


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


def authenticate_external(store: Store, subject: str, *, provider: str = "oidc") -> User:
    """Log in a user whom the clinic's identity provider (OIDC, ``st.login``) has already verified.

    The provider's stable subject identifier (the ``sub`` claim) must have been mapped to an account by
    an administrator (``tracker user add NAME --role R --external-identity SUBJECT``); the account's role
    and patient link then apply exactly as for a local login. Unknown subjects and disabled or locked
    accounts get the same :class:`AuthenticationFailed`; every attempt is audited.
    """
    subject = subject.strip() if isinstance(subject, str) else ""
    now = dt.datetime.now(dt.UTC)
    with store.session() as session, session.begin():
        user = session.scalar(select(User).where(User.external_identity == subject)) if subject else None
        reason = None
        if user is None:
            reason = "unknown external identity"
        elif user.disabled:
            reason = "disabled"
        elif user.locked_until is not None and user.locked_until > now:
            reason = "locked"
        append_event(session, action="login" if reason is None else "login_failed",
                     username=user.username if user is not None else f"{provider}:{subject[:60]}",
                     user_id=user.id if user is not None else None, object_type="user",
                     object_id=str(user.id) if user is not None else None,
                     details={"method": provider, **({"reason": reason} if reason else {})})
    if reason is not None:
        raise AuthenticationFailed()
    return user
