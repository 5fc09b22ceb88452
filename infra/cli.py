"""`apica-pd` subcommands of the infra part. Heavy imports stay inside handlers."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this part's subcommands; each sets `handler=` returning an exit code."""
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


def _plan(args: argparse.Namespace) -> int:
    from infra.offline_plan import plan_command

    return plan_command(args.file, as_json=args.json, stack_name=args.stack)
