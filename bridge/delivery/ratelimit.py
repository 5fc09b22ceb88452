"""Token bucket per routing key, so a storm is queued here instead of refused by PagerDuty.

PagerDuty takes about 120 events per minute per routing key. A bucket of `burst`
tokens refilled at `per_minute` lets through at most `burst + per_minute` events in
any 60 seconds; the defaults (10 + 110) stay at 120. Callers never sleep here: they
get the wait back and schedule it, so a throttled key holds no thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PER_MINUTE = 110.0
DEFAULT_BURST = 10


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`try_acquire(key)` takes a token now (returns 0.0) or says how long until one."""

    def __init__(
        self,
        *,
        per_minute: float = DEFAULT_PER_MINUTE,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refill(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        elapsed = max(now - bucket.updated, 0.0)  # a clock stepping back adds nothing
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
        bucket.updated = now
        return bucket

    def try_acquire(self, key: str) -> float:
        """0.0 when a token was taken for `key`, else seconds until one is available."""
        with self._lock:
            bucket = self._refill(key, self._clock())
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def wait_time(self, key: str) -> float:
        """Seconds until `key` has a token, without taking it."""
        with self._lock:
            bucket = self._refill(key, self._clock())
            return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self._rate
