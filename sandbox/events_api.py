"""PagerDuty's Events API v2, answered as PagerDuty answers it.

`POST /v2/enqueue` (alert events) and `POST /v2/change/enqueue` (change events, which
open no incident and notify nobody: they are kept on their service, `SandboxState.
change_events`). Order of checks for both: injected faults and latency first (they
stand for PagerDuty being unwell), then the size and field rules (400), then the
per-key rate limit (429, one budget per routing key for both kinds, without
Retry-After, as PagerDuty documents it), then the event is taken (202). Unknown
routing keys are accepted and dropped, as PagerDuty does. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.event_rules import MAX_EVENT_BYTES, validate_change_event, validate_event
from sandbox.faults import THROTTLE_BODY, Faults
from sandbox.ids import new_dedup_key
from sandbox.ratelimit import RateLimiter
from sandbox.state import SandboxState

INVALID_MESSAGE = "Event object is invalid"
#: The 202 body of a change event. PagerDuty documents `{"status", "message"}` and no
#: dedup key; this message text is the sandbox's assumption (no source gives it).
CHANGE_ACCEPTED = {"status": "success", "message": "Change event processed"}


Validate = Callable[[Any, int], list[str]]
Record = Callable[[int, Any], None]
Take = Callable[[dict[str, Any]], dict[str, Any]]


def events_routes(state: SandboxState, faults: Faults, limiter: RateLimiter) -> list[Route]:
    """The Events API's routes, bound to their collaborators."""

    def take_alert(event: dict[str, Any]) -> dict[str, Any]:
        dedup_key = event.get("dedup_key") or new_dedup_key()
        state.apply_event(event, dedup_key)
        return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    def take_change(event: dict[str, Any]) -> dict[str, Any]:
        state.apply_change_event(event)
        return dict(CHANGE_ACCEPTED)

    # Looked up on each request: a benchmark may wrap the state's recorders after start.
    def record_alert(status: int, body: Any) -> None:
        state.record_event(status, body)

    def record_change(status: int, body: Any) -> None:
        state.record_change_request(status, body)

    alerts = _endpoint(faults, limiter, validate_event, record_alert, take_alert)
    changes = _endpoint(faults, limiter, validate_change_event, record_change, take_change)
    return [
        Route("/v2/enqueue", alerts, methods=["POST"]),
        Route("/v2/change/enqueue", changes, methods=["POST"]),
    ]


def _endpoint(
    faults: Faults, limiter: RateLimiter, validate: Validate, record: Record, take: Take
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """One enqueue endpoint: faults, then the field rules, then the rate limit, then 202."""

    async def enqueue(request: Request) -> JSONResponse:
        raw = await _read_capped(request)
        event = _decode(raw)
        if faults.delay:
            await asyncio.sleep(faults.delay)
        fault = faults.take()
        if fault is not None:
            return _answer(record, event, fault.status, fault.body, fault.headers)
        if event is _UNDECODABLE and len(raw) <= MAX_EVENT_BYTES:
            errors = ["Event object is not valid JSON"]
        else:
            # An over-size body was cut short, so it is judged by its size alone.
            errors = validate(event, len(raw))
        if errors:
            body = {"status": "invalid event", "message": INVALID_MESSAGE, "errors": errors}
            return _answer(record, event, 400, body)
        if not limiter.allow(event["routing_key"]):
            # PagerDuty documents no Retry-After on its 429: a client must pace and back
            # off without one (`faults.rate_limit(retry_after=...)` adds one on demand).
            return _answer(record, event, 429, dict(THROTTLE_BODY))
        return _answer(record, event, 202, take(event))

    return enqueue


_UNDECODABLE: Any = object()


async def _read_capped(request: Request) -> bytes:
    """The body, but never more than one byte past the limit (enough to refuse it)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_EVENT_BYTES:
            break
    return b"".join(chunks)[: MAX_EVENT_BYTES + 1]


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _UNDECODABLE


def _answer(
    record: Record,
    event: Any,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    recorded = {"undecodable": True} if event is _UNDECODABLE else event
    record(status, recorded)
    return JSONResponse(body, status_code=status, headers=headers)
