"""What the store takes and gives back, as plain records (no backend in them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NewEvent:
    """An event to store: the full Events API body plus what the worker needs to route it."""

    routing_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredEvent:
    """What every stored event carries, pending or dead: its body and where it goes."""

    id: int
    route: str
    routing_key: str
    check_key: str
    action: str
    dedup_key: str
    body: dict[str, Any]
    created_at: float
    attempts: int


@dataclass(frozen=True)
class PendingEvent(StoredEvent):
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True)
class DeadLetter(StoredEvent):
    """An event PagerDuty refused for good. `id` is the letter's own, `event_id` the event's."""

    event_id: int
    status: int | None
    reason: str
    message: str
    dead_at: float


@dataclass(frozen=True)
class LaneHead:
    """Just enough to schedule a lane; the body is read only when it is sent."""

    id: int
    routing_key: str
    next_attempt_at: float


@dataclass(frozen=True)
class Unclaimed:
    """A webhook refused because no route claims its check (body cut to a few KB)."""

    id: int
    received_at: float
    check_id: int | None
    check_guid: str | None
    check_name: str
    severity: str
    action: str
    body: str
    body_bytes: int


@dataclass(frozen=True)
class RouteBacklog:
    route: str
    pending: int
    oldest_created_at: float
    max_attempts: int
    last_error: str | None


@dataclass(frozen=True)
class OutboxStats:
    """Queue depth, for /metrics and `apica-pd outbox`."""

    pending: int
    oldest_pending_age_seconds: float
    dead_letters: int
