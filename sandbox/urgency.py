"""A service's incident urgency rule, evaluated the way PagerDuty does when an incident opens.

Rule shapes (REST API v2)::

    {"type": "constant", "urgency": "high" | "low" | "severity_based"}
    {"type": "use_support_hours",
     "during_support_hours": {"type": "constant", "urgency": ...},
     "outside_support_hours": {"type": "constant", "urgency": ...}}

Support hours: ``{"type": "fixed_time_per_day", "time_zone": "America/Lima",
"days_of_week": [1..7 with 1 = Monday], "start_time": "09:00:00", "end_time": "17:00:00"}``.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

URGENCIES = ("high", "low", "severity_based")
# With `severity_based`, critical and error page loudly; warning and info do not.
_HIGH_SEVERITIES = frozenset({"critical", "error"})


def constant_rule(urgency: str) -> dict[str, Any]:
    """The rule for a shorthand urgency ("high", "low" or "severity_based")."""
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)} (got {urgency!r})")
    return {"type": "constant", "urgency": urgency}


def incident_urgency(
    rule: dict[str, Any],
    support_hours: dict[str, Any] | None,
    severity: str,
    now: datetime,
) -> str:
    """`high` or `low` for an incident opened `now` by an alert of `severity`."""
    if rule.get("type") == "use_support_hours":
        inside = support_hours is not None and in_support_hours(support_hours, now)
        branch = rule["during_support_hours" if inside else "outside_support_hours"]
        return _resolve(branch.get("urgency", "high"), severity)
    return _resolve(rule.get("urgency", "high"), severity)


def in_support_hours(support_hours: dict[str, Any], now: datetime) -> bool:
    """True when `now`, seen in the support hours' time zone, falls inside them."""
    local = now.astimezone(ZoneInfo(support_hours.get("time_zone") or "UTC"))
    if local.isoweekday() not in set(support_hours.get("days_of_week") or ()):
        return False
    start = time.fromisoformat(support_hours["start_time"])
    end = time.fromisoformat(support_hours["end_time"])
    return start <= local.time().replace(tzinfo=None) < end


def support_hours_started_between(
    support_hours: dict[str, Any], since: datetime, until: datetime
) -> bool:
    """True when support hours began at some moment in (since, until]."""
    zone = ZoneInfo(support_hours.get("time_zone") or "UTC")
    days = set(support_hours.get("days_of_week") or ())
    start = time.fromisoformat(support_hours["start_time"])
    day = since.astimezone(zone).date()
    last = until.astimezone(zone).date()
    # A year of days at most: incidents older than that are not this sandbox's business.
    for _ in range(366):
        if day > last:
            return False
        if day.isoweekday() in days:
            began = datetime.combine(day, start, tzinfo=zone)
            if since < began <= until:
                return True
        day += timedelta(days=1)
    return False


def _resolve(urgency: str, severity: str) -> str:
    if urgency == "severity_based":
        return "high" if severity in _HIGH_SEVERITIES else "low"
    return urgency
