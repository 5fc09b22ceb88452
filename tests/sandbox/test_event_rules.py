"""Events API field rules as pure functions (the HTTP contract is in test_events_api)."""

from __future__ import annotations

import copy

import pytest

from sandbox.event_rules import MAX_EVENT_BYTES, validate_change_event, validate_event

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


# -- change events ---------------------------------------------------------------------

CHANGE = {"routing_key": KEY, "payload": {"summary": "policy: 30m -> 10m"}}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("routing_key"), "'routing_key' is missing or blank"),
        (lambda e: e.update(routing_key="short"),
         "Length of 'routing_key' is incorrect (should be 32 characters)"),
        (lambda e: e.pop("payload"), "'payload' is missing or blank"),
        (lambda e: e.update(payload=[]), "'payload' must be an object"),
        (lambda e: e.update(payload={"source": "x"}), "'payload.summary' is missing or blank"),
        (lambda e: e.update(payload={"summary": 5}), "'payload.summary' must be a string"),
        (lambda e: e.update(payload={"summary": "x" * 1025}),
         "'payload.summary' is too long (maximum is 1024 characters)"),
        (lambda e: e.update(payload={"summary": "x", "source": 1}),
         "'payload.source' must be a string"),
        (lambda e: e.update(payload={"summary": "x", "timestamp": "yesterday"}),
         "'payload.timestamp' is invalid (must be an ISO 8601 timestamp)"),
        (lambda e: e.update(payload={"summary": "x", "custom_details": "y"}),
         "'payload.custom_details' must be an object"),
        (lambda e: e.update(links=[{"text": "no href"}]), "'links[0].href' is missing or blank"),
        (lambda e: e.update(links="https://x"), "'links' must be an array of objects"),
        (lambda e: e.update(images=[{"src": "http://x/y.png"}]),
         "'images[0].src' is invalid (images must be served via HTTPS)"),
        (lambda e: e.update(event_action="trigger"),
         "'event_action' is not a field of change events (they never open incidents)"),
        (lambda e: e.update(dedup_key="k"),
         "'dedup_key' is not a field of change events (they never open incidents)"),
    ],
)
def test_change_event_rules(mutate, message):
    event = copy.deepcopy(CHANGE)
    mutate(event)
    assert validate_change_event(event, 100) == [message]


def test_a_valid_change_event_and_the_limits():
    assert validate_change_event(CHANGE, 100) == []
    assert validate_change_event({**CHANGE, "payload": {"summary": "x" * 1024}}, 100) == []
    assert validate_change_event(CHANGE, MAX_EVENT_BYTES + 1) == [
        "Event object is too large (maximum is 512 KB)"
    ]
    assert validate_change_event([], 2) == ["Event object must be a JSON object"]
