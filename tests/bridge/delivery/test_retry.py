"""Retry policy table, Retry-After parsing and backoff bounds."""

from __future__ import annotations

import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.retry import MAX_RETRY_AFTER, Backoff, Behaviour, parse_retry_after, rule_for


@pytest.mark.parametrize(
    ("status", "behaviour", "reason"),
    [
        (200, Behaviour.DONE, "delivered"),
        (202, Behaviour.DONE, "delivered"),
        (400, Behaviour.DEAD, "invalid_event"),
        (401, Behaviour.DEAD_LOUD, "unauthorized"),
        (403, Behaviour.DEAD_LOUD, "forbidden"),
        (404, Behaviour.DEAD_LOUD, "not_found"),
        (408, Behaviour.BACKOFF, "timeout"),
        (413, Behaviour.DEAD, "too_large"),
        (422, Behaviour.DEAD_LOUD, "unexpected_status"),
        (429, Behaviour.RETRY_AFTER, "rate_limited"),
        (500, Behaviour.BACKOFF, "server_error"),
        (502, Behaviour.BACKOFF, "server_error"),
        (503, Behaviour.BACKOFF, "server_error"),
        (302, Behaviour.BACKOFF, "unexpected_status"),
    ],
)
def test_rule_table(status, behaviour, reason):
    rule = rule_for(status)
    assert (rule.behaviour, rule.reason) == (behaviour, reason)


@pytest.mark.parametrize(
    ("status", "errors", "reason"),
    [
        (400, ["Length of 'routing_key' is incorrect (should be 32 characters)"],
         "routing_key_refused"),
        (400, ["'payload.summary' is missing", "Invalid Routing Key"], "routing_key_refused"),
        (400, ["'payload.summary' is missing"], "invalid_event"),
        (400, [], "invalid_event"),
        (500, ["routing_key unknown"], "server_error"),  # only a 400 is a refusal of the key
    ],
)
def test_a_400_naming_the_routing_key_is_a_loud_configuration_error(status, errors, reason):
    rule = rule_for(status, errors)
    assert rule.reason == reason
    assert (rule.behaviour is Behaviour.DEAD_LOUD) == (reason == "routing_key_refused")


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("soon", None),
     ("nan", None), ("99999", MAX_RETRY_AFTER)],
)
def test_retry_after_seconds(header, expected):
    assert parse_retry_after(header, now=1_000.0) == expected


def test_retry_after_http_date():
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


def test_backoff_ceiling_doubles_then_caps():
    backoff = Backoff(base=1.0, factor=2.0, cap=60.0)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4, 7, 10_000)] == [1, 2, 4, 8, 60, 60]


@given(attempt=st.integers(min_value=1, max_value=100_000), seed=st.integers())
def test_backoff_delay_within_full_jitter_bounds(attempt, seed):
    backoff = Backoff(base=0.5, cap=120.0)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= backoff.ceiling(attempt)
