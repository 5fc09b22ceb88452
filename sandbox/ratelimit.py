"""Per-key limits over a sliding 60-second window.

The Events API's: about N events per 60 seconds per routing key. The REST API's:
960 requests per minute per API key (PagerDuty's developer docs, REST API Rate
Limits), reported in `ratelimit-*` headers (`RateLimiter.headers`).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from sandbox.clock import Clock, system_clock

WINDOW = timedelta(seconds=60)


class RateLimiter:
    """Counts accepted events per key over the last 60 seconds; `None` limit = unlimited."""

    def __init__(self, events_per_minute: int | None = 120, clock: Clock = system_clock) -> None:
        if events_per_minute is not None and events_per_minute < 1:
            raise ValueError("events_per_minute must be at least 1 (or None for no limit)")
        self.events_per_minute = events_per_minute
        self._clock = clock
        self._seen: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Take one event for `key` if the window has room; a refused event is not counted."""
        if self.events_per_minute is None:
            return True
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - WINDOW:
                seen.popleft()
            if len(seen) >= self.events_per_minute:
                return False
            seen.append(now)
            return True

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` has room again (0 when it has room now)."""
        if self.events_per_minute is None:
            return 0
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if not seen or len(seen) < self.events_per_minute:
                return 0
            wait = (seen[0] + WINDOW - now).total_seconds()
        return max(1, int(wait + 0.999))

    def remaining(self, key: str) -> int | None:
        """How many more requests `key` may make in the window now (None: unlimited)."""
        if self.events_per_minute is None:
            return None
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key) or deque()
            live = sum(1 for t in seen if t > now - WINDOW)
        return max(0, self.events_per_minute - live)

    def headers(self, key: str) -> dict[str, str]:
        """PagerDuty's REST rate-limit headers for `key`: limit, remaining, reset (seconds
        until the window has room again, or until the oldest counted request leaves it)."""
        if self.events_per_minute is None:
            return {}
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            oldest = seen[0] if seen else None
        reset = 60
        if oldest is not None:
            reset = max(1, int((oldest + WINDOW - now).total_seconds() + 0.999))
        return {
            "ratelimit-limit": str(self.events_per_minute),
            "ratelimit-remaining": str(self.remaining(key)),
            "ratelimit-reset": str(reset),
        }

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
