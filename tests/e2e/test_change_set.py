"""A change set applied with `pulumi up` and checked in the sandbox: a display-name rename,
an added service, a removed service, a timeout change, an urgency-rule change, and a
protected service whose removal Pulumi refuses. One stack for the module (its file in
tmp_path, named by `stackFile`); the tests run in file order, the refused delete last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apica_pagerduty.pulumi_engine import Provider, PulumiProject
from sandbox.server import PagerDutySandbox
from tests.e2e.conftest import (
    by_name,
    engine_declared,
    offline_declared,
    ran_on,
    seeded_sandbox,
)

pytestmark = pytest.mark.e2e

STACK = "changes"
POLICY = """\
defaults:
  escalation_policy: oncall
  urgency: high
escalation_policies:
  oncall:
    name: On-call
    rules:
      - delay: 10m
        targets: [{user: alice@example.com}]
"""
BEFORE = POLICY + """\
services:
  checkout:
    name: Checkout
    integration: {checks: {ids: [1]}}
  search:
    name: Search
    auto_resolve_timeout: 4h
    acknowledgement_timeout: 30m
    integration: {checks: {ids: [2]}}
  status:
    name: Status
    integration: {checks: {ids: [3]}}
  retired:
    name: Retired
    protect: false
    integration: {checks: {ids: [4]}}
  locked:
    name: Locked
    integration: {checks: {ids: [5]}}
"""
LOCKED = """\
  locked:
    name: Locked
    integration: {checks: {ids: [5]}}
"""
AFTER_BODY = POLICY + """\
services:
  checkout:
    name: Checkout API
    integration: {checks: {ids: [1]}}
  search:
    name: Search
    auto_resolve_timeout: 1h
    acknowledgement_timeout: off
    integration: {checks: {ids: [2]}}
  status:
    name: Status
    urgency:
      support_hours: {time_zone: UTC, days: [mon, tue, wed, thu, fri], start: "08:00",
                      end: "18:00", during: high, outside: low}
    integration: {checks: {ids: [3]}}
  payments:
    name: Payments
    integration: {checks: {ids: [6]}}
