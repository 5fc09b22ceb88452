"""`apica-pd diff`: what a change to a stack file does, for people and for CI.

    apica-pd diff OLD NEW                      two files
    apica-pd diff FILE --base REV [--head REV] one file at git revisions
                                               (head: the working tree by default)

The edge around the pure `infra.diff` / `infra.diff_render`: it reads files and
`git show REV:path`, validates both sides with the stack-file loader, and maps the
outcome to an exit status. No credentials, no Pulumi CLI.

Exit status: 0 no change or only allowed/safe changes; 1 invalid input (unreadable
or invalid stack file, unknown revision, not a git repository); 2 usage error;
3 `--check` found a destructive change that is not allowed, or a mass change beyond
the stack's change budget (`infra.change_budget`) that is not allowed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from contract.errors import UnreadableFile
from contract.files import oversize_reason, read_bounded
from infra.errors import InfraError
from infra.messages import escape_lines
from infra.yaml_source import MAX_FILE_BYTES

if TYPE_CHECKING:
    from infra.model import Stack

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3

ALLOW_FIELD = "allow_destroy"


class DiffInputError(InfraError):
    """Input that cannot be compared; `str()` says which file or revision and what to do."""


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its label and its text (None: the file is absent)."""

    label: str
    text: str | None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `apica-pd diff`."""
    diff = subparsers.add_parser(
        "diff",
        help="show what a stack-file change adds, removes, changes and destroys",
        description="Compare two versions of a stack file (two paths, or one path at git "
        "revisions) property by property. Destructive changes (removing a service or "
        "integration, replacing one, renaming a route) are called out; with --check they "
        "fail unless allowed, and so do mass changes beyond the stack's change budget. Exit "
        "status: 0 ok, 1 invalid input, 2 usage, 3 destructive or mass change not allowed "
        "(--check).",
    )
    diff.add_argument("files", nargs="+", metavar="FILE", help="OLD NEW, or one FILE with --base")
    diff.add_argument(
        "--base", metavar="REV", help="compare FILE at this git revision (e.g. origin/main) ..."
    )
    diff.add_argument(
        "--head", metavar="REV", help="... with FILE at this revision (default: the working tree)"
    )
    output = diff.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument(
        "--markdown",
        action="store_true",
        help="print Markdown for a pull-request comment or job summary",
    )
    diff.add_argument(
        "--check",
        action="store_true",
        help="exit 3 if a destructive change, or a change beyond the change budget, is not "
        "allowed",
    )
    diff.add_argument(
        "--allow-destroy",
        action="store_true",
        help="allow every destructive change (default: only the keys listed "
        f"in the new file's {ALLOW_FIELD})",
    )
    diff.add_argument(
        "--allow-mass-change",
        action="store_true",
        help="allow exceeding the change budget (default: only if the new file sets "
        "allow_mass_change: true)",
    )
    diff.set_defaults(handler=_handle, diff_parser=diff)


def _handle(args: argparse.Namespace) -> int:
    if args.base is None and args.head is not None:
        args.diff_parser.error("--head needs --base")
    if args.base is None and len(args.files) != 2:
        args.diff_parser.error("give two files (OLD NEW), or one FILE with --base REV")
    if args.base is not None and len(args.files) != 1:
        args.diff_parser.error("with --base, give exactly one FILE")
    fmt = "json" if args.json else "markdown" if args.markdown else "text"
    try:
        if args.base is None:
            old, new = read_path(args.files[0]), read_path(args.files[1])
            file_label = args.files[1]
        else:
            old = read_revision(args.files[0], args.base)
            new = (
                read_revision(args.files[0], args.head)
                if args.head is not None
                else read_worktree(args.files[0])
            )
            file_label = args.files[0]
        text, code, blocked = run_diff(
            old,
            new,
            file_label,
            fmt=fmt,
            check=args.check,
            allow_all=args.allow_destroy,
            allow_mass_change=args.allow_mass_change,
        )
    except DiffInputError as exc:
        print(escape_lines(f"apica-pd diff: {exc}"), file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(text)
    if code == EXIT_BLOCKED:
        print(
            f"apica-pd diff: {' and '.join(blocked)} not allowed (exit 3); see above for how "
            "to allow it",
            file=sys.stderr,
        )
    return code


def run_diff(
    old: Side,
    new: Side,
    file_label: str,
    *,
    fmt: str,
    check: bool,
    allow_all: bool,
    allow_mass_change: bool = False,
) -> tuple[str, int, tuple[str, ...]]:
    """Compare two sides: the rendered output, the exit status and what blocked it
    (`destructive change`, `mass change`)."""
    from infra.change_budget import check_budget
    from infra.diff import diff_stacks, gate
    from infra.diff_render import Labels, render

    old_stack, _ = load_side(old)
    new_stack, allow = load_side(new)
    diff = diff_stacks(old_stack, new_stack)
    verdict = gate(diff, allow_all=allow_all, allow_keys=allow) if check else None
    budget = (
        check_budget(old_stack, new_stack, diff, allow_flag=allow_mass_change) if check else None
    )
    labels = Labels(file_label, old.label, new.label)
    text = render(fmt, diff, labels, verdict, budget)
    blocked = tuple(
        what
        for what, ok in (
            ("destructive change", verdict is None or verdict.ok),
            ("mass change", budget is None or budget.ok),
        )
        if not ok
    )
    return text, EXIT_BLOCKED if blocked else EXIT_OK, blocked


# -- reading the two sides ---------------------------------------------------------------


def read_path(path: str) -> Side:
    try:
        raw = read_bounded(path, MAX_FILE_BYTES, what="stack file")
    except UnreadableFile as exc:
        raise DiffInputError(str(exc)) from None
    try:
        return Side(path, raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DiffInputError(f"{path}: cannot read it ({_reason(exc)})") from None


def read_worktree(path: str) -> Side:
    """The working-tree file; absent means the change deletes the stack file."""
    if not Path(path).exists():
        _repo_of(path)  # still insist on a repository, as for --base
        return Side("working tree (file absent)", None)
    side = read_path(path)
    return Side("working tree", side.text)


def read_revision(path: str, rev: str) -> Side:
    """`path` as committed at `rev`; absent there means the change adds the stack file."""
    top, rel = _repo_of(path)
    commit = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if commit.returncode != 0:
        raise DiffInputError(
            f"unknown git revision {rev!r} in {top}: fetch it first (e.g. `git fetch origin "
            "main`, or in GitHub Actions check out with fetch-depth: 0)"
        )
    # Type and size first: a revision's file is read bounded, like a file on disk.
    found = _git(top, "cat-file", "--batch-check=%(objecttype) %(objectsize)", stdin=f"{rev}:{rel}")
    kind, _, size = found.stdout.decode(errors="replace").strip().partition(" ")
    if found.returncode != 0 or kind not in ("blob", "tree"):
        return Side(f"{rev} (file absent)", None)
    if kind != "blob":
        raise DiffInputError(f"{rev}:{rel}: is a directory, not a stack file")
    if int(size) > MAX_FILE_BYTES:
        raise DiffInputError(
            f"{rev}:{rel}: {oversize_reason(int(size), MAX_FILE_BYTES, 'stack file')}")
    shown = _git(top, "cat-file", "blob", f"{rev}:{rel}")
    if shown.returncode != 0:
        detail = shown.stderr.decode(errors="replace").strip()
        raise DiffInputError(f"{rev}:{rel}: git cat-file failed: {detail}")
    try:
        return Side(rev, shown.stdout.decode("utf-8"))
    except UnicodeDecodeError:
        raise DiffInputError(f"{rev}:{rel}: not UTF-8 text") from None


def _repo_of(path: str) -> tuple[str, str]:
    """(repository top level, path relative to it with / separators)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DiffInputError(f"{path}: folder {folder} does not exist")
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise DiffInputError(
            f"{path}: not inside a git repository, so --base/--head cannot be read "
            "(compare two files instead: apica-pd diff OLD NEW)"
        )
    root = top.stdout.decode().strip()
    real = os.path.realpath(os.path.join(folder, os.path.basename(path)))
    rel = os.path.relpath(real, os.path.realpath(root))
    return root, Path(rel).as_posix()


def _git(cwd: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", cwd, *args],
            input=None if stdin is None else stdin.encode() + b"\n",
            capture_output=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError:
        raise DiffInputError("git is not installed or not on PATH") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return getattr(exc, "strerror", None) or type(exc).__name__


# -- validating a side ---------------------------------------------------------------------


def load_side(side: Side) -> tuple[Stack | None, tuple[str, ...]]:
    """The resolved stack (None when absent) and its allow_destroy keys."""
    from infra.errors import StackFileInvalid
    from infra.validate import parse_stack

    if side.text is None:
        return None, ()
    try:
        stack = parse_stack(side.text, side.label)
    except StackFileInvalid as exc:
        raise DiffInputError(f"{side.label} is not a valid stack file:\n{exc}") from None
    return stack, stack.allow_destroy
