"""`apica-pd change-event`: a real git repository, a routes file from applying the stack to
the sandbox, and change events landing on the sandbox's services; keys never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.routes_file import parse_routes, write_routes_file
from infra.validate import load_stack
from sandbox.pulumi_apply import account_seed, apply_stack
from sandbox.seed import apply_seed
from sandbox.server import PagerDutySandbox
from tests.conftest import git

from .conftest import Run

STACK = """\
escalation_policies:
  payments:
    name: Payments On-call
    rules: [{delay: 30m, targets: [{user: ann@example.com}]}]
services:
  checkout:
    name: Checkout API
    escalation_policy: payments
    integration: {checks: {ids: [1]}}
  refunds:
    name: Refunds
    escalation_policy: payments
  quiet:
    name: Quiet
    escalation_policy: payments
    integration: none
"""
COMMIT_URL = "https://github.com/org/stacks/commit/abcdef1234567890"
SUMMARY = "apica-pd: escalation policy Payments On-call: rule 1: escalate after: 30m -> 10m"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """stacks/prod.yaml committed twice: the second commit shortens the escalation delay."""
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "stacks" / "prod.yaml").write_text(STACK, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    (repo / "stacks" / "prod.yaml").write_text(STACK.replace("30m", "10m"), encoding="utf-8")
    git(repo, "commit", "--quiet", "-am", "page payments faster")
    return repo


@pytest.fixture
def routes(pd: PagerDutySandbox, repo: Path, tmp_path: Path) -> Path:
    """The routes file `routes pull` would write after `pulumi up` of the new version."""
    stack = load_stack(repo / "stacks" / "prod.yaml")
    apply_seed(pd.state, account_seed(stack))
    text = apply_stack(stack, "prod", pd.api_url, pd.token)
    return write_routes_file(tmp_path / "routes-prod.json", parse_routes(text, "bridge_routes"))


def change_event(run: Run, pd: PagerDutySandbox, routes: Path, *extra: str) -> tuple[int, str, str]:
    return run(
        "change-event", "--base", "HEAD~1", "--head", "HEAD", "--routes", str(routes),
        "--commit-url", COMMIT_URL, "--events-url", pd.url + "/v2/change/enqueue", *extra,
    )


def test_each_rewired_service_gets_one_change_event(
    run: Run, pd: PagerDutySandbox, repo: Path, routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    code, out, err = change_event(run, pd, routes)
    assert (code, err) == (0, "")
    assert out == (
        "stacks/prod.yaml: HEAD~1 -> HEAD: 3 service(s) rewired\n"
        f"  checkout: change event taken: {SUMMARY}\n"
        f"  refunds: change event taken: {SUMMARY}\n"
        f"  quiet: no routing key in {routes} (no Apica integration): no change event\n"
    )
    events = pd.state.change_events()
    assert [(e["service_name"], e["summary"]) for e in events] == [
        ("Checkout API", SUMMARY), ("Refunds", SUMMARY),
    ]
    assert events[0]["links"] == [{"href": COMMIT_URL, "text": "commit abcdef123456"}]
    assert events[0]["custom_details"]["file"] == "stacks/prod.yaml"
    assert pd.state.incidents() == []
    pulled = parse_routes(routes.read_text(encoding="utf-8"), "routes").routes.values()
    keys = [route.routing_key.get_secret_value() for route in pulled]
    assert not any(key in out or key[-4:] in out for key in keys)


def test_the_file_comes_from_the_routes_files_stack_or_the_command_line(
    run: Run, pd: PagerDutySandbox, repo: Path, routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "stacks")
    code, out, _ = change_event(run, pd, routes, "prod.yaml", "--dry-run")
    assert code == 0 and out.startswith("prod.yaml: HEAD~1 -> HEAD: 3 service(s) rewired\n")


def test_dry_run_prints_the_events_without_keys_and_sends_nothing(
    run: Run, pd: PagerDutySandbox, repo: Path, routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    code, out, _ = change_event(run, pd, routes, "--dry-run")
    assert code == 0
    first = out.split("\n", 1)[1].split("\n}\n")[0] + "\n}"
    event = json.loads(first)
    assert event["routing_key"] == "[secret]"
    assert event["payload"]["summary"] == SUMMARY
    assert pd.state.change_events() == [] and pd.state.change_requests() == []


def test_nothing_rewired_sends_nothing(
    run: Run, pd: PagerDutySandbox, repo: Path, routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    code, out, _ = run(
        "change-event", "--base", "HEAD", "--head", "HEAD", "--routes", str(routes),
        "--commit-url", COMMIT_URL, "--events-url", pd.url + "/v2/change/enqueue",
    )
    assert (code, out) == (
        0, "stacks/prod.yaml: HEAD -> HEAD: no service's wiring changed; no change events\n"
    )
    assert pd.state.change_requests() == []


def test_an_event_not_taken_is_one_line_and_the_rest_still_go(
    run: Run, pd: PagerDutySandbox, repo: Path, routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    pd.faults.fail(status=400, count=1, body={"status": "invalid event", "message": "Bad"})
    code, out, err = change_event(run, pd, routes)
    assert code == 1
    assert err == "apica-pd change-event: checkout: PagerDuty answered 400 (Bad)\n"
    assert f"  refunds: change event taken: {SUMMARY}\n" in out
    assert [e["service_name"] for e in pd.state.change_events()] == ["Refunds"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--commit-url", "not a url"],
         "apica-pd change-event: --commit-url must be an http(s) URL without spaces, e.g. "
         "https://github.com/org/repo/commit/<sha>\n"),
        (["--base", "nope"],
         "apica-pd change-event: unknown git revision 'nope' in {repo}: fetch it first (e.g. "
         "`git fetch origin main`, or in GitHub Actions check out with fetch-depth: 0)\n"),
    ],
)
def test_bad_input_is_one_line(
    run: Run, pd: PagerDutySandbox, repo: Path, routes: Path, monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str,
) -> None:
    monkeypatch.chdir(repo)
    args = {"--base": "HEAD~1", "--commit-url": COMMIT_URL}
    args.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    code, out, err = run("change-event", "--routes", str(routes), "--head", "HEAD",
                         *(part for pair in args.items() for part in pair))
    assert (code, out, err) == (1, "", message.format(repo=repo))


def test_a_bad_routes_file_is_one_line_without_a_key(
    run: Run, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    bad = tmp_path / "routes.json"
    bad.write_text('{"version": 1, "stack": "prod", "routes": {"web": {"routing_key": "'
                   + "s" * 31 + '"}}}', encoding="utf-8")
    code, out, err = run("change-event", "--base", "HEAD~1", "--routes", str(bad),
                         "--commit-url", COMMIT_URL)
    assert (code, out) == (1, "")
    assert err.startswith(f"apica-pd change-event: the routes file cannot be used: {bad}: ")
    assert "s" * 31 not in err and len(err.splitlines()) == 1
