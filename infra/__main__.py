"""Pulumi entry point (`Pulumi.yaml`: `main: infra/`): stack file -> PagerDuty resources.

Reads project config `stackFile` (relative to the project root), else
`stacks/<pulumi stack name>.yaml`; loads and validates it, then runs
`infra.resources.run_program`. A bad stack file stops the program with its
`file:line:col` problems as a `pulumi.RunError`, which Pulumi prints without a
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    # Pulumi runs this file by path, not as `-m infra`: make the packages importable.
    sys.path.insert(0, str(PROJECT_ROOT))

import pulumi  # noqa: E402

from infra.errors import StackError  # noqa: E402
from infra.resources import run_program  # noqa: E402
from infra.validate import load_stack  # noqa: E402


def stack_file_path(stack_file: str | None, stack_name: str, root: Path = PROJECT_ROOT) -> Path:
    """`stackFile` from config if set (relative to the project root), else the stack's file."""
    path = Path(stack_file) if stack_file else Path("stacks") / f"{stack_name}.yaml"
    return path if path.is_absolute() else root / path


def main() -> None:
    stack_name = pulumi.get_stack()
    path = stack_file_path(pulumi.Config().get("stackFile"), stack_name)
    try:
        stack = load_stack(path)
    except StackError as exc:
        raise pulumi.RunError(f"stack file {path} cannot be used:\n{exc}") from None
    run_program(stack, stack_name)


if __name__ == "__main__":
    main()
