"""The state facade: seeding, event application, activity log."""

from __future__ import annotations

from sandbox.clock import ManualClock
from sandbox.state import SandboxState


def test_unknown_routing_key_is_not_applied():
    state = SandboxState(ManualClock())
    event = {"routing_key": "x" * 32, "event_action": "resolve"}
    assert state.apply_event(event, "d") is False


def test_incidents_filter_by_service_and_status():
    state = SandboxState(ManualClock())
    one = state.create_service("One", urgency="low")
    two = state.create_service("Two")
    for service in (one, two):
        key = state.add_integration(service["id"])["integration_key"]
        trigger = {
            "routing_key": key,
            "event_action": "trigger",
            "payload": {"summary": "s", "source": "x", "severity": "critical"},
        }
        state.apply_event(trigger, "d")
    assert [i["service_name"] for i in state.incidents(service_id=two["id"])] == ["Two"]
    assert [i["urgency"] for i in state.incidents(status="triggered")] == ["low", "high"]
    assert state.incidents(status="resolved") == []


def test_reset_activity_keeps_the_account():
    state = SandboxState(ManualClock())
    state.create_service("One")
    state.record_event(202, {"event_action": "trigger"})
    state.reset_activity()
    assert state.events() == []
    assert [s["name"] for s in state.services()] == ["One"]


def test_events_record_status_body_and_time():
    state = SandboxState(ManualClock())
    state.record_event(400, {"a": 1})
    assert state.events() == [
        {"status": 400, "body": {"a": 1}, "received_at": "2026-01-05T12:00:00Z"}
    ]


def test_disabled_service_opens_no_incident():
    state = SandboxState(ManualClock())
    service = state.create_service("Off", status="disabled")
    key = state.add_integration(service["id"])["integration_key"]
    trigger = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "critical"},
    }
    assert state.apply_event(trigger, "d") is False
    assert state.incidents() == []


def test_change_events_keep_to_their_service_and_reset_forgets_them():
    state = SandboxState(ManualClock())
    service = state.create_service("Web")
    key = state.add_integration(service["id"])["integration_key"]
    event = {"routing_key": key, "payload": {"summary": "policy: 30m -> 10m"}}
    assert state.apply_change_event(event) is True
    assert state.apply_change_event({**event, "routing_key": "u" * 32}) is False
    assert [e["summary"] for e in state.change_events(service["id"])] == ["policy: 30m -> 10m"]
    assert state.change_events("POTHER1") == []
    assert state.incidents() == []
    state.reset_activity()
    assert state.change_events() == []
