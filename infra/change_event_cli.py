"""`apica-pd change-event`: tell PagerDuty, on each service, what a stack change changed.

    apica-pd change-event [FILE] --base REV [--head REV] --routes ROUTES
                          --commit-url URL [--events-url URL] [--dry-run]

Compares FILE (default `stacks/<the routes file's stack>.yaml`) at two git revisions
like `apica-pd diff`, and sends one change event (Events API v2, which opens no
incident) to each service whose wiring changed, with the routing key the routes file
holds for it. Keys are never printed. Exit status: 0 every event taken (or nothing to
send), 1 bad input or an event PagerDuty did not take (one line each, the others are
still sent), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from infra.errors import InfraError

DEFAULT_CHANGE_EVENTS_URL = "https://events.pagerduty.com/v2/change/enqueue"


class ChangeEventInputError(InfraError):
    """Input that keeps any event from being sent; `str()` says which and what to do."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `apica-pd change-event`."""
    parser = subparsers.add_parser(
        "change-event",
        help="send a PagerDuty change event to each service a stack change rewired",
        description="Compare a stack file at two git revisions and send a PagerDuty change "
        "event (Events API v2 /v2/change/enqueue; it opens no incident) to each service "
        "whose wiring changed, with the routing keys of the routes file. Exit status: 0 "
        "sent (or nothing to send), 1 bad input or an event not taken, 2 usage.",
    )
    parser.add_argument(
        "file", nargs="?", metavar="FILE",
        help="stack file (default: stacks/<stack of the routes file>.yaml)",
    )
    parser.add_argument("--base", required=True, metavar="REV", help="the revision before")
    parser.add_argument(
        "--head", metavar="REV", help="the revision after (default: the working tree)"
    )
    parser.add_argument(
        "--routes", required=True, metavar="ROUTES",
        help="the routes file (`apica-pd routes pull`): the services' routing keys",
    )
    parser.add_argument(
        "--commit-url", required=True, metavar="URL", help="link to the commit, on every event"
    )
    parser.add_argument(
        "--events-url", default=DEFAULT_CHANGE_EVENTS_URL, metavar="URL",
        help=f"change events endpoint (default {DEFAULT_CHANGE_EVENTS_URL}; EU: "
        "https://events.eu.pagerduty.com/v2/change/enqueue; or the sandbox's)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the events (keys hidden), send nothing"
    )
    parser.set_defaults(handler=run_change_event)


def run_change_event(
    args: argparse.Namespace,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    from contract.errors import ApicaError
    from infra.messages import escape_lines

    out, err = out or sys.stdout, err or sys.stderr
    try:
        return _run(args, now(), out, err)
    except ApicaError as exc:
        print(escape_lines(f"apica-pd change-event: {exc}"), file=err)
        return 1


def _run(args: argparse.Namespace, now: datetime, out: TextIO, err: TextIO) -> int:
    import json

    from contract.errors import RoutesFileError
    from contract.routes_file import Link, load_routes_file
    from infra.change_events import (
        ChangeEventError,
        ChangeEventSender,
        change_event,
        wiring_changes,
    )
    from infra.diff import diff_stacks
    from infra.diff_cli import load_side, read_revision, read_worktree
    from infra.messages import escape

    try:
        Link(href=args.commit_url, text="commit")
    except ValueError:
        raise ChangeEventInputError(
            "--commit-url must be an http(s) URL without spaces, e.g. "
            "https://github.com/org/repo/commit/<sha>"
        ) from None
    try:
        routes = load_routes_file(args.routes)
    except RoutesFileError as exc:
        raise ChangeEventInputError(f"the routes file cannot be used: {exc}") from None
    file = args.file or str(Path("stacks") / f"{routes.stack}.yaml")
    old = read_revision(file, args.base)
    new = read_revision(file, args.head) if args.head is not None else read_worktree(file)
    old_stack, _ = load_side(old)
    new_stack, _ = load_side(new)
    # A stack file that is gone rewires nothing (CI stops managing the stack).
    changes = (
        [] if new_stack is None else wiring_changes(diff_stacks(old_stack, new_stack), new_stack)
    )
    head = f"{file}: {old.label} -> {new.label}"
    if not changes:
        print(escape(f"{head}: no service's wiring changed; no change events"), file=out)
        return 0
    print(escape(f"{head}: {len(changes)} service(s) rewired"), file=out)
    sender = ChangeEventSender(args.events_url)
    failed = 0
    for wiring in changes:
        route = routes.routes.get(wiring.route)
        if route is None:
            print(escape(f"  {wiring.route}: no routing key in {args.routes} (no Apica "
                         "integration): no change event"), file=out)
            continue
        event = change_event(
            route.routing_key.get_secret_value(), wiring, stack=routes.stack, file=file,
            commit_url=args.commit_url, now=now,
        )
        if args.dry_run:
            shown = {**event, "routing_key": "[secret]"}
            print(json.dumps(shown, indent=2, ensure_ascii=True), file=out)
            continue
        try:
            sender.send(event)
        except ChangeEventError as exc:
            failed += 1
            print(escape(f"apica-pd change-event: {wiring.route}: {exc}"), file=err)
            continue
        print(escape(f"  {wiring.route}: change event taken: {event['payload']['summary']}"),
              file=out)
    return 1 if failed else 0

