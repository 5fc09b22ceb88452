"""`apica-pd routes pull|install`: hand the integration keys from Pulumi to the bridge.

    apica-pd routes pull --stack NAME [--out PATH] [--cwd DIR]
    apica-pd routes install -|FILE [--out PATH]

Both validate with the bridge's routes model and write the file atomically, mode
0600. Failures print one line to stderr and exit 1; keys appear only as last four.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Same as infra.routes_handoff.DEFAULT_OUT (the bridge's default routes file); not
# imported from there so `apica-pd --help` does not load pydantic.
DEFAULT_OUT = Path("routes.json")


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
    pull.set_defaults(handler=run_pull)

    install = commands.add_parser(
        "install", help="write the routes file from bridge_routes JSON on stdin (-) or a file"
    )
    install.add_argument("source", help="`-` for standard input, or a file path")
    install.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    install.set_defaults(handler=run_install)


def run_pull(args: argparse.Namespace) -> int:
    from infra.messages import escape_lines
    from infra.routes_handoff import HandoffError, pull_routes, summary

    try:
        routes, path = pull_routes(args.stack, args.out, args.cwd)
    except HandoffError as exc:
        print(escape_lines(f"routes pull: {exc}"), file=sys.stderr)
        return 1
    print(summary(routes, path))
    return 0


def run_install(args: argparse.Namespace) -> int:
    from infra.messages import escape_lines
    from infra.routes_handoff import HandoffError, install_routes, routes_text, summary

    try:
        text, source = _read_source(args.source)
        routes, path = install_routes(routes_text(text, source), args.out, source)
    except HandoffError as exc:
        print(escape_lines(f"routes install: {exc}"), file=sys.stderr)
        return 1
    print(summary(routes, path))
    return 0


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
