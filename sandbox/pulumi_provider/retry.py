"""Terraform's `retry.Retry` loops, with the clock and the sleep injected.

The real provider wraps most REST calls in `retry.Retry(timeout, f)`: `f` says
"retry" or "stop", and the loop waits with a growing pause (Terraform's
StateChangeConf: at least 0.5 s, doubling, at most 10 s) until the timeout,
then gives up with the last error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

FIRST_PAUSE, LONGEST_PAUSE = 0.5, 10.0


class RetryableError(Exception):
    """Raised by an attempt that should be tried again; `cause` is what went wrong."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Timing:
    """Where the provider's waits go: real time, or a test's fake clock."""

    sleep: Callable[[float], None] = field(default=time.sleep)
    monotonic: Callable[[], float] = field(default=time.monotonic)


def retry_for(seconds: float, attempt: Callable[[], T], timing: Timing) -> T:
    """Run `attempt` until it returns or raises anything but `RetryableError`, for at most
    `seconds`; after that the last retryable error's cause is raised."""
    deadline = timing.monotonic() + seconds
    pause = FIRST_PAUSE
    while True:
        try:
            return attempt()
        except RetryableError as retryable:
            if timing.monotonic() + pause > deadline:
                raise retryable.cause from None
            timing.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
