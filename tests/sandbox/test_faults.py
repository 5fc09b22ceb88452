"""Fault rules: counted, timed, queued in order."""

from __future__ import annotations

import pytest

from sandbox.clock import ManualClock
from sandbox.faults import Faults


def test_rules_answer_in_order_and_run_out():
    faults = Faults(ManualClock())
    faults.fail(status=500, count=1)
    faults.rate_limit(count=1, retry_after=3)
    assert faults.take().status == 500
    throttled = faults.take()
    assert (throttled.status, throttled.headers) == (429, {"Retry-After": "3"})
    assert faults.take() is None


def test_fail_without_count_or_seconds_fails_once():
    faults = Faults(ManualClock())
    faults.fail()
    assert faults.take().status == 500
    assert faults.take() is None


def test_timed_rule_expires_with_the_clock():
    clock = ManualClock()
    faults = Faults(clock)
    faults.rate_limit(seconds=5)
    assert faults.take().headers == {}
    clock.advance(5)
    assert faults.take() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": 200}, "error status"),
        ({"count": 1, "seconds": 1}, "not both"),
        ({"count": 0}, "count must be >= 1"),
    ],
)
def test_bad_fault_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Faults(ManualClock()).fail(**kwargs)


def test_latency_and_clear():
    faults = Faults(ManualClock())
    faults.latency(0.5)
    faults.fail(count=2)
    assert faults.describe()["latency"] == 0.5
    faults.clear()
    assert (faults.delay, faults.take()) == (0.0, None)
