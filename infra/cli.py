"""`apica-pd` subcommands of the infra part. Heavy imports stay inside handlers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pulumi.runtime.mocks import Mocks


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this part's subcommands; each sets `handler=` returning an exit code."""
    _register_validate(subparsers)
    _register_schema(subparsers)
    plan = subparsers.add_parser(
        "plan",
        help="show what a stack file declares, offline (no credentials, no Pulumi CLI)",
        description="Run the Pulumi program under Pulumi's mock runtime and print the "
        "resources, look-ups and outputs it declares. Integration keys show as [secret].",
    )
    plan.add_argument("file", help="stack file, e.g. stacks/example.yaml")
    plan.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    plan.add_argument("--stack", help="Pulumi stack name (default: the file's name)")
    plan.set_defaults(handler=_plan)
    _register_adoption(subparsers)


def _register_adoption(subparsers: argparse._SubParsersAction) -> None:
    """`import` (adopt an existing account) and `change-event` (tell PagerDuty what changed)."""
    from infra import change_event_cli, import_cli, maintenance_cli

    import_cli.register(subparsers)
    change_event_cli.register(subparsers)
    maintenance_cli.register(subparsers)


def _plan(args: argparse.Namespace) -> int:
    return plan_command(args.file, as_json=args.json, stack_name=args.stack)


def plan_command(
    path: str | Path,
    *,
    as_json: bool = False,
    stack_name: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    mocks: Mocks | None = None,
) -> int:
    """`apica-pd plan FILE`: print the offline preview; 1 with the problems for a bad file."""
    import pulumi

    from infra.errors import InfraError, StackError
    from infra.messages import escape_lines
    from infra.preview import preview_stack_file
    from infra.preview_render import render_tree, to_json

    out, err = out or sys.stdout, err or sys.stderr
    try:
        preview = preview_stack_file(path, stack_name, mocks)
    except StackError as exc:
        print(escape_lines(str(exc)), file=err)
        return 1
    except (pulumi.RunError, InfraError) as exc:
        # The program refused the stack (e.g. an invalid routes file): say why, no traceback.
        print(escape_lines(f"{path}: {exc}"), file=err)
        return 1
    out.write(to_json(preview) if as_json else render_tree(preview))
    return 0


# -- validate / schema (stack-file side) ----------------------------------------------


def _register_validate(subparsers: argparse._SubParsersAction) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="check stack files; every problem as file:line:col: message",
        description="Validate one or more stack files and report every problem of each "
        "file at once. Exit status: 0 if all files are valid, 1 otherwise.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="stack file(s)")
    validate.set_defaults(handler=_validate)


def _register_schema(subparsers: argparse._SubParsersAction) -> None:
    schema = subparsers.add_parser(
        "schema",
        help="print the stack file's JSON Schema (as committed in stacks/schema.json)",
        description="Print the JSON Schema of stack files, for editors. "
        "Regenerate the committed copy with: apica-pd schema > stacks/schema.json",
    )
    schema.set_defaults(handler=_schema)


def _validate(args: argparse.Namespace) -> int:
    from infra.messages import escape
    from infra.validate import check_file

    bad = 0
    for path in args.files:
        try:
            result = check_file(path)
        except Exception as exc:  # a bug of ours: still one line, never a traceback
            print(
                f"{escape(path)}: internal error ({type(exc).__name__}); please report it",
                file=sys.stderr,
            )
            bad += 1
            continue
        if result.stack is None:
            bad += 1
            for problem in result.problems:
                print(problem, file=sys.stderr)
            continue
        services = len(result.stack.services)
        policies = len(result.stack.escalation_policies)
        print(
            f"{escape(path)}: ok ({services} service{'s' * (services != 1)}, "
            f"{policies} escalation polic{'ies' if policies != 1 else 'y'})"
        )
    if bad and len(args.files) > 1:
        print(f"{bad} of {len(args.files)} files are invalid", file=sys.stderr)
    return 1 if bad else 0


def _schema(args: argparse.Namespace) -> int:
    from infra.schema import schema_json

    sys.stdout.write(schema_json())
    return 0
