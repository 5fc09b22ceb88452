"""PagerDuty change events for the services whose wiring a stack change touched.

After `pulumi up`, PagerDuty's responders should see on each affected service what
changed ("escalation policy Payments On-call: rule 1: escalate after: 30m -> 10m")
and the commit that did it. Change events (Events API v2 `POST /v2/change/enqueue`)
are made for this: they open no incident and notify nobody.

Two parts:

* `wiring_changes(diff, new)`: pure. Per route (service key) the lines that say what
  changed about it: its service, its Apica integration, its route (checks, severity
  map, links), the escalation policy it uses, or its becoming the catch-all. Removed
  services get nothing (they are gone, and so is their key).
* `change_event(...)` builds the event within the contract (summary at most 1024
  characters, an ISO 8601 timestamp, the commit as a link); `ChangeEventSender` posts
  it with bounded retries (429, 5xx, network) and says in one line why it failed.
  Routing keys come from the routes file and appear in no message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from contract.redact import mask_keys
from contract.vocabulary import MAX_LINK_TEXT, MAX_SUMMARY
from infra.diff import Change, StackDiff
from infra.diff_render import describe
from infra.errors import InfraError
from infra.messages import escape
from infra.model import NewService, Stack

SOURCE = "apica-pd"
SUMMARY_PREFIX = "apica-pd: "
MAX_TRIES = 3
BACKOFF_SECONDS = 1.0
MAX_WAIT_SECONDS = 30.0
MAX_ANSWER_BYTES = 64 * 1024
TIMEOUT = (5.0, 15.0)

_SERVICE_SUBJECTS = frozenset({"service", "integration", "route"})


class ChangeEventError(InfraError):
    """A change event PagerDuty did not take; `str()` is one line without the key."""


@dataclass(frozen=True)
class WiringChange:
    """What changed about one route (service key of the new stack file)."""

    route: str
    service_name: str
    lines: tuple[str, ...]


def wiring_changes(diff: StackDiff, new: Stack) -> list[WiringChange]:
    """Per route of `new`, in the diff's order, the lines saying what changed for it."""
    found: dict[str, list[str]] = {}
    for change in diff.changes:
        for route, lines in _touched(change, new):
            kept = found.setdefault(route, [])
            # Values come from stack files: PagerDuty shows them, so nothing raw.
            kept.extend(escape(line) for line in lines if escape(line) not in kept)
    return [
        WiringChange(route, new.services[route].name, tuple(lines))
        for route, lines in found.items()
        if lines and route in new.services
    ]


def _touched(change: Change, new: Stack) -> list[tuple[str, list[str]]]:
    if change.kind == "remove" and change.subject == "service":
        return []  # the service (or its integration) is gone
    if change.subject in _SERVICE_SUBJECTS:
        return [(change.key, _lines(change))]
    if change.subject == "escalation_policy":
        users = [
            key
            for key, service in new.services.items()
            if isinstance(service, NewService) and service.escalation_policy == change.key
        ]
        lines = [f"escalation policy {change.name}: {line}" for line in _lines(change)]
        return [(key, lines) for key in users]
    if change.subject == "catch_all" and new.catch_all in new.services:
        before = change.properties[0].old or "none"
        return [(new.catch_all, [f"now the catch-all route (before: {before})"])]
    return []


def _lines(change: Change) -> list[str]:
    if change.kind == "add" and change.subject == "service":
        return [f"added to the stack file (route /v1/asm/{change.key})"]
    if change.kind == "add" and change.subject == "integration":
        return [f"Apica integration {change.name!r} added (route /v1/asm/{change.key})"]
    if change.kind == "remove" and change.subject == "integration":
        return [f"Apica integration {change.name!r} removed"]
    lines = [describe(change, prop) for prop in change.properties]
    if change.kind in ("replace", "rename-route"):
        lines.insert(0, f"{change.subject.replace('_', ' ')} replaced: a new one in PagerDuty")
    return lines


