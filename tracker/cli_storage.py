"""``tracker backup``, ``tracker restore`` and ``tracker scrub``: storage safety from the shell.

::

    tracker backup DIR [--home HOME]            write a verified backup folder (DIR must be new or empty)
    tracker restore DIR [--home HOME] [--force] verify DIR, then restore it as HOME
    tracker scrub [--home HOME]                 re-hash every blob, check every row that names one

Each command calls :mod:`tracker.store.backup`. ``backup`` and ``restore`` are recorded in the audit log
as ``cli:<os user>``. ``scrub`` prints one line per problem on stdout and exits 1 when there is any.
Errors print one line on stderr (``tracker: ...``) and exit 1; no traceback. Heavy modules are imported
inside the handlers, so ``tracker --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from tracker.cli_common import EXIT_BAD_INPUT as EXIT_ERROR
from tracker.cli_common import EXIT_OK, error_line, handled, open_store


def _cli_user() -> str:
    from tracker.services.access import Actor

    return Actor.system().username


@handled
def cmd_backup(args: argparse.Namespace) -> int:
    """Write a backup of the store to a new folder."""
    from tracker.store.backup import backup_store

    store = open_store(args.home)
    try:
        manifest = backup_store(store, args.dir, username=_cli_user())
    finally:
        store.close()
    size = sum(entry["size"] for entry in manifest.files.values())
    print(f"backup written to {args.dir}: {len(manifest.blobs)} blobs, {len(manifest.files)} files, "
          f"{size / 1e6:.1f} MB, {manifest.audit['events']} audit events, head {manifest.audit['head']}")
    return EXIT_OK


@handled
def cmd_restore(args: argparse.Namespace) -> int:
    """Verify a backup folder, then restore it as the store folder."""
    from tracker.config import Settings
    from tracker.store.restore import restore_store

    home = Settings.from_env(args.home).home
    result = restore_store(args.dir, home, force=args.force, username=_cli_user())
    kept = f"; the replaced store is kept in {result.replaced}" if result.replaced else ""
    print(f"restored {args.dir} into {result.home}: {result.blobs} blobs, "
          f"{result.table_rows.get('photos', 0)} photos{kept}")
    return EXIT_OK


@handled
def cmd_scrub(args: argparse.Namespace) -> int:
    """Re-hash every blob and check every row that names a blob."""
    from tracker.store.scrub import scrub_store

    store = open_store(args.home)
    try:
        report = scrub_store(store)
    finally:
        store.close()
    for key in report.corrupt:
        rows = ", ".join(str(ref) for ref in report.referenced_by.get(key, ())) or "no row"
        print(f"corrupt blob {key} (content no longer matches its hash; named by {rows})")
    for ref in report.missing:
        print(f"missing blob: {ref}")
    if not report.ok:
        error_line(f"scrub found {len(report.corrupt)} corrupt blob(s) and {len(report.missing)} row(s) "
                    "naming a missing blob; restore them from a backup")
        return EXIT_ERROR
    print(f"scrub ok: {report.checked} blobs verified, every row's blob present")
    return EXIT_OK


def register(sub: Any, home_help: str) -> None:
    """Add ``backup``, ``restore`` and ``scrub`` to the ``tracker`` parser's subparsers ``sub``."""
    p = sub.add_parser("backup", help="write a verified backup (database + blobs + manifest) to DIR")
    p.add_argument("dir", metavar="DIR", help="backup folder to create (must be new or empty)")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="verify the backup DIR, then restore it as the store folder")
    p.add_argument("dir", metavar="DIR", help="a folder written by `tracker backup`")
    p.add_argument("--home", help=home_help)
    p.add_argument("--force", action="store_true",
                   help="replace a non-empty store folder (the old one is kept as <home>.replaced-<time>)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("scrub", help="report corrupt blobs and rows naming a missing blob (exit 1 if any)")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_scrub)
