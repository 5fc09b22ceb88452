"""The store's interface: all that intake, the worker, the HTTP app and the CLI may ask of it.

A backend (SQLite today: `bridge.store.sqlite`) keeps these promises:

- `enqueue` returns only once the events, the check's open urgency classes and its
  duplicate fingerprint are committed together, durably: the 202 to ASM rests on it.
- Order is the order of `enqueue`: `lane_heads` gives the oldest pending event of each
  routing key, the only one that may be sent; `redrive` appends behind what is pending.
- An event leaves only by `mark_delivered` or `dead_letter` (atomically moved).
- `delivery_lock` is one lock per store, shared by every process using it: one deliverer
  at a time, released by the system when its holder dies.
- After `close()` every call raises (the backend's closed-connection error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from bridge.store.records import (
    DeadLetter,
    LaneHead,
    NewEvent,
    OutboxStats,
    PendingEvent,
    RouteBacklog,
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


class Store(Protocol):
    # -- intake --------------------------------------------------------------------

    def enqueue(
        self, *, route: str, check_key: str, fingerprint: str | None, events_for: EventsFor
    ) -> int | None:
        """Store `events_for`'s events; the number stored, or None for an exact duplicate."""
        ...

    async def enqueue_async(
        self, *, route: str, check_key: str, fingerprint: str | None, events_for: EventsFor
    ) -> int | None:
        """`enqueue` for an event loop: awaits the commit without holding a thread."""
        ...

    def open_keys(self, route: str, check_key: str) -> frozenset[str]:
        """Urgency classes the bridge believes open for a check."""
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
        """The oldest pending event of each routing key: the only one that may be sent."""
        ...

    def get(self, event_id: int) -> PendingEvent | None: ...

    def mark_delivered(self, event_id: int) -> None: ...

    def reschedule(self, event_id: int, *, next_attempt_at: float, error: str) -> None:
        """Count a failed attempt and set when to try again."""
        ...

    def dead_letter(
        self, event_id: int, *, status: int | None, reason: str, message: str,
        attempted: bool = True,
    ) -> int | None:
        """Move an event to dead letters; the letter's id, None if the event is gone."""
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

    # -- health and lifecycle ------------------------------------------------------

    def stats(self) -> OutboxStats: ...

    def writable(self) -> bool:
        """For /readyz: can a write be committed right now?"""
        ...

    def close(self) -> None:
        """Commit what is queued, then close."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...
