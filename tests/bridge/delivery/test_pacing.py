"""Pacing per routing key against a 60 s look-back window, and what a 429 leaves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.pacing import ARRIVAL_MARGIN, DEFAULT_LIMIT, PAGERDUTY_WINDOW, WINDOW, Pacing
from bridge.store.records import KeyWindow, Throttle

NOW = 1000.0


def window(*ages: float, throttle: Throttle | None = None) -> KeyWindow:
    """Sends `ages` seconds ago."""
    return KeyWindow(tuple(sorted(NOW - age for age in ages)), throttle)


def test_the_defaults_are_pagerdutys_documented_window_and_a_margin_for_the_trip():
    assert (DEFAULT_LIMIT, PAGERDUTY_WINDOW, WINDOW) == (120, 60.0, 60.5)
    assert Pacing().window == WINDOW


def test_a_full_window_waits_for_the_oldest_send_to_have_left_pagerdutys_window_too():
    # Claimed 60 s ago, it reached PagerDuty a moment later: half a second more to be sure.
    assert Pacing(limit=2).next_slot(window(60, 30), NOW) == NOW + ARRIVAL_MARGIN


@pytest.mark.parametrize(
    ("limit", "ages", "slot"),
    [
        (3, (), NOW),
        (3, (50, 10), NOW),
        (3, (50, 30, 10), NOW + 10),  # the oldest leaves the window in 10 s
        (3, (58, 55, 30, 10), NOW + 5),  # four in a window of three: two must leave
        (3, (61, 60, 30, 10), NOW),  # sends 60 s old or more are outside the window
    ],
)
def test_a_key_sends_while_its_window_has_room(limit, ages, slot):
    assert Pacing(limit=limit, window=60).next_slot(window(*ages), NOW) == slot


@pytest.mark.parametrize(
    ("ages", "retry_after", "limit", "not_before"),
    [
        # No Retry-After (PagerDuty documents none): the limit drops to the sends in the
        # window minus one, and the key waits until the window allows that.
        ((40, 30, 20, 10, 0), None, 4, NOW + 30),
        ((0,), None, 1, NOW + 60),  # at least one
        # A Retry-After is honoured when it asks for longer, capped at 600 s ...
        ((40, 30, 20, 10, 0), 45, 4, NOW + 45),
        ((0,), 10_000, 1, NOW + 600),
        # ... and never shortens what the window needs.
        ((40, 30, 20, 10, 0), 5, 4, NOW + 30),
    ],
)
def test_a_429_lowers_the_keys_limit_and_waits_for_the_window(ages, retry_after, limit,
                                                               not_before):
    throttle = Pacing(limit=120, window=60).after_429(window(*ages), NOW, retry_after)
    assert throttle == Throttle(limit=limit, since=NOW, not_before=not_before)


def test_the_limit_comes_back_by_one_per_clean_window():
    pacing = Pacing(limit=5, window=60)
    throttle = Throttle(limit=2, since=NOW, not_before=NOW)
    assert [pacing.limit_at(throttle, NOW + minutes * 60 + 1) for minutes in range(5)] == [
        2, 3, 4, 5, 5]
    assert pacing.limit_at(None, NOW) == 5


def test_a_throttled_key_waits_for_its_not_before_even_with_room():
    throttle = Throttle(limit=100, since=NOW, not_before=NOW + 7)
    assert Pacing().next_slot(window(throttle=throttle), NOW) == NOW + 7


def test_a_second_429_lowers_from_the_lowered_limit():
    pacing = Pacing(limit=120)
    throttle = Throttle(limit=3, since=NOW - 10, not_before=NOW - 5)
    assert pacing.after_429(window(50, 40, 30, 20, 0, throttle=throttle), NOW, None).limit == 3


@pytest.mark.parametrize(("limit", "seconds"), [(0, 60.0), (1, 0.0), (1, float("nan"))])
def test_nonsense_is_refused(limit, seconds):
    with pytest.raises(ValueError, match="pacing needs limit >= 1 and window > 0"):
        Pacing(limit=limit, window=seconds)


@given(gaps=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=300),
       limit=st.integers(min_value=1, max_value=20))
def test_sending_at_the_slots_never_puts_more_than_limit_in_any_window(gaps, limit):
    pacing = Pacing(limit=limit)
    sent: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        slot = pacing.next_slot(KeyWindow(tuple(sent), None), now)
        now = max(now, slot)
        sent.append(now)
    for i, start in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < start + WINDOW) <= limit
