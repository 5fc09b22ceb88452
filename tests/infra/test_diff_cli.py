"""`apica-pd diff`: real files and real git repositories in tmp_path; exit codes and
messages pinned (0 ok, 1 invalid input, 2 usage, 3 destructive change not allowed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from apica_pagerduty.cli import main
from infra.yaml_source import MAX_FILE_BYTES
from tests.conftest import git

from .conftest import HOSTILE, many_services_text, raw_controls

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
escalation_policies:
  web-oncall:
    name: Web On-call
    rules:
      - delay: 30m
        targets: [{schedule: Web Primary}]
services:
  checkout:
    name: Checkout API
    escalation_policy: web-oncall
    integration:
      checks: {ids: [101, 102]}
  legacy:
    existing: Legacy Web
    integration:
      checks: {ids: [200]}
"""
# A safe change: urgency in place.
SAFE = BASE.replace(
    "    escalation_policy: web-oncall\n", "    escalation_policy: web-oncall\n    urgency: high\n"
)
# A destructive change: the route `legacy` and its integration go away.
DESTRUCTIVE = BASE.split("  legacy:\n")[0]
ALLOWED_BLOCK = DESTRUCTIVE + "allow_destroy:\n  - legacy\n"
ALLOWED_FLOW = "allow_destroy: [legacy]  # removing the old site's route on purpose\n" + DESTRUCTIVE
ALLOWED_OTHER = DESTRUCTIVE + "allow_destroy: [checkout]\n"
INVALID = BASE.replace("escalation_policy: web-oncall", "escalation_policy: web-oncal")

BLOCKED_TAIL = (
    "Safety gate: BLOCKED: 1 destructive change not allowed.\n"
    "To allow it, list the key in {file}:\n"
    "    allow_destroy: [legacy]\n"
    "or pass --allow-destroy to `apica-pd diff` to allow every destructive change.\n"
)
# A stack this small is below every change budget's `min_existing`.
NOT_APPLIED = (
    "Change budget: not applied (budgets apply from 10 existing services, routed checks or "
    "escalation policies).\n"
)
BLOCKED_STDERR = (
    "apica-pd diff: destructive change not allowed (exit 3); see above for how to allow it\n"
)


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["diff", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- two files ---------------------------------------------------------------------------

TWO_FILES = [
    # (new file's text, extra flags, exit code, stdout must contain, stdout must end with)
    (
        BASE,
        ["--check"],
        0,
        "No changes.",
        "Safety gate: passed (nothing destructive).\n" + NOT_APPLIED,
    ),
    (
        SAFE,
        ["--check"],
        0,
        "urgency: severity_based -> high",
        "Safety gate: passed (nothing destructive).\n" + NOT_APPLIED,
    ),
    (SAFE, [], 0, "1 change (1 change), 0 destructive", "urgency: severity_based -> high\n"),
    (DESTRUCTIVE, [], 0, "! - REMOVE service legacy", "stop paging\n"),
    (DESTRUCTIVE, ["--check"], 3, "! - REMOVE service legacy", BLOCKED_TAIL + NOT_APPLIED),
    (
        DESTRUCTIVE,
        ["--check", "--allow-destroy"],
        0,
        "REMOVE service legacy",
        "Safety gate: passed (1 destructive change allowed).\n" + NOT_APPLIED,
    ),
    (
        ALLOWED_BLOCK,
        ["--check"],
        0,
        "REMOVE service legacy",
        "Safety gate: passed (1 destructive change allowed).\n" + NOT_APPLIED,
    ),
    (
        ALLOWED_FLOW,
        ["--check"],
        0,
        "REMOVE service legacy",
        "Safety gate: passed (1 destructive change allowed).\n" + NOT_APPLIED,
    ),
    (
        ALLOWED_OTHER,
        ["--check"],
        3,
        "REMOVE service legacy",
        BLOCKED_TAIL + "Note: allow_destroy lists checkout, which this change does not destroy: "
        "remove stale entries once the change is applied.\n" + NOT_APPLIED,
    ),
]


@pytest.mark.parametrize(("new", "flags", "code", "contains", "tail"), TWO_FILES)
def test_two_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    new: str,
    flags: list[str],
    code: int,
    contains: str,
    tail: str,
) -> None:
    old_path = _write(tmp_path, "old.yaml", BASE)
    new_path = _write(tmp_path, "new.yaml", new)
    got, out, err = _run(capsys, old_path, new_path, *flags)
    assert got == code
    assert out.startswith(f"{new_path}: {old_path} -> {new_path}\n")
    assert contains in out
    assert out.endswith(tail.format(file=new_path))
    assert err == (BLOCKED_STDERR if code == 3 else "")


