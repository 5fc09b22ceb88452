"""`apica-pd import` end to end against the sandbox holding a hand-made account: the file
it writes validates, plans as imports only, and applied to the account changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contract.routes_file import parse_routes
from infra.preview import preview_stack_file
from infra.validate import load_stack
from sandbox.pulumi_apply import apply_stack
from sandbox.rest_mocks import PagerDutyRestMocks
from sandbox.server import PagerDutySandbox

from .conftest import HandMadeAccount, Run, apica_vendor

SUMMARY = (
    "apica-pd import: {out}: 3 services, 2 escalation policies, 1 Apica integration adopted; "
    "2 without an Apica integration (integration: none); 2 PagerDuty: notes to review\n"
)


@pytest.fixture
def token_env(pd: PagerDutySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGERDUTY_TOKEN", pd.token)


@pytest.fixture
def imported(
    run: Run, pd: PagerDutySandbox, account: HandMadeAccount, token_env: None, tmp_path: Path
) -> Path:
    out = tmp_path / "stacks" / "prod.yaml"
    out.parent.mkdir()
    code, stdout, stderr = run("import", "--all", "--api-url", pd.api_url, "--out", str(out))
    assert (code, stdout, stderr) == (0, "", SUMMARY.format(out=out))
    return out


def test_the_imported_file_validates(run: Run, imported: Path) -> None:
    code, out, err = run("validate", str(imported))
    assert (code, out, err) == (0, f"{imported}: ok (3 services, 2 escalation policies)\n", "")


def test_the_imported_file_adopts_every_object(imported: Path, account: HandMadeAccount) -> None:
    stack = load_stack(imported)
    ids = account.ids
    assert {k: p.adopt for k, p in stack.escalation_policies.items()} == {  # type: ignore[union-attr]
        "payments-on-call": ids["Payments On-call"],
        "platform-on-call": ids["Platform On-call"],
    }
    assert {k: s.adopt for k, s in stack.services.items()} == {  # type: ignore[union-attr]
        "checkout-api": ids["Checkout API"],
        "search": ids["Search"],
        "status-page": ids["Status Page"],
    }
    checkout = stack.services["checkout-api"].integration
    assert checkout is not None
    assert checkout.adopt == f"{ids['Checkout API']}.{ids['Checkout API/Apica-Checkout-API']}"
    assert stack.services["search"].integration is None
    assert stack.apica_vendor_id == apica_vendor(account.pd)


def test_the_imported_file_reads_like_a_stack_file(imported: Path) -> None:
    text = imported.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schema.json\n")
    assert "    # PagerDuty: other integrations stay as they are, not managed here: " \
        "'Deploy hooks' (events_api_v2_inbound_integration)\n" in text
    assert "      - delay: 15m\n        assignment: round_robin\n" in text
    assert "    alert_grouping: none\n" in text
    assert "    # PagerDuty: the service groups alerts itself ({type: time, timeout: 15m}, " in text
    assert "    auto_pause: {enabled: true, timeout: 5m}\n" in text
    assert '        start: "09:00"\n' in text


def test_plan_shows_imports_and_no_creates(run: Run, imported: Path) -> None:
    preview = preview_stack_file(imported)
    assert preview.creates == ()
    assert len(preview.imports) == 6  # 2 policies, 3 services, 1 integration
    code, out, err = run("plan", str(imported))
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == (
        "PagerDuty objects: 0 to create (+), 6 to import (=, adopted as they are)"
    )
    assert not [line for line in out.splitlines() if line.lstrip().startswith("+ pagerduty:")]


def test_applying_the_imported_file_changes_nothing(
    pd: PagerDutySandbox, account: HandMadeAccount, imported: Path
) -> None:
    before = account.snapshot()
    mocks = PagerDutyRestMocks(pd.api_url, pd.token)
    routes = parse_routes(apply_stack(load_stack(imported), "prod", pd.api_url, pd.token, mocks),
                          "bridge_routes")
    assert (mocks.created, mocks.updated) == ([], {})
    assert sorted(mocks.imported) == [
        "policy-payments-on-call", "policy-platform-on-call", "service-checkout-api",
        "service-checkout-api-apica", "service-search", "service-status-page",
    ]
    assert account.snapshot() == before
    # The bridge gets the integration key the adopted integration already has.
    (route,) = routes.routes.values()
    key = route.routing_key.get_secret_value()
    integration, service = pd.state.directory.integration_by_key(key)
    assert (service["name"], integration["name"]) == ("Checkout API", "Apica-Checkout-API")


def test_a_difference_would_be_an_update_not_a_create(
    pd: PagerDutySandbox, account: HandMadeAccount, imported: Path
) -> None:
    edited = imported.read_text(encoding="utf-8").replace(
        "acknowledgement_timeout: 30m", "acknowledgement_timeout: 15m", 1
    )
    imported.write_text(edited, encoding="utf-8")
    mocks = PagerDutyRestMocks(pd.api_url, pd.token)
    apply_stack(load_stack(imported), "prod", pd.api_url, pd.token, mocks)
    assert (mocks.created, mocks.updated) == (
        [], {"service-checkout-api": ["acknowledgement_timeout"]}
    )


def test_to_standard_output_by_team(
    run: Run, pd: PagerDutySandbox, account: HandMadeAccount, token_env: None
) -> None:
    code, out, err = run("import", "--team", "Platform", "--api-url", pd.api_url)
    assert code == 0
    assert "  search:\n" in out and "  checkout-api:\n" not in out
    assert err == (
        "apica-pd import: standard output: 2 services, 1 escalation policy, 0 Apica "
        "integrations adopted; 2 without an Apica integration (integration: none); "
        "1 PagerDuty: notes to review\n"
    )


def test_by_service_name_with_a_token_file(
    run: Run, pd: PagerDutySandbox, account: HandMadeAccount, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PAGERDUTY_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(pd.token + "\n", encoding="utf-8")
    code, out, _ = run("import", "--service", "Search", "--service", "status page",
                       "--api-url", pd.api_url, "--token-file", str(token_file))
    assert code == 0
    assert "  search:\n" in out and "  status-page:\n" in out and "checkout" not in out


def test_an_existing_file_is_kept_unless_forced(
    run: Run, pd: PagerDutySandbox, imported: Path
) -> None:
    code, out, err = run("import", "--all", "--api-url", pd.api_url, "--out", str(imported))
    assert (code, out) == (1, "")
    assert err == f"apica-pd import: {imported} exists; pass --force to overwrite it\n"
    code, _, _ = run("import", "--all", "--api-url", pd.api_url, "--out", str(imported), "--force")
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--service", "Serch"], "apica-pd import: no service named 'Serch' in PagerDuty (names "
         "match exactly, ignoring case)\n"),
        (["--team", "Nobody"], "apica-pd import: no team named 'Nobody' in PagerDuty (names "
         "match exactly, ignoring case)\n"),
    ],
)
def test_selection_errors_are_one_line(
    run: Run, pd: PagerDutySandbox, account: HandMadeAccount, token_env: None,
    argv: list[str], message: str,
) -> None:
    assert run("import", *argv, "--api-url", pd.api_url) == (1, "", message)


def test_a_refused_token_is_never_printed(
    run: Run, pd: PagerDutySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_TOKEN", "u+wrong-token-4242")
    code, out, err = run("import", "--all", "--api-url", pd.api_url)
    assert (code, out) == (1, "")
    assert err == (
        "apica-pd import: GET /services: answered 401 (Authentication failed): PagerDuty "
        "refused the token: check PAGERDUTY_TOKEN or --token-file (an EU account needs "
        "--api-url https://api.eu.pagerduty.com)\n"
    )
    assert "4242" not in err


def test_a_missing_token_file_is_one_line(run: Run, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out, err = run("import", "--all", "--token-file", str(missing))
    assert (code, out) == (1, "")
    assert err == f"apica-pd import: cannot read {missing}: no such file\n"


def test_a_file_that_does_not_validate_is_written_with_its_problems(
    run: Run, pd: PagerDutySandbox, account: HandMadeAccount, token_env: None, tmp_path: Path
) -> None:
    # A rule whose only target the stack file cannot name leaves the policy without rules.
    pd.state.create_escalation_policy(
        "Teams only",
        escalation_rules=[{"id": "PR1", "escalation_delay_in_minutes": 5,
                           "targets": [{"id": account.ids["Platform"], "type": "team_reference"}]}],
    )
    policy = next(p for p in pd.state.directory.list("escalation_policies")
                  if p["name"] == "Teams only")
    pd.state.create_service("Odd", escalation_policy_id=policy["id"])
    out = tmp_path / "odd.yaml"
    code, _, err = run("import", "--service", "Odd", "--api-url", pd.api_url, "--out", str(out))
    assert code == 1
    lines = err.splitlines()
    assert lines[1] == (
        f"{out}:20:12: escalation_policies.teams-only.rules: must have at least 1 item"
    )
    assert lines[-1] == (
        "apica-pd import: the stack file does not validate (problems above): fix them there, "
        "then `apica-pd validate`"
    )
    assert out.exists()


# -- an account of 50 services ----------------------------------------------------------

DOMAINS = ("Checkout", "Search", "Payments", "Accounts", "Catalog",
           "Shipping", "Reviews", "Notifications", "Identity", "Reporting")
PARTS = ("API", "Web", "Worker", "Database", "Cache")


def fifty_service_account(pd: PagerDutySandbox) -> HandMadeAccount:
    """Ten teams' services: five policies, 50 services in many shapes, 30 Apica integrations."""
    made = HandMadeAccount(pd)
    for person in ("alice", "bob", "carol", "dave"):
        made.person(f"{person}@example.com", person.title())
    for index, domain in enumerate(DOMAINS[:5]):
        made.team(domain)
        made.schedule(f"{domain} Primary")
        made.policy(
            f"{domain} On-call",
            [(10 + 5 * index, "assign_to_everyone", [f"schedule:{domain} Primary"]),
             (30, "round_robin", ["user:alice@example.com", "user:bob@example.com"])],
            num_loops=index % 3,
            teams=[{"id": made.ids[domain], "type": "team_reference"}],
        )
    vendor = apica_vendor(pd)
    for number, (domain, part) in enumerate((d, p) for d in DOMAINS for p in PARTS):
        name = f"{domain} {part}"
        fields: dict[str, Any] = {
            "incident_urgency_rule": {"type": "constant",
                                      "urgency": ("high", "low", "severity_based")[number % 3]},
        }
        if number % 7 == 0:
            fields.update(
                incident_urgency_rule={
                    "type": "use_support_hours",
                    "during_support_hours": {"type": "constant", "urgency": "high"},
                    "outside_support_hours": {"type": "constant", "urgency": "low"},
                },
                support_hours={"type": "fixed_time_per_day", "time_zone": "Europe/Berlin",
                               "days_of_week": [1, 2, 3, 4, 5], "start_time": "08:00:00",
                               "end_time": "18:00:00"},
                scheduled_actions=[{"type": "urgency_change", "to_urgency": "high",
                                    "at": {"type": "named_time", "name": "support_hours_start"}}],
            )
        if number % 5 == 1:
            fields["alert_grouping_parameters"] = {"type": "time", "config": {"timeout": 10}}
        if number % 4 == 2:
            fields["auto_resolve_timeout"] = None
        made.service(name, f"{DOMAINS[number % 5]} On-call", **fields)
        if number % 5 in (0, 1, 3):
            made.integration(name, f"Apica-{domain}-{part}", vendor=vendor)
    return made


def test_an_account_of_fifty_services(
    run: Run, pd: PagerDutySandbox, token_env: None, tmp_path: Path
) -> None:
    made = fifty_service_account(pd)
    out = tmp_path / "fifty.yaml"
    code, _, err = run("import", "--all", "--api-url", pd.api_url, "--out", str(out))
    assert (code, err) == (0, (
        f"apica-pd import: {out}: 50 services, 5 escalation policies, 30 Apica integrations "
        "adopted; 20 without an Apica integration (integration: none); "
        "10 PagerDuty: notes to review\n"
    ))
    preview = preview_stack_file(out)
    assert (len(preview.imports), len(preview.creates)) == (85, 0)
    before = made.snapshot()
    mocks = PagerDutyRestMocks(pd.api_url, pd.token)
    apply_stack(load_stack(out), "fifty", pd.api_url, pd.token, mocks)
    assert (mocks.created, mocks.updated, made.snapshot() == before) == ([], {}, True)
