"""Escalation rules: dedup keys per urgency class, urgency fixed at open."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.intake.escalation import MAX_DEDUP_KEY, dedup_key, steps_for, urgency_class

HIGH = frozenset({"high"})
LOW = frozenset({"low"})
NONE: frozenset = frozenset()


def _steps(escalated):
    return [(s.action, s.urgency) for s in escalated.steps]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "high"), ("error", "high"), ("warning", "low"), ("info", "low")],
)
def test_urgency_class_follows_severity_based_services(severity, expected):
    assert urgency_class(severity) == expected


def test_dedup_key_names_route_check_and_class():
    assert dedup_key("web", "id:42", "high") == "apica-asm:web:id:42:high"


def test_long_check_key_is_hashed_within_limit_and_stable():
    check = "name:" + "x" * 400
    key = dedup_key("web", check, "low")
    assert len(key) <= MAX_DEDUP_KEY
    assert key == dedup_key("web", check, "low")
    assert key != dedup_key("web", check, "high")
    assert key != dedup_key("web", check + "y", "low")


@given(route=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True), check=st.text())
def test_dedup_key_never_exceeds_limit(route, check):
    for urgency in ("high", "low"):
        assert len(dedup_key(route, check, urgency)) <= MAX_DEDUP_KEY


@pytest.mark.parametrize(
    ("severity", "open_now", "steps", "open_after"),
    [
        ("warning", NONE, [("trigger", "low")], LOW),
        ("info", NONE, [("trigger", "low")], LOW),
        ("warning", LOW, [("trigger", "low")], LOW),
        ("critical", NONE, [("trigger", "high")], HIGH),
        ("error", HIGH, [("trigger", "high")], HIGH),
        # Escalation: high opens first, then the low incident is resolved.
        ("critical", LOW, [("trigger", "high"), ("resolve", "low")], HIGH),
        # A low-class trigger never touches the high key (PagerDuty may have closed
        # that incident without the bridge knowing): it opens or merges the low key.
        ("warning", HIGH, [("trigger", "low")], HIGH | LOW),
        ("info", HIGH | LOW, [("trigger", "low")], HIGH | LOW),
        # The next high-class trigger goes to the high key and closes the low one.
        ("critical", HIGH | LOW, [("trigger", "high"), ("resolve", "low")], HIGH),
    ],
)
def test_trigger_rules(severity, open_now, steps, open_after):
    escalated = steps_for("web", "id:1", "trigger", severity, open_now)
    assert _steps(escalated) == steps
    assert escalated.open_after == open_after


@pytest.mark.parametrize(
    ("open_now", "steps"),
    [
        (LOW, [("resolve", "low")]),
        (HIGH, [("resolve", "high")]),
        (HIGH | LOW, [("resolve", "high"), ("resolve", "low")]),
        # Nothing known open (e.g. state lost): resolve both, PagerDuty drops unknown keys.
        (NONE, [("resolve", "high"), ("resolve", "low")]),
    ],
)
def test_resolve_closes_every_open_key(open_now, steps):
    escalated = steps_for("web", "id:1", "resolve", "info", open_now)
    assert _steps(escalated) == steps
    assert escalated.open_after == NONE


def test_steps_carry_the_keys_of_their_class():
    escalated = steps_for("web", "guid:abc", "trigger", "critical", LOW)
    assert [s.dedup_key for s in escalated.steps] == [
        "apica-asm:web:guid:abc:high",
        "apica-asm:web:guid:abc:low",
    ]


def test_w_e_i_sequence():
    open_now = NONE
    seen = []
    for action, severity in [("trigger", "warning"), ("trigger", "error"), ("resolve", "info")]:
        escalated = steps_for("web", "id:7", action, severity, open_now)
        seen += _steps(escalated)
        open_now = escalated.open_after
    assert seen == [
        ("trigger", "low"),
        ("trigger", "high"),
        ("resolve", "low"),
        ("resolve", "high"),
    ]
    assert open_now == NONE


def test_low_class_trigger_never_sends_to_the_high_key():
    """F, W, F: W goes to :low, so a high incident closed behind the bridge's back
    cannot be reopened at low urgency under :high."""
    open_now = NONE
    seen = []
    for severity in ("critical", "warning", "critical"):
        escalated = steps_for("web", "id:1", "trigger", severity, open_now)
        seen += _steps(escalated)
        open_now = escalated.open_after
    assert seen == [
        ("trigger", "high"),
        ("trigger", "low"),
        ("trigger", "high"),
        ("resolve", "low"),
    ]
    assert open_now == HIGH
