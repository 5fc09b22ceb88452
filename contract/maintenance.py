"""Maintenance windows in time: their rules, and when each one is open in real (UTC) time.

A window is written in the wall-clock time of an IANA zone, as people plan them:

* one-off: a local start and end (`2026-12-05T22:00` to `2026-12-06T02:00`);
* weekly: days, a local start and end time (`sat 22:00` to `23:30`); an end at or
  before the start ends on the next day (`22:00` to `02:00` runs overnight).

Both the stack file (infra) and the routes file (the bridge) hold windows in this form,
so the rules that make one valid are here once: `once_problems`, `weekly_problems`.
The models themselves are `contract.routes_file.MaintenanceWindow` and its parts;
`occurrence_at` and `next_occurrence` take one of those and a moment.

Wall clock and daylight saving time: a local time is read with the zone's offset in
force then. A one-off time that does not exist (skipped when the clocks go forward)
is refused; a weekly time that does not exist on one day is read with the offset
before the change (02:30 on the spring-forward night is 03:30). A time that exists
twice (the clocks go back) is the first of the two.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from contract.routes_file import MaintenanceWindow

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A one-off window longer than this is refused: a check held for longer should leave the
#: stack file (and a year typed wrong should not silence it for one).
MAX_ONCE = timedelta(days=31)
#: Windows per route: enough for every weekly slot a team plans, small enough to list.
MAX_WINDOWS_PER_ROUTE = 50
MAX_WINDOW_NAME = 64

#: A local date and time as windows are written (the zone is the window's).
WALL_TIME_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?"
#: HH:MM, 24-hour (support hours use it too).
TIME_OF_DAY_PATTERN = r"([01][0-9]|2[0-3]):([0-5][0-9])"
_WALL_TIME = re.compile(WALL_TIME_PATTERN)
_TIME_OF_DAY = re.compile(TIME_OF_DAY_PATTERN)


# -- values -------------------------------------------------------------------------


@cache
def time_zone_names() -> frozenset[str]:
    """The IANA zones the zone database knows (empty without one)."""
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: object) -> str:
    """An IANA zone name known to the zone database; ValueError says what is wrong."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be an IANA time zone name such as Europe/Berlin")
    zones = time_zone_names()
    if not zones:
        raise ValueError("cannot check time zones: no time zone database (pip install tzdata)")
    if value not in zones:
        close = difflib.get_close_matches(value, sorted(zones), n=1, cutoff=0.6)
        hint = (f"; did you mean {close[0]!r}?" if close
                else " (use an IANA name like Europe/Berlin)")
        raise ValueError(f"unknown time zone {value!r}{hint}")
    return value


def check_wall_time(value: object) -> str:
    """A local date and time, `YYYY-MM-DDTHH:MM[:SS]` (a space for the T is fine), without
    an offset: normalised to `YYYY-MM-DDTHH:MM:SS`."""
    if not isinstance(value, str) or not _WALL_TIME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a local date and time: write YYYY-MM-DDTHH:MM, e.g. "
            "'2026-12-05T22:00', without an offset (the window's time_zone gives it)"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date that exists") from None
    return parsed.isoformat(timespec="seconds")


