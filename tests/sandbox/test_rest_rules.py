"""REST field rules as pure functions (HTTP shapes are in test_rest_api)."""

from __future__ import annotations

import pytest

from sandbox.clock import ManualClock
from sandbox.directory import Directory
from sandbox.rest_rules import escalation_policy_errors, integration_errors, service_errors


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
