"""`apica-pd import`: write a stack file that adopts existing PagerDuty services as they are.

    apica-pd import (--service NAME ... | --team NAME | --all) [--out FILE] [--force]
                    [--api-url URL] [--token-file FILE]

The REST token comes from `--token-file` or the environment variable PAGERDUTY_TOKEN
and is never printed. The stack file is checked with the stack-file loader before it
is written (atomically; an existing file only with `--force`); a summary goes to
standard error. Exit status: 0 written and valid, 1 an error (one line) or a file that
does not validate (written, with its problems listed, for you to fix).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from contract.vocabulary import PAGERDUTY_REST_URL, PAGERDUTY_TOKEN_ENV
from infra.errors import InfraError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `apica-pd import`."""
    parser = subparsers.add_parser(
        "import",
        help="write a stack file that adopts existing PagerDuty services, policies and "
        "Apica integrations",
        description="Read services (by name, by team, or all), their escalation policies and "
        "Apica integrations from PagerDuty's REST API and write a stack file that reproduces "
        "them, each with its PagerDuty id in `adopt:`, so `pulumi up` adopts them instead of "
        f"creating duplicates. The token comes from --token-file or ${PAGERDUTY_TOKEN_ENV}.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--service", action="append", metavar="NAME", help="a service by name (repeatable)"
    )
    which.add_argument("--team", metavar="NAME", help="every service of this team")
    which.add_argument("--all", action="store_true", help="every service of the account")
    parser.add_argument(
        "--out", "-o", metavar="FILE", default="-", help="stack file to write (default: stdout)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help=f"REST API base URL (default {PAGERDUTY_REST_URL}; EU: "
        "https://api.eu.pagerduty.com; or the sandbox's URL)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"read the REST API token from FILE, not ${PAGERDUTY_TOKEN_ENV}",
    )
    parser.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    from contract.errors import ApicaError
    from infra.messages import escape, escape_lines

    try:
        return _import(args)
    except ApicaError as exc:
        print(escape_lines(f"apica-pd import: {exc}"), file=sys.stderr)
        return 1
    except OSError as exc:
        target = escape(str(args.out))
        print(f"apica-pd import: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _import(args: argparse.Namespace) -> int:
    from contract.files import write_atomically
    from infra.account_import import Selection, fetch_account
    from infra.errors import StackFileInvalid
    from infra.import_stack import import_stack
    from infra.messages import escape
    from infra.pagerduty_api import PagerDutyApi, read_token
    from infra.validate import parse_stack

    out = None if args.out == "-" else Path(args.out)
    if out is not None and out.exists() and not args.force:
        raise ImportFailed(f"{out} exists; pass --force to overwrite it")
    selection = Selection(
        names=tuple(args.service or ()), team=args.team, everything=bool(args.all)
    )
    api = PagerDutyApi(args.api_url or PAGERDUTY_REST_URL, read_token(args.token_file, os.environ))
    imported = import_stack(fetch_account(api, selection))
    label = str(out) if out is not None else "standard output"
    problems: StackFileInvalid | None = None
    try:
        parse_stack(imported.text, label)
    except StackFileInvalid as exc:
        problems = exc
    if out is None:
        sys.stdout.write(imported.text)
    else:
        write_atomically(out, imported.text, 0o644)
    without = imported.without_integration
    print(
        escape(
            f"apica-pd import: {label}: {imported.services} service"
            f"{'s' * (imported.services != 1)}, {imported.policies} escalation polic"
            f"{'ies' if imported.policies != 1 else 'y'}, {imported.integrations} Apica "
            f"integration{'s' * (imported.integrations != 1)} adopted"
            + (f"; {without} without an Apica integration (integration: none)" if without else "")
            + (f"; {imported.notes} PagerDuty: notes to review" if imported.notes else "")
        ),
        file=sys.stderr,
    )
    if problems is not None:
        print(str(problems), file=sys.stderr)
        print(
            "apica-pd import: the stack file does not validate (problems above): fix them "
            "there, then `apica-pd validate`",
            file=sys.stderr,
        )
        return 1
    return 0


class ImportFailed(InfraError):
    """The import cannot go on; `str()` says why and what to do."""
