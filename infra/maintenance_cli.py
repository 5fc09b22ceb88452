"""`apica-pd maintenance FILE... [--at TIME]`: the maintenance windows open now and next.

A FILE is a stack file, or a routes file (`.json`: the windows the bridge runs with).
Per file, one line per window: open ones first (until when), then by their next
start; a one-off that is over says so. Times are in the window's own zone. Exit
status like validate: 0, or 1 when a file is invalid (its problems on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from contract.maintenance import Occurrence, WindowStatus
    from contract.routes_file import MaintenanceWindow


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "maintenance",
        help="list the maintenance windows open now and the next ones",
        description="List the maintenance windows of stack files or routes files (.json): "
        "the ones open now (until when) and the next occurrence of each. Exit status: 0, "
        "or 1 if a file is invalid.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="stack file(s) or routes file(s)")
    parser.add_argument("--at", type=_moment, metavar="TIME",
                        help="the moment to look from, ISO 8601 with an offset "
                             "(default: now), e.g. 2026-12-05T22:30+01:00")
    parser.set_defaults(handler=_maintenance)


def _moment(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-12-05T22:30+01:00)") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset or Z (e.g. +01:00)")
    return when


def _maintenance(args: argparse.Namespace) -> int:
    return maintenance_command(args.files, at=args.at)


def maintenance_command(files: Sequence[str], *, at: datetime | None = None,
                        out: TextIO | None = None, err: TextIO | None = None) -> int:
    from contract.maintenance import window_statuses
    from infra.messages import escape

    out, err = out or sys.stdout, err or sys.stderr
    when = at or datetime.now(UTC)
    bad = 0
    for path in files:
        windows = _windows(path, err)
        if windows is None:
            bad += 1
            continue
        statuses = window_statuses(windows, when)
        print(f"{escape(path)}: {_count(statuses)}", file=out)
        for line in render_statuses(statuses):
            print(f"  {escape(line)}", file=out)
    return 1 if bad else 0


def _windows(path: str, err: TextIO) -> list[tuple[str, MaintenanceWindow]] | None:
    """(route, window) pairs of a routes file or a stack file; None after saying why not."""
    from contract.errors import RoutesFileError
    from contract.routes_file import load_routes_file
    from infra.validate import check_file

    if path.endswith(".json"):
        try:
            routes = load_routes_file(path)
        except RoutesFileError as exc:
            print(exc, file=err)
            return None
        return [(name, window) for name, route in routes.routes.items()
                for window in route.maintenance]
    result = check_file(path)
    if result.stack is None:
        for problem in result.problems:
            print(problem, file=err)
        return None
    return [(key, window) for key, service in result.stack.services.items()
            if service.integration is not None
            for window in service.integration.maintenance]


def _count(statuses: Sequence[WindowStatus]) -> str:
    if not statuses:
        return "no maintenance windows"
    active = sum(status.open_now is not None for status in statuses)
    return (f"{len(statuses)} maintenance window{'s' * (len(statuses) != 1)}, "
            f"{active} open now")


def render_statuses(statuses: Iterable[WindowStatus]) -> list[str]:
    """One aligned line per window: route/window, state, times, the checks it covers."""
    from contract.maintenance import describe_scope

    rows = []
    for status in statuses:
        zone = status.window.time_zone
        if status.open_now is not None:
            state = f"OPEN until {_local(status.open_now.end, zone)} {zone}"
            if status.next is not None:
                state += f", next {_span(status.next, zone)}"
        elif status.next is not None:
            state = f"next {_span(status.next, zone)}"
        else:
            state = "over (one-off)"
        rows.append((f"{status.route}/{status.window.name}", state,
                     describe_scope(status.window)))
    width = max((len(name) for name, _, _ in rows), default=0)
    return [f"{name:<{width}}  {state}; {scope}" for name, state, scope in rows]


def _span(occurrence: Occurrence, zone: str) -> str:
    start, end = (_in_zone(when, zone) for when in (occurrence.start, occurrence.end))
    until = end.strftime("%H:%M") if end.date() == start.date() else _shown(end)
    return f"{_shown(start)} - {until} {zone}"


def _local(when: datetime, zone: str) -> str:
    return _shown(_in_zone(when, zone))


def _in_zone(when: datetime, zone: str) -> datetime:
    import zoneinfo

    return when.astimezone(zoneinfo.ZoneInfo(zone))


def _shown(when: datetime) -> str:
    return when.strftime("%a %Y-%m-%d %H:%M")
