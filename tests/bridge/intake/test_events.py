"""AsmAlert -> Events API v2 body: every mapping rule, and the API's rules as a checker."""

from __future__ import annotations

import copy

import pytest

from bridge.intake.events import build_event, check_event, summary
from tests.bridge.conftest import CHECKOUT_KEY, make_alert

BASE = "https://wpm.apicasystem.com"


def trigger(routes, alert, route_name="checkout"):
    return build_event(alert, route_name, routes.routes[route_name], action="trigger",
                       dedup_key="apica:checkout:id:101:high", asm_base_url=BASE + "/")


def test_trigger_maps_every_field(routes, alert):
    event = trigger(routes, alert)
    assert event == {
        "routing_key": CHECKOUT_KEY,
        "event_action": "trigger",
        "dedup_key": "apica:checkout:id:101:high",
        "payload": {
            "summary": "Checkout page: HTTP 500 from https://shop.example.com/checkout",
            "source": "Stockholm, Sweden",
            "severity": "error",
            "timestamp": "2026-11-26T10:00:00Z",
            "component": "URL",
            "class": "URL",
            "group": "Shop, Production",
            "custom_details": {
                "check_id": 101,
                "check_guid": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                "check_name": "Checkout page",
                "check_type": "URL",
                "message": "HTTP 500 from https://shop.example.com/checkout",
                "old_severity": "I",
                "new_severity": "E",
                "timestamp_utc": "2026-11-26T10:00:00Z",
                "location": "Stockholm, Sweden",
                "groups": ["Shop", "Production"],
                "tags": {"Team": ["Checkout"], "Tier": ["1"]},
                "result_guid": "0c2d2b1e-3d64-4d1e-9f7a-5b0a8a3e2f10",
                "route": "checkout",
            },
        },
        "links": [
            {"href": f"{BASE}/Check/Details/101", "text": "ASM check: Checkout page"},
            {"href": f"{BASE}/Check/Details/101?resultGuid=0c2d2b1e-3d64-4d1e-9f7a-5b0a8a3e2f10",
             "text": "ASM result"},
            {"href": "https://runbooks.example.com/checkout", "text": "Runbook"},
        ],
        "client": "Apica ASM",
        "client_url": f"{BASE}/Check/Details/101",
    }
    assert check_event(event) == []


def test_resolve_carries_only_key_action_and_dedup_key(routes, alert):
    event = build_event(alert, "checkout", routes.routes["checkout"], action="resolve",
                        dedup_key="k", asm_base_url=BASE)
    assert event == {"routing_key": CHECKOUT_KEY, "event_action": "resolve", "dedup_key": "k"}
    assert check_event(event) == []


def test_details_follow_the_alerts_own_fields_and_a_resolve_carries_none(routes, alert):
    route = routes.routes["checkout"]
    details = {"reconciled": True, "asm_result": {"value": 4637, "unit": "ms"},
               "message": "not the alert's"}
    event = build_event(alert, "checkout", route, action="trigger", dedup_key="k",
                        asm_base_url=BASE, details=details)
    custom = event["payload"]["custom_details"]
    assert (custom["reconciled"], custom["asm_result"], custom["check_id"]) == (
        True, {"value": 4637, "unit": "ms"}, 101)
    assert custom["message"] == "not the alert's"  # details are written last
    assert check_event(event) == []
    resolve = build_event(alert, "checkout", route, action="resolve", dedup_key="k",
                          asm_base_url=BASE, details=details)
    assert "payload" not in resolve


@pytest.mark.parametrize(
    ("asm", "route_name", "pd"),
    [("F", "checkout", "critical"), ("E", "checkout", "error"), ("W", "checkout", "warning"),
     ("I", "checkout", "info"), ("W", "search", "error")],
)
def test_severity_goes_through_the_route_map(routes, asm, route_name, pd):
    event = trigger(routes, make_alert(severity=asm), route_name)
    assert event["payload"]["severity"] == pd


def test_optional_fields_are_left_out_when_asm_gave_none(routes):
    alert = make_alert(location=None, check_type=None, groups=(), timestamp=None, check_id=None,
                       result_guid=None, tags={})
    event = trigger(routes, alert)
    assert event["payload"]["source"] == "Checkout page"
    assert not {"component", "class", "group", "timestamp"} & set(event["payload"])
    assert event["links"] == [{"href": "https://runbooks.example.com/checkout",
                               "text": "Runbook"}]
    assert event["client_url"] == BASE
    assert check_event(event) == []


