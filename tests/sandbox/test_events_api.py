"""The Events API v2 contract over real HTTP: answers, incidents, rate limit, faults."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.clock import ManualClock
from sandbox.server import PagerDutySandbox
from tests.sandbox.conftest import change, trigger


def post(http: requests.Session, pd: PagerDutySandbox, event: Any) -> requests.Response:
    return http.post(pd.events_url, json=event, timeout=5)


def test_trigger_is_accepted_with_pagerdutys_202_body(pd, http, key):
    response = post(http, pd, trigger(key))
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "check-101",
    }


def test_trigger_without_dedup_key_gets_a_generated_one(pd, http, key):
    first = post(http, pd, trigger(key, dedup_key=None)).json()["dedup_key"]
    second = post(http, pd, trigger(key, dedup_key=None)).json()["dedup_key"]
    assert first and second and first != second
    assert [i["incident_key"] for i in pd.state.incidents()] == [first, second]


def test_trigger_opens_an_incident_with_the_alert_fields(pd, http, key, service):
    event = trigger(key, component="login", group="checkout", custom_details={"step": 3})
    event["payload"]["class"] = "URL"
    event["payload"]["timestamp"] = "2026-01-05T11:59:00Z"
    event["links"] = [{"href": "https://asm.example.com/check/101", "text": "Check 101"}]
    event["images"] = [{"src": "https://asm.example.com/graph.png"}]
    event.update(client="Apica ASM", client_url="https://asm.example.com")
    post(http, pd, event)

    [incident] = pd.state.incidents()
    assert incident["service_id"] == service["id"]
    assert incident["service_name"] == "Checkout API"
    assert (incident["status"], incident["urgency"]) == ("triggered", "high")
    assert (incident["incident_key"], incident["incident_number"]) == ("check-101", 1)
    assert incident["title"] == "Checkout login failed"
    [alert] = incident["alerts"]
    assert alert == {
        "summary": "Checkout login failed",
        "severity": "critical",
        "source": "asm-agent-stockholm",
        "component": "login",
        "group": "checkout",
        "class": "URL",
        "custom_details": {"step": 3},
        "links": [{"href": "https://asm.example.com/check/101", "text": "Check 101"}],
        "images": [{"src": "https://asm.example.com/graph.png"}],
        "client": "Apica ASM",
        "client_url": "https://asm.example.com",
        "timestamp": "2026-01-05T11:59:00Z",
        "status": "triggered",
    }


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("routing_key"), "'routing_key' is missing or blank"),
        (
            lambda e: e.update(routing_key="short"),
            "Length of 'routing_key' is incorrect (should be 32 characters)",
        ),
        (lambda e: e.pop("event_action"), "'event_action' is missing or blank"),
        (
            lambda e: e.update(event_action="escalate"),
            "'event_action' is invalid (must be one of the following: "
            "'trigger', 'acknowledge' or 'resolve')",
        ),
        (
            lambda e: e.update(dedup_key="k" * 256),
            "'dedup_key' is too long (maximum is 255 characters)",
        ),
        (lambda e: e.pop("payload"), "'payload' is missing or blank"),
        (lambda e: e["payload"].pop("summary"), "'payload.summary' is missing or blank"),
        (
            lambda e: e["payload"].update(summary="s" * 1025),
            "'payload.summary' is too long (maximum is 1024 characters)",
        ),
        (lambda e: e["payload"].update(source=""), "'payload.source' is missing or blank"),
        (
            lambda e: e["payload"].update(severity="fatal"),
            "'payload.severity' is invalid (must be one of the following: "
            "'critical', 'warning', 'error' or 'info')",
        ),
        (
            lambda e: e["payload"].update(timestamp="yesterday"),
            "'payload.timestamp' is invalid (must be an ISO 8601 timestamp)",
        ),
        (
            lambda e: e["payload"].update(custom_details="text"),
            "'payload.custom_details' must be an object",
        ),
        (
            lambda e: e.update(images=[{"src": "http://example.com/a.png"}]),
            "'images[0].src' is invalid (images must be served via HTTPS)",
        ),
        (lambda e: e.update(links=[{"text": "no href"}]), "'links[0].href' is missing or blank"),
    ],
)
def test_invalid_trigger_is_refused_with_pagerdutys_400_body(pd, http, key, mutate, message):
    event = trigger(key)
    mutate(event)
    response = post(http, pd, event)
    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [message],
    }
    assert pd.state.incidents() == []


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_need_a_dedup_key(pd, http, key, action):
    response = post(http, pd, {"routing_key": key, "event_action": action})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        f"'dedup_key' is missing or blank (required for '{action}' events)"
    ]


def test_body_over_512_kb_is_refused(pd, http, key):
    response = post(http, pd, trigger(key, custom_details={"blob": "x" * (512 * 1024)}))
    assert response.status_code == 400
    assert response.json()["errors"] == ["Event object is too large (maximum is 512 KB)"]


def test_body_that_is_not_json_is_refused(pd, http):
    response = http.post(pd.events_url, data=b"{not json", timeout=5)
    assert response.status_code == 400
    assert response.json()["errors"] == ["Event object is not valid JSON"]


def test_unknown_routing_key_is_accepted_and_dropped(pd, http, key):
    response = post(http, pd, trigger("u" * 32))
    assert response.status_code == 202
    assert response.json()["status"] == "success"
    assert pd.state.incidents() == []


def test_same_dedup_key_merges_into_the_open_incident(pd, http, key):
    post(http, pd, trigger(key, severity="warning", summary="slow"))
    post(http, pd, trigger(key, severity="critical", summary="down"))
    [incident] = pd.state.incidents()
    # Urgency is fixed when the incident opens: the critical retrigger does not raise it.
    assert incident["urgency"] == "low"
    assert incident["title"] == "slow"
    assert [e["severity"] for e in incident["log_entries"]] == ["warning", "critical"]


def test_resolve_closes_and_a_new_trigger_opens_a_new_incident(pd, http, key):
    post(http, pd, trigger(key))
    resolved = post(
        http, pd, {"routing_key": key, "event_action": "resolve", "dedup_key": "check-101"}
    )
    assert resolved.status_code == 202
    assert resolved.json()["dedup_key"] == "check-101"
    post(http, pd, trigger(key))
    first, second = pd.state.incidents()
    assert (first["status"], first["alerts"][0]["status"]) == ("resolved", "resolved")
    assert first["resolved_at"] is not None
    assert (second["status"], second["incident_number"]) == ("triggered", 2)


def test_resolve_of_an_unknown_or_resolved_key_is_accepted_and_does_nothing(pd, http, key):
    unknown = post(http, pd, {"routing_key": key, "event_action": "resolve", "dedup_key": "nope"})
    assert unknown.status_code == 202
    post(http, pd, trigger(key))
    resolve = {"routing_key": key, "event_action": "resolve", "dedup_key": "check-101"}
    post(http, pd, resolve)
    again = post(http, pd, resolve)
    assert again.status_code == 202
    [incident] = pd.state.incidents()
    assert incident["status"] == "resolved"
    assert [e["type"] for e in incident["log_entries"]] == [
        "trigger_log_entry",
        "resolve_log_entry",
    ]


def test_acknowledge_marks_the_incident_acknowledged(pd, http, key):
    post(http, pd, trigger(key))
    post(http, pd, {"routing_key": key, "event_action": "acknowledge", "dedup_key": "check-101"})
    [incident] = pd.state.incidents()
    assert incident["status"] == "acknowledged"
    assert incident["acknowledged_at"] == "2026-01-05T12:00:00Z"


def test_resolve_through_another_routing_key_is_dropped(pd, http, key, service):
    other = pd.state.add_integration(service["id"], name="Other")["integration_key"]
    post(http, pd, trigger(key))
    post(http, pd, {"routing_key": other, "event_action": "resolve", "dedup_key": "check-101"})
    assert pd.state.incidents()[0]["status"] == "triggered"


@pytest.mark.parametrize(
    ("urgency", "severity", "expected"),
    [
        ("severity_based", "critical", "high"),
        ("severity_based", "error", "high"),
        ("severity_based", "warning", "low"),
        ("severity_based", "info", "low"),
        ("high", "info", "high"),
        ("low", "critical", "low"),
    ],
)
def test_urgency_follows_the_services_rule(pd, http, urgency, severity, expected):
    svc = pd.state.create_service(name=f"svc-{urgency}", urgency=urgency)
    key = pd.state.add_integration(svc["id"])["integration_key"]
    post(http, pd, trigger(key, severity=severity))
    assert pd.state.incidents()[0]["urgency"] == expected


def test_support_hours_rule_uses_the_service_time_zone_and_the_clock(pd, http, clock):
    svc = pd.state.create_service(
        name="Payments",
        incident_urgency_rule={
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "high"},
            "outside_support_hours": {"type": "constant", "urgency": "low"},
        },
        support_hours={
            "type": "fixed_time_per_day",
            "time_zone": "America/Lima",
            "days_of_week": [1, 2, 3, 4, 5],
            "start_time": "09:00:00",
            "end_time": "17:00:00",
        },
    )
    key = pd.state.add_integration(svc["id"])["integration_key"]
    post(http, pd, trigger(key, dedup_key="a"))  # 12:00 UTC = 07:00 in Lima: outside
    clock.advance(4 * 3600)  # 16:00 UTC = 11:00 in Lima: inside
    post(http, pd, trigger(key, dedup_key="b"))
    assert [i["urgency"] for i in pd.state.incidents()] == ["low", "high"]


def test_events_are_recorded_in_order_with_their_status(pd, http, key):
    post(http, pd, trigger(key))
    post(http, pd, {"routing_key": key, "event_action": "bogus"})
    assert [(e["status"], e["body"]["event_action"]) for e in pd.state.events()] == [
        (202, "trigger"),
        (400, "bogus"),
    ]


def test_rate_limit_is_per_routing_key_and_slides_with_the_clock(http, clock):
    with PagerDutySandbox(clock=clock, events_per_minute=2) as pd:
        svc = pd.state.create_service(name="Checkout API")
        key_a = pd.state.add_integration(svc["id"])["integration_key"]
        key_b = pd.state.add_integration(svc["id"])["integration_key"]
        codes = [post(http, pd, trigger(key_a, dedup_key=str(n))).status_code for n in range(3)]
        other = post(http, pd, trigger(key_b)).status_code
        throttled = post(http, pd, trigger(key_a))
        clock.advance(60)
        after_window = post(http, pd, trigger(key_a)).status_code

    assert codes == [202, 202, 429]
    assert other == 202
    assert throttled.status_code == 429
    assert "Retry-After" not in throttled.headers  # PagerDuty documents none
    assert after_window == 202


def test_fail_fault_answers_the_next_requests_with_the_status(pd, http, key):
    pd.faults.fail(status=500, count=2)
    codes = [post(http, pd, trigger(key)).status_code for _ in range(3)]
    assert codes == [500, 500, 202]
    assert [e["status"] for e in pd.state.events()] == [500, 500, 202]
    assert len(pd.state.incidents()) == 1


def test_fail_fault_for_seconds_ends_with_the_clock(pd, http, key, clock: ManualClock):
    pd.faults.fail(status=503, seconds=10)
    assert post(http, pd, trigger(key)).status_code == 503
    clock.advance(10)
    assert post(http, pd, trigger(key)).status_code == 202


def test_rate_limit_fault_without_retry_after_sends_none(pd, http, key):
    pd.faults.rate_limit(count=1)
    response = post(http, pd, trigger(key))
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.json() == {"status": "throttle event", "message": "Requests for this "
                               "service are arriving too quickly. Please retry later."}


def test_rate_limit_fault_sends_retry_after(pd, http, key):
    pd.faults.rate_limit(count=1, retry_after=7)
    response = post(http, pd, trigger(key))
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert pd.state.incidents() == []


def test_latency_fault_delays_the_answer(pd, http, key):
    import time

    pd.faults.latency(0.2)
    started = time.monotonic()
    post(http, pd, trigger(key))
    assert time.monotonic() - started >= 0.2
    pd.faults.clear()
    assert pd.faults.delay == 0.0


def test_scheduled_action_raises_low_urgency_at_support_hours_start(pd, http, clock):
    svc = pd.state.create_service(
        name="Night shift",
        incident_urgency_rule={
            "type": "use_support_hours",
            "during_support_hours": {"type": "constant", "urgency": "high"},
            "outside_support_hours": {"type": "constant", "urgency": "low"},
        },
        support_hours={
            "type": "fixed_time_per_day",
            "time_zone": "UTC",
            "days_of_week": [1, 2, 3, 4, 5],
            "start_time": "09:00:00",
            "end_time": "17:00:00",
        },
        scheduled_actions=[
            {
                "type": "urgency_change",
                "to_urgency": "high",
                "at": {"type": "named_time", "name": "support_hours_start"},
            }
        ],
    )
    key = pd.state.add_integration(svc["id"])["integration_key"]
    clock.advance(6 * 3600)  # Monday 18:00 UTC: outside support hours
    post(http, pd, trigger(key))
    assert pd.state.incidents()[0]["urgency"] == "low"
    clock.advance(15 * 3600 - 1)  # Tuesday 08:59:59
    assert pd.state.incidents()[0]["urgency"] == "low"
    clock.advance(1)  # Tuesday 09:00:00
    [incident] = pd.state.incidents()
    assert incident["urgency"] == "high"
    assert incident["log_entries"][-1]["type"] == "urgency_change_log_entry"


# -- change events: /v2/change/enqueue ----------------------------------------------


def post_change(http: requests.Session, pd: PagerDutySandbox, event: Any) -> requests.Response:
    return http.post(pd.url + "/v2/change/enqueue", json=event, timeout=5)


def test_a_change_event_is_accepted_and_kept_on_its_service(pd, http, key, service):
    event = change(key)
    response = post_change(http, pd, event)
    assert (response.status_code, response.json()) == (
        202, {"status": "success", "message": "Change event processed"},
    )
    [kept] = pd.state.change_events()
    assert {k: v for k, v in kept.items() if k not in ("id", "integration_id")} == {
        "type": "change_event",
        "service_id": service["id"],
        "service_name": "Checkout API",
        "summary": event["payload"]["summary"],
        "source": "apica-pd",
        "timestamp": "2026-01-05T11:58:00.000+0000",
        "custom_details": {"stack": "prod"},
        "links": event["links"],
        "received_at": "2026-01-05T12:00:00Z",
    }
    assert pd.state.incidents() == []  # a change event never opens an incident
    assert pd.state.events() == []  # and is no alert event


def test_a_change_event_without_timestamp_gets_the_receipt_time(pd, http, key):
    assert post_change(http, pd, change(key, payload={"summary": "deployed"})).status_code == 202
    assert pd.state.change_events()[0]["timestamp"] == "2026-01-05T12:00:00Z"


def test_a_change_event_for_an_unknown_key_is_accepted_and_dropped(pd, http):
    assert post_change(http, pd, change("x" * 32)).status_code == 202
    assert pd.state.change_events() == []
    assert [r["status"] for r in pd.state.change_requests()] == [202]


def test_a_refused_change_event_gets_pagerdutys_400_body(pd, http, key):
    response = post_change(http, pd, change(key, event_action="trigger"))
    assert (response.status_code, response.json()) == (
        400,
        {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["'event_action' is not a field of change events (they never open "
                       "incidents)"],
        },
    )
    bad_json = http.post(pd.url + "/v2/change/enqueue", data=b"{nope", timeout=5)
    assert bad_json.json()["errors"] == ["Event object is not valid JSON"]
    assert pd.state.change_events() == [] and pd.state.incidents() == []


def test_change_events_share_the_routing_keys_rate_limit(http, clock):
    with PagerDutySandbox(clock=clock, events_per_minute=2) as pd:
        service = pd.state.create_service("Web")
        key = pd.state.add_integration(service["id"])["integration_key"]
        codes = [post_change(http, pd, change(key)).status_code for _ in range(3)]
        assert codes == [202, 202, 429]


def test_faults_answer_change_events_too(pd, http, key):
    pd.faults.fail(status=503, count=1)
    assert post_change(http, pd, change(key)).status_code == 503
    assert post_change(http, pd, change(key)).status_code == 202
