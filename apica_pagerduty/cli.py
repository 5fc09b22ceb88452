"""Dispatch `apica-pd <command>` to the part of the product that owns it.

Each part exposes `register(subparsers)` in its own `cli` module and keeps heavy
imports (Pulumi, uvicorn) inside its handlers, so `apica-pd --help` stays fast and
the bridge never needs the infra side installed to serve.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order of `apica-pd --help`.
COMMAND_MODULES = (
    "infra.cli",
    "infra.diff_cli",
    "infra.routes_cli",
    "apica_pagerduty.asm_check",
    "bridge.cli",
    "sandbox.cli",
    "apica_pagerduty.demo",
)
# Commands parsed with their own module only. `serve` starts again after every crash or
# restart, and webhooks are refused until it listens: importing the other parts' parsers
# (YAML, requests) first cost a third of its start.
QUICK_COMMANDS = {"serve": "bridge.cli"}


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apica-pd",
        description="Apica ASM -> PagerDuty: stack files, Pulumi program, alert bridge.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    quick = QUICK_COMMANDS.get(words[0]) if words else None
    args = build_parser(COMMAND_MODULES if quick is None else (quick,)).parse_args(words)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
