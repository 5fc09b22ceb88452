"""PagerDuty's Events API limit: about N events per 60 seconds per routing key, sliding window."""

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

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
