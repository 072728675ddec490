"""``tracker user ...`` and ``tracker audit ...``: handlers called through a parser built with register().

Passwords go in through ``--password-stdin`` (stdin replaced by a StringIO) or a replaced ``getpass``
(there is no terminal under pytest). argon2id runs with its cheapest parameters here for speed; the
production parameters are checked in tests/test_accounts.py.
"""

from __future__ import annotations

import argparse
import io
import json

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import text

from tracker import accounts, cli_users, passwords
from tracker.accounts import AuthenticationFailed, authenticate
from tracker.store import Patient, Store

GOOD = "violet-harbour-lantern-92"
OTHER_GOOD = "quiet Otter sails north 7"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def parser():
    p = argparse.ArgumentParser(prog="tracker")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_users.register(sub, "store folder")
    return p


@pytest.fixture
def home(tmp_path):
    return str(tmp_path / "home")


@pytest.fixture
def run(parser, home, monkeypatch, capsys):
    """Run one command; returns (exit status, stdout, stderr lines)."""

    def _run(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        args = parser.parse_args([*argv, "--home", home])
        status = args.func(args)
        out, err = capsys.readouterr()
        return status, out, err.splitlines()

    return _run


def _store(home) -> Store:
    return Store.open(home)


def _add_patient(home, code):
    with _store(home) as store, store.session() as s, s.begin():
        s.add(Patient(code=code, display_name="Test Person"))


def test_add_list_and_login(run, home):
    status, out, err = run("user", "add", "Boss", "--role", "admin", "--password-stdin", stdin=GOOD + "\n")
    assert (status, err) == (0, [])
    assert out.strip() == "created user boss (admin)"
    _add_patient(home, "P-0042")
    status, out, _ = run("user", "add", "pat", "--role", "patient", "--patient", "P-0042", "--password-stdin",
                         stdin=OTHER_GOOD + "\r\n")
    assert status == 0 and "patient P-0042" in out

    status, out, _ = run("user", "list", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["username"], r["role"], r["patient"]) for r in records] == [("boss", "admin", None),
                                                                          ("pat", "patient", "P-0042")]
    assert all("hash" not in key for r in records for key in r)
    status, out, _ = run("user", "list")
    assert status == 0 and out.splitlines()[0].split() == ["USERNAME", "ROLE", "PATIENT", "STATUS", "LOGIN"]
    with _store(home) as store:
        assert authenticate(store, "pat", OTHER_GOOD).patient_id is not None  # "\r\n" was not part of it
        created = [e["username"] for e in accounts.recent_audit_events(store, actor=_admin(), limit=10)
                   if e["action"] == "user_created"]
    assert created and all(name.startswith("cli:") for name in created)


def _admin():
    from tracker.services.access import Actor

    return Actor(username="auditor", role="admin", user_id=None)


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (("user", "add", "pat", "--role", "patient", "--password-stdin"), GOOD, "needs --patient"),
    (("user", "add", "pat", "--role", "patient", "--patient", "NO", "--password-stdin"), GOOD, "no patient"),
    (("user", "add", "doc", "--role", "clinician", "--patient", "P-1", "--password-stdin"), GOOD, "only for"),
    (("user", "add", "doc", "--role", "clinician", "--password-stdin"), "short\n", "too short"),
    (("user", "add", "doc", "--role", "clinician", "--password-stdin"), "", "no password"),
    (("user", "add", "bad name", "--role", "clinician", "--password-stdin"), GOOD, "not allowed"),
    (("user", "passwd", "ghost", "--password-stdin"), GOOD, "no user"),
    (("user", "disable", "ghost"), None, "no user"),
])
def test_errors_give_one_stderr_line_and_status_1(run, home, argv, stdin, message):
    status, out, err = run(*argv, stdin=stdin)
    assert status == 1 and out == ""
    assert len(err) == 1 and err[0].startswith("tracker: ") and message in err[0]
    with _store(home) as store:
        assert accounts.list_users(store, actor=_admin()) == []


def test_password_prompt_must_match(run, monkeypatch):
    answers = iter([GOOD, GOOD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    status, _, err = run("user", "add", "doc", "--role", "clinician")
    assert status == 1 and "differ" in err[0]
    answers = iter([GOOD, GOOD])
    status, out, _ = run("user", "add", "doc", "--role", "clinician")
    assert status == 0 and "created user doc" in out


def test_external_identity_account_needs_no_password(run, home):
    status, _, _ = run("user", "add", "oidc.doc", "--role", "clinician", "--external-identity", "sub-77")
    assert status == 0
    status, out, _ = run("user", "list")
    assert "external" in out.splitlines()[1]


def test_passwd_disable_enable(run, home):
    run("user", "add", "boss", "--role", "admin", "--password-stdin", stdin=GOOD + "\n")
    run("user", "add", "doc", "--role", "clinician", "--password-stdin", stdin=GOOD + "\n")
    status, out, _ = run("user", "passwd", "DOC", "--password-stdin", stdin=OTHER_GOOD + "\n")
    assert status == 0 and out.strip() == "password changed for doc"
    status, _, _ = run("user", "disable", "doc")
    assert status == 0
    with _store(home) as store, pytest.raises(AuthenticationFailed):
        authenticate(store, "doc", OTHER_GOOD)
    status, out, _ = run("user", "list")
    assert "disabled" in next(line for line in out.splitlines() if line.startswith("doc"))
    status, _, err = run("user", "disable", "boss")
    assert status == 1 and err == ["tracker: refusing to disable the last enabled administrator"]
    assert run("user", "enable", "doc")[0] == 0
    with _store(home) as store:
        assert authenticate(store, "doc", OTHER_GOOD).username == "doc"


def test_audit_verify_and_log(run, home):
    run("user", "add", "boss", "--role", "admin", "--password-stdin", stdin=GOOD + "\n")
    run("user", "add", "doc", "--role", "clinician", "--password-stdin", stdin=GOOD + "\n")
    run("user", "disable", "doc")
    status, out, err = run("audit", "verify")
    assert (status, err) == (0, [])
    assert out.startswith("audit chain ok: 3 events, head ")

    status, out, _ = run("audit", "log", "--limit", "2", "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in events] == ["user_disabled", "user_created"]
    assert events[0]["id"] > events[1]["id"]
    status, out, _ = run("audit", "log")
    lines = out.splitlines()
    assert len(lines) == 4 and "audit_viewed" in lines[0] and "user_created" in lines[-1]

    with _store(home) as store, store.engine.begin() as conn:  # tamper with the second event
        conn.execute(text("UPDATE audit_events SET details = '{\"username\": \"eve\"}' WHERE id = 2"))
    status, out, err = run("audit", "verify")
    assert status == 1 and out == ""
    assert len(err) == 1 and err[0].startswith("tracker: audit chain broken: audit event id=2")


def test_audit_verify_finds_a_deleted_row(run, home):
    for name in ("boss", "doc1", "doc2"):
        run("user", "add", name, "--role", "admin", "--password-stdin", stdin=GOOD + "\n")
    with _store(home) as store, store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = 2"))
    status, _, err = run("audit", "verify")
    assert status == 1 and "id=3" in err[0]


@pytest.mark.parametrize("argv", [
    ("user",),
    ("user", "add", "x"),
    ("user", "add", "x", "--role", "root"),
    ("audit", "log", "--limit", "0"),
    ("audit", "log", "--limit", "many"),
])
def test_usage_errors_exit_2(parser, argv, capsys):
    with pytest.raises(SystemExit) as info:
        parser.parse_args(list(argv))
    assert info.value.code == 2