"""
AFTER = AFTER_BODY + LOCKED + "allow_destroy: [retired]\n"
WITHOUT_LOCKED = AFTER_BODY + "allow_destroy: [locked]\n"


@dataclass(frozen=True)
class ChangeSet:
    project: PulumiProject
    pd: PagerDutySandbox
    stack_file: Path
    before: dict[str, dict[str, dict[str, Any]]]  # collection -> name -> object
    planned: dict[str, str]  # logical name -> operation
    up: str


def objects(pd: PagerDutySandbox) -> dict[str, dict[str, dict[str, Any]]]:
    return {c: by_name(pd, c) for c in ("services", "integrations", "escalation_policies")}


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PagerDutySandbox, Path]]:
    stack_file = tmp_path_factory.mktemp("stack") / "changes.yaml"
    stack_file.write_text(BEFORE)
    for pd, _seeded in seeded_sandbox(stack_file):
        yield pd, stack_file


@pytest.fixture(scope="module")
def changed(
    account: tuple[PagerDutySandbox, Path],
    tools: Path,
    provider: Provider,
    tmp_path_factory: pytest.TempPathFactory,
) -> ChangeSet:
    pd, stack_file = account
    project = PulumiProject.create(tmp_path_factory.mktemp("changes"), tools, provider)
    project.init_stack(STACK, pd.api_url, pd.token, stack_file)
    ran_on(project.run("up", "--yes", "--skip-preview").stdout, provider)
    before = objects(pd)
    stack_file.write_text(AFTER)
    preview = json.loads(project.run("preview", "--json").stdout)
    planned = {
        step["urn"].rsplit("::", 1)[-1]: step["op"]
        for step in preview["steps"]
        if step["op"] != "same"
    }
    up = project.run("up", "--yes", "--skip-preview").stdout
    return ChangeSet(project, pd, stack_file, before, planned, up)


def test_the_change_set_plans_updates_in_place_one_create_and_one_delete(changed: ChangeSet):
    assert changed.planned == {
        "service-checkout": "update",
        "service-checkout-apica": "update",  # its default name follows the service's
        "service-search": "update",
        "service-status": "update",
        "payments": "create",
        "service-payments": "create",
        "service-payments-apica": "create",
        "retired": "delete",
        "service-retired": "delete",
        "service-retired-apica": "delete",
    }
    assert "~ 4 updated" in changed.up and "+ 3 created" in changed.up
    assert "- 3 deleted" in changed.up


def test_a_display_name_rename_updates_in_place_and_keeps_the_integration_key(
    changed: ChangeSet,
):
    old_service = changed.before["services"]["Checkout"]
    old_integration = changed.before["integrations"]["Apica-Checkout"]
    services, integrations = by_name(changed.pd, "services"), by_name(changed.pd, "integrations")
    assert "Checkout" not in services
    assert services["Checkout API"]["id"] == old_service["id"]
    renamed = integrations["Apica-Checkout-API"]
    assert renamed["id"] == old_integration["id"]
    assert renamed["integration_key"] == old_integration["integration_key"]
    assert changed.project.outputs()["services"]["checkout"]["name"] == "Checkout API"


def test_an_added_service_is_created_with_its_integration(changed: ChangeSet):
    payments = by_name(changed.pd, "services")["Payments"]
    assert payments["escalation_policy"]["summary"] == "On-call"
    assert [i["summary"] for i in payments["integrations"]] == ["Apica-Payments"]
    key = by_name(changed.pd, "integrations")["Apica-Payments"]["integration_key"]
    assert changed.project.outputs()["integration_keys"]["payments"] == key


def test_a_removed_unprotected_service_is_deleted_with_its_integration(changed: ChangeSet):
    retired = changed.before["services"]["Retired"]
    assert changed.pd.state.directory.get("services", retired["id"]) is None
    assert "Apica-Retired" not in by_name(changed.pd, "integrations")
    assert "retired" not in changed.project.outputs()["services"]


def test_a_timeout_change_is_applied(changed: ChangeSet):
    before = changed.before["services"]["Search"]
    search = by_name(changed.pd, "services")["Search"]
    assert (before["auto_resolve_timeout"], before["acknowledgement_timeout"]) == (14400, 1800)
    assert (search["auto_resolve_timeout"], search["acknowledgement_timeout"]) == (3600, None)


def test_an_urgency_rule_change_is_applied(changed: ChangeSet):
    assert changed.before["services"]["Status"]["incident_urgency_rule"] == {
        "type": "constant", "urgency": "high",
    }
    status = by_name(changed.pd, "services")["Status"]
    assert status["incident_urgency_rule"] == {
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": "high"},
        "outside_support_hours": {"type": "constant", "urgency": "low"},
    }
    assert (status["support_hours"]["start_time"], status["support_hours"]["end_time"]) == (
        "08:00:00", "18:00:00",
    )
    assert [a["at"]["name"] for a in status["scheduled_actions"]] == ["support_hours_start"]


def test_after_the_change_set_no_diff_and_the_offline_plan_matches(changed: ChangeSet):
    changed.project.run("preview", "--refresh", "--expect-no-changes")
    assert engine_declared(changed.project.export()) == offline_declared(
        changed.stack_file, STACK
    )


def test_removing_a_protected_service_fails_with_pulumis_own_message(changed: ChangeSet):
    locked = by_name(changed.pd, "services")["Locked"]
    changed.stack_file.write_text(WITHOUT_LOCKED)
    refused = changed.project.run("up", "--yes", "--skip-preview", check=False)
    assert refused.returncode != 0
    shown = refused.stdout + refused.stderr
    # Dependents go first: the integration is the first protected resource the delete meets.
    urn = (f"urn:pulumi:{STACK}::apica-pagerduty::apica-pagerduty:index:ApicaService"
           "$pagerduty:index/serviceIntegration:ServiceIntegration::service-locked-apica")
    assert f'error: resource "{urn}" cannot be deleted\n' in shown
    assert (
        "    because it is protected. To unprotect the resource, either remove the `protect` "
        "flag from the resource in your Pulumi program and run `pulumi up`, or use the "
        f"command:\n    `pulumi state unprotect '{urn}'`\n"
    ) in shown
    assert changed.pd.state.directory.get("services", locked["id"]) is not None
    assert "Apica-Locked" in by_name(changed.pd, "integrations")
