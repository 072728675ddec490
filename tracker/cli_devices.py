"""``tracker device ...``: device calibration profiles (the px/mm of a dermoscope at one zoom) from the shell.

::

    tracker device add NAME (--px-per-mm F | --ruler IMAGE [--tick-mm 1.0]) [--notes TEXT] [--json]
    tracker device list [--json] [--current]
    tracker device retire NAME|ID

``add`` measures a ruler photo (:func:`tracker.imaging.ruler.measure_ruler`) or takes the entered value;
``list`` prints a table, or with ``--json`` one JSON object per profile on its own line (JSON Lines).
A profile is then chosen at upload (``tracker import --device NAME``). Errors print one line on stderr
(``tracker: ...``) and exit 1. Run as the ``system`` actor, audited as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tracker.cli_common import EXIT_OK, emit_json, finite, handled, open_store, positive_float


def _actor() -> Any:
    from tracker.services.access import Actor

    return Actor.system()


def find_profile(store: Any, name_or_id: str, *, actor: Any) -> dict[str, Any]:
    """The profile (as listed) whose name, or id, is ``name_or_id``; NotFound otherwise."""
    from tracker.errors import NotFound
    from tracker.services.devices import list_device_profiles

    profiles = list_device_profiles(store, actor=actor)
    for profile in profiles:
        if profile["name"] == name_or_id or str(profile["id"]) == str(name_or_id).strip():
            return profile
    raise NotFound(f"no device profile called {name_or_id!r} (see `tracker device list`)")


@handled
def cmd_device_add(args: argparse.Namespace) -> int:
    """Create a device profile from an entered px/mm or a ruler photo."""
    from tracker.services.devices import create_device_profile

    store = open_store(args.home)
    ruler = Path(args.ruler).read_bytes() if args.ruler else None
    profile = create_device_profile(store, actor=_actor(), name=args.name, px_per_mm=args.px_per_mm,
                                    ruler_image=ruler, tick_spacing_mm=args.tick_mm, notes=args.notes)
    record = {"id": profile.id, "name": profile.name, "px_per_mm": profile.px_per_mm, "source": profile.source}
    if args.json:
        emit_json(finite(record))
    else:
        print(f"device profile {profile.id} {profile.name!r}: {profile.px_per_mm:.4f} px/mm ({profile.source})")
    return EXIT_OK


@handled
def cmd_device_list(args: argparse.Namespace) -> int:
    """List the device profiles."""
    from tracker.services.devices import list_device_profiles

    profiles = list_device_profiles(open_store(args.home), actor=_actor(), include_retired=not args.current)
    if args.json:
        for profile in profiles:
            emit_json(finite(profile))
        return EXIT_OK
    if not profiles:
        print("no device profiles yet: tracker device add NAME --ruler RULER.jpg")
    for p in profiles:
        state = " (retired)" if p["retired"] else ""
        print(f"{p['id']:>4}  {p['px_per_mm']:>10.4f} px/mm  {p['source']:<8} {p['name']}{state}")
    return EXIT_OK


@handled
def cmd_device_retire(args: argparse.Namespace) -> int:
    """Retire a device profile (kept for the photos that used it)."""
    from tracker.services.devices import retire_device_profile

    store = open_store(args.home)
    actor = _actor()
    profile = retire_device_profile(store, find_profile(store, args.profile, actor=actor)["id"], actor=actor)
    print(f"retired device profile {profile.id} {profile.name!r}")
    return EXIT_OK


def register(sub: Any, home_help: str) -> None:
    """Add ``tracker device`` and its subcommands to the top-level subparsers."""
    device = sub.add_parser("device", help="device calibration profiles (px/mm of a dermoscope at one zoom)")
    dsub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")

    p = dsub.add_parser("add", help="add a profile from a ruler photo or an entered px/mm")
    p.add_argument("name", metavar="NAME", help="e.g. 'DermLite DL4 + iPhone 14, 1x'")
    scale = p.add_mutually_exclusive_group(required=True)
    scale.add_argument("--px-per-mm", type=positive_float, help="the scale, entered")
    scale.add_argument("--ruler", metavar="IMAGE", help="photo of a millimetre ruler taken with the device")
    p.add_argument("--tick-mm", type=positive_float, default=1.0,
                   help="spacing of the ruler's finest ticks in mm (default 1; 0.5 for half-millimetre ticks)")
    p.add_argument("--notes", default="")
    p.add_argument("--json", action="store_true", help="print the new profile as JSON")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_device_add)

    p = dsub.add_parser("list", help="list the profiles")
    p.add_argument("--json", action="store_true", help="one JSON object per profile (JSON Lines)")
    p.add_argument("--current", action="store_true", help="leave out retired profiles")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_device_list)

    p = dsub.add_parser("retire", help="retire a profile (when the optics changed)")
    p.add_argument("profile", metavar="NAME|ID")
    p.add_argument("--home", help=home_help)
    p.set_defaults(func=cmd_device_retire)
