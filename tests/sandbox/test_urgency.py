"""Urgency rules as PagerDuty applies them when an incident opens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.urgency import (
    constant_rule,
    in_support_hours,
    incident_urgency,
    support_hours_started_between,
)

HOURS = {
    "type": "fixed_time_per_day",
    "time_zone": "Asia/Tokyo",
    "days_of_week": [1, 2, 3, 4, 5],
    "start_time": "09:00:00",
    "end_time": "17:00:00",
}
SUPPORT_RULE = {
    "type": "use_support_hours",
    "during_support_hours": {"type": "constant", "urgency": "severity_based"},
    "outside_support_hours": {"type": "constant", "urgency": "low"},
}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (at(5, 0), True),  # Monday 09:00 in Tokyo: the first second counts
        (at(5, 7, 59), True),  # Monday 16:59 in Tokyo
        (at(5, 8), False),  # Monday 17:00 in Tokyo: the end is exclusive
        (at(4, 23, 59), False),  # Sunday 23:59 UTC is Monday 08:59 in Tokyo
        (at(10, 2), False),  # Saturday
    ],
)
def test_support_hours_are_read_in_their_time_zone(when, inside):
    assert in_support_hours(HOURS, when) is inside


@pytest.mark.parametrize(
    ("when", "severity", "expected"),
    [
        (at(5, 2), "critical", "high"),
        (at(5, 2), "warning", "low"),
        (at(5, 12), "critical", "low"),
    ],
)
def test_support_hours_rule_picks_a_branch_then_applies_it(when, severity, expected):
    assert incident_urgency(SUPPORT_RULE, HOURS, severity, when) == expected


def test_support_hours_rule_without_hours_is_outside():
    assert incident_urgency(SUPPORT_RULE, None, "critical", at(5, 2)) == "low"


def test_constant_rule_rejects_unknown_urgencies():
    assert constant_rule("low") == {"type": "constant", "urgency": "low"}
    with pytest.raises(ValueError, match="urgency must be one of high, low, severity_based"):
        constant_rule("medium")


@pytest.mark.parametrize(
    ("since", "until", "started"),
    [
        (at(4, 23), at(5, 0), True),  # Sunday night UTC -> Monday 09:00 Tokyo, exactly
        (at(5, 0), at(5, 5), False),  # opened at the start itself: not after it
        (at(9, 9), at(11, 23), False),  # Friday evening to Sunday: no weekday start
        (at(9, 9), at(12, 0), True),  # ... to Monday 09:00 Tokyo
    ],
)
def test_support_hours_start_between(since, until, started):
    assert support_hours_started_between(HOURS, since, until) is started
