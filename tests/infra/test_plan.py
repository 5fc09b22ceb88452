"""infra.plan: the resolved Stack in the provider's words, and the routes document."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from contract.routes_file import MaintenanceWindow, parse_routes
from contract.vocabulary import DEFAULT_SEVERITY_MAP
from infra.model import (
    AlertGrouping,
    ExistingService,
    Rule,
    SupportHours,
    Target,
    UrgencyRule,
)
from infra.plan import (
    TIMEOUT_OFF,
    ResolvedRoute,
    integration_logical_name,
    integration_protected,
    policy_args,
    policy_logical_name,
    routes_document,
    routes_json,
    service_args,
    service_logical_name,
)

from .conftest import integration, new_policy, new_service, resolved_stack

KEY = "0123456789abcdef0123456789abcdef"


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


def test_logical_names_come_from_keys_not_display_names() -> None:
    assert policy_logical_name("oncall") == "policy-oncall"
    assert service_logical_name("web") == "service-web"
    assert integration_logical_name("web") == "service-web-apica"
    renamed = service_args(new_service(name="Web shop (renamed)"))
    assert renamed["name"] == "Web shop (renamed)"


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
    args = policy_args(policy, lambda t: f"{t.type}:{t.ref}", lambda name: f"team:{name}")
    assert args == {
        "name": "On-call",
        "description": None,
        "num_loops": 1,
        "teams": "team:Web team",
        "rules": [
            {
                "escalation_delay_in_minutes": 10,
                "targets": [
                    {"type": "user_reference", "id": "user:bob@example.com"},
                    {"type": "schedule_reference", "id": "schedule:Web primary"},
                ],
                "escalation_rule_assignment_strategy": {"type": "round_robin"},
            },
            {
                "escalation_delay_in_minutes": 20,
                "targets": [{"type": "user_reference", "id": "user:ann@example.com"}],
                "escalation_rule_assignment_strategy": {"type": "assign_to_everyone"},
            },
        ],
    }


def test_policy_without_team_looks_up_none() -> None:
    def no_look_up(name: str) -> str:
        raise AssertionError(f"looked up team {name!r}")

    assert policy_args(new_policy(), lambda t: t.ref, no_look_up)["teams"] is None


def test_constant_urgency_has_no_support_hours() -> None:
    args = service_args(new_service())
    assert args["incident_urgency_rule"] == {"type": "constant", "urgency": "severity_based"}
    assert "support_hours" not in args
    assert "scheduled_actions" not in args


def test_support_hours_add_the_scheduled_urgency_raise() -> None:
    args = service_args(new_service(urgency=support_hours_urgency(True)))
    assert args["incident_urgency_rule"] == {
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": "high"},
        "outside_support_hours": {"type": "constant", "urgency": "low"},
    }
    assert args["support_hours"] == {
        "type": "fixed_time_per_day",
        "time_zone": "Europe/Berlin",
        "start_time": "09:00:00",
        "end_time": "17:00:00",
        "days_of_weeks": [1, 2, 3, 4, 5],
    }
    assert args["scheduled_actions"] == [
        {
            "type": "urgency_change",
            "to_urgency": "high",
            "ats": [{"type": "named_time", "name": "support_hours_start"}],
        }
    ]


def test_support_hours_without_raise_have_no_scheduled_action() -> None:
    urgency = support_hours_urgency(False, during="severity_based")
    args = service_args(new_service(urgency=urgency))
    assert args["incident_urgency_rule"]["during_support_hours"]["urgency"] == "severity_based"
    assert "support_hours" in args
    assert args["scheduled_actions"] == []


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(4 * 3600, "14400"), (60, "60"), (None, TIMEOUT_OFF)],
)
def test_timeouts_are_provider_strings(seconds: int | None, expected: str) -> None:
    args = service_args(new_service(auto_resolve_timeout=seconds, acknowledgement_timeout=seconds))
    assert args["auto_resolve_timeout"] == expected
    assert args["acknowledgement_timeout"] == expected


def test_no_grouping_and_auto_pause_off() -> None:
    args = service_args(new_service())
    assert "alert_grouping_parameters" not in args
    assert args["auto_pause_notifications_parameters"] == {"enabled": False}


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        (AlertGrouping(type="time", timeout=0), {"type": "time", "config": {"timeout": 0}}),
        (
            AlertGrouping(type="intelligent", time_window=600),
            {"type": "intelligent", "config": {"time_window": 600}},
        ),
        (
            AlertGrouping(
                type="content_based", aggregate="all", fields=("summary",), time_window=None
            ),
            {"type": "content_based", "config": {"aggregate": "all", "fields": ["summary"]}},
        ),
    ],
)
def test_grouping(grouping: AlertGrouping, expected: dict[str, Any]) -> None:
    args = service_args(new_service(alert_grouping=grouping, auto_pause_timeout=300))
    assert args["alert_grouping_parameters"] == expected
    assert args["auto_pause_notifications_parameters"] == {"enabled": True, "timeout": 300}


def test_integration_protect_follows_its_service() -> None:
    assert integration_protected(new_service(protect=True)) is True
    assert integration_protected(new_service(protect=False)) is False
    # Nothing in the file can opt an existing service's integration in or out.
    existing = ExistingService(key="legacy", name="Legacy", integration=integration("Apica-L"))
    assert integration_protected(existing) is False


def test_routes_document_is_a_valid_routes_file() -> None:
    routed = new_service(
        integration=integration(
            check_ids=(1, 2),
            check_guids=("a-b",),
            check_tags=("Env: prod",),
            severity_map={**DEFAULT_SEVERITY_MAP, "W": "error"},
        )
    )
    legacy = ExistingService(key="legacy", name="Legacy", integration=integration("Apica-L"))
    stack = resolved_stack(routed, legacy, catch_all="legacy")
    resolved = {
        "web": ResolvedRoute("PWEB", "https://x.pagerduty.com/services/PWEB", KEY),
        "legacy": ResolvedRoute("PLEG", None, KEY.upper()),
    }
    document = routes_document(stack, "prod", resolved)
    routes = parse_routes(routes_json(document), "test")
    assert (routes.stack, routes.catch_all) == ("prod", "legacy")
    web = routes.routes["web"]
    assert (web.service_id, web.check_ids, web.check_tags) == ("PWEB", (1, 2), ("Env: prod",))
    assert web.severity_map["W"] == "error"
    assert web.routing_key.get_secret_value() == KEY
    assert routes.routes["legacy"].service_url is None
    assert routes.routes["legacy"].service_name == "Legacy"


def test_routes_document_carries_windows_as_version_3_only_when_there_are_some() -> None:
    window = MaintenanceWindow.model_validate({
        "name": "deploy", "time_zone": "Europe/Berlin",
        "weekly": {"days": ["sat"], "start": "22:00", "end": "02:00"}})
    held = new_service(integration=integration(check_ids=(1,), maintenance=(window,)))
    plain = new_service("shop")
    resolved = {"web": ResolvedRoute("PWEB", None, KEY), "shop": ResolvedRoute("PSHOP", None,
                                                                               KEY.upper())}
    document = routes_document(resolved_stack(held, plain), "prod", resolved)
    assert document["version"] == 3
    assert document["routes"]["web"]["maintenance"] == [  # type: ignore[index]
        {"name": "deploy", "time_zone": "Europe/Berlin",
         "weekly": {"days": ["sat"], "start": "22:00", "end": "02:00"}}]
    assert "maintenance" not in document["routes"]["shop"]  # type: ignore[operator]
    routes = parse_routes(routes_json(document), "test")
    assert routes.routes["web"].maintenance == (window,)
    without = routes_document(resolved_stack(plain), "prod", {"shop": resolved["shop"]})
    assert without["version"] == 1  # what older bridges read


def test_a_service_without_integration_is_no_route() -> None:
    stack = resolved_stack(new_service(), new_service("quiet", integration=None))
    document = routes_document(stack, "dev", {"web": ResolvedRoute("PWEB", None, KEY)})
    assert set(parse_routes(routes_json(document), "test").routes) == {"web"}


def test_routes_json_is_stable() -> None:
    stack = resolved_stack(new_service())
    resolved = {"web": ResolvedRoute("PWEB", None, KEY)}
    first = routes_json(routes_document(stack, "dev", resolved))
    assert first == routes_json(routes_document(stack, "dev", dict(resolved)))
    assert first.endswith("\n")


def test_plan_module_does_not_import_pulumi() -> None:
    code = "import sys, infra.plan; print(sorted(m for m in sys.modules if 'pulumi' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