def summary(lines: tuple[str, ...]) -> str:
    """The change event's summary: every line, joined, within PagerDuty's 1024 characters."""
    text = SUMMARY_PREFIX + "; ".join(lines)
    if len(text) <= MAX_SUMMARY:
        return text
    for shown in range(len(lines) - 1, 0, -1):
        more = f"; ... and {len(lines) - shown} more (custom details)"
        text = SUMMARY_PREFIX + "; ".join(lines[:shown]) + more
        if len(text) <= MAX_SUMMARY:
            return text
    return text[: MAX_SUMMARY - 3] + "..."


def change_event(
    routing_key: str,
    wiring: WiringChange,
    *,
    stack: str,
    file: str,
    commit_url: str,
    now: datetime,
) -> dict[str, Any]:
    """The Events API v2 change event for one route (the key only goes into the body)."""
    return {
        "routing_key": routing_key,
        "payload": {
            "summary": summary(wiring.lines),
            "source": f"{SOURCE} ({stack})",
            "timestamp": now.astimezone(UTC).isoformat(timespec="seconds"),
            "custom_details": {
                "stack": stack,
                "file": file,
                "route": wiring.route,
                "changes": list(wiring.lines),
            },
        },
        "links": [{"href": commit_url, "text": _link_text(commit_url)}],
    }


def _link_text(url: str) -> str:
    last = url.rstrip("/").rsplit("/", 1)[-1]
    text = f"commit {last[:12]}" if last else "commit"
    return text[:MAX_LINK_TEXT]


class ChangeEventSender:
    """Posts change events to `url` (PagerDuty's `.../v2/change/enqueue`), retrying what
    PagerDuty says to retry, a bounded number of times."""

    def __init__(
        self,
        url: str,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_tries: int = MAX_TRIES,
    ) -> None:
        self.url = url
        self._session = session or requests.Session()
        self._sleep = sleep
        self._max_tries = max_tries

    def send(self, event: dict[str, Any]) -> None:
        """Send one event; raises `ChangeEventError` if PagerDuty did not take it."""
        for attempt in range(1, self._max_tries + 1):
            last = attempt == self._max_tries
            try:
                response = self._session.post(self.url, json=event, timeout=TIMEOUT, stream=True)
            except requests.RequestException as exc:
                if last:
                    raise ChangeEventError(
                        f"cannot reach {self.url} ({type(exc).__name__}) after {attempt} tries"
                    ) from None
                self._sleep(_backoff(attempt))
                continue
            with response:
                status = response.status_code
                if status == 202:
                    return
                if (status == 429 or status >= 500) and not last:
                    self._sleep(_retry_after(response, attempt))
                    continue
                raise ChangeEventError(_refusal(response, attempt))
        raise AssertionError("unreachable: the last try returns or raises")


def _backoff(attempt: int) -> float:
    return min(MAX_WAIT_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1))


def _retry_after(response: requests.Response, attempt: int) -> float:
    # PagerDuty documents no Retry-After for the Events API: honour one, never need it.
    try:
        return min(MAX_WAIT_SECONDS, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return _backoff(attempt)


def _refusal(response: requests.Response, attempt: int) -> str:
    raw = b""
    for chunk in response.iter_content(8192):
        raw += chunk
        if len(raw) > MAX_ANSWER_BYTES:
            break
    try:
        body = json.loads(raw[:MAX_ANSWER_BYTES])
    except ValueError:
        body = {}
    said = ""
    if isinstance(body, dict):
        parts = [str(body.get("message") or ""), *map(str, body.get("errors") or ())]
        said = "; ".join(part for part in parts if part)
    tries = f" after {attempt} tries" if attempt > 1 else ""
    detail = f" ({mask_keys(said)[:300]})" if said else ""
    return f"PagerDuty answered {response.status_code}{detail}{tries}"
