"""infra.plan: resolved Stack -> plain plan data, and the routes document."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from contract.routes_file import parse_routes
from infra.model import (
    AlertGrouping,
    ExistingPolicy,
    ExistingService,
    Integration,
    NewPolicy,
    NewService,
    Rule,
    Stack,
    SupportHours,
    Target,
    UrgencyRule,
)
from infra.plan import (
    TIMEOUT_OFF,
    AutoPausePlan,
    ExistingPolicyPlan,
    ExistingServicePlan,
    GroupingPlan,
    NewPolicyPlan,
    NewServicePlan,
    ResolvedRoute,
    ScheduledActionPlan,
    StackPlan,
    SupportHoursPlan,
    TargetPlan,
    UrgencyRulePlan,
    build_plan,
    routes_document,
    routes_json,
)

SEVERITIES = {"F": "critical", "E": "error", "W": "warning", "I": "info"}
KEY = "0123456789abcdef0123456789abcdef"


def integration(name: str = "Apica-Web", **overrides: Any) -> Integration:
    fields: dict[str, Any] = {
        "name": name,
        "vendor_id": None,
        "check_ids": (),
        "check_guids": (),
        "check_tags": (),
        "severity_map": dict(SEVERITIES),
        "links": (),
    }
    return Integration(**{**fields, **overrides})


def new_service(key: str = "web", **overrides: Any) -> NewService:
    fields: dict[str, Any] = {
        "key": key,
        "name": "Web",
        "description": None,
        "escalation_policy": "oncall",
        "urgency": UrgencyRule(type="constant", urgency="severity_based"),
        "auto_resolve_timeout": 4 * 3600,
        "acknowledgement_timeout": 30 * 60,
        "alert_grouping": None,
        "auto_pause_timeout": None,
        "team": None,
        "protect": True,
        "integration": integration(),
    }
    return NewService(**{**fields, **overrides})


def new_policy(key: str = "oncall", **overrides: Any) -> NewPolicy:
    fields: dict[str, Any] = {
        "key": key,
        "name": "On-call",
        "description": None,
        "num_loops": 1,
        "team": None,
        "protect": True,
        "rules": (
            Rule(
                delay_minutes=30,
                assignment="assign_to_everyone",
                targets=(Target(type="user", ref="ann@example.com"),),
            ),
        ),
    }
    return NewPolicy(**{**fields, **overrides})


def stack_of(*services: NewService | ExistingService, **overrides: Any) -> Stack:
    fields: dict[str, Any] = {
        "escalation_policies": {"oncall": new_policy()},
        "services": {service.key: service for service in services},
        "catch_all": None,
        "apica_vendor_id": None,
    }
    return Stack(**{**fields, **overrides})


def support_hours_urgency(raise_at_start: bool, during: str = "high") -> UrgencyRule:
    return UrgencyRule(
        type="use_support_hours",
        during_support_hours=during,
        outside_support_hours="low",
        support_hours=SupportHours(
            time_zone="Europe/Berlin",
            days_of_week=(1, 2, 3, 4, 5),
            start_time="09:00:00",
            end_time="17:00:00",
        ),
        raise_at_support_hours_start=raise_at_start,
    )


def only_service(plan: StackPlan) -> NewServicePlan:
    (unit,) = plan.services
    assert isinstance(unit.service, NewServicePlan)
    return unit.service


@pytest.fixture
def web_plan() -> StackPlan:
    return build_plan(stack_of(new_service()))


def test_logical_names_come_from_keys_not_display_names(web_plan: StackPlan) -> None:
    renamed = build_plan(stack_of(new_service(name="Web shop (renamed)")))
    for plan in (web_plan, renamed):
        (policy,) = plan.policies
        (unit,) = plan.services
        assert isinstance(policy, NewPolicyPlan)
        assert policy.logical_name == "policy-oncall"
        assert unit.component_name == "web"
        assert only_service(plan).logical_name == "service-web"
        assert unit.integration.logical_name == "service-web-apica"
    assert only_service(renamed).name == "Web shop (renamed)"


def test_policy_rules_targets_and_look_ups() -> None:
    policy = new_policy(
        team="Web team",
        rules=(
            Rule(
                delay_minutes=10,
                assignment="round_robin",
                targets=(
                    Target(type="user", ref="bob@example.com"),
                    Target(type="schedule", ref="Web primary"),
                ),
            ),
            Rule(
                delay_minutes=20,
                assignment="assign_to_everyone",
                targets=(Target(type="user", ref="ann@example.com"),),
            ),
        ),
    )
    plan = build_plan(stack_of(new_service(), escalation_policies={"oncall": policy}))
    (planned,) = plan.policies
    assert isinstance(planned, NewPolicyPlan)
    assert [rule.delay_minutes for rule in planned.rules] == [10, 20]
    assert planned.rules[0].assignment == "round_robin"
    assert planned.rules[0].targets == (
        TargetPlan("user_reference", "bob@example.com"),
        TargetPlan("schedule_reference", "Web primary"),
    )
    assert planned.team == "Web team"


def test_existing_policy_is_a_look_up() -> None:
    stack = stack_of(
        new_service(),
        escalation_policies={"oncall": ExistingPolicy(key="oncall", name="Ops")},
    )
    plan = build_plan(stack)
    assert plan.policies == (ExistingPolicyPlan(key="oncall", name="Ops"),)
    assert only_service(plan).policy_key == "oncall"


def test_constant_urgency_has_no_support_hours(web_plan: StackPlan) -> None:
    service = only_service(web_plan)
    assert service.urgency == UrgencyRulePlan(type="constant", urgency="severity_based")
    assert service.support_hours is None
    assert service.scheduled_actions == ()


def test_support_hours_add_the_scheduled_urgency_raise() -> None:
    service = only_service(build_plan(stack_of(new_service(urgency=support_hours_urgency(True)))))
    assert service.urgency == UrgencyRulePlan(
        type="use_support_hours", during="high", outside="low"
    )
    assert service.support_hours == SupportHoursPlan(
        time_zone="Europe/Berlin",
        start_time="09:00:00",
        end_time="17:00:00",
        days_of_week=(1, 2, 3, 4, 5),
    )
    assert service.scheduled_actions == (
        ScheduledActionPlan(to_urgency="high", at="support_hours_start"),
    )


def test_support_hours_without_raise_have_no_scheduled_action() -> None:
    urgency = support_hours_urgency(False, during="severity_based")
    service = only_service(build_plan(stack_of(new_service(urgency=urgency))))
    assert service.urgency.during == "severity_based"
    assert service.support_hours is not None
    assert service.scheduled_actions == ()


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(4 * 3600, "14400"), (60, "60"), (None, TIMEOUT_OFF)],
)
def test_timeouts_are_provider_strings(seconds: int | None, expected: str) -> None:
    service = only_service(
        build_plan(
            stack_of(new_service(auto_resolve_timeout=seconds, acknowledgement_timeout=seconds))
        )
    )
    assert service.auto_resolve_timeout == expected
    assert service.acknowledgement_timeout == expected


def test_no_grouping_and_auto_pause_off(web_plan: StackPlan) -> None:
    service = only_service(web_plan)
    assert service.grouping is None
    assert service.auto_pause == AutoPausePlan(enabled=False)


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        (AlertGrouping(type="time", timeout=0), GroupingPlan(type="time", timeout_minutes=0)),
        (
            AlertGrouping(type="intelligent", time_window=600),
            GroupingPlan(type="intelligent", time_window_seconds=600),
        ),
        (
            AlertGrouping(
                type="content_based", aggregate="all", fields=("summary",), time_window=None
            ),
            GroupingPlan(
                type="content_based",
                aggregate="all",
                fields=("summary",),
                time_window_seconds=None,
            ),
        ),
    ],
)
def test_grouping(grouping: AlertGrouping, expected: GroupingPlan) -> None:
    plan = build_plan(stack_of(new_service(alert_grouping=grouping, auto_pause_timeout=300)))
    service = only_service(plan)
    assert service.grouping == expected
    assert service.auto_pause == AutoPausePlan(enabled=True, timeout_seconds=300)


def test_protect_follows_the_stack_file() -> None:
    plan = build_plan(
        stack_of(
            new_service(protect=False),
            escalation_policies={"oncall": new_policy(protect=False)},
        )
    )
    (policy,) = plan.policies
    (unit,) = plan.services
    assert isinstance(policy, NewPolicyPlan)
    assert (policy.protect, only_service(plan).protect, unit.integration.protect) == (
        False,
        False,
        False,
    )


def test_existing_service_keeps_only_name_and_integration() -> None:
    existing = ExistingService(key="legacy", name="Legacy", integration=integration("Apica-L"))
    plan = build_plan(stack_of(existing))
    (unit,) = plan.services
    assert unit.service == ExistingServicePlan(name="Legacy")
    assert unit.integration.name == "Apica-L"
    assert unit.integration.logical_name == "service-legacy-apica"
    assert unit.integration.protect is False
    assert unit.route.service_name == "Legacy"


def test_vendor_override_is_per_integration() -> None:
    overridden = new_service(integration=integration(vendor_id="PAPICA1"))
    plan = build_plan(stack_of(overridden, new_service("api", name="API")))
    assert plan.services[0].integration.vendor_id == "PAPICA1"
    assert plan.services[1].integration.vendor_id is None


def test_routes_document_is_a_valid_routes_file() -> None:
    routed = new_service(
        integration=integration(
            check_ids=(1, 2),
            check_guids=("a-b",),
            check_tags=("Env: prod",),
            severity_map={**SEVERITIES, "W": "error"},
        )
    )
    legacy = ExistingService(key="legacy", name="Legacy", integration=integration("Apica-L"))
    plan = build_plan(stack_of(routed, legacy, catch_all="legacy"))
    resolved = {
        "web": ResolvedRoute("PWEB", "https://x.pagerduty.com/services/PWEB", KEY),
        "legacy": ResolvedRoute("PLEG", None, KEY.upper()),
    }
    document = routes_document(plan, "prod", resolved)
    routes = parse_routes(routes_json(document), "test")
    assert (routes.stack, routes.catch_all) == ("prod", "legacy")
    web = routes.routes["web"]
    assert (web.service_id, web.check_ids, web.check_tags) == ("PWEB", (1, 2), ("Env: prod",))
    assert web.severity_map["W"] == "error"
    assert web.routing_key.get_secret_value() == KEY
    assert routes.routes["legacy"].service_url is None


def test_routes_json_is_stable(web_plan: StackPlan) -> None:
    resolved = {"web": ResolvedRoute("PWEB", None, KEY)}
    first = routes_json(routes_document(web_plan, "dev", resolved))
    assert first == routes_json(routes_document(web_plan, "dev", dict(resolved)))
    assert first.endswith("\n")


def test_plan_module_does_not_import_pulumi() -> None:
    code = "import sys, infra.plan; print(sorted(m for m in sys.modules if 'pulumi' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
