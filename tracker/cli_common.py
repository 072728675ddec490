"""What every ``tracker`` command shares: exit codes, the one-line error, opening the store.

Kept free of heavy imports: the command line starts fast, and each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import math
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


# ---------------------------------------------------------------------------- JSON output, argument types
def emit_json(obj: dict[str, Any]) -> None:
    """Write ``obj`` as one line of JSON on stdout (JSON Lines) and flush."""
    sys.stdout.write(json.dumps(obj, allow_nan=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf), also inside dicts and lists, made None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def parse_polygon(text: str) -> list[tuple[float, float]]:
    """argparse type: ``'x,y;x,y;x,y'`` as a list of (x, y) points (at least 3)."""
    try:
        points = [tuple(float(v) for v in pair.split(",")) for pair in text.split(";") if pair.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad polygon {text!r}: use 'x,y;x,y;x,y'") from exc
    if len(points) < 3 or any(len(p) != 2 for p in points):
        raise argparse.ArgumentTypeError("a polygon needs at least 3 'x,y' points separated by ';'")
    return points  # type: ignore[return-value]


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def write_mask(path: str, mask: Any) -> bool:
    """Write a (H, W) bool mask as an 8-bit image (255 = True; format from the file name).

    Returns False, after one line on stderr, when it cannot be written.
    """
    import numpy as np
    from PIL import Image

    try:
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(path)
    except (OSError, ValueError) as exc:
        error_line(f"{path}: could not write the mask ({exc})")
        return False
    return True