def test_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_path = _write(tmp_path, "old.yaml", BASE)
    new_path = _write(tmp_path, "new.yaml", DESTRUCTIVE)
    code, out, _ = _run(capsys, old_path, new_path, "--json", "--check")
    data = json.loads(out)
    assert (code, data["summary"], data["gate"]["allow_destroy_needed"]) == (
        3,
        {"changes": 1, "destructive": 1},
        ["legacy"],
    )
    code, out, _ = _run(capsys, old_path, new_path, "--markdown")
    assert (code, out.splitlines()[0]) == (0, f"<!-- apica-pd diff: {new_path} -->")


# -- change budgets ----------------------------------------------------------------------

MASS_BLOCKED = (
    "Change budget: BLOCKED: this change exceeds the change budget of {file}:\n"
    "  - services changed: 300 of 300 existing services (100.0%), more than the budget of 30%\n"
    "If the mass change is meant, set `allow_mass_change: true` in {file} for it (remove it "
    "once applied), raise `change_budget.services_changed` there, or pass --allow-mass-change "
    "to `apica-pd diff`.\n"
)
MASS_ALLOWED = (
    "  - services changed: 300 of 300 existing services (100.0%), more than the budget of 30%\n"
)
MASS = [
    # (new file's text, flags, exit code, stdout tail, stderr)
    (
        many_services_text(300, policy="night"),
        [],
        3,
        MASS_BLOCKED,
        "apica-pd diff: mass change not allowed (exit 3); see above for how to allow it\n",
    ),
    (
        many_services_text(300, policy="night"),
        ["--allow-mass-change"],
        0,
        "Change budget: exceeded, allowed by --allow-mass-change:\n" + MASS_ALLOWED,
        "",
    ),
    (
        many_services_text(300, policy="night", tail="allow_mass_change: true\n"),
        [],
        0,
        "Change budget: exceeded, allowed by allow_mass_change: true in {file}:\n"
        + MASS_ALLOWED,
        "",
    ),
    (
        many_services_text(300, policy="night", tail="change_budget: {services_changed: 100%}\n"),
        [],
        0,
        "Change budget: within budget (services changed 300 of 300 (100.0%, at most 100%); "
        "checks re-routed 0 of 300 (0.0%, at most 30%)).\n",
        "",
    ),
    (
        many_services_text(300).replace("name: Service 7\n", "name: Service Seven\n"),
        [],
        0,
        "Change budget: within budget (services changed 1 of 300 (0.3%, at most 30%); "
        "checks re-routed 0 of 300 (0.0%, at most 30%)).\n",
        "",
    ),
    (
        many_services_text(300, tail="allow_mass_change: true\n"),
        [],
        0,
        "Note: {file} sets allow_mass_change: true, but this change is within budget: remove "
        "it once the change is applied.\n",
        "",
    ),
]


@pytest.mark.parametrize(("new", "flags", "code", "tail", "stderr"), MASS)
def test_mass_changes_are_held_by_the_change_budget(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    new: str,
    flags: list[str],
    code: int,
    tail: str,
    stderr: str,
) -> None:
    old_path = _write(tmp_path, "old.yaml", many_services_text(300))
    new_path = _write(tmp_path, "new.yaml", new)
    got, out, err = _run(capsys, old_path, new_path, "--check", *flags)
    assert (got, err) == (code, stderr)
    assert out.endswith(tail.format(file=new_path))