def check_time_of_day(value: object) -> str:
    """`HH:MM`, 24-hour."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('must be a time such as "22:00" (quote it)')
    if not isinstance(value, str) or not _TIME_OF_DAY.fullmatch(value):
        raise ValueError(f'{value!r} is not a time of day: write HH:MM, e.g. "22:00"')
    return value


#: Where in a window a rule is broken ("end", or "days", 1) and what to say.
Problem = tuple[tuple[str | int, ...], str]
ONE_SCHEDULE = "a window needs exactly one of `once` (one-off) or `weekly`"
SOME_CHECKS = ("name at least one check id, GUID or tag (leave `checks` out to cover every "
               "check of the service)")


def once_problems(start: str, end: str, zone_name: str) -> list[Problem]:
    """Every rule a one-off window of valid parts (`check_wall_time`'s, a known zone) breaks."""
    zone = zoneinfo.ZoneInfo(zone_name)
    problems: list[Problem] = []
    for field, text in (("start", start), ("end", end)):
        if not wall_time_exists(datetime.fromisoformat(text), zone):
            problems.append(((field,), f"{text} does not exist in {zone_name} (the clocks "
                                       "skip it): pick a time outside the change"))
    if problems:
        return problems
    begins, ends = to_utc(datetime.fromisoformat(start), zone), to_utc(
        datetime.fromisoformat(end), zone)
    if ends <= begins:
        problems.append((("end",), f"end {end} must be after start {start}"))
    elif ends - begins > MAX_ONCE:
        problems.append((("end",), f"the window lasts {_days(ends - begins)}; at most "
                                   f"{MAX_ONCE.days} days (take checks held longer out "
                                   "of the stack file)"))
    return problems


def weekly_problems(days: Sequence[str], start: str, end: str) -> list[Problem]:
    """Every rule a weekly window of valid parts breaks."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, day in enumerate(days):
        if day in seen:
            problems.append((("days", index), f"{day!r} is listed twice"))
        seen.add(day)
    if start == end:
        problems.append((("end",), f"end {end} equals start {start}: a window needs a "
                                   "length (an end before the start runs past midnight)"))
    return problems


def render_path(path: Sequence[str | int]) -> str:
    """("days", 1) -> "days[1]"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _days(span: timedelta) -> str:
    return f"{span.days} days" + (f" {span.seconds // 3600}h" if span.seconds >= 3600 else "")


# -- time ---------------------------------------------------------------------------


def to_utc(local: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """A naive wall-clock time in `zone` as an aware UTC time (fold 0: the first)."""
    return local.replace(tzinfo=zone).astimezone(UTC)


def wall_time_exists(local: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """False for a time the clocks skip (it does not come back from UTC as itself)."""
    return to_utc(local, zone).astimezone(zone).replace(tzinfo=None) == local


@dataclass(frozen=True, order=True)
class Occurrence:
    """One stretch of time a window is open: [start, end), aware UTC."""

    start: datetime
    end: datetime

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


def occurrences(window: MaintenanceWindow, around: datetime, days: int = 8
                ) -> Iterator[Occurrence]:
    """The window's occurrences that start from a day before `around` to `days` after,
    in order."""
    zone = zoneinfo.ZoneInfo(window.time_zone)
    if window.once is not None:
        yield Occurrence(to_utc(datetime.fromisoformat(window.once.start), zone),
                         to_utc(datetime.fromisoformat(window.once.end), zone))
        return
    weekly = window.weekly
    assert weekly is not None  # the model holds exactly one of the two
    start, end = time.fromisoformat(weekly.start), time.fromisoformat(weekly.end)
    overnight = end <= start
    first = around.astimezone(zone).date() - timedelta(days=1)
    for day in _dates(first, days + 2):
        if WEEKDAYS[day.weekday()] not in weekly.days:
            continue
        last_day = day + timedelta(days=1) if overnight else day
        yield Occurrence(to_utc(datetime.combine(day, start), zone),
                         to_utc(datetime.combine(last_day, end), zone))


def occurrence_at(window: MaintenanceWindow, when: datetime) -> Occurrence | None:
    """The occurrence open at `when` (aware), or None."""
    return next((o for o in occurrences(window, when, days=1) if o.contains(when)), None)


def next_occurrence(window: MaintenanceWindow, when: datetime) -> Occurrence | None:
    """The first occurrence that starts after `when`, or None (a one-off in the past)."""
    return next((o for o in occurrences(window, when) if o.start > when), None)


def open_windows(windows: Iterable[MaintenanceWindow], when: datetime
                 ) -> list[tuple[MaintenanceWindow, Occurrence]]:
    """The windows open at `when`, each with its occurrence."""
    found = []
    for window in windows:
        occurrence = occurrence_at(window, when)
        if occurrence is not None:
            found.append((window, occurrence))
    return found


@dataclass(frozen=True)
class WindowStatus:
    """Where one route's window stands at a moment (`apica-pd maintenance`)."""

    route: str
    window: MaintenanceWindow
    open_now: Occurrence | None
    next: Occurrence | None  # None: a one-off that is open now or over


def window_statuses(windows: Iterable[tuple[str, MaintenanceWindow]], when: datetime
                    ) -> list[WindowStatus]:
    """Each (route, window) at `when` (aware): the open ones first (ending soonest), then
    by their next start, the one-offs that are over last."""
    found = [WindowStatus(route, window, occurrence_at(window, when),
                          next_occurrence(window, when)) for route, window in windows]

    def order(status: WindowStatus) -> tuple[int, datetime, str, str]:
        if status.open_now is not None:
            rank, moment = 0, status.open_now.end
        elif status.next is not None:
            rank, moment = 1, status.next.start
        else:
            rank, moment = 2, when
        return rank, moment, status.route, status.window.name

    return sorted(found, key=order)


def describe_schedule(window: MaintenanceWindow) -> str:
    """One line: `weekly sat, sun 22:00-02:00 (next day) Europe/Berlin` or
    `once 2026-12-05 22:00 - 2026-12-06 02:00 Europe/Berlin`."""
    if window.once is not None:
        start, end = (_short_wall(text) for text in (window.once.start, window.once.end))
        return f"once {start} - {end} {window.time_zone}"
    weekly = window.weekly
    assert weekly is not None
    overnight = " (next day)" if weekly.end <= weekly.start else ""
    return (f"weekly {', '.join(weekly.days)} {weekly.start}-{weekly.end}{overnight} "
            f"{window.time_zone}")


def describe_scope(window: MaintenanceWindow) -> str:
    """`every check`, or the claims: `ids 101, 102; tags 'Env: Staging'`."""
    checks = window.checks
    if checks is None:
        return "every check"
    parts = []
    if checks.ids:
        parts.append("ids " + ", ".join(map(str, checks.ids)))
    if checks.guids:
        parts.append("GUIDs " + ", ".join(checks.guids))
    if checks.tags:
        parts.append("tags " + ", ".join(repr(tag) for tag in checks.tags))
    return "; ".join(parts)


def describe_window(window: MaintenanceWindow) -> str:
    """Schedule and scope in one line, as `apica-pd diff` shows a window."""
    return f"{describe_schedule(window)}, {describe_scope(window)}"


def _short_wall(text: str) -> str:
    # "2026-12-05T22:00:00" -> "2026-12-05 22:00" (seconds only when set).
    text = text.replace("T", " ")
    return text[:-3] if text.endswith(":00") else text


def _dates(first: date, count: int) -> Iterator[date]:
    for offset in range(count):
        yield first + timedelta(days=offset)
