"""`apica-pd sandbox ...`: run the PagerDuty or the ASM sandbox, look at incidents.

    apica-pd sandbox serve [--host 127.0.0.1] [--port 0] [--token T] [--events-per-minute N]
                           [--rest-requests-per-minute N] [--seed FILE]
    apica-pd sandbox serve-asm [--host 127.0.0.1] [--port 0] [--auth-ticket T] [--seed FILE]
    apica-pd sandbox incidents --url URL [--json] [--status S]

`serve` and `serve-asm` print their URL as the first line of standard output
(scripts read it), then run until SIGTERM or SIGINT. Heavy imports stay inside the
handlers.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `sandbox serve` and `sandbox incidents`."""
    parser = subparsers.add_parser(
        "sandbox", help="a local PagerDuty (Events API v2 + REST subset) for demos and tests"
    )
    commands = parser.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the sandbox until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    serve.add_argument("--token", help="REST API token to accept (default: a generated one)")
    serve.add_argument(
        "--events-per-minute",
        type=int,
        default=120,
        help="Events API limit per routing key; 0 turns the limit off (default 120)",
    )
    serve.add_argument(
        "--rest-requests-per-minute",
        type=int,
        default=960,
        help="REST API limit per token, as PagerDuty's; 0 turns it off (default 960)",
    )
    serve.add_argument(
        "--seed", metavar="FILE", help="JSON seed: users, schedules, teams, ... (docs/sandbox.md)"
    )
    serve.set_defaults(handler=run_serve)

    asm = commands.add_parser(
        "serve-asm", help="run the ASM sandbox (a fake ASM REST API v3) until SIGTERM/SIGINT"
    )
    asm.add_argument("--host", default="127.0.0.1")
    asm.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    asm.add_argument(
        "--auth-ticket", help="the auth_ticket to accept (default: a generated one)"
    )
    asm.add_argument(
        "--seed", metavar="FILE", help='JSON seed: {"checks": [...]} (docs/asm.md)'
    )
    asm.set_defaults(handler=run_serve_asm)

    incidents = commands.add_parser("incidents", help="show a running sandbox's incidents")
    incidents.add_argument("--url", required=True, help="the sandbox's URL, as `serve` printed")
    incidents.add_argument("--json", action="store_true", help="print JSON instead of a table")
    incidents.add_argument("--status", choices=("triggered", "acknowledged", "resolved"))
    incidents.set_defaults(handler=run_incidents)


def run_serve(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    from contract.redact import last4
    from sandbox.seed import apply_seed
    from sandbox.server import PagerDutySandbox

    sandbox = PagerDutySandbox(
        args.host,
        args.port,
        token=args.token,
        events_per_minute=args.events_per_minute or None,
        rest_requests_per_minute=args.rest_requests_per_minute or None,
    )
    origin = "from --token" if args.token else "generated; pass --token to choose one"
    return _serve(
        sandbox, args, lambda doc: apply_seed(sandbox.state, doc),
        lambda: [f"REST API token {last4(sandbox.token)} ({origin})",
                 f"Events API: {sandbox.events_url}"],
        stop,
    )


def run_serve_asm(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    from contract.redact import last4
    from sandbox.asm_api import AsmSandbox
    from sandbox.asm_control import apply_asm_seed

    sandbox = AsmSandbox(args.host, args.port, auth_ticket=args.auth_ticket)
    origin = ("from --auth-ticket" if args.auth_ticket
              else "generated; pass --auth-ticket to choose one")
    return _serve(
        sandbox, args, lambda doc: apply_asm_seed(sandbox.state, doc),
        lambda: [f"ASM API: {sandbox.api_url}",
                 f"auth_ticket {last4(sandbox.auth_ticket)} ({origin})"],
        stop,
    )


def _serve(
    sandbox: Any,
    args: argparse.Namespace,
    seed: Callable[[Any], object],
    lines: Callable[[], list[str]],
    stop: threading.Event | None,
) -> int:
    """Seed, start, print the URL first and then `lines()`, run until stopped."""
    stop = stop or threading.Event()
    if args.seed:
        try:
            seed(json.loads(Path(args.seed).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            print(f"sandbox: cannot seed from {args.seed}: {exc}", file=sys.stderr)
            return 1
    try:
        sandbox.start()
    except (OSError, RuntimeError) as exc:
        print(f"sandbox: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    previous = _on_signals(stop)
    try:
        print(sandbox.url, flush=True)
        for line in lines():
            print(line, flush=True)
        stop.wait()
    finally:
        _restore(previous)
        sandbox.stop()
    return 0


def run_incidents(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import requests

    from sandbox.view import render_incidents

    out = out or sys.stdout
    params = {"status": args.status} if args.status else {}
    url = args.url.rstrip("/") + "/sandbox/incidents"
    try:
        response = requests.get(url, params=params, timeout=10)
        response.raise_for_status()
        incidents: list[dict[str, Any]] = response.json()["incidents"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        print(f"sandbox: cannot read incidents from {args.url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        out.write(json.dumps(incidents, indent=2) + "\n")
    else:
        out.write(render_incidents(incidents))
    return 0


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    # Signal handlers can only be set from the main thread; elsewhere (tests) the
    # caller stops us through the event.
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
