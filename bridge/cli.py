"""The bridge's commands: `apica-pd <command>`, or `python -m bridge <command>` on its own.

`register` adds them to a dispatcher (`apica-pd`); `main` runs them without one, so
the relay ships without the rest of the product. Heavy imports stay inside handlers.

To add a subcommand: write `add_<name>(subparsers)` and list it in `COMMANDS`.
`add_config_arguments` / `config_from_args` give any command the bridge's settings
(`--config`, `--routes`, `--data-dir`, env `APICA_PD_*`).

Exit codes, the same for every command: 0 done; 1 done, but something did not go
through (a test event refused, dead letters not found); 2 could not run (a bad
setting or file, no outbox or one that cannot be read or written, with one line on
stderr saying which); 130 interrupted; 141 the reader of the output went away
(`| head`), as for a command killed by SIGPIPE. Commands that only look at the outbox
open it read-only: nothing is created, migrated or written, so they work on a full
disk and without write access.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
EXIT_OUTPUT_CLOSED = 128 + 13  # SIGPIPE


def _handler(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`command` as a subcommand's handler: output closed early is an exit, not a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            code = command(args)
            sys.stdout.flush()  # a pipe is block-buffered: the last write happens here
        except BrokenPipeError:
            _drop_stdout()
            return EXIT_OUTPUT_CLOSED
        return code

    return run


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's own flush at exit cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config file (default: $APICA_PD_CONFIG)")
    parser.add_argument("--routes", metavar="FILE", dest="routes_file",
                        help="routes file (default: $APICA_PD_ROUTES_FILE or routes.json)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="SQLite outbox directory (default: $APICA_PD_DATA_DIR or "
                             "var/bridge; $APICA_PD_STORE_URL names a PostgreSQL outbox "
                             "instead)")


def config_from_args(args: argparse.Namespace, **extra: object):  # -> BridgeConfig
    from bridge.config import load_config

    overrides = {
        "routes_file": getattr(args, "routes_file", None),
        "data_dir": getattr(args, "data_dir", None),
        **extra,
    }
    return load_config(env=os.environ, config_file=args.config, overrides=overrides)


def add_serve(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the bridge: ASM webhooks in, PagerDuty events out",
        description="Run the bridge. Credentials come from APICA_PD_TOKENS, "
                    "APICA_PD_BASIC_AUTH or APICA_PD_CREDENTIALS_FILE, never from flags.",
    )
    add_config_arguments(parser)
    parser.add_argument("--host", dest="listen_host", metavar="HOST",
                        help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", dest="listen_port", metavar="PORT", type=int,
                        help="listen port (default 8080; 0 picks a free one)")
    parser.add_argument("--events-url", metavar="URL",
                        help="PagerDuty Events API URL (default: US events.pagerduty.com)")
    parser.set_defaults(handler=_handler(_serve))


def add_asm_setup(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "asm-setup", help="print the ASM Custom webhook target for each route",
    )
    add_config_arguments(parser)
    parser.add_argument("--public-url", help="the bridge URL as ASM reaches it "
                                             "(default: $APICA_PD_PUBLIC_URL or listen address)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--reveal", action="store_true",
                        help="print the token or password in full (default: last 4 only)")
    parser.set_defaults(handler=_handler(_asm_setup))


def add_outbox(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "outbox", help="show events waiting for PagerDuty, per route",
        description="Pending events per route: count, age of the oldest, attempts, last error.",
    )
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_handler(_outbox))


def add_dead_letters(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dead-letters", help="list or re-drive events PagerDuty refused",
    )
    actions = parser.add_subparsers(dest="dead_letters_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list dead letters with PagerDuty's message")
    add_config_arguments(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_handler(_dead_letters_list))
    redrive = actions.add_parser(
        "redrive", help="queue dead letters again, behind what is pending on their key",
    )
    add_config_arguments(redrive)
    redrive.add_argument("ids", nargs="*", type=int, metavar="ID")
    redrive.add_argument("--all", action="store_true", help="re-drive every dead letter")
    redrive.set_defaults(handler=_handler(_dead_letters_redrive))


def add_unclaimed(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "unclaimed", help="list webhooks refused because no route claims their check",
        description="Webhooks to /v1/asm that no route claimed (answered 422 unrouted), "
                    "newest last, with the check and the start of the body: add the check "
                    "to a service in a stack file (check id, GUID or tag), or set a catch-all.",
    )
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_handler(_unclaimed))


def add_store(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store", help="the outbox's schema (SQLite or PostgreSQL)",
        description="The outbox named by --data-dir, or by APICA_PD_STORE_URL "
                    "(postgresql://...).",
    )
    actions = parser.add_subparsers(dest="store_action", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate", help="bring the outbox's schema up to this bridge's version",
        description="Create the outbox or bring its schema up to this bridge's version "
                    "(the bridge also does it when it starts); a schema newer than this "
                    "bridge knows is refused and left as it is.",
    )
    add_config_arguments(migrate)
    migrate.set_defaults(handler=_handler(_store_migrate))


def add_test_route(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test-route", help="send a test trigger, then its resolve, through a route",
        description="Sends one trigger and its resolve to the route's PagerDuty service "
                    "with the bridge's own sender, and prints what PagerDuty answered. "
                    "The incident opens and closes at once (default severity I: info, "
                    "low urgency).",
    )
    parser.add_argument("route", metavar="ROUTE", help="route name in the routes file")
    add_config_arguments(parser)
    parser.add_argument("--events-url", help="PagerDuty Events API URL")
    parser.add_argument("--severity", choices=("F", "E", "W", "I"), default="I",
                        help="ASM severity of the test trigger (default I)")
    parser.set_defaults(handler=_handler(_test_route))


# Order is the order of `apica-pd --help`.
COMMANDS = (add_serve, add_asm_setup, add_outbox, add_dead_letters, add_unclaimed,
            add_store, add_test_route)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this part's subcommands; each sets `handler=` returning an exit code."""
    for add in COMMANDS:
        add(subparsers)