def test_summary_is_one_line_and_cut_to_1024():
    assert summary(make_alert(message="")) == "Checkout page"
    assert summary(make_alert(message="a\n\tb")) == "Checkout page: a b"
    long = summary(make_alert(message="x" * 5000))
    assert len(long) == 1024
    assert long.endswith("…")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"check_name": "\x00", "message": ""}, "ASM check 101"),
        ({"check_name": "\x00\t", "message": "\x7f"}, "ASM check 101"),
        ({"check_name": "\x00", "message": "boom"}, "ASM check 101: boom"),
        ({"check_name": "\x01", "check_id": None}, "ASM check 6f9619ff-8b86-d011-b42d-"
                                                    "00c04fc964ff: HTTP 500 from "
                                                    "https://shop.example.com/checkout"),
        ({"check_name": "\x01", "check_id": None, "check_guid": None, "message": ""},
         "ASM check"),
    ],
)
def test_a_name_that_cleans_to_nothing_falls_back_to_the_check_id(routes, fields, expected):
    alert = make_alert(location=None, **fields)
    assert summary(alert) == expected
    event = trigger(routes, alert)
    assert event["payload"]["summary"] == expected
    assert event["payload"]["source"].startswith("ASM check")
    assert check_event(event) == []


def test_a_long_message_stays_whole_in_custom_details(routes):
    event = trigger(routes, make_alert(message="y" * 16384))
    assert event["payload"]["custom_details"]["message"] == "y" * 16384
    assert check_event(event) == []


def valid_event() -> dict:
    return {
        "routing_key": CHECKOUT_KEY, "event_action": "trigger", "dedup_key": "d",
        "payload": {"summary": "s", "source": "src", "severity": "error",
                    "timestamp": "2026-11-26T10:00:00Z", "custom_details": {}},
        "links": [{"href": "https://x", "text": "t"}],
        "images": [{"src": "https://x/i.png"}],
        "client": "c", "client_url": "https://x",
    }


def changed(path: str, value: object) -> dict:
    event = copy.deepcopy(valid_event())
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return event


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("routing_key", "short", "routing_key must be 32 letters or digits"),
        ("routing_key", DELETE, "routing_key must be 32 letters or digits"),
        ("event_action", "open", "event_action must be one of trigger, acknowledge, resolve"),
        ("dedup_key", "k" * 256, "dedup_key is 256 characters; the limit is 255"),
        ("dedup_key", "", "dedup_key must be a non-empty string"),
        ("payload", DELETE, "payload must be an object with summary, source and severity"),
        ("payload.summary", "s" * 1025, "payload.summary is 1025 characters; the limit is 1024"),
        ("payload.summary", " ", "payload.summary is required and must be a non-empty string"),
        ("payload.source", DELETE, "payload.source is required and must be a non-empty string"),
        ("payload.severity", "high", "payload.severity must be one of critical, error, warning"),
        ("payload.timestamp", "yesterday", "payload.timestamp must be an ISO 8601 date-time"),
        ("payload.component", 5, "payload.component must be a string"),
        ("payload.custom_details", "x", "payload.custom_details must be an object"),
        ("payload.colour", "red", "unknown field payload.colour"),
        ("links", [{"text": "no href"}], "links[0].href is required and must be a string"),
        ("links", "x", "links must be a list"),
        ("images", [{"src": "http://x"}], "images[0].src is required and must be an https URL"),
        ("client", 1, "client must be a string"),
        ("extra", 1, "unknown field 'extra'"),
        ("payload.custom_details", {"blob": "x" * 530_000}, "bytes; the limit is 524288"),
    ],
)
def test_check_event_names_each_broken_rule(path, value, problem):
    problems = check_event(changed(path, value))
    assert any(problem in p for p in problems), problems


def test_check_event_accepts_a_valid_event():
    assert check_event(valid_event()) == []


def test_resolve_needs_a_dedup_key():
    event = {"routing_key": CHECKOUT_KEY, "event_action": "resolve"}
    assert check_event(event) == ["dedup_key is required for resolve"]


def test_not_an_object():
    assert check_event([]) == ["event must be a JSON object"]  # type: ignore[arg-type]


def test_summary_drops_control_characters():
    assert summary(make_alert(check_name="Shop\x00", message="a\x1b[31mred\x7f")) == \
        "Shop: a [31mred"


def test_the_result_link_uses_the_dashed_lower_case_id_however_the_alert_was_made(routes):
    event = trigger(routes, make_alert(result_guid="0C2D2B1E3D644D1E9F7A5B0A8A3E2F10"))
    assert event["links"][1]["href"] == (
        f"{BASE}/Check/Details/101?resultGuid=0c2d2b1e-3d64-4d1e-9f7a-5b0a8a3e2f10")
