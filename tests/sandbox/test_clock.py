"""Injected clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sandbox.clock import ManualClock, iso, system_clock


def test_manual_clock_moves_only_when_told():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock() == clock()
    assert clock.advance(90) == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock().year == 2027


def test_manual_clock_needs_aware_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


def test_iso_is_utc_with_z():
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 1, 1, 14, 0, 5, 999, tzinfo=plus_two)) == "2026-01-01T12:00:05Z"
    assert system_clock().tzinfo is UTC
