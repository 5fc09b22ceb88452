"""Deliver the stored events to PagerDuty: one FIFO lane per routing key, lanes independent.

Threading: one dispatcher thread plus a small pool of sender threads. The
dispatcher looks at the head (oldest pending event) of every lane and hands a head
to the pool only when it is due (backoff, Retry-After) and the key's token bucket
allows it. Waiting is a timestamp the dispatcher sleeps towards, never a blocked
thread, so a throttled or failing key costs nothing; a pool thread is held only
for one HTTP request, bounded by the sender's timeout, so a slow key never blocks
another while fewer than `max_in_flight` keys are slow at once. A lane has at most
one event in flight, which keeps per-key order (a resolve never overtakes its
trigger) without any lock on the data.

One deliverer per store: `start()` takes the store's delivery lock (SQLite: a
`flock` next to the database). A second bridge on the same store (a replica on a
shared volume, a mistaken second start) accepts webhooks into the same store but
stands by for delivery until the first one stops or dies (the OS drops the lock even
on `kill -9`). Two deliverers would each send a lane's head, and a resolve could
overtake its trigger.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bridge.delivery.ratelimit import RateLimiter
from bridge.delivery.retry import Backoff
from bridge.delivery.sender import Dead, Delivered, Outcome, RetryLater, Sender
from bridge.metrics import BridgeMetrics
from bridge.store.base import Store
from bridge.store.records import PendingEvent
from contract.redact import last4

log = logging.getLogger("bridge.worker")

Validator = Callable[[dict[str, Any]], list[str]]
# After an unexpected error inside the worker itself: wait, don't spin.
INTERNAL_ERROR_DELAY = 5.0


def _default_validator() -> Validator:
    # The Events API rules intake already checked before storing: checked again here as
    # the last guard (an event stored by an older bridge, a re-driven dead letter).
    from bridge.intake.events import check_event

    return check_event


class Worker:
    """`start()` a background dispatcher; `stop(timeout)`; `step()` runs one round inline.

    `step()` is for tests and tools: it does not take the delivery lock.
    """

    def __init__(
        self,
        store: Store,
        sender: Sender,
        *,
        rate_limiter: RateLimiter | None = None,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        validate: Validator | None = None,
        rng: random.Random | None = None,
        max_in_flight: int = 8,
        idle_poll: float = 1.0,
    ) -> None:
        self.store = store
        self.sender = sender
        self.rate_limiter = rate_limiter or RateLimiter()
        self.metrics = metrics or BridgeMetrics()
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._validate = validate or _default_validator()
        self._rng = rng or random.Random()
        # Polling picks up events another process added (CLI redrive).
        self._idle_poll = idle_poll
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="bridge-send")
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        # stop() timed out with sends in flight: the last one to finish drops the lock.
        self._unlock_when_idle = False
        self._cond = threading.Condition()
        self._dirty = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivery_lock = store.delivery_lock()
        store.subscribe(self.wake)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._thread = threading.Thread(target=self._run, name="bridge-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop dispatching and wait up to `timeout` for sends in flight; True if all done."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline:
            with self._busy_lock:
                if not self._busy:
                    break
            time.sleep(0.01)
        with self._busy_lock:
            idle = not self._busy
            # A standby taking over while our sends are in flight could send the next
            # event of such a lane (a resolve overtaking its trigger): keep the lock
            # until the last of them finishes (or this process exits, and the OS drops it).
            if idle:
                self.delivery_lock.release()
            else:
                self._unlock_when_idle = True
                log.warning("sends still in flight after stop; keeping the delivery lock "
                            "until they finish", extra={"event": "delivery_stop_pending",
                                                        "in_flight": len(self._busy)})
        return idle and (self._thread is None or not self._thread.is_alive())

    def wake(self) -> None:
        """New work may be due (new events, a lane freed)."""
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def step(self) -> int:
        """Dispatch every due lane head once and wait for the sends; returns how many."""
        futures, _ = self._dispatch()
        for future in futures:
            if not future.cancelled():
                future.result()
        return len(futures)

    def _run(self) -> None:
        if not self._acquire_delivery_lock():
            return
        while not self._stopping.is_set():
            try:
                _, wake_at = self._dispatch()
            except Exception:
                log.exception("worker dispatch failed; retrying",
                              extra={"event": "dispatch_error"})
                wake_at = self._clock() + INTERNAL_ERROR_DELAY
            with self._cond:
                if not self._dirty and not self._stopping.is_set():
                    self._cond.wait(min(max(wake_at - self._clock(), 0.0), self._idle_poll))
                self._dirty = False

    def _acquire_delivery_lock(self) -> bool:
        """Wait (polling) until this process may deliver; False if stopped meanwhile."""
        standing_by = False
        while not self.delivery_lock.try_acquire():
            if not standing_by:
                log.warning("another process is delivering from this outbox; standing by",
                            extra={"event": "delivery_standby",
                                   "lock": str(self.delivery_lock)})
                standing_by = True
            if self._stopping.wait(self._idle_poll):
                return False
        if standing_by:
            log.info("delivery lock taken over", extra={"event": "delivery_takeover"})
        return True

    # -- dispatch ----------------------------------------------------------------

    def _dispatch(self) -> tuple[list[Future[None]], float]:
        now = self._clock()
        wake_at = now + self._idle_poll
        futures: list[Future[None]] = []
        for head in self.store.lane_heads():
            key = head.routing_key
            with self._busy_lock:
                if key in self._busy:
                    continue
            if head.next_attempt_at > now:
                wake_at = min(wake_at, head.next_attempt_at)
                continue
            wait = self.rate_limiter.try_acquire(key)
            if wait > 0:
                wake_at = min(wake_at, now + wait)
                continue
            event = self.store.get(head.id)
            if event is None:  # gone meanwhile (another process re-drove or purged)
                continue
            with self._busy_lock:
                self._busy.add(key)
            try:
                future = self._pool.submit(self._deliver, event)
            except RuntimeError:  # pool shut down: stopping
                self._release(key)
                break
            # A send cancelled by stop() never runs its `finally`: free its lane here.
            future.add_done_callback(lambda f, k=key: f.cancelled() and self._release(k))
            futures.append(future)
        return futures, wake_at

    def _deliver(self, event: PendingEvent) -> None:
        try:
            problems = self._validate(event.body)
            if problems:
                # PagerDuty would refuse it: keep it for a person, never send it.
                self._dead(event, Dead("invalid_event", "; ".join(problems)), attempted=False)
                return
            self._record(event, self.sender.send(event.body))
        except Exception:
            log.exception("delivery failed inside the bridge; will retry",
                          extra=_fields(event, "delivery_error"))
            try:
                self.store.reschedule(event.id, next_attempt_at=self._clock()
                                       + INTERNAL_ERROR_DELAY, error="internal error")
            except Exception:
                log.exception("could not reschedule", extra=_fields(event, "delivery_error"))
        finally:
            self._release(event.routing_key)
            self.wake()

    def _release(self, key: str) -> None:
        with self._busy_lock:
            self._busy.discard(key)
            if self._unlock_when_idle and not self._busy:
                self._unlock_when_idle = False
                self.delivery_lock.release()

    def _record(self, event: PendingEvent, outcome: Outcome) -> None:
        if isinstance(outcome, Delivered):
            self.store.mark_delivered(event.id)
            self.metrics.delivered.labels(event.action).inc()
            latency = max(self._clock() - event.created_at, 0.0)
            self.metrics.delivery_latency.observe(latency)
            log.info("event delivered", extra=_fields(
                event, "delivered", status=outcome.status, latency=round(latency, 4)))
        elif isinstance(outcome, RetryLater):
            attempt = event.attempts + 1
            delay = (outcome.after if outcome.after is not None
                     else self._backoff.delay(attempt, self._rng))
            error = f"{outcome.status or '-'} {outcome.reason}: {outcome.message}".rstrip(": ")
            self.store.reschedule(event.id, next_attempt_at=self._clock() + delay, error=error)
            self.metrics.retried.labels(outcome.reason).inc()
            log.warning("event will be retried", extra=_fields(
                event, "delivery_retry", attempt=attempt, reason=outcome.reason,
                status=outcome.status, retry_in=round(delay, 3), detail=outcome.message))
        else:
            self._dead(event, outcome, attempted=True)

    def _dead(self, event: PendingEvent, outcome: Dead, *, attempted: bool) -> None:
        self.store.dead_letter(event.id, status=outcome.status, reason=outcome.reason,
                                message=outcome.message, attempted=attempted)
        self.metrics.dead_lettered.labels(outcome.reason).inc()
        facts = _fields(event, "dead_lettered", reason=outcome.reason, status=outcome.status,
                        detail=outcome.message)
        if outcome.loud:
            # 401/403/404: the routing key or URL is wrong; every event on it will fail.
            log.error("PagerDuty refused the routing key: check the integration key in the "
                      "routes file and the events URL; event kept in dead letters",
                      extra=facts)
        else:
            log.warning("event moved to dead letters", extra=facts)


def _fields(event: PendingEvent, name: str, **facts: Any) -> dict[str, Any]:
    """Structured log fields (bridge.logs copies `extra` into the JSON line)."""
    return {
        "event": name,
        "event_id": event.id,
        "route": event.route,
        "routing_key": last4(event.routing_key),  # keys only by their last four
        "action": event.action,
        "dedup_key": event.dedup_key,
        **facts,
    }
