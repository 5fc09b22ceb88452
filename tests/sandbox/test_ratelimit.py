"""The per-key sliding window."""

from __future__ import annotations

import pytest

from sandbox.clock import ManualClock
from sandbox.ratelimit import RateLimiter


def test_window_slides_per_key():
    clock = ManualClock()
    limiter = RateLimiter(2, clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b") is True
    clock.advance(30)
    assert limiter.retry_after("a") == 30
    clock.advance(30)
    assert limiter.allow("a") is True


def test_refused_events_do_not_count():
    clock = ManualClock()
    limiter = RateLimiter(1, clock)
    limiter.allow("a")
    for _ in range(5):
        limiter.allow("a")
    clock.advance(60)
    assert limiter.allow("a") is True


def test_no_limit():
    limiter = RateLimiter(None, ManualClock())
    assert all(limiter.allow("a") for _ in range(1000))
    assert limiter.retry_after("a") == 0


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)


def test_rest_headers_count_down_and_say_when_the_window_has_room():
    clock = ManualClock()
    limiter = RateLimiter(3, clock)
    assert limiter.headers("tok") == {
        "ratelimit-limit": "3",
        "ratelimit-remaining": "3",
        "ratelimit-reset": "60",
    }
    limiter.allow("tok")
    clock.advance(20)
    limiter.allow("tok")
    assert limiter.headers("tok")["ratelimit-remaining"] == "1"
    assert limiter.headers("tok")["ratelimit-reset"] == "40"
    assert limiter.remaining("other") == 3


def test_no_limit_sends_no_headers():
    limiter = RateLimiter(None, ManualClock())
    assert limiter.headers("tok") == {}
    assert limiter.remaining("tok") is None
