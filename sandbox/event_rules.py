"""The Events API v2 field rules: which events PagerDuty refuses, and with which words.

Messages follow PagerDuty's own 400 answers where they are known (for example
"Length of 'routing_key' is incorrect (should be 32 characters)"); the others are
written in the same style. Pure functions: no state, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAX_EVENT_BYTES = 512 * 1024
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
ROUTING_KEY_LENGTH = 32
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")

_ACTIONS_TEXT = "'trigger', 'acknowledge' or 'resolve'"
_SEVERITIES_TEXT = "'critical', 'warning', 'error' or 'info'"


def validate_event(event: Any, size: int) -> list[str]:
    """Every reason PagerDuty would refuse `event` (its decoded JSON, `size` bytes long)."""
    if size > MAX_EVENT_BYTES:
        return [f"Event object is too large (maximum is {MAX_EVENT_BYTES // 1024} KB)"]
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = _routing_key_errors(event.get("routing_key"))
    action = event.get("event_action")
    if _blank(action):
        errors.append("'event_action' is missing or blank")
    elif action not in EVENT_ACTIONS:
        errors.append(f"'event_action' is invalid (must be one of the following: {_ACTIONS_TEXT})")
    errors += _dedup_key_errors(event.get("dedup_key"), action)
    if action == "trigger":
        errors += _payload_errors(event.get("payload"))
        errors += _context_errors(event)
    return errors


#: Fields of an alert event that a change event does not have (they would open incidents).
ALERT_ONLY_FIELDS = ("event_action", "dedup_key")


def validate_change_event(event: Any, size: int) -> list[str]:
    """Every reason to refuse a change event (`POST /v2/change/enqueue`).

    PagerDuty's contract: `routing_key`, `payload.summary` (at most 1024 characters),
    optional `payload.source`, `payload.timestamp` (ISO 8601), `payload.custom_details`
    (an object) and `links`. The sandbox also refuses `event_action` and `dedup_key`
    (an alert event sent to the wrong endpoint); PagerDuty's answer to those is not
    documented.
    """
    if size > MAX_EVENT_BYTES:
        return [f"Event object is too large (maximum is {MAX_EVENT_BYTES // 1024} KB)"]
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = _routing_key_errors(event.get("routing_key"))
    errors += [
        f"'{name}' is not a field of change events (they never open incidents)"
        for name in ALERT_ONLY_FIELDS
        if name in event
    ]
    payload = event.get("payload")
    if payload is None:
        errors.append("'payload' is missing or blank")
    elif not isinstance(payload, dict):
        errors.append("'payload' must be an object")
    else:
        errors += _summary_errors(payload.get("summary"))
        if payload.get("source") is not None and not isinstance(payload["source"], str):
            errors.append("'payload.source' must be a string")
        errors += _timestamp_errors(payload.get("timestamp"))
        details = payload.get("custom_details")
        if details is not None and not isinstance(details, dict):
            errors.append("'payload.custom_details' must be an object")
    errors += _list_errors(event.get("links"), "links", _link_errors)
    errors += _list_errors(event.get("images"), "images", _image_errors)
    return errors


def _summary_errors(summary: Any) -> list[str]:
    if _blank(summary):
        return ["'payload.summary' is missing or blank"]
    if not isinstance(summary, str):
        return ["'payload.summary' must be a string"]
    if len(summary) > MAX_SUMMARY:
        return [f"'payload.summary' is too long (maximum is {MAX_SUMMARY} characters)"]
    return []


def _timestamp_errors(timestamp: Any) -> list[str]:
    if timestamp is not None and not _iso8601(timestamp):
        return ["'payload.timestamp' is invalid (must be an ISO 8601 timestamp)"]
    return []


def _routing_key_errors(key: Any) -> list[str]:
    if _blank(key):
        return ["'routing_key' is missing or blank"]
    if not isinstance(key, str):
        return ["'routing_key' must be a string"]
    if len(key) != ROUTING_KEY_LENGTH:
        return ["Length of 'routing_key' is incorrect (should be 32 characters)"]
    return []


def _dedup_key_errors(key: Any, action: Any) -> list[str]:
    if key is None or key == "":
        if action in ("acknowledge", "resolve"):
            return [f"'dedup_key' is missing or blank (required for '{action}' events)"]
        return []
    if not isinstance(key, str):
        return ["'dedup_key' must be a string"]
    if len(key) > MAX_DEDUP_KEY:
        return [f"'dedup_key' is too long (maximum is {MAX_DEDUP_KEY} characters)"]
    return []


def _payload_errors(payload: Any) -> list[str]:
    if payload is None:
        return ["'payload' is missing or blank"]
    if not isinstance(payload, dict):
        return ["'payload' must be an object"]
    errors = _summary_errors(payload.get("summary"))
    source = payload.get("source")
    if _blank(source):
        errors.append("'payload.source' is missing or blank")
    elif not isinstance(source, str):
        errors.append("'payload.source' must be a string")
    severity = payload.get("severity")
    if _blank(severity):
        errors.append("'payload.severity' is missing or blank")
    elif severity not in SEVERITIES:
        errors.append(
            f"'payload.severity' is invalid (must be one of the following: {_SEVERITIES_TEXT})"
        )
    errors += _timestamp_errors(payload.get("timestamp"))
    for name in ("component", "group", "class"):
        if payload.get(name) is not None and not isinstance(payload[name], str):
            errors.append(f"'payload.{name}' must be a string")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _context_errors(event: dict[str, Any]) -> list[str]:
    errors = []
    for name in ("client", "client_url"):
        if event.get(name) is not None and not isinstance(event[name], str):
            errors.append(f"'{name}' must be a string")
    errors += _list_errors(event.get("links"), "links", _link_errors)
    errors += _list_errors(event.get("images"), "images", _image_errors)
    return errors


def _list_errors(items: Any, name: str, check: Any) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"'{name}' must be an array of objects"]
    errors = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"'{name}[{index}]' must be an object")
        else:
            errors += check(item, f"{name}[{index}]")
    return errors


def _link_errors(link: dict[str, Any], where: str) -> list[str]:
    if _blank(link.get("href")) or not isinstance(link["href"], str):
        return [f"'{where}.href' is missing or blank"]
    if link.get("text") is not None and not isinstance(link["text"], str):
        return [f"'{where}.text' must be a string"]
    return []


def _image_errors(image: dict[str, Any], where: str) -> list[str]:
    src = image.get("src")
    if _blank(src) or not isinstance(src, str):
        return [f"'{where}.src' is missing or blank"]
    # PagerDuty only shows images served over HTTPS.
    if not src.lower().startswith("https://"):
        return [f"'{where}.src' is invalid (images must be served via HTTPS)"]
    return []


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _iso8601(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    text = value.replace("Z", "+00:00")
    # PagerDuty's own example uses "+0000" (no colon); Python wants "+00:00".
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
