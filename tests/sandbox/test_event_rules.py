"""Events API field rules as pure functions (the HTTP contract is in test_events_api)."""

from __future__ import annotations

import pytest

from sandbox.event_rules import validate_event

KEY = "a" * 32


def event(**overrides):
    base = {
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "src", "severity": "info"},
    }
    return {**base, **overrides}


def test_a_minimal_trigger_is_valid():
    assert validate_event(event(), 100) == []


def test_resolve_needs_no_payload():
    assert (
        validate_event({"routing_key": KEY, "event_action": "resolve", "dedup_key": "d"}, 50) == []
    )


@pytest.mark.parametrize(
    "timestamp",
    ["2015-07-17T08:42:58.315+0000", "2026-01-05T12:00:00Z", "2026-01-05T12:00:00+01:00"],
)
def test_iso_8601_timestamps_in_pagerdutys_examples_are_valid(timestamp):
    trig = event()
    trig["payload"]["timestamp"] = timestamp
    assert validate_event(trig, 100) == []


def test_all_problems_are_listed_together():
    errors = validate_event({"routing_key": "", "event_action": "trigger", "payload": {}}, 10)
    assert errors == [
        "'routing_key' is missing or blank",
        "'payload.summary' is missing or blank",
        "'payload.source' is missing or blank",
        "'payload.severity' is missing or blank",
    ]


def test_size_is_checked_first():
    assert validate_event(event(), 512 * 1024 + 1) == [
        "Event object is too large (maximum is 512 KB)"
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"links": "x"}, "'links' must be an array of objects"),
        ({"links": ["x"]}, "'links[0]' must be an object"),
        ({"images": [{"href": "https://x"}]}, "'images[0].src' is missing or blank"),
        ({"client": 5}, "'client' must be a string"),
        ({"dedup_key": 7}, "'dedup_key' must be a string"),
    ],
)
def test_context_fields(overrides, message):
    assert validate_event(event(**overrides), 100) == [message]


def test_non_object_event():
    assert validate_event([1], 3) == ["Event object must be a JSON object"]
