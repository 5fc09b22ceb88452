"""infra.model: value parsers with PagerDuty's limits, and the resolved model's invariants."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from infra.model import (
    AUTO_PAUSE_TIMEOUTS,
    BUILTIN_DEFAULTS,
    MAX_LOOPS,
    AlertGrouping,
    ExistingService,
    Integration,
    RawAutoPause,
    RawIntelligentGrouping,
    RawNewPolicy,
    RawRule,
    RawSupportHours,
    RawTarget,
    RawTimeGrouping,
    Stack,
    SupportHours,
    UrgencyRule,
    parse_duration,
)


def errors_of(model: type[pydantic.BaseModel], data: dict[str, Any]) -> list[tuple[Any, str]]:
    """(location, message) of every error; the test fails if `data` is valid."""
    with pytest.raises(pydantic.ValidationError) as caught:
        model.model_validate(data)
    return [(e["loc"], e["msg"]) for e in caught.value.errors(include_url=False)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("4h", 14400), ("1d", 86400), ("0s", 0), (" 5m ", 300)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            30,
            "must be a duration with a unit such as '30m' or '30s' (a bare number has no unit)",
        ),
        (
            "1h30m",
            "'1h30m' is not a duration: write a number and one unit, s, m, h or d "
            "(e.g. '90s', '30m', '4h', '1d')",
        ),
        (
            "5 min",
            "'5 min' is not a duration: write a number and one unit, s, m, h or d "
            "(e.g. '90s', '30m', '4h', '1d')",
        ),
        (True, "must be a duration such as '30m', got a boolean (true)"),
        (None, "must be a duration such as '30m', got an empty value"),
    ],
)
def test_parse_duration_refuses(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


def test_escalation_delay_is_minutes_and_at_least_one() -> None:
    rule = RawRule.model_validate({"delay": "2h", "targets": [{"schedule": "S"}]})
    assert rule.delay == 120
    assert errors_of(RawRule, {"delay": "0m", "targets": [{"schedule": "S"}]}) == [
        (("delay",), "Value error, must be at least 1m (PagerDuty's limit), got '0m'")
    ]


def test_time_grouping_until_resolved_is_zero_minutes() -> None:
    grouping = RawTimeGrouping.model_validate({"type": "time", "timeout": "until_resolved"})
    assert grouping.timeout == 0
    assert RawTimeGrouping.model_validate({"type": "time", "timeout": "24h"}).timeout == 1440


def test_intelligent_window_recommended_is_none() -> None:
    raw = RawIntelligentGrouping.model_validate(
        {"type": "intelligent", "time_window": "recommended"}
    )
    assert raw.time_window is None


@pytest.mark.parametrize("seconds", AUTO_PAUSE_TIMEOUTS)
def test_every_auto_pause_timeout_pagerduty_accepts(seconds: int) -> None:
    raw = RawAutoPause.model_validate({"enabled": True, "timeout": f"{seconds}s"})
    assert raw.timeout == seconds


def test_loops_limit() -> None:
    policy = {"name": "P", "rules": [{"delay": "5m", "targets": [{"schedule": "S"}]}]}
    assert RawNewPolicy.model_validate({**policy, "loops": MAX_LOOPS}).loops == 9
    assert errors_of(RawNewPolicy, {**policy, "loops": MAX_LOOPS + 1}) == [
        (("loops",), "Input should be less than or equal to 9")
    ]


def test_builtin_defaults_are_pagerdutys() -> None:
    # PagerDuty's own defaults for a new service: 4 h auto-resolve, 30 min re-trigger.
    assert (
        BUILTIN_DEFAULTS["auto_resolve_timeout"],
        BUILTIN_DEFAULTS["acknowledgement_timeout"],
    ) == (14400, 1800)


def test_target_is_a_user_or_a_schedule() -> None:
    assert RawTarget.model_validate({"user": "ann@example.com"}).user == "ann@example.com"
    assert errors_of(RawTarget, {}) == [
        ((), "Value error, a target is either {user: <e-mail>} or {schedule: <name>}")
    ]


def test_strict_types_do_not_coerce() -> None:
    assert errors_of(
        RawSupportHours,
        {
            "time_zone": "UTC",
            "days": ["mon"],
            "start": "09:00",
            "end": "17:00",
            "during": True,
        },
    ) == [(("during",), "Input should be 'high', 'low' or 'severity_based'")]


# --- the resolved model ---------------------------------------------------------------


def test_urgency_constant_and_support_hours_are_exclusive() -> None:
    hours = SupportHours(
        time_zone="UTC", days_of_week=(1,), start_time="09:00:00", end_time="17:00:00"
    )
    UrgencyRule(
        type="use_support_hours",
        during_support_hours="high",
        outside_support_hours="low",
        support_hours=hours,
    )
    with pytest.raises(pydantic.ValidationError, match="constant urgency needs `urgency`"):
        UrgencyRule(type="constant", urgency="high", support_hours=hours)
    with pytest.raises(pydantic.ValidationError, match="constant urgency needs `urgency`"):
        UrgencyRule(type="use_support_hours", urgency="high", support_hours=hours)


def test_resolved_models_are_frozen_and_plain() -> None:
    grouping = AlertGrouping(type="time", timeout=5)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        grouping.timeout = 10  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        AlertGrouping(type="time", timeout=5, line=3)  # type: ignore[call-arg]


def test_stack_round_trips_through_json() -> None:
    integration = Integration(
        name="Apica-Web",
        vendor_id=None,
        check_ids=(1,),
        check_guids=(),
        check_tags=(),
        severity_map={"F": "critical", "E": "error", "W": "warning", "I": "info"},
        links=(),
    )
    stack = Stack(
        escalation_policies={},
        services={"web": ExistingService(key="web", name="Web", integration=integration)},
        catch_all=None,
        apica_vendor_id=None,
    )
    assert Stack.model_validate_json(stack.model_dump_json()) == stack
