"""ASM's latest result in a trigger's custom_details, fetched within a short deadline.

`Enricher.details(check_id)` (or `details_async` on the event loop) asks ASM for the
check (its thresholds) and for its newest result (value, unit, result id) at once,
each through `AsmDeadlineClient`, and returns what came back within `deadline`:

    {"asm_result": {"value": 4637, "unit": "ms", "severity": "E",
                    "timestamp_utc": "2026-11-26T10:00:00Z", "threshold_w": 1500,
                    "threshold_e": 3000, "result_id": "0bd93e97-...",
                    "link": "https://wpm.apicasystem.com/Check/Details/101?resultGuid=..."}}

It never raises and never waits longer than its deadline: a trigger is stored without
these fields rather than late, refused or lost. After a failure that says ASM is slow
or down (`AsmUnavailable`, a refused credential) it asks nothing for `pause` seconds,
so an outage costs one wait per pause instead of one per webhook, and says so in one
log line per pause.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from bridge.asm_config import ENRICH_DEADLINE, MAX_ENRICH_DEADLINE
from bridge.asm_model import AsmCheck, AsmResult
from bridge.errors import AsmApiError, AsmNotFound
from bridge.intake.events import CHECK_URL, RESULT_URL
from bridge.metrics import BridgeMetrics

log = logging.getLogger("bridge.enrichment")

#: No event waits longer than this for ASM (the issue's bound).
DEFAULT_DEADLINE = ENRICH_DEADLINE
MAX_DEADLINE = MAX_ENRICH_DEADLINE
#: After ASM failed, how long enrichment rests before asking again.
DEFAULT_PAUSE = 30.0
DETAILS_KEY = "asm_result"


class QuickAsm(Protocol):
    """What enrichment asks of ASM (`bridge.asm_api.AsmDeadlineClient`)."""

    def get_check(self, check_id: int) -> AsmCheck: ...

    def most_recent_result(self, check_id: int) -> AsmResult | None: ...


class Enricher:
    def __init__(
        self,
        asm: QuickAsm,
        *,
        asm_base_url: str,
        deadline: float = DEFAULT_DEADLINE,
        pause: float = DEFAULT_PAUSE,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        if not 0 < deadline <= MAX_DEADLINE:  # also refuses NaN
            raise ValueError(f"deadline must be in (0, {MAX_DEADLINE:g}] seconds")
        self._asm = asm
        self._base = asm_base_url.rstrip("/")
        self.deadline = deadline
        self._pause = pause
        self._metrics = metrics
        self._clock = clock
        self._log = logger
        self._lock = threading.Lock()
        self._resting_until = float("-inf")
        # Two calls per trigger; each waits at most `deadline` (the client's own bound).
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8,
                                                           thread_name_prefix="asm-enrich")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def details(self, check_id: int) -> dict[str, Any] | None:
        """ASM's latest result for the check as custom_details fields, or None (blocks at
        most `deadline`)."""
        if self._resting():
            return None
        futures = self._ask(check_id)
        concurrent.futures.wait(futures, timeout=self.deadline)
        return self._collect(check_id, futures)

    async def details_async(self, check_id: int) -> dict[str, Any] | None:
        """`details` for the event loop: it waits, no thread of the loop's is held."""
        if self._resting():
            return None
        futures = self._ask(check_id)
        waiting = [asyncio.wrap_future(f) for f in futures]
        await asyncio.wait(waiting, timeout=self.deadline)
        for wrapped in waiting:
            # `_collect` reads the outcome from the thread's future; this side is done with.
            if wrapped.done():
                wrapped.exception()
            else:
                wrapped.cancel()
        return self._collect(check_id, futures)

    def _ask(self, check_id: int) -> list[concurrent.futures.Future[Any]]:
        return [self._pool.submit(self._asm.get_check, check_id),
                self._pool.submit(self._asm.most_recent_result, check_id)]

    def _resting(self) -> bool:
        with self._lock:
            resting = self._clock() < self._resting_until
        if resting:
            self._count("paused")
        return resting

    def _collect(self, check_id: int, futures: Iterable[concurrent.futures.Future[Any]]
                 ) -> dict[str, Any] | None:
        check: AsmCheck | None = None
        result: AsmResult | None = None
        failure: str | None = None
        for future in futures:
            if not future.done() or future.cancelled():
                failure = f"no answer within {self.deadline:g} s"
                continue
            error = future.exception()
            if isinstance(error, AsmNotFound):
                continue  # not a sign of trouble: nothing to add for this check
            if error is not None:
                failure = str(error) if isinstance(error, AsmApiError) else \
                    f"failed ({type(error).__name__})"
                continue
            value = future.result()
            if isinstance(value, AsmCheck):
                check = value
            else:
                result = value
        if failure is not None:
            self._rest(failure)
        fields = self._fields(check_id, check, result)
        self._count("enriched" if fields else "unavailable")
        return {DETAILS_KEY: fields} if fields else None

    def _fields(self, check_id: int, check: AsmCheck | None, result: AsmResult | None
                ) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if check is not None:
            fields.update(value=check.value, unit=check.unit,
                          timestamp_utc=_iso(check.timestamp), severity=check.severity,
                          threshold_w=check.threshold_w, threshold_e=check.threshold_e,
                          link=CHECK_URL.format(base=self._base, check_id=check_id))
        if result is not None:
            # The result's own fields are documented (the check's are only seen in clients).
            fields.update(value=result.value, unit=result.unit,
                          timestamp_utc=_iso(result.timestamp), severity=result.severity,
                          result_id=result.result_id)
            if result.result_id:
                fields["link"] = RESULT_URL.format(base=self._base, check_id=check_id,
                                                   result_guid=result.result_id)
        return fields

    def _rest(self, why: str) -> None:
        with self._lock:
            now = self._clock()
            if now < self._resting_until:
                return  # another call already said so
            self._resting_until = now + self._pause
        self._log.warning(
            "ASM did not answer for enrichment; triggers go without ASM's latest result "
            "for %g s", self._pause,
            extra={"event": "enrichment_paused", "reason": why, "pause": self._pause})

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.enrichment.labels(outcome).inc()


def _iso(when: Any) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None
