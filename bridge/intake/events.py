"""ASM alert -> PagerDuty Events API v2 body, and the API's rules as a checker.

Pure functions: no I/O, no clock. `check_event` is the gate before anything is
stored or sent: PagerDuty answers an invalid event with 400 and drops it, so an
event that breaks a rule must never leave the bridge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bridge.intake.asm import AsmAlert, canonical_guid
from contract.routes_file import Route
from contract.vocabulary import (
    MAX_DEDUP_KEY,
    MAX_EVENT_BYTES,
    MAX_LINK_TEXT,
    MAX_SUMMARY,
    PAGERDUTY_SEVERITIES,
    Action,
    is_routing_key,
)

CLIENT = "Apica ASM"
# What the Events API takes; the bridge itself only ever sends trigger and resolve.
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
# ASM web UI pages. Check details: /Check/Details/<check id> (seen in public
# integrations with wpm.apicasystem.com). ASM publishes no URL for one result and no
# placeholder gives one, so the result link is our assumption: the check page with
# the result GUID as a query parameter (the page ignores it if unknown).
CHECK_URL = "{base}/Check/Details/{check_id}"
RESULT_URL = "{base}/Check/Details/{check_id}?resultGuid={result_guid}"

_TOP_KEYS = {
    "routing_key", "event_action", "dedup_key", "payload", "images", "links", "client",
    "client_url",
}
_PAYLOAD_KEYS = {
    "summary", "source", "severity", "timestamp", "component", "group", "class",
    "custom_details",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def build_event(
    alert: AsmAlert,
    route_name: str,
    route: Route,
    *,
    action: Action,
    dedup_key: str,
    asm_base_url: str,
    details: Mapping[str, Any] | None = None,
) -> dict:
    """The full Events API v2 body for one alert (resolve: only key, action, dedup).

    `details` go into custom_details after the alert's own fields (ASM's latest result,
    `reconciled`, a maintenance catch-up: `bridge.intake.accept`)."""
    event: dict = {
        "routing_key": route.routing_key.get_secret_value(),
        "event_action": action,
        "dedup_key": dedup_key,
    }
    if action == "resolve":
        return event
    base = asm_base_url.rstrip("/")
    check_url = check_link(alert, base)
    source = alert.location or alert.check_name
    payload: dict = {
        "summary": summary(alert),
        # A name of control characters only would be a blank source: PagerDuty refuses it.
        "source": source if _one_line(source) else check_label(alert),
        "severity": route.severity_map[alert.severity],
        "custom_details": _with(custom_details(alert, route_name), details),
    }
    if alert.timestamp:
        payload["timestamp"] = alert.timestamp
    if alert.check_type:
        payload["component"] = alert.check_type
        payload["class"] = alert.check_type
    if alert.groups:
        payload["group"] = ", ".join(alert.groups)
    event["payload"] = payload
    event["links"] = links(alert, route, base)
    event["client"] = CLIENT
    event["client_url"] = check_url or base
    return event


def summary(alert: AsmAlert) -> str:
    """"<check name>: <message>", one line, cut to PagerDuty's 1,024 characters.

    A name that is nothing but control characters or spaces becomes `ASM check <id>`
    (or the GUID): an empty summary would make PagerDuty refuse the event, and the
    page would be lost for a cosmetic reason.
    """
    name = _one_line(alert.check_name) or check_label(alert)
    message = _one_line(alert.message)
    text = f"{name}: {message}" if message else name
    if len(text) > MAX_SUMMARY:
        text = text[: MAX_SUMMARY - 1] + "…"
    return text


def check_label(alert: AsmAlert) -> str:
    """`ASM check <id>` (or `<guid>`): a name for a check whose own name is unusable."""
    if alert.check_id is not None:
        return f"ASM check {alert.check_id}"
    return f"ASM check {alert.check_guid}" if alert.check_guid else "ASM check"


def _one_line(text: str) -> str:
    # Newlines, tabs and other control characters make an unreadable incident title.
    return " ".join(_CONTROL.sub(" ", text).split())


def _with(fields: dict, details: Mapping[str, Any] | None) -> dict:
    if details:  # most events have none: no second dict on the webhook path
        fields.update(details)
    return fields


def custom_details(alert: AsmAlert, route_name: str) -> dict:
    return {
        "check_id": alert.check_id,
        "check_guid": alert.check_guid,
        "check_name": alert.check_name,
        "check_type": alert.check_type,
        "message": alert.message,
        "old_severity": alert.old_severity,
        "new_severity": alert.severity,
        "timestamp_utc": alert.timestamp,
        "location": alert.location,
        "groups": list(alert.groups),
        "tags": {key: list(values) for key, values in alert.tags.items()},
        "result_guid": alert.result_guid,
        "route": route_name,
    }


def check_link(alert: AsmAlert, base: str) -> str | None:
    if alert.check_id is None:
        return None
    return CHECK_URL.format(base=base, check_id=alert.check_id)


def links(alert: AsmAlert, route: Route, base: str) -> list[dict]:
    found = []
    check_url = check_link(alert, base)
    if check_url:
        found.append({"href": check_url, "text": f"ASM check: {alert.check_name}"[:MAX_LINK_TEXT]})
        result_guid = canonical_guid(alert.result_guid)  # one form, however the alert was made
        if result_guid:
            found.append({
                "href": RESULT_URL.format(base=base, check_id=alert.check_id,
                                          result_guid=result_guid),
                "text": "ASM result",
            })
    found.extend({"href": link.href, "text": link.text} for link in route.links)
    return found


def check_event(event: dict) -> list[str]:
    """Every Events API v2 rule `event` breaks; [] when PagerDuty would accept it."""
    if not isinstance(event, dict):
        return ["event must be a JSON object"]
    problems = [f"unknown field {key!r}" for key in sorted(set(event) - _TOP_KEYS)]
    key = event.get("routing_key")
    if not is_routing_key(key):
        problems.append("routing_key must be 32 letters or digits")
    action = event.get("event_action")
    if action not in EVENT_ACTIONS:
        problems.append(f"event_action must be one of {', '.join(EVENT_ACTIONS)} (got {action!r})")
    problems += _check_dedup_key(event, action)
    if action == "trigger" or "payload" in event:
        problems += _check_payload(event.get("payload"), required=action == "trigger")
    problems += _check_links(event.get("links"))
    problems += _check_images(event.get("images"))
    for field in ("client", "client_url"):
        if field in event and not isinstance(event[field], str):
            problems.append(f"{field} must be a string")
    try:
        size = len(json.dumps(event, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        problems.append("event must be JSON serialisable")
    else:
        if size > MAX_EVENT_BYTES:
            problems.append(f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}")
    return problems


def _check_dedup_key(event: dict, action: object) -> list[str]:
    if "dedup_key" not in event:
        return [f"dedup_key is required for {action}"] if action in ("acknowledge", "resolve") \
            else []
    dedup = event["dedup_key"]
    if not isinstance(dedup, str) or not dedup:
        return ["dedup_key must be a non-empty string"]
    if len(dedup) > MAX_DEDUP_KEY:
        return [f"dedup_key is {len(dedup)} characters; the limit is {MAX_DEDUP_KEY}"]
    return []


def _check_payload(payload: object, *, required: bool) -> list[str]:
    if payload is None and not required:
        return []
    if not isinstance(payload, dict):
        return ["payload must be an object with summary, source and severity"]
    problems = [f"unknown field payload.{key}" for key in sorted(set(payload) - _PAYLOAD_KEYS)]
    for field in ("summary", "source"):
        value = payload.get(field)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"payload.{field} is required and must be a non-empty string")
    text = payload.get("summary")
    if isinstance(text, str) and len(text) > MAX_SUMMARY:
        problems.append(f"payload.summary is {len(text)} characters; the limit is {MAX_SUMMARY}")
    if payload.get("severity") not in PAGERDUTY_SEVERITIES:
        problems.append(
            f"payload.severity must be one of {', '.join(PAGERDUTY_SEVERITIES)} "
            f"(got {payload.get('severity')!r})"
        )
    if "timestamp" in payload and not _is_iso8601(payload["timestamp"]):
        problems.append("payload.timestamp must be an ISO 8601 date-time")
    for field in ("component", "group", "class"):
        if field in payload and not isinstance(payload[field], str):
            problems.append(f"payload.{field} must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        problems.append("payload.custom_details must be an object")
    return problems


def _check_links(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return ["links must be a list"]
    problems = []
    for i, link in enumerate(value):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str) \
                or not link["href"]:
            problems.append(f"links[{i}].href is required and must be a string")
        elif "text" in link and not isinstance(link["text"], str):
            problems.append(f"links[{i}].text must be a string")
    return problems


def _check_images(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return ["images must be a list"]
    problems = []
    for i, image in enumerate(value):
        src = image.get("src") if isinstance(image, dict) else None
        if not isinstance(src, str) or not src.startswith("https://"):
            problems.append(f"images[{i}].src is required and must be an https URL")
    return problems


def _is_iso8601(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value or " " in value