def test_destructive_and_mass_change_both_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_path = _write(tmp_path, "old.yaml", many_services_text(20))
    new_path = _write(tmp_path, "new.yaml", many_services_text(10))
    code, out, err = _run(capsys, old_path, new_path, "--check")
    assert code == 3
    assert "  - services changed: 10 of 20 existing services (50.0%), more than the " in out
    assert "  - checks re-routed: 10 of 20 routed checks (50.0%), more than the budget" in out
    assert err == (
        "apica-pd diff: destructive change and mass change not allowed (exit 3); see above "
        "for how to allow it\n"
    )


def test_budget_in_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_path = _write(tmp_path, "old.yaml", many_services_text(300))
    new_path = _write(tmp_path, "new.yaml", many_services_text(300, policy="night"))
    code, out, _ = _run(capsys, old_path, new_path, "--check", "--json")
    budget = json.loads(out)["budget"]
    assert (code, budget["ok"], budget["allowed_by"]) == (3, False, None)
    assert budget["checks"][0] == {
        "name": "services_changed",
        "changed": 300,
        "existing": 300,
        "limit_percent": 30,
        "min_existing": 10,
        "applies": True,
        "tripped": True,
    }
    code, out, _ = _run(capsys, old_path, new_path, "--check", "--markdown")
    lines = out.splitlines()
    shown = new_path.replace("_", "\\_")  # Markdown-escaped
    start = lines.index(
        f"> **Change budget: BLOCKED: this change exceeds the change budget of {shown}:**"
    )
    assert lines[start - 1] == "> [!CAUTION]"
    assert lines[start + 1] == (
        ">   - services changed: 300 of 300 existing services (100.0%), more than the "
        "budget of 30%"
    )


INVALID_INPUT = [
    # (old text or None for a missing file, new text, stderr)
    (None, BASE, "apica-pd diff: {old}: no such file\n"),
    # The loader's own message follows file:line:col (its wording is the loader's).
    (BASE, INVALID, "apica-pd diff: {new} is not a valid stack file:\n{new}:10:24: "),
    (
        BASE,
        "allow_destroy: legacy\n" + BASE,
        "apica-pd diff: {new} is not a valid stack file:\n"
        "{new}:1:16: allow_destroy: must be a list, got a string ('legacy')\n",
    ),
    (BASE, "\udcff", None),  # not UTF-8: written as bytes below
]


@pytest.mark.parametrize(("old", "new", "stderr"), INVALID_INPUT)
def test_invalid_input_exits_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str | None,
    new: str,
    stderr: str | None,
) -> None:
    old_path = str(tmp_path / "old.yaml") if old is None else _write(tmp_path, "old.yaml", old)
    new_path = tmp_path / "new.yaml"
    if new == "\udcff":
        new_path.write_bytes(b"\xff\xfe services")
        stderr = "apica-pd diff: {new}: cannot read it (not UTF-8 text)\n"
    else:
        new_path.write_text(new, encoding="utf-8")
    code, out, err = _run(capsys, old_path, str(new_path))
    assert (code, out) == (1, "")
    expected = stderr.format(old=old_path, new=new_path)
    assert err == expected or (expected.endswith(": ") and err.startswith(expected))


USAGE = [
    (["a.yaml"], "give two files (OLD NEW), or one FILE with --base REV"),
    (["a.yaml", "b.yaml", "c.yaml"], "give two files (OLD NEW), or one FILE with --base REV"),
    (["a.yaml", "b.yaml", "--base", "HEAD"], "with --base, give exactly one FILE"),
    (["a.yaml", "b.yaml", "--head", "HEAD"], "--head needs --base"),
    (
        ["a.yaml", "b.yaml", "--json", "--markdown"],
        "argument --markdown: not allowed with argument --json",
    ),
]


@pytest.mark.parametrize(("argv", "message"), USAGE)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["diff", *argv])
    assert exc.value.code == 2
    assert capsys.readouterr().err.endswith(f"apica-pd diff: error: {message}\n")


