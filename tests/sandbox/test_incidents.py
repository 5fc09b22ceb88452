"""Incident behaviour without HTTP: open, merge, acknowledge, resolve, reopen."""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.incidents import IncidentBook
from sandbox.urgency import constant_rule

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SERVICE = {
    "id": "PSVC001",
    "name": "Checkout API",
    "incident_urgency_rule": constant_rule("severity_based"),
    "support_hours": None,
}


def ev(action: str, key: str = "k" * 32, severity: str = "critical") -> dict:
    event = {"routing_key": key, "event_action": action}
    if action == "trigger":
        event["payload"] = {"summary": f"{severity} alert", "source": "s", "severity": severity}
    return event


def test_lifecycle_of_one_dedup_key():
    book = IncidentBook()
    book.apply(ev("trigger", severity="info"), "d", SERVICE, "PINT001", NOW)
    book.apply(ev("acknowledge"), "d", SERVICE, "PINT001", NOW)
    book.apply(ev("trigger"), "d", SERVICE, "PINT001", NOW)
    book.apply(ev("resolve"), "d", SERVICE, "PINT001", NOW)
    book.apply(ev("acknowledge"), "d", SERVICE, "PINT001", NOW)
    book.apply(ev("trigger"), "d", SERVICE, "PINT001", NOW)

    first, second = book.all()
    assert (first["status"], first["urgency"]) == ("resolved", "low")
    assert [e["type"] for e in first["log_entries"]] == [
        "trigger_log_entry",
        "acknowledge_log_entry",
        "trigger_log_entry",
        "resolve_log_entry",
    ]
    assert (second["status"], second["urgency"], second["incident_number"]) == (
        "triggered",
        "high",
        2,
    )


def test_same_dedup_key_through_another_routing_key_is_another_incident():
    book = IncidentBook()
    book.apply(ev("trigger", key="a" * 32), "d", SERVICE, "PINT001", NOW)
    book.apply(ev("trigger", key="b" * 32), "d", SERVICE, "PINT002", NOW)
    assert [i["integration_id"] for i in book.all()] == ["PINT001", "PINT002"]


def test_all_returns_copies():
    book = IncidentBook()
    book.apply(ev("trigger"), "d", SERVICE, "PINT001", NOW)
    book.all()[0]["status"] = "tampered"
    assert book.all()[0]["status"] == "triggered"
