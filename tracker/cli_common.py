"""What every ``tracker`` command shares: exit codes, the one-line error, opening the store.

Kept free of heavy imports: the command line starts fast, and each command imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
#: Bad input or a refused operation: one line on stderr, no traceback.
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2


def error_line(message: str) -> None:
    """Write ``tracker: <first line of message>`` to stderr."""
    first = message.splitlines()[0] if message else "error"
    sys.stderr.write(f"tracker: {first}\n")


def open_store(home: str | None) -> Any:
    """The store of ``home`` (or of ``TRACKER_HOME``)."""
    from tracker.config import Settings
    from tracker.store import Store

    return Store(Settings.from_env(home))


def handled(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command handler, turning the errors a user can cause into one stderr line and exit 1."""

    def run(args: argparse.Namespace) -> int:
        from tracker.errors import TrackerError

        try:
            return int(handler(args))
        except (TrackerError, ValueError, OSError) as exc:
            error_line(str(exc))
            return EXIT_BAD_INPUT
        except EOFError:
            error_line("no input given (standard input was closed)")
            return EXIT_BAD_INPUT

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run
