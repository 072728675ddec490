"""``tracker user ...`` and ``tracker audit ...``: accounts and the audit log from the shell.

::

    tracker user add USERNAME --role clinician|patient|admin [--patient CODE] [--password-stdin]
                              [--external-identity SUBJECT]
    tracker user list [--json]
    tracker user passwd USERNAME [--password-stdin]
    tracker user disable USERNAME
    tracker user enable USERNAME
    tracker audit verify
    tracker audit log [--limit N] [--json]

Whoever runs these has the server's files (and could read the database anyway): they act as the
``system`` actor, audited as ``cli:<os user>``. ``tracker user add NAME --role admin`` on an empty store
is how the first administrator is created from the shell. Passwords are read with ``getpass`` (typed
twice), or as one line of standard input with ``--password-stdin`` for scripts; never from arguments,
which other users of the machine can see in the process list.

Errors print one line on stderr (``tracker: ...``) and exit 1; ``audit verify`` exits 1 with one line
naming the first broken row when the chain is broken. Heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from tracker.cli_common import EXIT_BAD_INPUT as EXIT_ERROR
from tracker.cli_common import EXIT_OK, error_line, handled, open_store

# The same as tracker.store.models.ROLES (kept here so parsing needs no database import).
_ROLES = ("clinician", "patient", "admin")


def _system_actor() -> Any:
    from tracker.services.access import Actor

    return Actor.system()


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValueError("no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise ValueError("the two passwords differ")
    return first


# -------------------------------------------------------------------------------------------- user
@handled
def cmd_user_add(args: argparse.Namespace) -> int:
    """Create an account."""
    from tracker.accounts import create_user, find_patient_id, normalise_username

    if args.role == "patient" and not args.patient:
        raise ValueError("a patient account needs --patient CODE")
    if args.role != "patient" and args.patient:
        raise ValueError(f"--patient is only for patient accounts, not {args.role}")
    username = normalise_username(args.username)
    store = open_store(args.home)
    try:
        patient_id = find_patient_id(store, args.patient) if args.patient else None
        password = None
        if args.external_identity is None:
            password = _read_password(args)
        user = create_user(store, username=username, role=args.role, password=password, patient_id=patient_id,
                           external_identity=args.external_identity, actor=_system_actor())
    finally:
        store.close()
    link = f", patient {args.patient}" if args.patient else ""
    print(f"created user {user.username} ({user.role}{link})")
    return EXIT_OK


@handled
def cmd_user_list(args: argparse.Namespace) -> int:
    """List the accounts."""
    from tracker.accounts import list_users

    store = open_store(args.home)
    try:
        users = list_users(store, actor=_system_actor())
    finally:
        store.close()
    if args.json:
        for u in users:
            record = {"username": u.username, "role": u.role, "patient": u.patient_code,
                      "has_password": u.has_password, "external_identity": u.external_identity,
                      "disabled": u.disabled, "failed_logins": u.failed_logins,
                      "locked_until": u.locked_until.isoformat() if u.locked_until else None,
                      "created_at": u.created_at.isoformat()}
            sys.stdout.write(json.dumps(record) + "\n")
        return EXIT_OK
    if not users:
        print("no accounts (create the first administrator with: tracker user add NAME --role admin)")
        return EXIT_OK
    rows = [("USERNAME", "ROLE", "PATIENT", "STATUS", "LOGIN")]
    for u in users:
        status = "disabled" if u.disabled else "active"
        if u.locked_until is not None:
            status += f", locked until {u.locked_until:%Y-%m-%d %H:%M:%S} UTC"
        login = "password" if u.has_password else ("external" if u.external_identity else "none yet")
        rows.append((u.username, u.role, u.patient_code or "-", status, login))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return EXIT_OK


@handled
def cmd_user_passwd(args: argparse.Namespace) -> int:
    """Set a user's password (an administrator's reset: also clears a lock)."""
    from tracker.accounts import set_password

    store = open_store(args.home)
    try:
        password = _read_password(args)
        set_password(store, args.username, password, actor=_system_actor())
    finally:
        store.close()
    print(f"password changed for {args.username.strip().lower()}")
    return EXIT_OK


@handled
def cmd_user_disable(args: argparse.Namespace) -> int:
    """Disable an account."""
    from tracker.accounts import disable_user

    store = open_store(args.home)
    try:
        disable_user(store, args.username, actor=_system_actor())
    finally:
        store.close()
    print(f"disabled {args.username.strip().lower()}")
    return EXIT_OK


@handled
def cmd_user_enable(args: argparse.Namespace) -> int:
    """Enable a disabled account."""
    from tracker.accounts import enable_user

    store = open_store(args.home)
    try:
        enable_user(store, args.username, actor=_system_actor())
    finally:
        store.close()
    print(f"enabled {args.username.strip().lower()}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------- audit
@handled
def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the hash chain of the audit log."""
    from tracker.accounts import verify_audit

    store = open_store(args.home)
    try:
        check = verify_audit(store, actor=_system_actor())
    finally:
        store.close()
    if not check.ok:
        error_line(f"audit chain broken: {check.problem}")
        return EXIT_ERROR
    print(f"audit chain ok: {check.events} events, head {check.head}")
    return EXIT_OK


@handled
def cmd_audit_log(args: argparse.Namespace) -> int:
    """Print the newest audit events, newest first."""
    from tracker.accounts import recent_audit_events

    store = open_store(args.home)
    try:
        events = recent_audit_events(store, actor=_system_actor(), limit=args.limit)
    finally:
        store.close()
    for event in events:
        if args.json:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            continue
        target = f" {event['object_type']}:{event['object_id']}" if event["object_type"] else ""
        details = f" {json.dumps(event['details'], ensure_ascii=False)}" if event["details"] else ""
        print(f"{event['id']:>6}  {event['at']}  {event['username']}  {event['action']}{target}{details}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# ------------------------------------------------------------------------------------------ parser
def register(sub: Any, home_help: str) -> None:
    """Add the ``user`` and ``audit`` commands to the ``tracker`` parser's subparsers ``sub``."""
    user = sub.add_parser("user", help="manage accounts (add, list, passwd, disable, enable)")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    p = actions.add_parser("add", help="create an account (the first admin too)")
    p.add_argument("username", metavar="USERNAME")
    p.add_argument("--role", required=True, choices=_ROLES)
    p.add_argument("--patient", metavar="CODE", help="patient code (required for --role patient)")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line of stdin")
    p.add_argument("--external-identity", metavar="SUBJECT",
                   help="identity-provider subject of this account (then no password is set)")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_user_add)

    p = actions.add_parser("list", help="list the accounts")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_user_list)

    p = actions.add_parser("passwd", help="set a user's password (also unlocks the account)")
    p.add_argument("username", metavar="USERNAME")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line of stdin")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_user_passwd)

    for name, func, text in (("disable", cmd_user_disable, "disable an account"),
                             ("enable", cmd_user_enable, "enable a disabled account")):
        p = actions.add_parser(name, help=text)
        p.add_argument("username", metavar="USERNAME")
        p.add_argument("--home", help=home_help)
        p.set_defaults(func=func)

    audit = sub.add_parser("audit", help="check or read the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = actions.add_parser("verify", help="check the hash chain (exit 1 naming the first broken row)")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_audit_verify)
    p = actions.add_parser("log", help="the newest events, newest first")
    p.add_argument("--limit", type=_positive_int, default=50, help="how many events (default 50)")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_audit_log)