# -- git revisions -----------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose main has stacks/prod.yaml = BASE, one commit."""
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    _write(repo / "stacks", "prod.yaml", BASE)
    git(repo, "add", "stacks/prod.yaml")
    git(repo, "commit", "--quiet", "-m", "base")
    return repo


REVISIONS = [
    # (working-tree text or None to delete, second commit?, argv after FILE, exit, in stdout)
    (BASE, False, ["--base", "main"], 0, "stacks/prod.yaml: main -> working tree\nNo changes."),
    (SAFE, False, ["--base", "main", "--check"], 0, "urgency: severity_based -> high"),
    (DESTRUCTIVE, False, ["--base", "main", "--check"], 3, "REMOVE service legacy"),
    (ALLOWED_BLOCK, False, ["--base", "main", "--check"], 0, "1 destructive change allowed"),
    (
        DESTRUCTIVE,
        True,
        ["--base", "HEAD~1", "--head", "HEAD", "--check"],
        3,
        "stacks/prod.yaml: HEAD~1 -> HEAD\n",
    ),
    (None, False, ["--base", "main"], 0, "main -> working tree (file absent)\n"),
]


@pytest.mark.parametrize(("worktree", "commit", "argv", "code", "contains"), REVISIONS)
def test_git_revisions(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    worktree: str | None,
    commit: bool,
    argv: list[str],
    code: int,
    contains: str,
) -> None:
    stack = repo / "stacks" / "prod.yaml"
    if worktree is None:
        stack.unlink()
    else:
        stack.write_text(worktree, encoding="utf-8")
    if commit:
        git(repo, "commit", "--quiet", "-am", "change")
    monkeypatch.chdir(repo)
    got, out, _ = _run(capsys, "stacks/prod.yaml", *argv)
    assert got == code
    assert contains in out


def test_stack_file_new_on_the_branch_is_all_additions(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(repo / "stacks", "dev.yaml", SAFE)
    monkeypatch.chdir(repo / "stacks")  # a path relative to a sub-folder works too
    code, out, _ = _run(capsys, "dev.yaml", "--base", "main", "--check")
    assert code == 0
    assert out.startswith(
        "dev.yaml: main (file absent) -> working tree\n3 changes (3 add), 0 destructive\n"
    )


def test_invalid_file_at_the_base_names_the_revision(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "stacks" / "prod.yaml").write_text(INVALID, encoding="utf-8")
    git(repo, "commit", "--quiet", "-am", "broken")
    (repo / "stacks" / "prod.yaml").write_text(BASE, encoding="utf-8")
    monkeypatch.chdir(repo)
    code, _, err = _run(capsys, "stacks/prod.yaml", "--base", "HEAD")
    assert code == 1
    assert err.startswith("apica-pd diff: HEAD is not a valid stack file:\nHEAD:10:24: ")


GIT_ERRORS = [
    (
        ["--base", "origin/main"],
        "apica-pd diff: unknown git revision 'origin/main' in {repo}: "
        "fetch it first (e.g. `git fetch origin main`, or in GitHub Actions check out with "
        "fetch-depth: 0)\n",
    ),
    (
        ["--base", "main", "--head", "nope"],
        "apica-pd diff: unknown git revision 'nope' in "
        "{repo}: fetch it first (e.g. `git fetch origin main`, or in GitHub Actions check out "
        "with fetch-depth: 0)\n",
    ),
]


@pytest.mark.parametrize(("argv", "stderr"), GIT_ERRORS)
def test_unknown_revision_exits_1(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stderr: str,
) -> None:
    monkeypatch.chdir(repo)
    code, out, err = _run(capsys, "stacks/prod.yaml", *argv)
    assert (code, out, err) == (1, "", stderr.format(repo=repo.resolve()))


def test_revision_outside_a_repository_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "prod.yaml", BASE)
    code, _, err = _run(capsys, path, "--base", "main")
    assert code == 1
    assert err == (
        f"apica-pd diff: {path}: not inside a git repository, so --base/--head "
        "cannot be read (compare two files instead: apica-pd diff OLD NEW)\n"
    )