def main(argv: Sequence[str] | None = None, *, default_command: str | None = None) -> int:
    """Run one of the bridge's commands; `default_command` when `argv` names none."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge",
        description="The Apica ASM -> PagerDuty relay. Without a command: serve.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(subparsers)
    args = list(sys.argv[1:] if argv is None else argv)
    named = bool(args) and (args[0] in subparsers.choices or args[0] in ("-h", "--help"))
    if default_command and not named:
        args.insert(0, default_command)
    parsed = parser.parse_args(args)
    try:
        return int(parsed.handler(parsed) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _serve(args: argparse.Namespace) -> int:
    from bridge.listen_socket import InheritedSocketError, bind_early, inherited

    # Before the settings (and pydantic) are loaded: see bridge.listen_socket.
    try:
        early = (inherited(os.environ, os.getpid())
                 or bind_early(args.listen_host, args.listen_port, os.environ))
    except InheritedSocketError as exc:
        print(f"apica-pd serve: {exc}", file=sys.stderr)
        return 2
    from bridge.errors import ConfigError
    from bridge.logs import configure_logging
    from bridge.serve import run

    try:
        config = config_from_args(args, listen_host=args.listen_host,
                                  listen_port=args.listen_port, events_url=args.events_url)
    except ConfigError as exc:
        if early is not None:
            early.sock.close()
        print(f"apica-pd serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    return run(config, early=early)


def _asm_setup(args: argparse.Namespace) -> int:
    from bridge.asm_setup import render_json, render_text, setup_notes, target_setups
    from bridge.errors import ConfigError
    from bridge.intake.auth import credentials_from_env, load_credentials_file
    from contract.errors import RoutesFileError
    from contract.routes_file import load_routes_file

    try:
        config = config_from_args(args, public_url=args.public_url)
        from_env = credentials = credentials_from_env(os.environ)
        if config.credentials_file is not None:
            credentials = credentials.merged(load_credentials_file(config.credentials_file))
        routes = load_routes_file(config.routes_file)
    except (ConfigError, RoutesFileError) as exc:
        print(f"apica-pd asm-setup: {exc}", file=sys.stderr)
        return 2
    setups = target_setups(routes, config.bridge_url, credentials, config.token_header,
                           reveal=args.reveal)
    notes = setup_notes(from_env, config.credentials_file, config.bridge_url,
                        public_url_given=config.public_url is not None, reveal=args.reveal)
    for warning in notes.warnings:  # also on stderr: stdout may go straight to a file
        print(f"apica-pd asm-setup: {warning}", file=sys.stderr)
    render = render_json if args.format == "json" else render_text
    sys.stdout.write(render(setups, notes))
    return 0


# -- delivery side: outbox, dead letters, test-route --------------------------------


def _from_store(args: argparse.Namespace, command: str, read: Callable[[Any], T], *,
                writes: bool = False, creates: bool = False) -> T | None:
    """`read(store)` on the outbox (`--data-dir`, or APICA_PD_STORE_URL), read-only unless
    it `writes`; None once it said in one line why it could not."""
    from bridge.errors import ConfigError, StoreError
    from bridge.store.location import open_store, scrub, store_errors

    try:
        location = config_from_args(args).store
    except ConfigError as exc:
        return _cannot(command, str(exc))
    if not (creates or location.exists()):
        # Inspecting must not create an empty store somewhere unexpected.
        return _cannot(command, f"no outbox at {location.shown} (wrong --data-dir?)")
    try:
        with open_store(location, read_only=not writes) as store:
            return read(store)
    except StoreError as exc:
        return _cannot(command, str(exc))
    except store_errors() as exc:  # a full disk, no access, a damaged file, no database
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        why = scrub(" ".join(str(why).split()), location.url) if location.url else why
        return _cannot(command, f"cannot {'change' if writes else 'read'} the outbox at "
                                f"{location.shown}: {why}")


def _cannot(command: str, why: str) -> None:
    print(f"apica-pd {command}: {why}", file=sys.stderr)
    return None


def _print_listing(args: argparse.Namespace, rows: list[dict[str, Any]], none: str,
                   text: Callable[[dict[str, Any]], str]) -> int:
    """The rows as JSON (--json), else `text(row)` each, or `none` when there are none."""
    import json

    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print("\n".join(text(row) for row in rows) if rows else none)
    return 0


def _utc(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _age(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _outbox(args: argparse.Namespace) -> int:
    import json
    import time

    from contract.redact import last4, mask_keys

    found = _from_store(args, "outbox", lambda store: (
        store.backlog(), store.stats(), len(store.unclaimed()), len(store.stale_alerts()),
        store.open_incidents(), store.route_problems(), store.held_alerts()))
    if found is None:
        return 2
    backlog, stats, unclaimed, stale, incidents, problems, held = found
    keys = _key_uses(args, incidents)
    now = time.time()
    if args.json:
        print(json.dumps({
            "pending": stats.pending,
            "oldest_pending_age_seconds": round(stats.oldest_pending_age_seconds, 3),
            "dead_letters": stats.dead_letters,
            "unclaimed": unclaimed,
            "stale_alerts": stale,
            "routes": [{"route": b.route, "pending": b.pending,
                        "oldest_age_seconds": round(now - b.oldest_created_at, 3),
                        "max_attempts": b.max_attempts, "last_error": b.last_error}
                       for b in backlog],
            "keys": [{"route": k.route, "routing_key": last4(k.routing_key), "role": k.role,
                      "open_incidents": k.open_incidents} for k in keys],
            "route_problems": [{"route": p.route, "reason": p.reason, "count": p.count,
                                "last_at": _utc(p.last_at), "message": mask_keys(p.message)}
                               for p in problems],
            "held_alerts": [_held_row(h) for h in held],
        }, indent=2))
        return 0
    print(f"pending {stats.pending}, oldest {_age(stats.oldest_pending_age_seconds)}, "
          f"dead letters {stats.dead_letters}, unclaimed webhooks {unclaimed}, "
          f"stale alerts {stale}")
    if backlog:
        print(f"{'ROUTE':<24} {'PENDING':>8} {'OLDEST':>8} {'ATTEMPTS':>8}  LAST ERROR")
        for b in backlog:
            print(f"{b.route:<24} {b.pending:>8} {_age(now - b.oldest_created_at):>8} "
                  f"{b.max_attempts:>8}  {b.last_error or '-'}")
    if keys:
        print(f"{'ROUTE':<24} {'KEY':>8} {'ROLE':>11} {'OPEN':>5}  INCIDENTS OPENED THROUGH IT")
        for k in keys:
            print(f"{k.route:<24} {last4(k.routing_key):>8} {k.role:>11} "
                  f"{k.open_incidents:>5}  {_key_advice(k.role, k.open_incidents)}".rstrip())
    for p in problems:
        print(f"problem on route {p.route}: {p.reason} x{p.count}, last {_utc(p.last_at)}: "
              f"{mask_keys(p.message)}")
    for row in map(_held_row, held):
        print(f"held by maintenance window {row['window']}: route {row['route']} check "
              f"{row['check']}: {row['action']} {row['severity']}, held since "
              f"{row['held_since']} (sent when the window ends)")
    return 0


def _held_row(held: Any) -> dict[str, Any]:
    """A held alert (`bridge.store.records.HeldAlert`) as the outbox command shows it."""
    alert = held.alert.get("alert", {})
    return {"route": held.route, "check": held.check_key, "window": held.window,
            "action": alert.get("action"), "severity": alert.get("severity"),
            "held_since": _utc(held.held_at)}


def _key_advice(role: str, open_incidents: int) -> str:
    if role == "previous":
        return "safe to forget" if open_incidents == 0 else "keep until they close"
    if role == "not listed" and open_incidents:
        return "resolve them in PagerDuty by hand"
    return ""


def _key_uses(args: argparse.Namespace, incidents: list[Any]) -> list[Any]:
    """The routes file's keys with the incidents open on each; without a readable routes
    file, the incidents' keys alone (role `unknown`)."""
    from bridge.delivery.targets import key_uses
    from bridge.errors import ConfigError
    from contract.errors import RoutesFileError
    from contract.routes_file import load_routes_file

    try:
        routes = load_routes_file(config_from_args(args).routes_file)
    except (ConfigError, RoutesFileError):
        routes = None
    return key_uses(routes, incidents)


