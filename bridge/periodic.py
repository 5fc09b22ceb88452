"""A step run on a daemon thread at start and then every `interval` seconds.

The bridge's background jobs (reconciliation against ASM, the maintenance catch-up)
share it: one place that keeps a job alive past a failing step and stops it promptly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Periodic:
    """`start` runs `step` now and then every `interval` s (measured from each step's
    start) until `stop`; a step that raises is handed to `failed` and the next one still
    comes on time."""

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        interval: float,
        failed: Callable[[], None],
        *,
        join_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._step = step
        self._interval = interval
        self._failed = failed
        self._join_timeout = join_timeout
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._join_timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                self._step()
            except Exception:  # the job must outlive any surprise of its own
                self._failed()
            self._stop.wait(max(0.0, started + self._interval - self._clock()))
