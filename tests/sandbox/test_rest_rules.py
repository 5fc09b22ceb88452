"""REST field rules as pure functions (HTTP shapes are in test_rest_api)."""

from __future__ import annotations

import pytest

from sandbox.clock import ManualClock
from sandbox.directory import Directory
from sandbox.rest_rules import (
    alert_grouping_setting_errors,
    escalation_policy_errors,
    integration_errors,
    service_errors,
)


@pytest.fixture
def directory() -> Directory:
    return Directory(ManualClock())


def hours(**overrides):
    base = {
        "type": "fixed_time_per_day",
        "time_zone": "UTC",
        "days_of_week": [1],
        "start_time": "09:00:00",
        "end_time": "17:00:00",
    }
    return {**base, **overrides}


def service(directory: Directory, **fields):
    policy = directory.default_escalation_policy()
    return {"name": "S", "escalation_policy": {"id": policy["id"]}, **fields}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "Support hours time zone 'Mars/Olympus' is not a valid"),
        ({"days_of_week": [0, 8]}, "Support hours days of week must be a list of 1"),
        ({"start_time": "9:00"}, "Support hours start time must look like HH:MM:SS"),
        ({"start_time": "18:00:00"}, "Support hours start time must be before end time"),
        ({"type": "weekly"}, "Support hours type must be fixed_time_per_day"),
    ],
)
def test_support_hours_rules(directory, overrides, message):
    rule = {
        "type": "use_support_hours",
        "during_support_hours": {"type": "constant", "urgency": "high"},
        "outside_support_hours": {"type": "constant", "urgency": "low"},
    }
    body = service(directory, incident_urgency_rule=rule, support_hours=hours(**overrides))
    [error] = service_errors(body, directory)
    assert error.startswith(message)


def test_scheduled_actions_need_support_hours_and_urgency_high(directory):
    action = {"type": "urgency_change", "to_urgency": "low", "at": {"type": "named_time"}}
    errors = service_errors(service(directory, scheduled_actions=[action]), directory)
    assert errors == [
        "Scheduled actions require an urgency rule that uses support hours",
        "Scheduled action must be an urgency_change to high at a named_time "
        "(support_hours_start or support_hours_end)",
    ]


def test_renaming_to_its_own_name_is_not_a_duplicate(directory):
    existing = directory.create_service("S")
    assert service_errors(service(directory), directory, current_id=existing["id"]) == []
    assert service_errors(service(directory), directory) == ["Name has already been taken"]


def test_policy_rule_details(directory):
    rule = {
        "escalation_delay_in_minutes": 0,
        "targets": [{"id": "x", "type": "team_reference"}],
        "escalation_rule_assignment_strategy": {"type": "random"},
    }
    assert escalation_policy_errors({"name": "EP", "escalation_rules": [rule]}, directory) == [
        "Escalation rule 1: escalation delay in minutes must be at least 1",
        "Escalation rule 1: target type must be user_reference or schedule_reference",
        "Escalation rule 1: assignment strategy must be assign_to_everyone or round_robin",
    ]


def test_integration_with_a_vendor_needs_no_type(directory):
    apica = directory.list("vendors")[0]
    assert integration_errors({"vendor": {"id": apica["id"]}}, directory) == []
    assert integration_errors({"type": "events_api_v2_inbound_integration"}, directory) == []


def test_zero_timeouts_disable_as_in_pagerduty(directory):
    body = service(directory, auto_resolve_timeout=0, acknowledgement_timeout=0)
    assert service_errors(body, directory) == []
    auto_pause = {"enabled": True, "timeout": 0}  # 0: PagerDuty picks the recommended one
    assert (
        service_errors(
            service(directory, auto_pause_notifications_parameters=auto_pause), directory
        )
        == []
    )


def grouping(directory, kind, config, *service_ids):
    ids = service_ids or (directory.create_service("S1")["id"],)
    return {"type": kind, "config": config, "services": [{"id": i} for i in ids]}


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("time", {"timeout": 0}),
        ("time", {"timeout": 60}),
        ("time", {"timeout": 86400}),
        ("intelligent", {"time_window": 0, "iag_fields": ["summary"]}),
        ("intelligent", {"time_window": 3600}),
        ("content_based", {"time_window": 86400, "aggregate": "all", "fields": ["source"]}),
        ("content_based_intelligent", {"time_window": 300, "aggregate": "any", "fields": ["x"]}),
    ],
)
def test_grouping_settings_pagerduty_accepts(directory, kind, config):
    assert alert_grouping_setting_errors(grouping(directory, kind, config), directory) == []


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("time", {"timeout": 30}, "Config timeout must be 0 or 60..86400 seconds"),
        ("time", {"timeout": "5"}, "Config timeout must be 0 or 60..86400 seconds"),
        (
            "intelligent",
            {"time_window": 86400},
            "Config time_window must be 0 or 300..3600 seconds",
        ),
        ("intelligent", {"iag_fields": "summary"}, "Config iag_fields must be a list of strings"),
        (
            "content_based",
            {"time_window": 200, "aggregate": "all", "fields": ["a"]},
            "Config time_window must be 0, 300..3600 or 86400 seconds",
        ),
        (
            "content_based",
            {"aggregate": "some", "fields": ["a"]},
            "Config aggregate must be all or any",
        ),
        (
            "content_based_intelligent",
            {"aggregate": "all", "fields": []},
            "Config fields must be a non-empty list of strings",
        ),
        (
            "rules",
            {},
            "Type must be one of: content_based, content_based_intelligent, intelligent, time",
        ),
    ],
)
def test_grouping_settings_pagerduty_refuses(directory, kind, config, message):
    assert alert_grouping_setting_errors(grouping(directory, kind, config), directory) == [message]


def test_grouping_setting_services(directory):
    one, two = directory.create_service("One")["id"], directory.create_service("Two")["id"]
    body = grouping(directory, "time", {"timeout": 0}, one, two)
    assert alert_grouping_setting_errors(body, directory) == [
        "A setting of type time allows only one service"
    ]
    body = grouping(directory, "intelligent", {}, one, "PNOPE")
    assert alert_grouping_setting_errors(body, directory) == ["Service PNOPE not found"]
    assert alert_grouping_setting_errors({**body, "services": []}, directory) == [
        "Services must be a list of at least one service reference"
    ]
    taken = directory.add_alert_grouping_setting("intelligent", {}, [one])
    body = grouping(directory, "intelligent", {}, one)
    assert alert_grouping_setting_errors(body, directory) == [
        f"Service {one} already belongs to alert grouping setting {taken['id']}"
    ]
    assert alert_grouping_setting_errors(body, directory, current_id=taken["id"]) == []
    assert alert_grouping_setting_errors({**body, "config": None, "name": 5}, directory) == [
        "Name must be a string or null",
        "Config must be an object",
        f"Service {one} already belongs to alert grouping setting {taken['id']}",
    ]
