"""Plain-text rendering of incidents and change events, for terminals and demo output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contract.redact import last4

COLUMNS = ("#", "SERVICE", "URGENCY", "STATUS", "DEDUP KEY", "SUMMARY", "LINKS")
MAX_CELL = 60


def short_key(key: str) -> str:
    """A routing key shown the only way keys are shown: by its last four characters."""
    return last4(key)


def render_incidents(incidents: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table: number, service, urgency, status, dedup key, summary, links."""
    if not incidents:
        return "no incidents\n"
    return _table([COLUMNS, *(_row(i) for i in incidents)])


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def _row(incident: dict[str, Any]) -> tuple[str, ...]:
    alert = (incident.get("alerts") or [{}])[0]
    links = ", ".join(_link(link) for link in alert.get("links") or ())
    return (
        str(incident.get("incident_number", "")),
        _cell(incident.get("service_name")),
        _cell(incident.get("urgency")),
        _cell(incident.get("status")),
        _cell(incident.get("incident_key")),
        _cell(alert.get("summary") or incident.get("title")),
        _cell(links, limit=120) or "-",
    )


def _link(link: dict[str, Any]) -> str:
    text, href = link.get("text"), link.get("href", "")
    return f"{text} <{href}>" if text else str(href)


def _cell(value: Any, limit: int = MAX_CELL) -> str:
    # One line per incident: newlines from ASM messages would break the table.
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


CHANGE_COLUMNS = ("SERVICE", "TIMESTAMP", "SUMMARY", "LINKS")


def render_change_events(events: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table of change events: service, timestamp, summary, links."""
    if not events:
        return "no change events\n"
    rows = [
        (
            _cell(event.get("service_name")),
            _cell(event.get("timestamp")),
            _cell(event.get("summary"), limit=100),
            _cell(", ".join(_link(link) for link in event.get("links") or ()), limit=120) or "-",
        )
        for event in events
    ]
    return _table([CHANGE_COLUMNS, *rows])
