"""`apica-pd routes pull|install|verify`: hand the integration keys from Pulumi to the
bridge, and check them against PagerDuty.

    apica-pd routes pull --stack NAME [--out PATH] [--cwd DIR] [--forget-previous-keys]
    apica-pd routes install -|FILE [--out PATH] [--forget-previous-keys]
    apica-pd routes verify --routes FILE [--token-file FILE] [--api-url URL]

pull and install validate with the bridge's routes model and write the file
atomically, mode 0600. Over an existing file, a route's changed key is kept as a
previous key; with PAGERDUTY_TOKEN set, previous keys whose integration is gone are
dropped (`--api-url` for another REST API). verify reads each route's service and
integration over PagerDuty's REST API (token from $PAGERDUTY_TOKEN or --token-file,
never printed). Failures print one line to stderr; keys appear only as their last four
characters. Exit status: 0 done (verify: every route OK), 1 the command could not do
its job, 2 usage, 3 verify found a route that cannot page as routed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contract.vocabulary import DEFAULT_ROUTES_FILE, PAGERDUTY_REST_URL, PAGERDUTY_TOKEN_ENV

DEFAULT_OUT = Path(DEFAULT_ROUTES_FILE)
EXIT_OK, EXIT_FAILED, EXIT_PROBLEM = 0, 1, 3


def _add_previous_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--forget-previous-keys", action="store_true",
                        help="write no previous keys (once `apica-pd outbox` shows no "
                             "incidents open on them)")
    parser.add_argument("--api-url", default=PAGERDUTY_REST_URL,
                        help=f"PagerDuty REST API for checking previous keys with "
                             f"${PAGERDUTY_TOKEN_ENV} (default {PAGERDUTY_REST_URL})")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `routes pull` and `routes install`."""
    parser = subparsers.add_parser(
        "routes", help="write the bridge's routes file from the stack output bridge_routes"
    )
    commands = parser.add_subparsers(dest="routes_command", required=True, metavar="COMMAND")

    pull = commands.add_parser(
        "pull", help="read bridge_routes with `pulumi stack output` and write the routes file"
    )
    pull.add_argument("--stack", required=True, help="Pulumi stack name (e.g. prod, org/prod)")
    pull.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    pull.add_argument("--cwd", type=Path, help="the Pulumi project directory (default: here)")
    _add_previous_key_options(pull)
    pull.set_defaults(handler=run_pull)

    install = commands.add_parser(
        "install", help="write the routes file from bridge_routes JSON on stdin (-) or a file"
    )
    install.add_argument("source", help="`-` for standard input, or a file path")
    install.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    _add_previous_key_options(install)
    install.set_defaults(handler=run_install)

    verify = commands.add_parser(
        "verify",
        help="check over PagerDuty's REST API that each route's integration takes Events "
        "API v2 events",
        description="For each route of a routes file, read its service and the integration "
        "holding its routing key from PagerDuty's REST API and report OK or the problem. "
        "The token comes from $PAGERDUTY_TOKEN or --token-file and is never printed. Exit "
        "status: 0 every route OK, 1 cannot check, 3 a route has a problem.",
    )
    verify.add_argument("--routes", type=Path, required=True, help="the routes file to check")
    verify.add_argument("--token-file", help="a file holding a PagerDuty REST API token")
    verify.add_argument(
        "--api-url",
        default=PAGERDUTY_REST_URL,
        help=f"REST API base URL (default {PAGERDUTY_REST_URL})",
    )
    verify.set_defaults(handler=run_verify)


def run_pull(args: argparse.Namespace) -> int:
    from infra.messages import escape_lines
    from infra.pagerduty_api import PagerDutyApiError
    from infra.routes_handoff import HandoffError, pull_routes, summary

    try:
        done = pull_routes(args.stack, args.out, args.cwd,
                           forget_previous=args.forget_previous_keys,
                           integrations=_integrations(args))
    except (HandoffError, PagerDutyApiError) as exc:
        print(escape_lines(f"routes pull: {exc}"), file=sys.stderr)
        return 1
    print(summary(*done))
    return 0


def run_install(args: argparse.Namespace) -> int:
    from infra.messages import escape_lines
    from infra.pagerduty_api import PagerDutyApiError
    from infra.routes_handoff import HandoffError, install_routes, routes_text, summary

    try:
        text, source = _read_source(args.source)
        done = install_routes(routes_text(text, source), args.out, source,
                              forget_previous=args.forget_previous_keys,
                              integrations=_integrations(args))
    except (HandoffError, PagerDutyApiError) as exc:
        print(escape_lines(f"routes install: {exc}"), file=sys.stderr)
        return 1
    print(summary(*done))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    import os

    from contract.errors import RoutesFileError
    from contract.routes_file import load_routes_file
    from infra.messages import escape_lines
    from infra.pagerduty_api import PagerDutyApi, PagerDutyApiError, read_token
    from infra.routes_verify import render, verify_routes

    try:
        routes = load_routes_file(args.routes)
        api = PagerDutyApi(args.api_url, read_token(args.token_file, os.environ))
        checks = verify_routes(routes, api)
    except (RoutesFileError, PagerDutyApiError) as exc:
        print(escape_lines(f"routes verify: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.write(render(checks))
    return EXIT_OK if all(check.ok for check in checks) else EXIT_PROBLEM


def _integrations(args: argparse.Namespace):  # -> infra.previous_keys.Integrations | None
    """PagerDuty's REST API, when a token is at hand (as in CI); else None."""
    import os

    from infra.pagerduty_api import PagerDutyApi, read_token
    from infra.previous_keys import PagerDutyIntegrations

    if not os.environ.get(PAGERDUTY_TOKEN_ENV, "").strip():
        return None
    return PagerDutyIntegrations(PagerDutyApi(args.api_url, read_token(None, os.environ)))


def _read_source(source: str) -> tuple[str, str]:
    from contract.errors import UnreadableFile
    from contract.files import describe_size, read_bounded
    from contract.routes_file import MAX_ROUTES_FILE_BYTES
    from infra.routes_handoff import HandoffError

    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_ROUTES_FILE_BYTES + 1)
            if len(raw) > MAX_ROUTES_FILE_BYTES:
                raise HandoffError(f"standard input is more than "
                                   f"{describe_size(MAX_ROUTES_FILE_BYTES)}: not routes JSON")
            source = "standard input"
        else:
            raw = read_bounded(source, MAX_ROUTES_FILE_BYTES, what="routes file")
        return raw.decode("utf-8"), source
    except UnreadableFile as exc:
        raise HandoffError(f"cannot read {exc}") from None
    except UnicodeDecodeError:
        raise HandoffError(f"cannot read {source}: not UTF-8 text") from None
