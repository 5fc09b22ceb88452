"""infra.change_events: which services a change rewires and what their events say (pure),
and the sender against the sandbox's /v2/change/enqueue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.change_events import (
    MAX_TRIES,
    ChangeEventError,
    ChangeEventSender,
    WiringChange,
    change_event,
    summary,
    wiring_changes,
)
from infra.diff import diff_stacks
from infra.validate import parse_stack
from sandbox.server import PagerDutySandbox

BASE = """\
escalation_policies:
  payments:
    name: Payments On-call
    rules: [{delay: 30m, targets: [{user: ann@example.com}]}]
  web:
    name: Web On-call
    rules: [{delay: 5m, targets: [{user: ann@example.com}]}]
services:
  checkout:
    name: Checkout API
    escalation_policy: payments
    integration: {checks: {ids: [1]}}
  refunds:
    name: Refunds
    escalation_policy: payments
  site:
    name: Web Site
    escalation_policy: web
  quiet:
    name: Quiet
    escalation_policy: web
    integration: none
"""


def rewired(new_text: str, old_text: str = BASE) -> dict[str, tuple[str, ...]]:
    old, new = parse_stack(old_text, "old.yaml"), parse_stack(new_text, "new.yaml")
    return {w.route: w.lines for w in wiring_changes(diff_stacks(old, new), new)}


def test_a_policy_change_reaches_every_service_that_uses_it() -> None:
    assert rewired(BASE.replace("delay: 30m", "delay: 10m")) == {
        "checkout": ("escalation policy Payments On-call: rule 1: escalate after: 30m -> 10m",),
        "refunds": ("escalation policy Payments On-call: rule 1: escalate after: 30m -> 10m",),
    }


def test_service_integration_and_route_changes() -> None:
    text = (
        BASE.replace("    escalation_policy: web\n    integration: none\n",
                     "    escalation_policy: payments\n    integration: none\n")
        .replace("checks: {ids: [1]}", "checks: {ids: [1, 2]}")
        .replace("name: Web Site", "name: Web Site\n    urgency: high")
    )
    assert rewired(text) == {
        "quiet": ("escalation policy: web -> payments",),
        "checkout": ("check ids: added 2",),
        "site": ("urgency: severity_based -> high",),
    }


def test_added_integrations_services_and_catch_all() -> None:
    text = (
        BASE.replace("    integration: none\n", "")
        + "  status:\n    name: Status\n    escalation_policy: web\ncatch_all: site\n"
    )
    assert rewired(text) == {
        "quiet": ("Apica integration 'Apica-Quiet' added (route /v1/asm/quiet)",),
        "status": ("added to the stack file (route /v1/asm/status)",),
        "site": ("now the catch-all route (before: none)",),
    }


def test_removed_services_get_no_event() -> None:
    assert rewired(BASE.replace("  refunds:\n    name: Refunds\n    escalation_policy: payments\n",
                                "")) == {}


def test_values_from_the_file_are_escaped() -> None:
    text = BASE.replace("name: Web Site", 'name: Web Site\n    description: "a\\x1bb"')
    assert rewired(text) == {"site": ("description: (none) -> a\\x1bb",)}


def test_the_summary_stays_within_1024_characters() -> None:
    lines = tuple(f"check ids: added {i:04}" + "x" * 40 for i in range(40))
    text = summary(lines)
    assert len(text) <= 1024
    assert text.startswith("apica-pd: check ids: added 0000")
    assert text.endswith(" more (custom details)")
    assert summary(("one", "two")) == "apica-pd: one; two"
    assert len(summary(("y" * 2000,))) == 1024


def test_the_event_follows_the_contract() -> None:
    wiring = WiringChange("checkout", "Checkout API", ("urgency: high -> low",))
    event = change_event(
        "k" * 32, wiring, stack="prod", file="stacks/prod.yaml",
        commit_url="https://github.com/org/stacks/commit/0123456789abcdef0123",
        now=datetime(2026, 1, 5, 12, 0, 30, 250000, tzinfo=UTC),
    )
    assert event == {
        "routing_key": "k" * 32,
        "payload": {
            "summary": "apica-pd: urgency: high -> low",
            "source": "apica-pd (prod)",
            "timestamp": "2026-01-05T12:00:30+00:00",
            "custom_details": {"stack": "prod", "file": "stacks/prod.yaml", "route": "checkout",
                               "changes": ["urgency: high -> low"]},
        },
        "links": [{"href": "https://github.com/org/stacks/commit/0123456789abcdef0123",
                   "text": "commit 0123456789ab"}],
    }


# -- sending to the sandbox ----------------------------------------------------------------


def test_sent_to_the_sandbox_it_is_kept_and_opens_nothing(pd: PagerDutySandbox) -> None:
    service = pd.state.create_service("Checkout API")
    key = pd.state.add_integration(service["id"])["integration_key"]
    wiring = WiringChange("checkout", "Checkout API", ("urgency: high -> low",))
    event = change_event(key, wiring, stack="prod", file="f.yaml",
                         commit_url="https://x.example/c/1", now=datetime.now(UTC))
    ChangeEventSender(pd.url + "/v2/change/enqueue").send(event)
    [kept] = pd.state.change_events()
    assert (kept["service_name"], kept["summary"]) == (
        "Checkout API", "apica-pd: urgency: high -> low"
    )
    assert pd.state.incidents() == []


def test_a_refusal_is_one_line_without_the_key(pd: PagerDutySandbox) -> None:
    key = "k" * 32
    bad = {"routing_key": key, "payload": {"summary": ""}}
    with pytest.raises(ChangeEventError) as caught:
        ChangeEventSender(pd.url + "/v2/change/enqueue").send(bad)
    assert str(caught.value) == (
        "PagerDuty answered 400 (Event object is invalid; 'payload.summary' is missing or blank)"
    )


def test_throttling_and_server_errors_are_retried_a_bounded_number_of_times(
    pd: PagerDutySandbox,
) -> None:
    service = pd.state.create_service("Web")
    key = pd.state.add_integration(service["id"])["integration_key"]
    event = {"routing_key": key, "payload": {"summary": "x"}}
    slept: list[float] = []
    sender = ChangeEventSender(pd.url + "/v2/change/enqueue", sleep=slept.append)
    pd.faults.rate_limit(count=1, retry_after=3)
    pd.faults.fail(status=502, count=1)
    sender.send(event)
    assert slept == [3.0, 2.0]
    pd.faults.fail(status=500, count=MAX_TRIES)
    with pytest.raises(ChangeEventError) as caught:
        sender.send(event)
    assert str(caught.value) == (
        f"PagerDuty answered 500 (Internal Server Error) after {MAX_TRIES} tries"
    )


def test_an_unreachable_endpoint_is_one_line() -> None:
    slept: list[float] = []
    sender = ChangeEventSender("http://127.0.0.1:9/v2/change/enqueue", sleep=slept.append)
    with pytest.raises(ChangeEventError) as caught:
        sender.send({"routing_key": "k" * 32, "payload": {"summary": "x"}})
    assert str(caught.value) == (
        "cannot reach http://127.0.0.1:9/v2/change/enqueue (ConnectionError) after "
        f"{MAX_TRIES} tries"
    )
    assert slept == [1.0, 2.0]
