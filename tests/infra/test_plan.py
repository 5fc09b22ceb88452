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
    grouping_logical_name,
    grouping_setting_args,
    integration_args,
    integration_logical_name,
    integration_protected,
    policy_args,
    policy_logical_name,
    routes_document,
    routes_json,
    service_args,
    service_ignored_properties,
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
    assert grouping_logical_name("web") == "service-web-grouping"
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


def test_only_a_constant_urgency_ignores_support_hours() -> None:
    # A PUT cannot clear support hours: under a constant rule, leftovers must not diff.
    assert service_ignored_properties(new_service()) == ["supportHours"]
    hours = new_service(urgency=support_hours_urgency(raise_at_start=True))
    assert service_ignored_properties(hours) == []


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
    service = new_service()
    assert grouping_setting_args(service) is None
    assert service_args(service)["auto_pause_notifications_parameters"] == {"enabled": False}


SET = "window set"
RECOMMENDED = "PagerDuty's recommended window"


def setting(type: str, config: dict[str, Any], mode: str = SET) -> dict[str, Any]:
    return {
        "name": "Web",
        "description": f"Alert grouping of Web ({type}, {mode}), managed by apica-pagerduty",
        "type": type,
        "config": config,
    }


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        # The setting counts seconds where the stack file's (and the old service
        # field's) time grouping counts minutes: 15m is 900 seconds, not 15.
        (AlertGrouping(type="time", timeout=15), setting("time", {"timeout": 900})),
        (AlertGrouping(type="time", timeout=1440), setting("time", {"timeout": 86400})),
        # Until resolved: no timeout (the provider refuses 0 and sends 0 for unset).
        (
            AlertGrouping(type="time", timeout=0),
            setting("time", {}, "until the incident is resolved"),
        ),
        (
            AlertGrouping(type="intelligent", time_window=600),
            setting("intelligent", {"time_window": 600}),
        ),
        (AlertGrouping(type="intelligent"), setting("intelligent", {}, RECOMMENDED)),
        (
            AlertGrouping(
                type="content_based", aggregate="all", fields=("summary",), time_window=None
            ),
            setting("content_based", {"aggregate": "all", "fields": ["summary"]}, RECOMMENDED),
        ),
        (
            AlertGrouping(
                type="content_based", aggregate="any", fields=("a", "b"), time_window=86400
            ),
            setting(
                "content_based", {"aggregate": "any", "fields": ["a", "b"], "time_window": 86400}
            ),
        ),
    ],
)
def test_grouping_is_a_setting_of_its_own(
    grouping: AlertGrouping, expected: dict[str, Any]
) -> None:
    service = new_service(alert_grouping=grouping, auto_pause_timeout=300)
    assert grouping_setting_args(service) == expected
    args = service_args(service)
    # The deprecated service field would take the service out of any account-wide
    # grouping setting and make the provider warn on every run.
    assert "alert_grouping_parameters" not in args
    assert args["auto_pause_notifications_parameters"] == {"enabled": True, "timeout": 300}


def test_leaving_a_window_unset_changes_the_description() -> None:
    # The provider keeps an unset (optional, computed) timeout or time_window as its state
    # has it unless something else about the setting changes: the description does.
    def description(grouping: AlertGrouping) -> str:
        args = grouping_setting_args(new_service(alert_grouping=grouping))
        assert args is not None
        return str(args["description"])

    fixed = AlertGrouping(type="time", timeout=15)
    assert description(fixed) != description(AlertGrouping(type="time", timeout=0))
    assert description(fixed) == description(AlertGrouping(type="time", timeout=20))
    window = AlertGrouping(type="intelligent", time_window=600)
    assert description(window) != description(AlertGrouping(type="intelligent"))


def test_integration_arguments_by_type() -> None:
    apica = integration("Apica-Web", vendor_id="PAPICA1")
    assert integration_args(apica, "PAPICA1") == {"name": "Apica-Web", "vendor": "PAPICA1"}
    plain = integration("Apica-Web", type="events_api_v2")
    assert integration_args(plain, None) == {
        "name": "Apica-Web",
        "type": "events_api_v2_inbound_integration",
    }


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
        "web": ResolvedRoute("PWEB", "https://x.pagerduty.com/services/PWEB", KEY, "PINTWEB"),
        "legacy": ResolvedRoute("PLEG", None, KEY.upper(), "PINTLEG"),
    }
    document = routes_document(stack, "prod", resolved)
    routes = parse_routes(routes_json(document), "test")
    # Version 2: each route names the integration holding its key.
    assert (routes.version, routes.stack, routes.catch_all) == (2, "prod", "legacy")
    assert routes.routes["web"].integration_id == "PINTWEB"
    assert routes.routes["legacy"].integration_id == "PINTLEG"
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
    resolved = {"web": ResolvedRoute("PWEB", None, KEY, "PINTWEB"),
                "shop": ResolvedRoute("PSHOP", None, KEY.upper(), "PINTSHOP")}
    document = routes_document(resolved_stack(held, plain), "prod", resolved)
    assert document["version"] == 3
    assert document["routes"]["web"]["maintenance"] == [  # type: ignore[index]
        {"name": "deploy", "time_zone": "Europe/Berlin",
         "weekly": {"days": ["sat"], "start": "22:00", "end": "02:00"}}]
    assert "maintenance" not in document["routes"]["shop"]  # type: ignore[operator]
    routes = parse_routes(routes_json(document), "test")
    assert routes.routes["web"].maintenance == (window,)
    without = routes_document(resolved_stack(plain), "prod", {"shop": resolved["shop"]})
    assert without["version"] == 2  # what bridges without windows read


def test_a_service_without_integration_is_no_route() -> None:
    stack = resolved_stack(new_service(), new_service("quiet", integration=None))
    document = routes_document(stack, "dev", {"web": ResolvedRoute("PWEB", None, KEY, "PINTWEB")})
    assert set(parse_routes(routes_json(document), "test").routes) == {"web"}


def test_routes_json_is_stable() -> None:
    stack = resolved_stack(new_service())
    resolved = {"web": ResolvedRoute("PWEB", None, KEY, "PINTWEB")}
    first = routes_json(routes_document(stack, "dev", resolved))
    assert first == routes_json(routes_document(stack, "dev", dict(resolved)))
    assert first.endswith("\n")


def test_plan_module_does_not_import_pulumi() -> None:
    code = "import sys, infra.plan; print(sorted(m for m in sys.modules if 'pulumi' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
