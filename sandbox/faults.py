"""Fault injection: server errors, throttling and latency on demand.

Faults are queued rules: the first active rule answers the next request. A rule
lasts for `count` requests or for `seconds` of (injected) clock time. The bodies
default to PagerDuty's Events API ones; another fake (ASM's) passes its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.clock import Clock, system_clock

SERVER_ERROR_BODY = {"status": "error", "message": "Internal Server Error"}
THROTTLE_BODY = {
    "status": "throttle event",
    "message": "Requests for this service are arriving too quickly. Please retry later.",
}


@dataclass(frozen=True)
class FaultAnswer:
    """What to answer instead of processing the event."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Rule:
    answer: FaultAnswer
    remaining: int | None
    until: datetime | None


class Faults:
    """Controls for a fake API's failure modes; thread-safe."""

    def __init__(
        self,
        clock: Clock = system_clock,
        *,
        server_error_body: dict[str, Any] = SERVER_ERROR_BODY,
        throttle_body: dict[str, Any] = THROTTLE_BODY,
    ) -> None:
        self._clock = clock
        self._server_error_body = dict(server_error_body)
        self._throttle_body = dict(throttle_body)
        self._rules: list[_Rule] = []
        self._latency = 0.0
        self._lock = threading.Lock()

    def fail(
        self,
        status: int = 500,
        count: int | None = None,
        seconds: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next `count` requests (or for `seconds`) with `status`."""
        if not 400 <= status <= 599:
            raise ValueError(f"fail() needs an error status 400..599 (got {status})")
        self._add(FaultAnswer(status, body or dict(self._server_error_body)), count, seconds)

    def rate_limit(
        self,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer 429 to the next `count` requests (or for `seconds`).

        Without `retry_after` the 429 has no Retry-After, as PagerDuty's (which documents
        none); with it, the header says that many seconds.
        """
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._add(FaultAnswer(429, dict(self._throttle_body), headers), count, seconds)

    def latency(self, seconds: float) -> None:
        """Delay every answer by `seconds` (0 removes the delay)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._lock:
            self._latency = float(seconds)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._latency = 0.0

    @property
    def delay(self) -> float:
        with self._lock:
            return self._latency

    def take(self) -> FaultAnswer | None:
        """The fault answering this request, if any; consumes one use of a counted rule."""
        now = self._clock()
        with self._lock:
            self._rules = [r for r in self._rules if r.until is None or now < r.until]
            if not self._rules:
                return None
            rule = self._rules[0]
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.pop(0)
            return rule.answer

    def describe(self) -> dict[str, Any]:
        """Active faults as plain data, for `GET /sandbox/faults`."""
        with self._lock:
            return {
                "latency": self._latency,
                "rules": [
                    {
                        "status": r.answer.status,
                        "remaining": r.remaining,
                        "until": r.until.isoformat() if r.until else None,
                    }
                    for r in self._rules
                ],
            }

    def _add(self, answer: FaultAnswer, count: int | None, seconds: float | None) -> None:
        if count is not None and seconds is not None:
            raise ValueError("give count= or seconds=, not both")
        if count is None and seconds is None:
            count = 1
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be > 0")
        until = self._clock() + timedelta(seconds=seconds) if seconds is not None else None
        with self._lock:
            self._rules.append(_Rule(answer, count, until))
