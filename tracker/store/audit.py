"""Append-only, hash-chained audit log: who viewed, uploaded, exported, corrected or deleted what, when.

Each :class:`~tracker.store.models.AuditEvent` stores ``hash = sha256(prev_hash + canonical JSON of its
fields)``, where ``prev_hash`` is the hash of the event before it (``"0" * 64`` for the first). Editing
any stored field, or deleting, inserting or reordering rows, breaks the chain at that point, and
:func:`verify_chain` names the first broken row.

Limits: the chain proves the log is *internally* consistent. Someone with write access to the database
could still rewrite every row after a point, or drop the newest rows; to detect that, record the head
hash (:func:`chain_head`) somewhere else from time to time (a backup manifest, a printed report).

Concurrency: :func:`append_event` takes the database's write lock *before* reading the last event, so
two writers can never link to the same predecessor (``prev_hash`` is also UNIQUE as a backstop). The
event joins the caller's transaction: commit the session to keep it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tracker.store.models import AuditEvent, utcnow

__all__ = ["GENESIS_HASH", "append_event", "chain_head", "event_hash", "verify_chain"]

#: ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    prev_hash: str,
    *,
    at: dt.datetime,
    user_id: int | None,
    username: str,
    action: str,
    object_type: str,
    object_id: str | None,
    details: dict[str, Any],
) -> str:
    """The chain hash of one event: ``sha256(prev_hash + canonical JSON of the fields)``, hex.

    ``at`` must be timezone-aware; it is hashed as UTC ISO-8601 with microseconds.
    """
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    fields = {
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "user_id": user_id,
        "username": username,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "details": details,
    }
    return hashlib.sha256((prev_hash + _canonical_json(fields)).encode("utf-8")).hexdigest()


def _lock_for_append(session: Session) -> None:
    """Take the write lock now, so the last event read next is still the last one at insert time."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # A write statement makes the sqlite3 driver BEGIN and SQLite take its single write lock (waiting
        # up to busy_timeout for another writer); it changes no row.
        session.execute(text("UPDATE audit_events SET id = id WHERE 0"))
    elif dialect == "postgresql":
        session.execute(text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))


def _check_text(name: str, value: Any, max_len: int, *, allow_empty: bool = True) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{name} is longer than {max_len} characters: {value[:50]!r}...")


def append_event(
    session: Session,
    *,
    action: str,
    username: str,
    user_id: int | None = None,
    object_type: str = "",
    object_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit chain, inside the session's current transaction.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The caller's session; the event is flushed, not committed.
    action : str
        What happened, e.g. ``"photo.upload"``, ``"report.export"`` (1-40 characters).
    username : str
        Who did it (kept as text, so the event survives the user's deletion).
    user_id : int, optional
        The acting user's id, when known.
    object_type, object_id : str
        What it was done to, e.g. ``"photo"``, ``"42"``.
    details : dict, optional
        JSON-serialisable extra facts (stored as they read back from JSON: tuples become lists).

    Returns
    -------
    AuditEvent
        The new, flushed event (its ``id`` is set).
    """
    _check_text("action", action, 40, allow_empty=False)
    _check_text("username", username, 80)
    _check_text("object_type", object_type, 40)
    if object_id is not None:
        _check_text("object_id", object_id, 64)
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise ValueError(f"user_id must be an int or None, got {type(user_id).__name__}")
    if details is None:
        details = {}
    if not isinstance(details, dict):
        raise ValueError(f"details must be a dict, got {type(details).__name__}")
    try:
        # Normalise to what JSON storage gives back, so the hash verifies after a round trip.
        details = json.loads(json.dumps(details, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit details must be JSON-serialisable: {exc}") from exc

    _lock_for_append(session)
    last = session.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    prev_hash = last if last is not None else GENESIS_HASH
    at = utcnow()
    fields: dict[str, Any] = {
        "at": at,
        "user_id": user_id,
        "username": username,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "details": details,
    }
    event = AuditEvent(**fields, prev_hash=prev_hash, hash=event_hash(prev_hash, **fields))
    session.add(event)
    session.flush()
    return event


def chain_head(session: Session) -> str:
    """The hash of the newest event (``GENESIS_HASH`` for an empty log): record it elsewhere to anchor."""
    last = session.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    return last if last is not None else GENESIS_HASH


def verify_chain(session: Session) -> tuple[bool, str | None]:
    """Check the whole audit chain, oldest first, reading the stored rows (not cached objects).

    Returns
    -------
    (ok, problem) : tuple of bool and str or None
        ``(True, None)`` when every row links to the one before and matches its own hash; otherwise
        ``False`` and a description of the first broken row, e.g.
        ``"audit event id=7: content does not match its hash (row edited)"``.
    """
    stmt = select(
        AuditEvent.id,
        AuditEvent.at,
        AuditEvent.user_id,
        AuditEvent.username,
        AuditEvent.action,
        AuditEvent.object_type,
        AuditEvent.object_id,
        AuditEvent.details,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    ).order_by(AuditEvent.id)
    expected_prev = GENESIS_HASH
    previous_id: int | None = None
    for row in session.execute(stmt.execution_options(yield_per=1000)):
        if row.prev_hash != expected_prev:
            after = f"event id={previous_id}" if previous_id is not None else "the start of the chain"
            return False, (
                f"audit event id={row.id}: prev_hash does not match the hash of {after} "
                "(a row was deleted, inserted or reordered, or the one before was rewritten)"
            )
        try:
            recomputed = event_hash(
                row.prev_hash,
                at=row.at,
                user_id=row.user_id,
                username=row.username,
                action=row.action,
                object_type=row.object_type,
                object_id=row.object_id,
                details=row.details,
            )
        except (TypeError, ValueError) as exc:
            return False, f"audit event id={row.id}: unreadable content ({exc})"
        if recomputed != row.hash:
            return False, f"audit event id={row.id}: content does not match its hash (row edited)"
        expected_prev = row.hash
        previous_id = row.id
    return True, None
