"""`POST /v2/enqueue`: PagerDuty's Events API v2, answered as PagerDuty answers it.

Order of checks: injected faults and latency first (they stand for PagerDuty being
unwell), then the size and field rules (400), then the per-key rate limit (429, without
Retry-After, as PagerDuty documents it),
then the event is taken (202) and applied to the incidents. Unknown routing keys
are accepted and dropped, as PagerDuty does. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.event_rules import MAX_EVENT_BYTES, validate_event
from sandbox.faults import THROTTLE_BODY, Faults
from sandbox.ids import new_dedup_key
from sandbox.ratelimit import RateLimiter
from sandbox.state import SandboxState

INVALID_MESSAGE = "Event object is invalid"


def events_routes(state: SandboxState, faults: Faults, limiter: RateLimiter) -> list[Route]:
    """The Events API's route, bound to its collaborators."""

    async def enqueue(request: Request) -> JSONResponse:
        raw = await _read_capped(request)
        event = _decode(raw)
        if faults.delay:
            await asyncio.sleep(faults.delay)
        fault = faults.take()
        if fault is not None:
            return _answer(state, event, fault.status, fault.body, fault.headers)
        if event is _UNDECODABLE and len(raw) <= MAX_EVENT_BYTES:
            errors = ["Event object is not valid JSON"]
        else:
            # An over-size body was cut short, so it is judged by its size alone.
            errors = validate_event(event, len(raw))
        if errors:
            body = {"status": "invalid event", "message": INVALID_MESSAGE, "errors": errors}
            return _answer(state, event, 400, body)
        if not limiter.allow(event["routing_key"]):
            # PagerDuty documents no Retry-After on its 429: a client must pace and back
            # off without one (`faults.rate_limit(retry_after=...)` adds one on demand).
            return _answer(state, event, 429, dict(THROTTLE_BODY))
        dedup_key = event.get("dedup_key") or new_dedup_key()
        state.apply_event(event, dedup_key)
        body = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return _answer(state, event, 202, body)

    return [Route("/v2/enqueue", enqueue, methods=["POST"])]


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
    state: SandboxState,
    event: Any,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    recorded = {"undecodable": True} if event is _UNDECODABLE else event
    state.record_event(status, recorded)
    return JSONResponse(body, status_code=status, headers=headers)
