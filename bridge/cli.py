"""`apica-pd` subcommands of the bridge part. Heavy imports stay inside handlers.

To add a subcommand: write `add_<name>(subparsers)` and list it in `COMMANDS`.
`add_config_arguments` / `config_from_args` give any command the bridge's settings
(`--config`, `--routes`, `--data-dir`, env `APICA_PD_*`).
"""

from __future__ import annotations

import argparse
import os
import sys


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config file (default: $APICA_PD_CONFIG)")
    parser.add_argument("--routes", metavar="FILE", dest="routes_file",
                        help="routes file (default: $APICA_PD_ROUTES_FILE or routes.json)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="outbox directory (default: $APICA_PD_DATA_DIR or var/bridge)")


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
    parser.add_argument("--host", dest="listen_host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", dest="listen_port", type=int, help="listen port (default 8080)")
    parser.add_argument("--events-url", help="PagerDuty Events API URL")
    parser.set_defaults(handler=_serve)


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
    parser.set_defaults(handler=_asm_setup)


# Order is the order of `apica-pd --help`.
COMMANDS = (add_serve, add_asm_setup)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this part's subcommands; each sets `handler=` returning an exit code."""
    for add in COMMANDS:
        add(subparsers)


def _serve(args: argparse.Namespace) -> int:
    from bridge.errors import ConfigError
    from bridge.logs import configure_logging
    from bridge.serve import run

    try:
        config = config_from_args(args, listen_host=args.listen_host,
                                  listen_port=args.listen_port, events_url=args.events_url)
    except ConfigError as exc:
        print(f"apica-pd serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    return run(config)


def _asm_setup(args: argparse.Namespace) -> int:
    from bridge.asm_setup import render_json, render_text, target_setups
    from bridge.auth import credentials_from_env, load_credentials_file
    from bridge.errors import ConfigError
    from bridge.routes import RoutesFileError, load_routes_file

    try:
        config = config_from_args(args, public_url=args.public_url)
        credentials = credentials_from_env(os.environ)
        if config.credentials_file is not None:
            credentials = credentials.merged(load_credentials_file(config.credentials_file))
        routes = load_routes_file(config.routes_file)
    except (ConfigError, RoutesFileError) as exc:
        print(f"apica-pd asm-setup: {exc}", file=sys.stderr)
        return 2
    setups = target_setups(routes, config.bridge_url, credentials, config.token_header,
                           reveal=args.reveal)
    sys.stdout.write(render_json(setups) if args.format == "json" else render_text(setups))
    return 0
