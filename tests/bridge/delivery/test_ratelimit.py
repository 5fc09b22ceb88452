"""Token bucket per routing key with an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.ratelimit import RateLimiter
from tests.bridge.conftest import FakeClock

START = 1_000.0  # small numbers: the property test adds up many float gaps


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def test_burst_then_wait(clock):
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.try_acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("k") == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.wait_time("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.try_acquire("k") == 0.0


def test_keys_are_independent(clock):
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    assert limiter.try_acquire("a") == 0.0
    assert limiter.try_acquire("a") > 0
    assert limiter.try_acquire("b") == 0.0


def test_clock_stepping_back_gives_no_tokens(clock):
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    limiter.try_acquire("k")
    clock.now -= 100
    assert limiter.try_acquire("k") > 0


def test_rejects_nonsense():
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0)
    with pytest.raises(ValueError):
        RateLimiter(burst=0)


@given(gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=300))
def test_never_more_than_burst_plus_rate_in_any_minute(gaps):
    clock = FakeClock(START)
    limiter = RateLimiter(clock=clock)  # defaults: 110/min + burst 10 = 120 per minute
    sent: list[float] = []
    for gap in gaps:
        clock.now += gap
        while limiter.try_acquire("k") == 0.0:
            sent.append(clock.now)
    for i, start in enumerate(sent):
        in_window = [t for t in sent[i:] if t < start + 60.0]
        assert len(in_window) <= 120
