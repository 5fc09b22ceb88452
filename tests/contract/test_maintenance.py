"""contract.maintenance: when a window is open, in its own zone, and the rules of a valid one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.maintenance import (
    Occurrence,
    check_time_of_day,
    check_time_zone,
    check_wall_time,
    describe_schedule,
    describe_scope,
    describe_window,
    next_occurrence,
    occurrence_at,
    occurrences,
    once_problems,
    open_windows,
    weekly_problems,
)
from contract.routes_file import MaintenanceWindow


def window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "w", "time_zone": "Europe/Berlin",
                                             **fields})


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


WEEKEND_NIGHTS = window(weekly={"days": ["sat", "sun"], "start": "22:00", "end": "02:00"})
MOVE = window(once={"start": "2026-12-05T22:00", "end": "2026-12-06T02:00"},
              checks={"ids": [101], "tags": ["Env: Staging"]})


def test_a_one_off_window_is_open_from_its_local_start_to_its_local_end() -> None:
    # Berlin is UTC+1 in December.
    expected = Occurrence(utc(2026, 12, 5, 21), utc(2026, 12, 6, 1))
    assert occurrence_at(MOVE, utc(2026, 12, 5, 21)) == expected
    assert occurrence_at(MOVE, utc(2026, 12, 6, 0, 59, 59)) == expected
    assert occurrence_at(MOVE, utc(2026, 12, 6, 1)) is None  # the end is not inside
    assert occurrence_at(MOVE, utc(2026, 12, 5, 20, 59, 59)) is None
    assert next_occurrence(MOVE, utc(2026, 12, 1)) == expected
    assert next_occurrence(MOVE, utc(2026, 12, 5, 21)) is None  # started: not "next"


def test_a_weekly_window_past_midnight_ends_on_the_next_day() -> None:
    # Saturday 5 December 2026, 23:30 Berlin = 22:30 UTC.
    found = occurrence_at(WEEKEND_NIGHTS, utc(2026, 12, 5, 22, 30))
    assert found == Occurrence(utc(2026, 12, 5, 21), utc(2026, 12, 6, 1))
    # Sunday 01:00 Berlin belongs to Saturday's night; Sunday 22:00 starts the next one.
    assert occurrence_at(WEEKEND_NIGHTS, utc(2026, 12, 6, 0)) == found
    assert occurrence_at(WEEKEND_NIGHTS, utc(2026, 12, 6, 12)) is None
    assert next_occurrence(WEEKEND_NIGHTS, utc(2026, 12, 6, 12)) == Occurrence(
        utc(2026, 12, 6, 21), utc(2026, 12, 7, 1))
    # Monday night is not a weekend night: the next one is Saturday's.
    assert next_occurrence(WEEKEND_NIGHTS, utc(2026, 12, 7, 2)) == Occurrence(
        utc(2026, 12, 12, 21), utc(2026, 12, 13, 1))


def test_weekly_windows_keep_their_wall_clock_time_over_a_daylight_saving_change() -> None:
    deploy = window(weekly={"days": ["sat"], "start": "22:00", "end": "23:00"})
    # Berlin: UTC+1 on Saturday 21 March 2026, UTC+2 from Sunday 29 March.
    assert next_occurrence(deploy, utc(2026, 3, 22)) == Occurrence(
        utc(2026, 3, 28, 21), utc(2026, 3, 28, 22))
    assert next_occurrence(deploy, utc(2026, 3, 29)) == Occurrence(
        utc(2026, 4, 4, 20), utc(2026, 4, 4, 21))
    # A time the clocks skip on one day is read with the offset before the change.
    night = window(weekly={"days": ["sun"], "start": "02:30", "end": "04:00"})
    assert next_occurrence(night, utc(2026, 3, 28)) == Occurrence(
        utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2))


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                    timezones=st.just(UTC)))
def test_a_moment_is_inside_the_occurrence_found_or_outside_all(when: datetime) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    found = occurrence_at(WEEKEND_NIGHTS, when)
    nearby = list(occurrences(WEEKEND_NIGHTS, when - timedelta(days=3), days=6))
    if found is None:
        assert not any(o.contains(when) for o in nearby)
    else:
        assert found.contains(when) and found in nearby
        local_start = found.start.astimezone(berlin)
        assert (local_start.strftime("%a %H:%M") in ("Sat 22:00", "Sun 22:00"))
    upcoming = next_occurrence(WEEKEND_NIGHTS, when)
    assert upcoming is not None and when < upcoming.start <= when + timedelta(days=7)


def test_open_windows_lists_each_open_window_with_its_occurrence() -> None:
    assert open_windows([MOVE, WEEKEND_NIGHTS], utc(2026, 12, 5, 22)) == [
        (MOVE, Occurrence(utc(2026, 12, 5, 21), utc(2026, 12, 6, 1))),
        (WEEKEND_NIGHTS, Occurrence(utc(2026, 12, 5, 21), utc(2026, 12, 6, 1))),
    ]
    assert open_windows([MOVE, WEEKEND_NIGHTS], utc(2026, 12, 7, 12)) == []


def test_windows_describe_themselves_in_one_line() -> None:
    assert describe_schedule(WEEKEND_NIGHTS) == \
        "weekly sat, sun 22:00-02:00 (next day) Europe/Berlin"
    assert describe_scope(WEEKEND_NIGHTS) == "every check"
    assert describe_window(MOVE) == (
        "once 2026-12-05 22:00 - 2026-12-06 02:00 Europe/Berlin, ids 101; tags 'Env: Staging'")
    seconds = window(once={"start": "2026-12-05T22:00:30", "end": "2026-12-05T23:00"},
                     checks={"guids": ["AB-1"]})
    assert describe_window(seconds) == (
        "once 2026-12-05 22:00:30 - 2026-12-05 23:00 Europe/Berlin, GUIDs AB-1")


@pytest.mark.parametrize(
    ("start", "end", "zone", "expected"),
    [
        ("2026-12-05T22:00:00", "2026-12-06T02:00:00", "Europe/Berlin", []),
        ("2026-12-05T22:00:00", "2026-12-05T22:00:00", "UTC",
         [(("end",), "end 2026-12-05T22:00:00 must be after start 2026-12-05T22:00:00")]),
        ("2026-03-29T02:30:00", "2026-03-29T04:00:00", "Europe/Berlin",
         [(("start",), "2026-03-29T02:30:00 does not exist in Europe/Berlin (the clocks skip "
                       "it): pick a time outside the change")]),
        ("2026-12-01T00:00:00", "2027-01-01T01:00:00", "UTC",
         [(("end",), "the window lasts 31 days 1h; at most 31 days (take checks held longer "
                     "out of the stack file)")]),
        ("2026-12-01T00:00:00", "2027-01-01T00:00:00", "UTC", []),
    ],
)
def test_once_rules(start: str, end: str, zone: str, expected: list) -> None:
    assert once_problems(start, end, zone) == expected


def test_weekly_rules() -> None:
    assert weekly_problems(["sat", "sun"], "22:00", "02:00") == []
    assert weekly_problems(["sat", "sun", "sat"], "22:00", "22:00") == [
        (("days", 2), "'sat' is listed twice"),
        (("end",), "end 22:00 equals start 22:00: a window needs a length (an end before the "
                   "start runs past midnight)"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-05T22:00", "2026-12-05T22:00:00"),
        ("2026-12-05 22:00:30", "2026-12-05T22:00:30"),
    ],
)
def test_wall_times_are_normalised(value: str, expected: str) -> None:
    assert check_wall_time(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-12-05T22:00+01:00", "'2026-12-05T22:00+01:00' is not a local date and time: "
         "write YYYY-MM-DDTHH:MM, e.g. '2026-12-05T22:00', without an offset (the window's "
         "time_zone gives it)"),
        ("2026-02-30T22:00", "'2026-02-30T22:00' is not a date that exists"),
        (20261205, "20261205 is not a local date and time"),
        ("2026-12-05T22:00\n", "'2026-12-05T22:00\\n' is not a local date and time"),
        (" 2026-12-05T22:00", "' 2026-12-05T22:00' is not a local date and time"),
    ],
)
def test_bad_wall_times_say_what_to_write(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_wall_time(value)
    assert str(caught.value).startswith(message)


def test_time_zones_and_times_of_day() -> None:
    assert check_time_zone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berln'; did you mean "
                                         "'Europe/Berlin'"):
        check_time_zone("Europe/Berln")
    with pytest.raises(ValueError, match=r"unknown time zone 'Mars/Olympus' \(use an IANA"):
        check_time_zone("Mars/Olympus")
    assert check_time_of_day("23:59") == "23:59"
    with pytest.raises(ValueError, match="'24:00' is not a time of day: write HH:MM"):
        check_time_of_day("24:00")
    with pytest.raises(ValueError, match=r'must be a time such as "22:00" \(quote it\)'):
        check_time_of_day(2200)


def test_window_statuses_list_open_windows_first_then_by_next_start():
    from contract.maintenance import window_statuses

    over = window(name="over", once={"start": "2026-01-05T22:00", "end": "2026-01-05T23:00"})
    soon = window(name="soon", once={"start": "2026-12-09T22:00", "end": "2026-12-09T23:00"})
    when = utc(2026, 12, 5, 22, 30)  # Saturday 23:30 in Berlin
    statuses = window_statuses([("web", over), ("web", soon), ("api", WEEKEND_NIGHTS),
                                ("web", MOVE)], when)
    assert [(s.route, s.window.name) for s in statuses] == [
        ("api", "w"), ("web", "w"), ("web", "soon"), ("web", "over")]
    nights, move, later, done = statuses
    assert nights.open_now == Occurrence(utc(2026, 12, 5, 21), utc(2026, 12, 6, 1))
    assert nights.next == Occurrence(utc(2026, 12, 6, 21), utc(2026, 12, 7, 1))
    assert (move.open_now, move.next) == (Occurrence(utc(2026, 12, 5, 21), utc(2026, 12, 6, 1)),
                                          None)
    assert (later.open_now, later.next) == (None, Occurrence(utc(2026, 12, 9, 21),
                                                             utc(2026, 12, 9, 22)))
    assert (done.open_now, done.next) == (None, None)
