"""Hash-chained audit log: the chain verifies, and tampering is found and located."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text

from tracker.errors import StorageError
from tracker.store import AuditEvent, Store
from tracker.store.audit import GENESIS_HASH, append_event, chain_head, event_hash, verify_chain


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "home")
    yield s
    s.close()


def _fill(store: Store, n: int = 6) -> list[int]:
    ids = []
    with store.session() as s, s.begin():
        for i in range(n):
            event = append_event(s, action="photo.view", username=f"user{i % 2}", user_id=i % 2 + 1,
                                 object_type="photo", object_id=str(100 + i), details={"i": i, "page": "timeline"})
            ids.append(event.id)
    return ids


def _sql(store: Store, statement: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_empty_chain_verifies(store):
    with store.session() as s:
        assert verify_chain(s) == (True, None)
        assert chain_head(s) == GENESIS_HASH


def test_chain_links_and_verifies_after_reopening(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        _fill(store, 5)
        with store.session() as s, s.begin():  # a second transaction continues the same chain
            append_event(s, action="report.export", username="dr.who", details={"format": "pdf"})
    with Store.open(home) as store, store.session() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert len(events) == 6
        assert events[0].prev_hash == GENESIS_HASH
        for before, after in zip(events, events[1:], strict=False):
            assert after.prev_hash == before.hash
        for e in events:
            assert e.hash == event_hash(e.prev_hash, at=e.at, user_id=e.user_id, username=e.username,
                                        action=e.action, object_type=e.object_type, object_id=e.object_id,
                                        details=e.details)
            assert e.at.tzinfo == dt.UTC
        assert len({e.hash for e in events}) == 6
        assert chain_head(s) == events[-1].hash
        assert verify_chain(s) == (True, None)


def test_event_hash_known_value():
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    # sha256("0"*64 + canonical JSON), computed independently with hashlib and a hand-written JSON string.
    import hashlib

    canonical = ('{"action":"a","at":"2026-01-02T03:04:05.000006+00:00","details":{"k":[1,2]},'
                 '"object_id":null,"object_type":"","user_id":7,"username":"u"}')
    expected = hashlib.sha256(("0" * 64 + canonical).encode()).hexdigest()
    got = event_hash("0" * 64, at=at, user_id=7, username="u", action="a", object_type="", object_id=None,
                     details={"k": [1, 2]})
    assert got == expected
    shifted = at.astimezone(dt.timezone(dt.timedelta(hours=2)))  # same instant, other offset: same hash
    assert event_hash("0" * 64, at=shifted, user_id=7, username="u", action="a", object_type="",
                      object_id=None, details={"k": [1, 2]}) == expected


@pytest.mark.parametrize(
    "column, value",
    [
        ("details", '{"i": 2, "page": "export"}'),
        ("username", "someone.else"),
        ("action", "photo.delete"),
        ("object_id", "999"),
        ("user_id", 42),
        ("at", "2020-01-01 00:00:00.000000"),
    ],
)
def test_editing_a_row_breaks_the_chain_at_that_row(store, column, value):
    ids = _fill(store)
    _sql(store, f"UPDATE audit_events SET {column} = :v WHERE id = :id", v=value, id=ids[2])
    with store.session() as s:
        ok, problem = verify_chain(s)
    assert ok is False
    assert problem.startswith(f"audit event id={ids[2]}:")
    assert "edited" in problem


def test_rewriting_a_hash_to_cover_an_edit_is_caught_at_the_next_row(store):
    ids = _fill(store)
    with store.session() as s:
        e = s.get(AuditEvent, ids[2])
        forged = event_hash(e.prev_hash, at=e.at, user_id=e.user_id, username=e.username, action=e.action,
                            object_type=e.object_type, object_id=e.object_id, details={"i": 2, "forged": True})
    _sql(store, "UPDATE audit_events SET details = :d, hash = :h WHERE id = :id",
         d='{"i": 2, "forged": true}', h=forged, id=ids[2])
    with store.session() as s:
        ok, problem = verify_chain(s)
    assert ok is False
    assert problem.startswith(f"audit event id={ids[3]}: prev_hash")


@pytest.mark.parametrize("position", [0, 2, 4])
def test_deleting_a_row_breaks_the_chain_at_the_next_row(store, position):
    ids = _fill(store)
    _sql(store, "DELETE FROM audit_events WHERE id = :id", id=ids[position])
    with store.session() as s:
        ok, problem = verify_chain(s)
    assert ok is False
    assert problem.startswith(f"audit event id={ids[position + 1]}: prev_hash")
    assert "deleted" in problem


def test_verify_reads_the_database_not_cached_objects(store):
    ids = _fill(store, 3)
    with store.session() as s:
        s.scalars(select(AuditEvent)).all()  # load every event into this session's identity map
        _sql(store, "UPDATE audit_events SET username = 'x' WHERE id = :id", id=ids[1])
        assert verify_chain(s)[0] is False


def test_orm_updates_of_events_are_refused(store):
    ids = _fill(store, 2)
    with store.session() as s:
        s.get(AuditEvent, ids[0]).username = "rewritten"
        with pytest.raises(StorageError, match="append-only"):
            s.commit()


def test_rolled_back_events_leave_no_gap(store):
    _fill(store, 2)
    with store.session() as s:
        append_event(s, action="photo.view", username="u")
        s.rollback()
    with store.session() as s, s.begin():
        append_event(s, action="photo.view", username="u")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 3
        assert verify_chain(s) == (True, None)


def test_details_are_normalised_to_their_json_form(store):
    with store.session() as s, s.begin():
        event = append_event(s, action="a", username="u", details={"pair": (1, 2), 3: "int key"})
    assert event.details == {"pair": [1, 2], "3": "int key"}
    with store.session() as s:
        assert verify_chain(s) == (True, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": ""},
        {"action": "x" * 41},
        {"username": "u" * 81},
        {"object_id": "9" * 65},
        {"details": {"bad": object()}},
        {"details": {"nan": float("nan")}},
        {"details": ["not", "a", "dict"]},
        {"user_id": "7"},
        {"user_id": True},
    ],
)
def test_bad_input_is_rejected(store, kwargs):
    args = {"action": "photo.view", "username": "u", **kwargs}
    with store.session() as s, pytest.raises(ValueError):
        append_event(s, **args)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_concurrent_writers_never_fork_the_chain(store):
    """Four threads, each with its own connection, append 15 events each in separate transactions."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with store.session() as s, s.begin():
                    append_event(s, action="photo.view", username=f"w{n}", details={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 60
        assert verify_chain(s) == (True, None)