def _dead_letters_list(args: argparse.Namespace) -> int:
    from contract.redact import last4

    letters = _from_store(args, "dead-letters", lambda store: store.dead_letters())
    if letters is None:
        return 2
    rows = [{"id": d.id, "route": d.route, "routing_key": last4(d.routing_key),
             "action": d.action, "dedup_key": d.dedup_key, "status": d.status,
             "reason": d.reason, "message": d.message, "attempts": d.attempts,
             "dead_at": _utc(d.dead_at)}
            for d in letters]
    return _print_listing(args, rows, "no dead letters", lambda row: (
        f"#{row['id']} {row['dead_at']} route={row['route']} key={row['routing_key']} "
        f"{row['action']} {row['dedup_key']}\n"
        f"    {row['status'] or '-'} {row['reason']}: {row['message'] or '-'}"))


def _unclaimed(args: argparse.Namespace) -> int:
    found = _from_store(args, "unclaimed", lambda store: store.unclaimed())
    if found is None:
        return 2
    rows = [{"id": u.id, "received_at": _utc(u.received_at), "check_id": u.check_id,
             "check_guid": u.check_guid, "check_name": u.check_name, "severity": u.severity,
             "action": u.action, "body": u.body, "body_bytes": u.body_bytes}
            for u in found]
    return _print_listing(args, rows, "no unclaimed webhooks", _unclaimed_text)


