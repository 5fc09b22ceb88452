"""Deliver the stored events to PagerDuty: one FIFO lane per route, lanes independent.

Threading: one dispatcher thread plus a small pool of sender threads. Each round the
dispatcher reads the head (oldest pending event) of every lane, chooses the routing key
of each due head from the routes in force (`bridge.delivery.targets`), and claims them
all in one store transaction (`Store.claim`): a lease per head, and a send counted in
its key's look-back window (`bridge.delivery.pacing`) when the window has room. Only
claimed heads go to the pool. Waiting is a timestamp the dispatcher sleeps towards
(backoff, a key's window, a lease still held), never a blocked thread; a pool thread is
held only for one HTTP request, bounded by the sender's timeout, so a slow key never
blocks another while fewer than `max_in_flight` lanes are slow at once. A lane has at
most one event in flight, which keeps per-check order (a resolve never overtakes its
trigger) whatever key each goes to.

A lease outlives its process: after a crash or a restart, a head leased by the previous
process is not sent again until its lease (the sender's longest request + a margin) has
expired, so a request PagerDuty still holds cannot land after a re-sent resolve. A
clean stop releases the leases of the sends it is not waiting for.

One deliverer per store file: `start()` takes the store's delivery lock (SQLite: a
`flock` next to the database). A second bridge on the same store (a mistaken second
start, a replica on a shared volume) accepts webhooks into the same store but stands
by for delivery until the first one stops or dies (the OS drops the lock even on
`kill -9`).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bridge.delivery.pacing import Pacing
from bridge.delivery.retry import Backoff
from bridge.delivery.sender import CONNECTIONS, Dead, Delivered, Outcome, RetryLater, Sender
from bridge.delivery.targets import SendTo, Unsendable, choose_key, orphaned_message
from bridge.metrics import BridgeMetrics
from bridge.store.base import Store
from bridge.store.records import Claim, LaneHead, PendingEvent
from contract.redact import last4
from contract.routes_file import RoutesFile

log = logging.getLogger("bridge.worker")

Validator = Callable[[dict[str, Any]], list[str]]
# After an unexpected error inside the worker itself: wait, don't spin.
INTERNAL_ERROR_DELAY = 5.0
# A lease lasts the sender's longest request and this much more (clock steps, the
# commit that ends the send).
LEASE_MARGIN = 2.0
# Dead letters and route problems that need a person: logged at error level and shown on
# the route's health (`Store.route_problems`, /readyz, `apica-pd outbox`).
_KEY_REFUSALS = frozenset({"routing_key_refused", "unauthorized", "forbidden", "not_found"})
ROUTE_PROBLEMS = frozenset({"integration_gone", "route_removed", *_KEY_REFUSALS})


def _default_validator() -> Validator:
    # The Events API rules intake already checked before storing: checked again here as
    # the last guard (an event stored by an older bridge, a re-driven dead letter).
    from bridge.intake.events import check_event

    return check_event


def instance_id() -> str:
    """Who holds a lease: host, process and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """`start()` a background dispatcher; `stop(timeout)`; `step()` runs one round inline.

    `routes()` gives the routes in force (the routes table's `current`). `step()` is for
    tests and tools: it does not take the delivery lock.
    """

    def __init__(
        self,
        store: Store,
        sender: Sender,
        routes: Callable[[], RoutesFile],
        *,
        pacing: Pacing | None = None,
        metrics: BridgeMetrics | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        validate: Validator | None = None,
        rng: random.Random | None = None,
        max_in_flight: int = CONNECTIONS,
        idle_poll: float = 1.0,
        owner: str | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self._routes = routes
        self.pacing = pacing or Pacing()
        self.metrics = metrics or BridgeMetrics()
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._validate = validate or _default_validator()
        self._rng = rng or random.Random()
        self.owner = owner or instance_id()
        self.lease_seconds = (lease_seconds if lease_seconds is not None
                              else sender.longest_request + LEASE_MARGIN)
        # Polling picks up events another process added (CLI redrive) and leases expiring.
        self._idle_poll = idle_poll
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="bridge-send")
        self._busy: set[str] = set()  # routes with a send in flight
        # Keys whose window had no room at the last claim, and until when: not claimed
        # again before (a claim is a write transaction; the store still decides).
        self._paced_until: dict[str, float] = {}
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
            # (and the leases) until the last of them finishes, or this process exits.
            if idle:
                self._release_leases()
                self.delivery_lock.release()
            else:
                self._unlock_when_idle = True
                log.warning("sends still in flight after stop; keeping the delivery lock "
                            "until they finish", extra={"event": "delivery_stop_pending",
                                                        "in_flight": len(self._busy)})
        return idle and (self._thread is None or not self._thread.is_alive())

    def _release_leases(self) -> None:
        try:
            self.store.release_leases(self.owner)
        except Exception:  # a closed or failing store: the leases simply expire
            log.warning("could not release leases; they expire by themselves",
                        extra={"event": "lease_release_failed"})

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
        routes = self._routes()
        claims: list[Claim] = []
        targets: dict[int, SendTo] = {}
        for head in self.store.lane_heads():
            with self._busy_lock:
                if head.route in self._busy:
                    continue
            if head.next_attempt_at > now:
                wake_at = min(wake_at, head.next_attempt_at)
                continue
            if (head.lease_until is not None and head.lease_owner != self.owner
                    and head.lease_until > now):
                # Maybe still in flight from a previous process: wait its lease out.
                wake_at = min(wake_at, head.lease_until)
                continue
            target = choose_key(routes, head)
            if isinstance(target, Unsendable):
                self._unsendable(head, target)
                wake_at = now  # the lane's next event may be due at once
                continue
            paced = self._paced_until.get(target.routing_key, now)
            if paced > now:
                wake_at = min(wake_at, paced)
                continue
            claims.append(Claim(head.id, target.routing_key))
            targets[head.id] = target
        if not claims:
            return [], wake_at
        claimed = self.store.claim(claims, owner=self.owner,
                                   lease_seconds=self.lease_seconds, pace=self.pacing)
        self._paced_until = {key: until for key, until in self._paced_until.items()
                             if until > now}
        for event_id, until in claimed.waits.items():
            self._paced_until[targets[event_id].routing_key] = until
            wake_at = min(wake_at, until)
        for until in claimed.held.values():  # the lane, not the key, is busy elsewhere
            wake_at = min(wake_at, until)
        futures: list[Future[None]] = []
        for event in claimed.events:
            route = event.route
            with self._busy_lock:
                self._busy.add(route)
            try:
                future = self._pool.submit(self._deliver, event, targets[event.id])
            except RuntimeError:  # pool shut down: stopping (stop() releases the lease)
                self._release(route)
                break
            # A send cancelled by stop() never runs its `finally`: free its lane here.
            future.add_done_callback(lambda f, r=route: f.cancelled() and self._release(r))
            futures.append(future)
        return futures, wake_at

    def _unsendable(self, head: LaneHead, target: Unsendable) -> None:
        event = self.store.get(head.id)
        if event is None:
            return
        self._dead(event, target.routing_key,
                   Dead(target.reason, target.message, loud=True), attempted=False)

    def _deliver(self, event: PendingEvent, target: SendTo) -> None:
        key = target.routing_key
        try:
            body = {"routing_key": key, **event.body}
            problems = self._validate(body)
            if problems:
                # PagerDuty would refuse it: keep it for a person, never send it.
                self._dead(event, key, Dead("invalid_event", "; ".join(problems)),
                           attempted=False)
                return
            self._record(event, target, self.sender.send(body))
        except Exception:
            log.exception("delivery failed inside the bridge; will retry",
                          extra=_fields(event, key, "delivery_error"))
            try:
                self.store.reschedule(event.id, next_attempt_at=self._clock()
                                       + INTERNAL_ERROR_DELAY, error="internal error")
            except Exception:
                log.exception("could not reschedule",
                              extra=_fields(event, key, "delivery_error"))
        finally:
            self._release(event.route)
            self.wake()

    def _release(self, route: str) -> None:
        with self._busy_lock:
            self._busy.discard(route)
            if self._unlock_when_idle and not self._busy:
                self._unlock_when_idle = False
                self._release_leases()
                self.delivery_lock.release()

    def _record(self, event: PendingEvent, target: SendTo, outcome: Outcome) -> None:
        key = target.routing_key
        if isinstance(outcome, Delivered):
            self.store.mark_delivered(event.id, routing_key=key)
            self.metrics.delivered.labels(event.action).inc()
            latency = max(self._clock() - event.created_at, 0.0)
            self.metrics.delivery_latency.observe(latency)
            log.info("event delivered", extra=_fields(
                event, key, "delivered", status=outcome.status, latency=round(latency, 4)))
            if target.orphaned is not None:
                message = orphaned_message(event.route, event.dedup_key, target.orphaned, key)
                self._route_problem(event, target.orphaned, "integration_gone", message)
                log.error("incident left open on a key the routes file no longer lists: %s",
                          message, extra=_fields(event, target.orphaned, "incident_orphaned",
                                                 reason="integration_gone", detail=message))
        elif isinstance(outcome, RetryLater):
            self._retry(event, key, outcome)
        else:
            self._dead(event, key, outcome, attempted=True)

    def _retry(self, event: PendingEvent, key: str, outcome: RetryLater) -> None:
        attempt = event.attempts + 1
        now = self._clock()
        throttle = None
        if outcome.reason == "rate_limited":
            # Not depending on Retry-After: the key's own window says when (pacing).
            throttle = self.pacing.after_429(self.store.key_window(key, self.pacing.window),
                                             now, outcome.after)
            delay = throttle.not_before - now
        else:
            delay = (outcome.after if outcome.after is not None
                     else self._backoff.delay(attempt, self._rng))
        error = f"{outcome.status or '-'} {outcome.reason}: {outcome.message}".rstrip(": ")
        self.store.reschedule(event.id, next_attempt_at=now + delay, error=error,
                              throttle=None if throttle is None else (key, throttle))
        self.metrics.retried.labels(outcome.reason).inc()
        facts = _fields(event, key, "delivery_retry", attempt=attempt, reason=outcome.reason,
                        status=outcome.status, retry_in=round(delay, 3),
                        detail=outcome.message)
        if throttle is not None:
            facts["key_limit"] = throttle.limit
        log.warning("event will be retried", extra=facts)

    def _dead(self, event: PendingEvent, key: str | None, outcome: Dead, *,
              attempted: bool) -> None:
        self.store.dead_letter(event.id, routing_key=key, status=outcome.status,
                               reason=outcome.reason, message=outcome.message,
                               attempted=attempted)
        self.metrics.dead_lettered.labels(outcome.reason).inc()
        facts = _fields(event, key, "dead_lettered", reason=outcome.reason,
                        status=outcome.status, detail=outcome.message)
        if outcome.reason in ROUTE_PROBLEMS:
            self._route_problem(event, key, outcome.reason, outcome.message)
        if outcome.reason in _KEY_REFUSALS:
            # The routing key or URL is wrong: every event on it will fail the same way.
            log.error("PagerDuty refused the routing key: check the integration key in the "
                      "routes file and the events URL; event kept in dead letters",
                      extra=facts)
        elif outcome.loud:
            log.error("%s; event kept in dead letters", outcome.message, extra=facts)
        else:
            log.warning("event moved to dead letters", extra=facts)

    def _route_problem(self, event: PendingEvent, key: str | None, reason: str,
                       message: str) -> None:
        """Count it on the route's health; a failure to count must not lose the event."""
        try:
            self.store.record_route_problem(event.route, reason, message)
        except Exception:
            log.exception("could not record the route problem",
                          extra=_fields(event, key, "route_problem_not_recorded"))


def _fields(event: PendingEvent, key: str | None, name: str, **facts: Any) -> dict[str, Any]:
    """Structured log fields (bridge.logs copies `extra` into the JSON line)."""
    return {
        "event": name,
        "event_id": event.id,
        "route": event.route,
        "routing_key": last4(key),  # keys only by their last four
        "action": event.action,
        "dedup_key": event.dedup_key,
        **facts,
    }
