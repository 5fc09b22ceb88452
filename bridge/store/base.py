"""The store's interface: all that intake, the worker, the HTTP app and the CLI may ask of it.

A backend (`bridge.store.sqlite`, the default, one host; `bridge.store.postgres`, shared
by several bridges; `bridge.store.location` opens the one configured) keeps these
promises, whatever number of bridges share it:

- `enqueue` returns only once the events, the check's open urgency classes, its
  duplicate fingerprint and its newest ASM timestamp are committed together, durably:
  the 202 to ASM rests on it. Duplicate and stale alerts are told apart in that same
  transaction, so two bridges on one database agree on them.
- A lane is a route. Order is the order of `enqueue`: `lane_heads` gives the oldest
  pending event of each route, the only one that may be sent; `redrive` appends behind
  what is pending.
- A head is sent only after `claim` leased it to the sender: one transaction for all
  the heads of a dispatch round, taking only heads whose lease is free, expired or the
  claimer's own, and only while their routing key has room in its look-back window
  (the claim counts the send); a head whose lane another holds is `held`, one whose key
  has no room `waits`. A lease outlives its process: after a crash nobody sends
  that head again before the lease expires. (PostgreSQL: `FOR UPDATE SKIP LOCKED` on
  the heads; the window per key read and written under the same transaction.)
- An event leaves only by `mark_delivered` or `dead_letter` (atomically moved); both,
  and `reschedule`, clear its lease in the same write. A delivered trigger records the
  key its incident was opened through (`incident_keys`), a delivered resolve forgets it.
- `hold` applies `enqueue`'s duplicate and stale rules in one transaction with keeping
  the alert as the check's held one (maintenance windows); it stores no event and leaves
  the open urgency classes as they are, since PagerDuty was told nothing. `drop_held`
  takes the version it read, so a newer held alert is never dropped.
- `delivery_lock` is one lock per store for backends whose file cannot be shared by
  two deliverers (SQLite); leases are what keep one event in flight per lane.
- After `close()` every call raises (the backend's closed-connection error).

Time: leases, the send log and stale records use the store's own clock (SQLite: the
process's; PostgreSQL: the database's, so that replicas' clock skew cannot shorten a
lease or widen a window). Retry times (`next_attempt_at`) and a 429's throttle are the
worker's, as it computes them.

Schema: each backend has versioned migrations, applied when a store is opened for
writing (and by `apica-pd store migrate`); a schema newer than the bridge knows is
refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from bridge.store.records import (
    Claim,
    Claimed,
    DeadLetter,
    Enqueued,
    HeldAlert,
    IncomingAlert,
    KeyIncidents,
    KeyWindow,
    LaneHead,
    NewEvent,
    OutboxStats,
    PendingEvent,
    RouteBacklog,
    RouteProblem,
    StaleAlert,
    Throttle,
    Unclaimed,
)

# Given the check's open urgency classes, the events to store and the classes open
# afterwards. Runs inside the write transaction, so what it reads cannot change under it;
# raising rolls the whole alert back.
EventsFor = Callable[[frozenset[str]], tuple[Sequence[NewEvent], frozenset[str]]]


class DeliveryLock(Protocol):
    """Who may deliver from a store; `str()` names it in logs."""

    @property
    def held(self) -> bool: ...

    def try_acquire(self) -> bool:
        """Take the lock if it is free (never blocks); True when this process holds it."""
        ...

    def release(self) -> None: ...


class Pace(Protocol):
    """How many sends a routing key may make (`bridge.delivery.pacing.Pacing`)."""

    @property
    def window(self) -> float:
        """The look-back window, seconds."""
        ...

    def next_slot(self, window: KeyWindow, now: float) -> float:
        """When the key may send next (<= now: now)."""
        ...


class Store(Protocol):
    #: The store in messages: the file, or the URL without its password.
    where: str
    #: (schema version found, version now) when opened for writing, else None.
    migrated: tuple[int, int] | None

    # -- intake --------------------------------------------------------------------

    def enqueue(self, alert: IncomingAlert, events_for: EventsFor) -> Enqueued:
        """Store `events_for`'s events, unless the alert is a duplicate or stale."""
        ...

    async def enqueue_async(self, alert: IncomingAlert, events_for: EventsFor) -> Enqueued:
        """`enqueue` for an event loop: awaits the commit without holding a thread."""
        ...

    def open_keys(self, route: str, check_key: str) -> frozenset[str]:
        """Urgency classes the bridge believes open for a check."""
        ...

    def hold(self, alert: IncomingAlert, *, window: str, record: dict[str, Any]) -> Enqueued:
        """Keep `record` as the check's held alert (no events), unless a duplicate or stale."""
        ...

    def held_alerts(self) -> list[HeldAlert]:
        """Every held alert, oldest hold first."""
        ...

    def drop_held(self, route: str, check_key: str, version: int) -> bool:
        """Forget the check's held alert if it is still at `version`; True when dropped."""
        ...

    def record_unclaimed(
        self, *, check_id: int | None, check_guid: str | None, check_name: str,
        severity: str, action: str, body: bytes,
    ) -> None:
        """Keep a webhook no route claims, for a person (the newest few only)."""
        ...

    # -- delivery ------------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after new events are committed (the worker wakes up)."""
        ...

    def delivery_lock(self) -> DeliveryLock: ...

    def lane_heads(self) -> list[LaneHead]:
        """The oldest pending event of each route: the only one that may be sent."""
        ...

    def claim(
        self, claims: Sequence[Claim], *, owner: str, lease_seconds: float, pace: Pace
    ) -> Claimed:
        """Lease these heads to `owner` for `lease_seconds` where their key has room."""
        ...

    def release_leases(self, owner: str) -> None:
        """A clean stop: `owner`'s leases on events it is not sending any more end now."""
        ...

    def get(self, event_id: int) -> PendingEvent | None: ...

    def mark_delivered(self, event_id: int, *, routing_key: str) -> None:
        """PagerDuty took it through `routing_key`: remove it, note or forget its incident."""
        ...

    def reschedule(
        self, event_id: int, *, next_attempt_at: float, error: str,
        throttle: tuple[str, Throttle] | None = None,
    ) -> None:
        """Count a failed attempt and set when to try again; `throttle`: a 429's
        (routing key, what it left)."""
        ...

    def dead_letter(
        self, event_id: int, *, routing_key: str | None, status: int | None, reason: str,
        message: str, attempted: bool = True,
    ) -> int | None:
        """Move an event to dead letters; the letter's id, None if the event is gone."""
        ...

    def key_window(self, routing_key: str, window: float) -> KeyWindow:
        """A key's sends in the last `window` seconds and its throttle."""
        ...

    def record_route_problem(self, route: str, reason: str, message: str) -> None:
        """Count a delivery problem on a route that needs a person."""
        ...

    # -- operators -----------------------------------------------------------------

    def pending(self, limit: int | None = None) -> list[PendingEvent]: ...

    def backlog(self) -> list[RouteBacklog]:
        """Pending events per route, with the error of each route's latest failing event."""
        ...

    def dead_letters(self, ids: Iterable[int] | None = None) -> list[DeadLetter]: ...

    def redrive(self, ids: Iterable[int] | None = None) -> list[int]:
        """Put dead letters (all when `ids` is None) back at the end of their lane."""
        ...

    def unclaimed(self) -> list[Unclaimed]:
        """Refused unclaimed webhooks, oldest first."""
        ...

    def stale_alerts(self) -> list[StaleAlert]:
        """Stale webhooks, oldest first (the newest few only)."""
        ...

    def route_problems(self) -> list[RouteProblem]:
        """Per route and reason, the delivery problems that need a person."""
        ...

    def open_incidents(self) -> list[KeyIncidents]:
        """Per route and routing key, incidents the bridge opened and has not resolved."""
        ...

    # -- health and lifecycle ------------------------------------------------------

    def stats(self) -> OutboxStats: ...

    def writable(self) -> bool:
        """For /readyz: can an alert be committed now? (The last commit's outcome, and a
        small real write at most once a second.)"""
        ...

    def close(self) -> None:
        """Commit what is queued, then close."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...