def _unclaimed_text(row: dict[str, Any]) -> str:
    body = " ".join(row["body"].split())
    return (f"#{row['id']} {row['received_at']} check_id={row['check_id'] or '-'} "
            f"guid={row['check_guid'] or '-'} name={row['check_name']!r} "
            f"{row['action']} {row['severity']}\n"
            f"    body ({row['body_bytes']} bytes): {body[:200]}"
            + ("…" if len(body) > 200 else ""))


def _dead_letters_redrive(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all):
        print("apica-pd dead-letters redrive: give dead letter IDs or --all (not both)",
              file=sys.stderr)
        return 2
    done = _from_store(args, "dead-letters",
                       lambda store: store.redrive(None if args.all else args.ids), writes=True)
    if done is None:
        return 2
    print(f"re-drove {len(done)} dead letter(s)" + (f": {', '.join(map(str, done))}"
                                                     if done else ""))
    missing = sorted(set(args.ids) - set(done))
    if missing:
        print(f"not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    return 0


def _store_migrate(args: argparse.Namespace) -> int:
    found = _from_store(args, "store migrate", lambda store: (store.where, store.migrated),
                        writes=True, creates=True)
    if found is None:
        return 2
    where, (before, now) = found
    print(f"outbox {where}: schema version {now}" + (
        f" (upgraded from {before})" if before != now else " (already current)"))
    return 0


def _test_route(args: argparse.Namespace) -> int:
    import uuid
    from datetime import UTC, datetime

    from bridge.delivery.sender import Delivered, Sender
    from bridge.errors import ConfigError
    from bridge.intake.asm import AsmAlert
    from bridge.intake.escalation import dedup_key, urgency_class
    from bridge.intake.events import build_event, check_event
    from contract.errors import RoutesFileError
    from contract.redact import last4
    from contract.routes_file import load_routes_file

    try:
        config = config_from_args(args, events_url=args.events_url)
        routes = load_routes_file(config.routes_file)
    except (ConfigError, RoutesFileError) as exc:
        print(f"apica-pd test-route: {exc}", file=sys.stderr)
        return 2
    route = routes.routes.get(args.route)
    if route is None:
        print(f"apica-pd test-route: no route {args.route!r} in {config.routes_file} "
              f"(routes: {', '.join(sorted(routes.routes)) or 'none'})", file=sys.stderr)
        return 2
    run_id = uuid.uuid4().hex[:8]
    alert = AsmAlert(
        action="trigger", severity=args.severity, old_severity=None, check_id=None,
        check_guid=None, check_name=f"apica-pd test-route {run_id}", check_type=None,
        message="Test event from apica-pd test-route; it is resolved right away.",
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), location=None,
        groups=(), tags={}, result_guid=None,
    )
    urgency = urgency_class(route.severity_map[args.severity])
    key = dedup_key(args.route, alert.check_key, urgency)
    print(f"route {args.route} -> {route.service_name} ({route.service_id}), routing key "
          f"{last4(route.routing_key.get_secret_value())}, {config.events_url}")
    sender = Sender(config.events_url)
    ok = True
    try:
        for action in ("trigger", "resolve"):
            event = build_event(alert, args.route, route, action=action, dedup_key=key,
                                asm_base_url=config.asm_base_url)
            problems = check_event(event)
            if problems:
                print(f"{action:<8} not sent: {'; '.join(problems)}")
                return 1
            outcome = sender.send(event)
            status = getattr(outcome, "status", None) or "-"
            if isinstance(outcome, Delivered):
                print(f"{action:<8} {key}  delivered ({status} {outcome.message})".rstrip())
            else:
                ok = False
                print(f"{action:<8} {key}  FAILED ({status} {outcome.reason}: "
                      f"{outcome.message or '-'})")
                if action == "trigger":
                    break  # no resolve for a trigger PagerDuty did not take
    finally:
        sender.close()
    return 0 if ok else 1