def test_process_exit_status_is_3(repo: Path) -> None:
    # The console command, as CI runs it: the exit status reaches the shell.
    (repo / "stacks" / "prod.yaml").write_text(DESTRUCTIVE, encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "apica_pagerduty",
            "diff",
            "stacks/prod.yaml",
            "--base",
            "main",
            "--check",
            "--markdown",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert (proc.returncode, proc.stderr) == (3, BLOCKED_STDERR)
    assert proc.stdout.startswith("<!-- apica-pd diff: stacks/prod.yaml -->\n")


@pytest.mark.parametrize("fmt", [[], ["--markdown"]], ids=["text", "markdown"])
@pytest.mark.parametrize("value", HOSTILE)
def test_values_are_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, fmt: list[str]
) -> None:
    changed = BASE.replace(
        "    name: Checkout API\n",
        f"    name: Checkout API\n    description: {json.dumps(value)}\n",
    )
    old, new = _write(tmp_path, "old.yaml", BASE), _write(tmp_path, "new.yaml", changed)
    code, out, err = _run(capsys, old, new, *fmt)
    assert (code, err) == (0, "")
    assert raw_controls(out) == []
    (line,) = [line for line in out.splitlines() if "description: (none)" in line]
    assert "forged" not in out.replace(line, "")


# -- files that are not stack files: one line, never a hang ------------------------------

SPECIAL = [
    # (how to make the path, the reason after "PATH: ")
    pytest.param(
        lambda d: "/dev/zero", "is not a regular file (a FIFO, socket or device?)", id="dev-zero"
    ),
    pytest.param(
        lambda d: (os.mkfifo(d / "pipe.yaml"), str(d / "pipe.yaml"))[1],
        "is not a regular file (a FIFO, socket or device?)",
        id="fifo-nobody-writes",
    ),
    pytest.param(lambda d: str(d), "is a directory, not a stack file", id="directory"),
]


@pytest.mark.parametrize("side", ["old", "new"])
@pytest.mark.parametrize(("make", "reason"), SPECIAL)
def test_special_files_are_one_line_and_do_not_hang(
    tmp_path: Path, side: str, make: Callable[[Path], str], reason: str
) -> None:
    # A separate process with a timeout: a blocking open or an endless read would hang
    # the test run itself, not fail it.
    special = make(tmp_path)
    base = _write(tmp_path, "base.yaml", BASE)
    files = [base, special] if side == "new" else [special, base]
    proc = subprocess.run(
        [sys.executable, "-m", "apica_pagerduty", "diff", *files],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"apica-pd diff: {special}: {reason}\n"


def test_a_fifo_in_the_working_tree_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = repo / "stacks" / "prod.yaml"
    stack.unlink()
    os.mkfifo(stack)
    code, out, err = _run(capsys, str(stack), "--base", "main")
    assert (code, out) == (1, "")
    assert err == f"apica-pd diff: {stack}: is not a regular file (a FIFO, socket or device?)\n"


def test_an_oversized_file_at_a_revision_is_not_read(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = repo / "stacks" / "prod.yaml"
    stack.write_text(BASE + "#" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    git(repo, "commit", "--quiet", "-am", "huge")
    stack.write_text(BASE, encoding="utf-8")
    code, out, err = _run(capsys, str(stack), "--base", "main")
    assert (code, out) == (1, "")
    size = len(BASE) + MAX_FILE_BYTES + 1
    assert err == (
        f"apica-pd diff: main:stacks/prod.yaml: is {size:,} bytes; a stack file may be at most "
        "5,242,880 bytes (5 MiB)\n"
    )


def test_a_directory_at_a_revision_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, str(repo / "stacks"), "--base", "main")
    assert (code, out) == (1, "")
    assert err == "apica-pd diff: main:stacks: is a directory, not a stack file\n"
