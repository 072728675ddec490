"""Local accounts: argon2id hashes, password policy, generic login failures, lockout, bootstrap, audit.

Speed: the production parameters (64 MiB, t=3, p=4) cost 0.1-0.5 s per hash on a busy 2-core machine,
so most tests run argon2id with its cheapest parameters (``fast_hashing``); the tests that take the
``real_hasher`` fixture check the production parameters and the re-hash on a parameter change.
"""

from __future__ import annotations

import datetime as dt

import pytest
from argon2 import PasswordHasher, Type, profiles
from sqlalchemy import select, text

from tracker import passwords
from tracker.accounts import (
    LOGIN_FAILED_MESSAGE,
    AuthenticationFailed,
    LockoutPolicy,
    PasswordRejected,
    SessionPolicy,
    active_user,
    authenticate,
    create_first_admin,
    create_user,
    disable_user,
    enable_user,
    list_users,
    needs_first_admin,
    recent_audit_events,
    set_password,
    verify_audit,
)
from tracker.errors import NotFound, PermissionDenied
from tracker.services.access import Actor
from tracker.store import AuditEvent, Patient, User
from tracker.store.audit import verify_chain

ADMIN = Actor(username="root-admin", role="admin", user_id=1)
SYSTEM = Actor.system("tester")
CLINICIAN = Actor(username="dr.house", role="clinician", user_id=2)
GOOD = "violet-harbour-lantern-92"
OTHER_GOOD = "quiet Otter sails north 7"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fast_hashing(request, monkeypatch):
    if "real_hasher" not in request.fixturenames:
        monkeypatch.setattr(passwords, "_HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def real_hasher():
    """Keep the production argon2id parameters for this test."""
    return passwords._HASHER


def _events(store, action=None) -> list[AuditEvent]:
    with store.session() as s:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        return list(s.scalars(stmt))


def _user(store, username: str) -> User:
    with store.session() as s:
        return s.scalar(select(User).where(User.username == username))


def _patient(store, code: str = "P-0042") -> int:
    with store.session() as s, s.begin():
        patient = Patient(code=code, display_name="Test Person")
        s.add(patient)
        s.flush()
        return patient.id


def _reason(store) -> str | None:
    return _events(store)[-1].details.get("reason")


# ------------------------------------------------------------------------------------------ hashing
def test_hashes_are_argon2id_salted_with_the_configured_parameters(store, real_hasher):
    create_user(store, username="Jane.Doe", role="clinician", password=GOOD, actor=ADMIN)
    create_user(store, username="john", role="clinician", password=GOOD, actor=ADMIN)
    jane, john = _user(store, "jane.doe"), _user(store, "john")  # names are stored in lower case
    p = passwords.HASH_PARAMETERS
    for user in (jane, john):
        assert user.password_hash.startswith("$argon2id$")
        assert f"m={p.memory_cost},t={p.time_cost},p={p.parallelism}" in user.password_hash
        assert GOOD not in user.password_hash
    assert jane.password_hash != john.password_hash  # per-user salt
    assert (p.type, p.memory_cost, p.time_cost) == (Type.ID, 65536, 3)


def test_login_rehashes_a_hash_made_with_other_parameters(store, real_hasher):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(GOOD)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE username = 'jane'"), {"h": weak})
    authenticate(store, "jane", GOOD)
    stored = _user(store, "jane").password_hash
    assert stored != weak and "m=65536,t=3,p=4" in stored
    assert _events(store, "login")[-1].details == {"rehashed": True}
    assert authenticate(store, "jane", GOOD).username == "jane"  # the new hash verifies
    assert _events(store, "login")[-1].details == {}


def test_a_corrupt_stored_hash_fails_the_login_cleanly(store):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = 'not-a-hash' WHERE username = 'jane'"))
    with pytest.raises(AuthenticationFailed):
        authenticate(store, "jane", GOOD)


# ------------------------------------------------------------------------------------------- policy
def test_weak_password_creates_no_account(store):
    with pytest.raises(PasswordRejected):
        create_user(store, username="jane", role="clinician", password="jane", actor=ADMIN)
    assert _user(store, "jane") is None
    assert _events(store) == []


# ------------------------------------------------------------------------------------- account rules
def test_patient_accounts_need_a_patient_and_others_refuse_one(store):
    pid = _patient(store)
    with pytest.raises(ValueError, match="linked to a patient"):
        create_user(store, username="pat", role="patient", password=GOOD, actor=ADMIN)
    with pytest.raises(ValueError, match="cannot be linked"):
        create_user(store, username="doc", role="clinician", password=GOOD, patient_id=pid, actor=ADMIN)
    with pytest.raises(NotFound):
        create_user(store, username="pat", role="patient", password=GOOD, patient_id=pid + 99, actor=ADMIN)
    with pytest.raises(ValueError, match="unknown role"):
        create_user(store, username="pat", role="superuser", password=GOOD, actor=ADMIN)
    user = create_user(store, username="pat", role="patient", password=GOOD, patient_id=pid, actor=SYSTEM)
    assert (user.role, user.patient_id) == ("patient", pid)
    assert [u.username for u in list_users(store, actor=ADMIN)] == ["pat"]


@pytest.mark.parametrize("name", ["", " ", "-dash", "with space", "x" * 81, "cli:root", "ümlaut"])
def test_bad_user_names_are_refused(store, name):
    with pytest.raises(ValueError, match="user name"):
        create_user(store, username=name, role="clinician", password=GOOD, actor=ADMIN)


def test_user_names_are_unique_ignoring_case(store):
    create_user(store, username="Jane", role="clinician", actor=ADMIN)
    with pytest.raises(ValueError, match="already taken"):
        create_user(store, username="JANE ", role="admin", actor=ADMIN)


@pytest.mark.parametrize("actor", [CLINICIAN, Actor(username="pat", role="patient", user_id=5, patient_id=1)])
def test_only_admins_manage_accounts(store, actor):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    with pytest.raises(PermissionDenied):
        create_user(store, username="eve", role="admin", password=GOOD, actor=actor)
    with pytest.raises(PermissionDenied):
        disable_user(store, "jane", actor=actor)
    with pytest.raises(PermissionDenied):
        list_users(store, actor=actor)
    with pytest.raises(PermissionDenied):
        recent_audit_events(store, actor=actor)
    with pytest.raises(PermissionDenied):
        set_password(store, "jane", OTHER_GOOD, actor=actor, current_password=GOOD)  # not their account
    assert _user(store, "eve") is None


def test_list_users_never_exposes_hashes(store):
    pid = _patient(store, "P-7")
    create_user(store, username="pat", role="patient", password=GOOD, patient_id=pid, actor=ADMIN)
    create_user(store, username="oidc.doc", role="clinician", external_identity="sub-123", actor=ADMIN)
    infos = {u.username: u for u in list_users(store, actor=ADMIN)}
    assert infos["pat"].patient_code == "P-7" and infos["pat"].has_password
    assert not infos["oidc.doc"].has_password and infos["oidc.doc"].external_identity == "sub-123"
    assert not hasattr(infos["pat"], "password_hash")


# --------------------------------------------------------------------------------------------- login
def test_login_succeeds_case_insensitively_and_is_audited(store):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    user = authenticate(store, "  Jane ", GOOD)
    assert (user.username, user.role) == ("jane", "clinician")
    event = _events(store)[-1]
    assert (event.action, event.username, event.user_id) == ("login", "jane", user.id)


def test_every_refusal_has_the_same_message_and_one_hash_verification(store, monkeypatch):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    create_user(store, username="gone", role="clinician", password=GOOD, actor=ADMIN)
    create_user(store, username="nopass", role="clinician", actor=ADMIN)
    disable_user(store, "gone", actor=ADMIN)

    class CountingHasher(PasswordHasher):
        calls = 0

        def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
            CountingHasher.calls += 1
            return super().verify(hash, password)

    monkeypatch.setattr(passwords, "_HASHER", CountingHasher.from_parameters(profiles.CHEAPEST))
    attempts = [("nobody", GOOD, "unknown_user"), ("jane", OTHER_GOOD, "wrong_password"),
                ("gone", GOOD, "disabled"), ("nopass", GOOD, "no_password"), ("", "", "unknown_user"),
                ("jane", None, "wrong_password")]
    for username, password, reason in attempts:
        before = CountingHasher.calls
        with pytest.raises(AuthenticationFailed) as info:
            authenticate(store, username, password)
        assert str(info.value) == LOGIN_FAILED_MESSAGE
        assert CountingHasher.calls - before == 1, reason  # same work whatever the reason
        assert _reason(store) == reason
    failed = _events(store, "login_failed")
    assert [e.username for e in failed][:4] == ["nobody", "jane", "gone", "nopass"]
    assert failed[0].user_id is None and failed[1].user_id == _user(store, "jane").id


def test_lockout_after_five_failures_with_growing_backoff_and_reset(store):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    for i in range(5):
        assert _user(store, "jane").locked_until is None
        with pytest.raises(AuthenticationFailed):
            authenticate(store, "jane", f"wrong-guess-{i}", now=T0)
    assert _user(store, "jane").locked_until == T0 + dt.timedelta(seconds=30)

    # Locked: even the right password is refused, and the refusal neither counts nor extends the lock.
    with pytest.raises(AuthenticationFailed):
        authenticate(store, "jane", GOOD, now=T0 + dt.timedelta(seconds=29))
    assert _reason(store) == "locked"
    jane = _user(store, "jane")
    assert (jane.failed_logins, jane.locked_until) == (5, T0 + dt.timedelta(seconds=30))

    locks, now = [], T0 + dt.timedelta(seconds=30)
    for _ in range(3):  # each failure after a lock expires doubles the next lock
        with pytest.raises(AuthenticationFailed):
            authenticate(store, "jane", "another-wrong-guess", now=now)
        locked_until = _user(store, "jane").locked_until
        locks.append((locked_until - now).total_seconds())
        now = locked_until
    assert locks == [60.0, 120.0, 240.0]
    assert _events(store, "login_failed")[-1].details["failures"] == 8

    user = authenticate(store, "jane", GOOD, now=now)
    assert (user.failed_logins, user.locked_until) == (0, None)
    jane = _user(store, "jane")
    assert (jane.failed_logins, jane.locked_until) == (0, None)


def test_success_resets_the_failure_count(store):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            authenticate(store, "jane", "wrong-guess-here", now=T0)
    assert _user(store, "jane").failed_logins == 4
    authenticate(store, "jane", GOOD, now=T0)
    with pytest.raises(AuthenticationFailed):  # a fresh count: one failure does not lock
        authenticate(store, "jane", "wrong-guess-here", now=T0)
    jane = _user(store, "jane")
    assert (jane.failed_logins, jane.locked_until) == (1, None)


@pytest.mark.parametrize(("failures", "seconds"), [(0, 0), (4, 0), (5, 30), (6, 60), (7, 120), (11, 1920),
                                                   (12, 3600), (500, 3600)])
def test_lockout_schedule(failures, seconds):
    assert LockoutPolicy().lock_seconds(failures) == seconds


def test_disabled_user_is_refused_until_enabled(store):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    jane_id = _user(store, "jane").id
    disable_user(store, "jane", actor=ADMIN)
    assert active_user(store, jane_id) is None
    with pytest.raises(AuthenticationFailed):
        authenticate(store, "jane", GOOD)
    assert _reason(store) == "disabled"
    enable_user(store, "jane", actor=ADMIN)
    assert active_user(store, jane_id).username == "jane"
    assert authenticate(store, "jane", GOOD).id == jane_id


def test_the_last_enabled_admin_cannot_be_disabled(store):
    create_first_admin(store, username="boss", password=GOOD)
    with pytest.raises(PermissionDenied, match="last enabled administrator"):
        disable_user(store, "boss", actor=SYSTEM)
    create_user(store, username="deputy", role="admin", password=OTHER_GOOD, actor=SYSTEM)
    disable_user(store, "boss", actor=SYSTEM)
    with pytest.raises(PermissionDenied):
        disable_user(store, "deputy", actor=SYSTEM)
    assert not needs_first_admin(store)  # a disabled admin still closes the first-run door
    with pytest.raises(NotFound):
        disable_user(store, "nobody", actor=SYSTEM)


# ------------------------------------------------------------------------------------------ bootstrap
def test_first_admin_only_once(store):
    assert needs_first_admin(store)
    create_user(store, username="doc", role="clinician", password=GOOD, actor=SYSTEM)
    assert needs_first_admin(store)  # clinicians do not count
    with pytest.raises(PasswordRejected):
        create_first_admin(store, username="boss", password="boss-password")
    assert needs_first_admin(store)
    admin = create_first_admin(store, username="Boss", password=GOOD)
    assert (admin.username, admin.role) == ("boss", "admin")
    assert not needs_first_admin(store)
    with pytest.raises(PermissionDenied, match="already exists"):
        create_first_admin(store, username="mallory", password=OTHER_GOOD)
    assert _user(store, "mallory") is None
    event = _events(store, "user_created")[-1]
    assert (event.username, event.details["first_admin"]) == ("boss", True)
    assert authenticate(store, "boss", GOOD).role == "admin"


# ------------------------------------------------------------------------------------------ passwords
def test_set_password_by_admin_unlocks_and_by_self_needs_the_current_one(store):
    create_user(store, username="jane", role="clinician", password=GOOD, actor=ADMIN)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            authenticate(store, "jane", "wrong-guess-here", now=T0)
    set_password(store, "jane", OTHER_GOOD, actor=ADMIN)
    jane = _user(store, "jane")
    assert (jane.failed_logins, jane.locked_until) == (0, None)
    assert authenticate(store, "jane", OTHER_GOOD, now=T0).id == jane.id

    me = Actor(username="jane", role="clinician", user_id=jane.id)
    with pytest.raises(PermissionDenied, match="current password"):
        set_password(store, "jane", GOOD, actor=me, current_password="not-my-password")
    with pytest.raises(PasswordRejected):
        set_password(store, "jane", "jane-password", actor=me, current_password=OTHER_GOOD)
    set_password(store, "jane", GOOD, actor=me, current_password=OTHER_GOOD)
    with pytest.raises(AuthenticationFailed):
        authenticate(store, "jane", OTHER_GOOD)
    assert authenticate(store, "jane", GOOD).id == jane.id
    assert [e.details["by"] for e in _events(store, "password_changed")] == ["admin", "self"]


# ---------------------------------------------------------------------------------------------- audit
def test_every_account_action_is_audited_and_the_chain_verifies(store):
    pid = _patient(store)
    create_first_admin(store, username="boss", password=GOOD)
    create_user(store, username="pat", role="patient", password=GOOD, patient_id=pid, actor=ADMIN)
    authenticate(store, "pat", GOOD)
    with pytest.raises(AuthenticationFailed):
        authenticate(store, "pat", OTHER_GOOD)
    set_password(store, "pat", OTHER_GOOD, actor=ADMIN)
    disable_user(store, "pat", actor=ADMIN)
    disable_user(store, "pat", actor=ADMIN)  # no change: no event
    enable_user(store, "pat", actor=ADMIN)
    rows = recent_audit_events(store, actor=ADMIN, limit=3)
    actions = [e.action for e in _events(store)]
    assert actions == ["user_created", "user_created", "login", "login_failed", "password_changed",
                       "user_disabled", "user_enabled", "audit_viewed"]
    assert [r["action"] for r in rows] == ["user_enabled", "user_disabled", "password_changed"]
    created = _events(store, "user_created")[1]
    assert (created.username, created.object_type) == ("root-admin", "user")
    assert created.details == {"username": "pat", "role": "patient", "patient_id": pid}
    with store.session() as s:
        assert verify_chain(s) == (True, None)
    check = verify_audit(store, actor=ADMIN)
    assert (check.ok, check.problem, check.events) == (True, None, 8)
    with pytest.raises(ValueError):
        recent_audit_events(store, actor=ADMIN, limit=0)


def test_verify_audit_names_a_tampered_row(store):
    create_first_admin(store, username="boss", password=GOOD)
    with pytest.raises(AuthenticationFailed):
        authenticate(store, "boss", OTHER_GOOD)
    authenticate(store, "boss", GOOD)
    target = _events(store, "login_failed")[0].id
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'login' WHERE id = :i"), {"i": target})
    check = verify_audit(store, actor=SYSTEM)
    assert not check.ok and f"id={target}" in check.problem


# -------------------------------------------------------------------------------------------- sessions
@pytest.mark.parametrize(("started", "last_seen", "now", "expired"), [
    (0, 0, 0, False),
    (0, 0, 899.9, False),       # idle just under 15 minutes
    (0, 0, 900, True),          # idle limit reached
    (0, 43000, 43199.9, False),  # active, just under 12 hours
    (0, 43199, 43200, True),    # absolute limit reached although active
    (0, 100, 50, True),         # clock went backwards: fail closed
])
def test_session_expiry_at_both_limits(started, last_seen, now, expired):
    policy = SessionPolicy()
    assert policy.is_expired(started, last_seen, now) is expired
    as_dt = [T0 + dt.timedelta(seconds=v) for v in (started, last_seen, now)]
    assert policy.is_expired(*as_dt) is expired


def test_session_policy_validation():
    assert SessionPolicy(idle_timeout_s=60, absolute_timeout_s=120).is_expired(0, 50, 110)
    with pytest.raises(ValueError):
        SessionPolicy(idle_timeout_s=0)
    with pytest.raises(ValueError):
        SessionPolicy(idle_timeout_s=100, absolute_timeout_s=50)
    with pytest.raises(ValueError, match="timezone"):
        SessionPolicy().is_expired(dt.datetime(2026, 1, 1), T0, T0)
